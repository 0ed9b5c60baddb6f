// The agent's local deploy loop: stage, switch, reload, probe, switch back,
// retention, and recovery after a crash. Commands for one app run one at a
// time; different apps run in parallel.
//
// A command's subject is either the app's code (releases/, `current`) or its
// config (configs/, `config`; DESIGN.md "Config"); both go through the same
// loop. Every command the agent runs for an app (after_unpack, reload, hooks,
// exec probes) gets FLEET_APP, FLEET_RELEASE, FLEET_RELEASE_DIR,
// FLEET_APP_DIR, FLEET_HOST, FLEET_CONFIG and FLEET_CONFIG_DIR (the config
// active for that command: the new one during a config activation; "" when
// there is none) and every --var.
#ifndef FLEET_AGENT_DEPLOYER_H_
#define FLEET_AGENT_DEPLOYER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/fetch.h"
#include "agent/layout.h"
#include "agent/output_log.h"
#include "agent/probe.h"
#include "agent/state_store.h"
#include "agent/unpack.h"
#include "common/clock.h"
#include "common/process.h"
#include "fleet/v1/agent.pb.h"
#include "fleet/v1/agent_state.pb.h"

namespace fleet::agent {

struct AgentOptions {
  std::string host_id;
  std::string apps_root;
  std::string state_dir;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> vars;
  UnpackLimits unpack_limits;
  // The age identity (private key file) that decrypts the *.age secrets of
  // config releases (fleet-agent --age-identity).
  std::string age_identity = "/etc/fleet/age.key";
};

// Reports a step of a running command ("downloading", "switching", ...).
// "downloading", "before_switch", ...: the step as logs show it.
std::string ProgressStepName(fleet::v1::ProgressStep step);

using ProgressFn = std::function<void(fleet::v1::ProgressStep step, const std::string& message)>;

// Which link, directory and record fields a command's subject uses; an
// implementation detail of Deployer, defined in deployer.cc.
class Track;

class Deployer {
 public:
  // Borrows every pointer; they must outlive the Deployer.
  Deployer(AgentOptions options, ProcessRunner* runner, ProbeTransport* probes, Clock* clock,
           ArtifactSource* artifacts);

  // At agent start, before any command: makes the state dir private
  // (StateStore::Init), removes leftovers (staging and trash dirs,
  // manifests without their version, .current.tmp, .config.tmp, *.part),
  // checks every staged version against its tree manifest, discarding
  // incomplete ones that are not linked (a version without a manifest,
  // staged by an earlier agent, gets one), and finishes every interrupted
  // activation. An interrupted deploy (of a release or a config) is switched
  // back to the version it replaced and its failure stored as the command's
  // result; an interrupted rollback is forgotten, so the controller's resend
  // redoes it.
  absl::Status Recover();

  // Runs a command to completion and returns its result, which is also
  // stored before this returns. A command id already completed returns the
  // stored result without doing anything. Thread-safe.
  //
  // Stage of a release: download, verify, unpack into releases/<v>, link the
  // shared dirs and `config -> ../../config` (an artifact with its own
  // `config` is refused), run after_unpack. Stage of a config: download and
  // verify the bundle, write its files into configs/<v> with their modes
  // (never setuid/setgid/sticky), decrypt every *.age secret with `age` and
  // options().age_identity into a 0600 file without the suffix, and check
  // the decrypted files' syntax and spec.config's required keys. Either way
  // a failure leaves nothing behind (no *.part, no staging dir). A version
  // already on disk is reused only when it matches its tree manifest
  // (agent/tree_manifest.h); an incomplete one is discarded and staged
  // anew. Before the download the state dir and the apps root must have
  // room for the artifact (twice on one filesystem), and before the unpack
  // the apps root for what the archive's headers declare, each with a
  // margin: otherwise the stage fails at once with one line ("not enough
  // space to stage web@v2: needs 1.2 GiB in /opt/web/releases, 300.0 MiB
  // free"). Activate switches the subject's link,
  // reloads the current release, probes through the bake and switches back
  // on failure; a config for an app without a current release only
  // switches the link. No switch (deploy, rollback, switch back) goes to a
  // version that does not match its tree manifest: the command fails
  // naming what is missing, and the version is discarded (unless linked).
  // result.previous_release/current_release are versions of the command's
  // subject.
  //
  // With spec.trusted_keys, a release whose signature verifies with none of
  // them (common/signing.h) fails its stage before anything is downloaded,
  // and fails every activation (deploy or rollback) before anything
  // switches: activation checks the signature recorded at staging, so keys
  // added later also stop releases already on disk.
  fleet::v1::CommandResult Execute(const fleet::v1::Command& command, const ProgressFn& progress);

  // The state of every app on this host, for Hello.
  std::vector<fleet::v1::HostAppState> AppStates();
  fleet::v1::HostAppState AppState(const std::string& app);

  // Break-glass (agent/local_rollback.cc): switches `req.app()`'s `current`
  // to req.to_version() or, when it is "", to the app's previous release
  // (the one `current` pointed to before the last switch), else the
  // rollback target the controller last named, else the last good release,
  // the first of them that is on disk and not current. The switch is a
  // rollback-mode activation (journal, reload, after_rollback, probes once)
  // with the spec of the app's last command, run under the app's lock like
  // any command (it waits for one that is running). Needs no controller.
  //
  // reply.ok when the host switched and its probes passed; reply.rollback
  // is set whenever the link was switched (then also when probes failed:
  // like every rollback the link stays) and is recorded in the app's record
  // (LocalRollbacks). Refused, with nothing changed and a one-line
  // reply.message: an unknown app or one without a spec on this host,
  // a version not on disk or incomplete, no earlier release, or the
  // version current already points to. `actor` ("root@web-03") is recorded.
  fleet::v1::LocalRollbackReply RollBackLocally(const fleet::v1::LocalRollbackRequest& req,
                                                const std::string& actor);
  // The last break-glass rollback of every app that had one, for Hello.
  std::vector<fleet::v1::LocalRollback> LocalRollbacks();

  // Ends the bake of the app's running activation early: it reports
  // "superseded" without switching back, so the activation queued behind it
  // (a rollback taking over) starts at once. Thread-safe; no effect when
  // nothing is baking.
  void CancelActivation(const std::string& app);
  // Clears a cancel before the app's next activation starts. The caller
  // orders it with CancelActivation (AgentSession does both under its lock).
  void ResetCancel(const std::string& app);

  const AgentOptions& options() const { return options_; }
  // What activations' commands printed on this host (`fleetctl logs`).
  const OutputLog& output_log() const { return output_log_; }

 private:
  struct Env {
    std::map<std::string, std::string> vars;  // FLEET_* and --var
    std::string release_dir;
    std::string user;  // the spec's `user:`; "" = the agent's own
    // Where the activation keeps what its commands print; null = nowhere.
    ActivationRecorder* recorder = nullptr;
  };
  absl::Mutex* AppMutex(const std::string& app);
  // Execute() with the app's lock held by the caller.
  fleet::v1::CommandResult ExecuteLocked(const fleet::v1::Command& command, const std::string& app,
                                         const ProgressFn& progress);
  // Keeps `spec` in the app's record when it differs from the one there.
  void RememberSpec(const fleet::v1::AppSpec& spec);
  // The version RollBackLocally goes to without --to; FailedPrecondition
  // naming what is on disk when there is none.
  absl::StatusOr<std::string> LocalRollbackTarget(const AppLayout& layout,
                                                  const fleet::v1::AgentAppRecord& record,
                                                  const std::string& current) const;
  // The environment of `spec`'s commands run with `release` and `config`
  // active (either may be ""); FLEET_ROLLOUT is "" until the caller sets it.
  Env MakeEnv(const fleet::v1::AppSpec& spec, const AppLayout& layout, const std::string& release,
              const std::string& config) const;
  // Gives `dir` and everything in it to the spec's `user:`, or without one
  // to the agent's own user. NotFound when this host has no such user.
  absl::Status GiveToUser(const fleet::v1::AppSpec& spec, const std::string& dir) const;
  // Gives the app's shared dirs themselves (not their content) to that user.
  absl::Status GiveSharedDirsToUser(const fleet::v1::AppSpec& spec, const AppLayout& layout) const;
  absl::Status RunCommand(const std::string& what, const std::string& command, const Env& env,
                          int64_t timeout_ms);

  absl::Status Stage(const fleet::v1::StageCommand& cmd, const ProgressFn& progress);
  // Before a download: ResourceExhausted unless the state dir has room for
  // `blob` and the versions dir for about as much again (both with a
  // margin; common/fs.h CheckFreeSpace).
  absl::Status CheckSpaceToDownload(const AppLayout& layout, const Track& track,
                                    const fleet::v1::Release& blob) const;
  // Unpacks (writes) the verified download `part` into a staging dir,
  // records its manifests and renames it into place. `part` and the
  // staging dir are gone afterwards, whatever the outcome.
  absl::Status PlaceDownload(const fleet::v1::StageCommand& cmd, const Track& track,
                             const AppLayout& layout, const fleet::v1::Release& manifest,
                             const std::string& part, const ProgressFn& progress);
  // Fill the staging dir of a release or a config from the downloaded blob;
  // `summary` says what was written, for the progress message.
  absl::Status UnpackRelease(const fleet::v1::StageCommand& cmd, const AppLayout& layout,
                             const std::string& artifact, const std::string& staging,
                             std::string* summary);
  absl::Status WriteConfig(const fleet::v1::StageCommand& cmd, const std::string& bundle_path,
                           const std::string& staging, std::string* summary);
  // Decrypts the secret `file` of config `label` ("web@c2") into
  // <staging>/<its path without .age>, mode 0600.
  absl::Status DecryptSecret(const std::string& label, const fleet::v1::ConfigFile& file,
                             const std::string& staging);
  // Adds `version` to the record's staged list (a fresh one as the newest)
  // and, for a release, records `manifest` as what releases/<version> holds.
  absl::Status RecordStaged(const Track& track, const std::string& app, const std::string& version,
                            bool fresh, const fleet::v1::Release* manifest = nullptr);
  // Whether releases/<version> may be switched to under `spec`: OK when the
  // spec has no trusted_keys, else the signature recorded when it was staged
  // must verify for spec.name() and `version` (common/signing.h). A release
  // staged without a recorded signature counts as unsigned.
  absl::Status CheckTrustedRelease(const fleet::v1::AppSpec& spec,
                                   const std::string& version) const;

  void Activate(const fleet::v1::Command& command, const ProgressFn& progress,
                fleet::v1::CommandResult* result);
  // Reload, after_switch (after_rollback in ROLLBACK mode), probes through
  // the bake: what decides whether an activation stays.
  absl::Status ReloadAndProbe(const fleet::v1::ActivateCommand& cmd, const Env& env,
                              const ProgressFn& progress);
  // Switches the track's link back to `from` (or removes it when from is
  // ""), then reloads the current release, if any, and runs after_rollback,
  // with FLEET_ROLLOUT = `rollout_id` (the rollout of the switch undone).
  // Returns what failed, if anything.
  absl::Status SwitchBack(const AppLayout& layout, const Track& track,
                          const fleet::v1::AppSpec& spec, const std::string& from,
                          const std::string& rollout_id, ActivationRecorder* recorder);
  // Starts keeping the output of an activation's commands (output_log.h).
  std::unique_ptr<ActivationRecorder> RecordActivation(const fleet::v1::Command& command);
  absl::Status ProbeRelease(const fleet::v1::AppSpec& spec, const Env& env, absl::Duration bake,
                            const std::atomic<bool>* cancelled);
  std::atomic<bool>* CancelFlag(const std::string& app);
  // OK when the track's `version` may be switched to: staged and complete
  // (AppLayout::CheckComplete). FailedPrecondition "... is not on disk on
  // host h1 (on disk: ...)"; DataLoss for an incomplete one, which is
  // discarded first (unless it is linked), so it is no longer listed and
  // the next stage of it unpacks it again.
  absl::Status CheckBeforeSwitch(const AppLayout& layout, const Track& track,
                                 const std::string& version);
  // At start: records the manifest of versions staged by an agent older
  // than manifests, and discards incomplete ones that are not linked.
  void RepairVersions(const AppLayout& layout);
  void ApplyRetention(const AppLayout& layout, const Track& track, const fleet::v1::AppSpec& spec,
                      const fleet::v1::AgentAppRecord& record,
                      const std::vector<std::string>& keep);

  AgentOptions options_;
  ProcessRunner* runner_;
  ProbeRunner probe_runner_;
  Clock* clock_;
  ArtifactSource* artifacts_;
  StateStore state_;
  OutputLog output_log_;

  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<absl::Mutex>> app_mu_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<std::atomic<bool>>> cancel_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleet::agent

#endif  // FLEET_AGENT_DEPLOYER_H_
