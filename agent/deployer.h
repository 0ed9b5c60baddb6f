// The agent's local deploy loop: stage, switch, reload, probe, switch back,
// retention, and recovery after a crash. Commands for one app run one at a
// time; different apps run in parallel.
#ifndef FLEET_AGENT_DEPLOYER_H_
#define FLEET_AGENT_DEPLOYER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "agent/fetch.h"
#include "agent/layout.h"
#include "agent/probe.h"
#include "agent/state_store.h"
#include "agent/unpack.h"
#include "common/clock.h"
#include "common/process.h"
#include "fleet/v1/agent.pb.h"

namespace fleet::agent {

struct AgentOptions {
  std::string host_id;
  std::string apps_root;
  std::string state_dir;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> vars;
  UnpackLimits unpack_limits;
};

// Reports a step of a running command ("downloading", "switching", ...).
using ProgressFn = std::function<void(const std::string& step, const std::string& message)>;

class Deployer {
 public:
  // Borrows every pointer; they must outlive the Deployer.
  Deployer(AgentOptions options, ProcessRunner* runner, ProbeTransport* probes, Clock* clock,
           ArtifactSource* artifacts);

  // At agent start, before any command: removes leftovers (staging dirs,
  // .current.tmp, *.part) and finishes every interrupted activation. An
  // interrupted deploy is switched back to the release it replaced and its
  // failure stored as the command's result; an interrupted rollback is
  // forgotten, so the controller's resend redoes it.
  absl::Status Recover();

  // Runs a command to completion and returns its result, which is also
  // stored before this returns. A command id already completed returns the
  // stored result without doing anything. Thread-safe.
  fleet::v1::CommandResult Execute(const fleet::v1::Command& command, const ProgressFn& progress);

  // The state of every app on this host, for Hello.
  std::vector<fleet::v1::HostAppState> AppStates();
  fleet::v1::HostAppState AppState(const std::string& app);

  // Ends the bake of the app's running activation early: it reports
  // "superseded" without switching back, so the activation queued behind it
  // (a rollback taking over) starts at once. Thread-safe; no effect when
  // nothing is baking.
  void CancelActivation(const std::string& app);
  // Clears a cancel before the app's next activation starts. The caller
  // orders it with CancelActivation (AgentSession does both under its lock).
  void ResetCancel(const std::string& app);

  const AgentOptions& options() const { return options_; }

 private:
  struct Env {
    std::map<std::string, std::string> vars;  // FLEET_* and --var
    std::string release_dir;
  };

  absl::Mutex* AppMutex(const std::string& app);
  Env MakeEnv(const AppLayout& layout, const std::string& version) const;
  absl::Status RunCommand(const std::string& what, const std::string& command,
                          const Env& env, int64_t timeout_ms);

  absl::Status Stage(const fleet::v1::StageCommand& cmd, const ProgressFn& progress);
  void Activate(const fleet::v1::Command& command, const ProgressFn& progress,
                fleet::v1::CommandResult* result);
  // Switches back to `from` (or removes current when from is ""), reloads it
  // and runs after_rollback. Returns what failed, if anything.
  absl::Status SwitchBack(const AppLayout& layout, const fleet::v1::AppSpec& spec,
                          const std::string& from);
  absl::Status ProbeRelease(const fleet::v1::AppSpec& spec, const Env& env, absl::Duration bake,
                            const std::atomic<bool>* cancelled);
  std::atomic<bool>* CancelFlag(const std::string& app);
  void ApplyRetention(const AppLayout& layout, const fleet::v1::AppSpec& spec,
                      const fleet::v1::AgentAppRecord& record,
                      const std::vector<std::string>& keep);

  AgentOptions options_;
  ProcessRunner* runner_;
  ProbeRunner probe_runner_;
  Clock* clock_;
  ArtifactSource* artifacts_;
  StateStore state_;

  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<absl::Mutex>> app_mu_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<std::atomic<bool>>> cancel_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleet::agent

#endif  // FLEET_AGENT_DEPLOYER_H_
