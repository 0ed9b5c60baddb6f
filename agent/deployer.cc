#include "agent/deployer.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/deployer_internal.h"
#include "common/config_bundle.h"
#include "common/config_files.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/signing.h"
#include "common/status.h"
#include "common/vars.h"

namespace fleet::agent {

using fleet::v1::ActivateCommand;
using fleet::v1::AgentAppRecord;
using fleet::v1::AppSpec;
using fleet::v1::Command;
using fleet::v1::CommandResult;
using fleet::v1::ConfigFile;
using fleet::v1::HostAppState;
using fleet::v1::StageCommand;
using fleet::v1::Subject;

namespace {

Subject SubjectOf(const Command& command) {
  if (command.has_stage()) {
    return command.stage().has_config() ? fleet::v1::SUBJECT_CONFIG : fleet::v1::SUBJECT_RELEASE;
  }
  return command.activate().subject();
}

}  // namespace

Deployer::Deployer(AgentOptions options, ProcessRunner* runner, ProbeTransport* probes,
                   Clock* clock, ArtifactSource* artifacts)
    : options_(std::move(options)),
      runner_(runner),
      probe_runner_(probes, clock),
      clock_(clock),
      artifacts_(artifacts),
      state_(options_.state_dir),
      output_log_(options_.state_dir + "/output") {}

absl::Mutex* Deployer::AppMutex(const std::string& app) {
  absl::MutexLock lock(&mu_);
  auto& slot = app_mu_[app];
  if (!slot) slot = std::make_unique<absl::Mutex>();
  return slot.get();
}

Deployer::Env Deployer::MakeEnv(const AppSpec& spec, const AppLayout& layout,
                                const std::string& release, const std::string& config) const {
  Env env;
  env.user = spec.user();
  env.vars = options_.vars;
  env.release_dir = release.empty() ? "" : layout.release_dir(release);
  env.vars["FLEET_APP"] = layout.app();
  env.vars["FLEET_RELEASE"] = release;
  env.vars["FLEET_RELEASE_DIR"] = env.release_dir;
  env.vars["FLEET_CONFIG"] = config;
  env.vars["FLEET_CONFIG_DIR"] = config.empty() ? "" : layout.config_dir(config);
  env.vars["FLEET_APP_DIR"] = layout.app_dir();
  env.vars["FLEET_HOST"] = options_.host_id;
  // Known to every command, so `${FLEET_ROLLOUT}` expands everywhere; the
  // switches of a rollout set it.
  env.vars["FLEET_ROLLOUT"] = "";
  return env;
}

absl::Status Deployer::GiveToUser(const AppSpec& spec, const std::string& dir) const {
  // Without `user:` the tree is the agent's: one a user had before (the
  // spec dropped it) is taken back, or commands now run as the agent, root,
  // would run code that user could still change.
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (!spec.user().empty()) {
    absl::StatusOr<RunAs> run_as = LookupUser(spec.user());
    if (!run_as.ok()) return Annotate(run_as.status(), absl::StrCat("user of app ", spec.name()));
    uid = run_as->uid;
    gid = run_as->gid;
  }
  struct stat st;
  // A whole tree is given at once, its top last, so the top tells whether
  // it is done.
  if (lstat(dir.c_str(), &st) == 0 && st.st_uid == uid && st.st_gid == gid) {
    return absl::OkStatus();
  }
  return ChownTree(dir, uid, gid);
}

absl::Status Deployer::GiveSharedDirsToUser(const AppSpec& spec, const AppLayout& layout) const {
  if (spec.user().empty()) return absl::OkStatus();
  FLEET_ASSIGN_OR_RETURN(RunAs run_as, LookupUser(spec.user()));
  for (const std::string& dir : spec.shared_dirs()) {
    const std::string shared = absl::StrCat(layout.shared_dir(), "/", dir);
    // Only the directory itself: what is in it is the service's, and a
    // large log dir would slow every switch. Missing ones are made at
    // staging.
    if (lchown(shared.c_str(), run_as.uid, run_as.gid) != 0 && errno != ENOENT) {
      return ErrnoError("cannot chown", shared);
    }
  }
  return absl::OkStatus();
}

absl::Status Deployer::RunCommand(const std::string& what, const std::string& command,
                                  const Env& env, int64_t timeout_ms) {
  if (command.empty()) return absl::OkStatus();
  auto expanded = ExpandVars(command, env.vars);
  if (!expanded.ok()) return Annotate(expanded.status(), what);
  ProcessSpec spec;
  spec.command = *expanded;
  spec.cwd = env.release_dir;
  spec.env = env.vars;
  spec.timeout = absl::Milliseconds(timeout_ms > 0 ? timeout_ms : 60000);
  if (!env.user.empty()) {
    absl::StatusOr<RunAs> run_as = LookupUser(env.user);
    if (!run_as.ok()) return Annotate(run_as.status(), what);
    spec.run_as = *std::move(run_as);
  }
  const absl::Time started = clock_->Now();
  auto result = runner_->Run(spec);
  if (env.recorder != nullptr) {
    fleet::v1::CommandRun run;
    run.set_step(what);
    run.set_command(*expanded);
    run.set_started_at_ms(absl::ToUnixMillis(started));
    if (result.ok()) {
      run.set_elapsed_ms(absl::ToInt64Milliseconds(result->elapsed));
      run.set_ok(result->ok());
      run.set_status(result->Describe());
      run.set_output(result->output);
    } else {
      run.set_status(absl::StrCat("could not start: ", result.status().message()));
    }
    env.recorder->Record(run);
  }
  if (!result.ok()) return Annotate(result.status(), what);
  if (!result->ok()) {
    return absl::AbortedError(absl::StrCat(what, " '", command, "' ", result->Describe()));
  }
  return absl::OkStatus();
}

absl::Status Deployer::Recover() {
  absl::Status st = state_.Init();
  if (!st.ok()) return st;
  st = MakeDirs(options_.apps_root);
  if (!st.ok()) return st;
  for (const std::string& app : ListAppDirs(options_.apps_root)) {
    AppLayout layout(options_.apps_root, app);
    for (const std::string& path : layout.RemoveLeftovers()) {
      spdlog::info("removed leftover of an interrupted step: {}", path);
    }
    RepairVersions(layout);
  }
  for (const std::string& app : state_.JournalApps()) {
    auto entry = state_.LoadJournal(app);
    if (!entry) {
      state_.ClearJournal(app).IgnoreError();
      continue;
    }
    if (state_.LoadResult(entry->command_id())) {
      // The result was stored; only the journal removal was interrupted.
      state_.ClearJournal(app).IgnoreError();
      continue;
    }
    AppLayout layout(options_.apps_root, app);
    const Track track(entry->subject());
    if (entry->mode() == fleet::v1::ACTIVATE_MODE_ROLLBACK) {
      spdlog::warn(
          "{}: rollback of {} {} to {} was interrupted; it runs again when the "
          "controller resends it",
          options_.host_id, app, track.noun(), entry->to_release());
      state_.ClearJournal(app).IgnoreError();
      continue;
    }
    auto current = layout.LinkedVersion(track.subject());
    std::string reason = absl::StrCat("agent restarted during activation of ", entry->to_release());
    absl::Status back =
        SwitchBack(layout, track, entry->spec(), entry->from_release(), entry->rollout_id(),
                   nullptr);
    if (back.ok()) {
      absl::StrAppend(&reason, "; switched back to ", OrNone(entry->from_release(), track));
    } else {
      absl::StrAppend(&reason, "; switching back failed: ", back.message());
    }
    spdlog::warn("{}: {}: {}", options_.host_id, app, reason);
    CommandResult result;
    result.set_command_id(entry->command_id());
    result.set_ok(false);
    result.set_reason(reason);
    result.set_previous_version(entry->from_release());
    result.set_current_version(layout.LinkedVersion(track.subject()).value_or(""));
    result.set_switched_back(current.ok() && *current != entry->from_release());
    *result.mutable_state() = AppState(app);
    st = state_.SaveResult(result);
    if (!st.ok()) return st;
    state_.ClearJournal(app).IgnoreError();
  }
  return absl::OkStatus();
}

HostAppState Deployer::AppState(const std::string& app) {
  AppLayout layout(options_.apps_root, app);
  AgentAppRecord record = state_.LoadApp(app);
  const Track releases(fleet::v1::SUBJECT_RELEASE);
  const Track configs(fleet::v1::SUBJECT_CONFIG);
  HostAppState state;
  state.set_app(app);
  state.set_current_release(layout.CurrentRelease().value_or(""));
  for (const std::string& v : VersionsOldestFirst(layout, releases, record)) state.add_releases(v);
  state.set_last_known_good(record.last_known_good());
  state.set_previous_release(record.previous_release());
  state.set_current_config(layout.CurrentConfig().value_or(""));
  for (const std::string& v : VersionsOldestFirst(layout, configs, record)) state.add_configs(v);
  state.set_last_good_config(record.last_good_config());
  state.set_previous_config(record.previous_config());
  return state;
}

std::vector<HostAppState> Deployer::AppStates() {
  std::vector<HostAppState> out;
  for (const std::string& app : ListAppDirs(options_.apps_root)) out.push_back(AppState(app));
  return out;
}

std::string ProgressStepName(fleet::v1::ProgressStep step) {
  absl::string_view name = fleet::v1::ProgressStep_Name(step);
  absl::ConsumePrefix(&name, "PROGRESS_STEP_");
  return absl::AsciiStrToLower(name);
}

CommandResult Deployer::Execute(const Command& command, const ProgressFn& progress) {
  std::string app =
      command.has_stage() ? command.stage().spec().name() : command.activate().spec().name();
  if (!IsSafeName(app)) {
    CommandResult result;
    result.set_command_id(command.id());
    if (command.has_ref()) *result.mutable_ref() = command.ref();
    result.set_reason(absl::StrCat("invalid app name '", app, "'"));
    return result;
  }
  absl::MutexLock app_lock(AppMutex(app));
  return ExecuteLocked(command, app, progress);
}

CommandResult Deployer::ExecuteLocked(const Command& command, const std::string& app,
                                      const ProgressFn& progress) {
  auto started = clock_->Now();
  CommandResult result;
  result.set_command_id(command.id());
  if (command.has_ref()) *result.mutable_ref() = command.ref();
  if (auto stored = state_.LoadResult(command.id())) {
    // Results stored by an interrupted activation's recovery have no ref.
    if (command.has_ref()) *stored->mutable_ref() = command.ref();
    return *stored;
  }

  RememberSpec(command.has_stage() ? command.stage().spec() : command.activate().spec());
  AppLayout layout(options_.apps_root, app);
  const Subject subject = SubjectOf(command);
  result.set_previous_version(layout.LinkedVersion(subject).value_or(""));
  if (command.has_stage()) {
    absl::Status st = Stage(command.stage(), progress);
    result.set_ok(st.ok());
    if (!st.ok()) result.set_reason(std::string(st.message()));
  } else if (command.has_activate()) {
    Activate(command, progress, &result);
  } else {
    result.set_reason("unknown command");
  }
  result.set_current_version(layout.LinkedVersion(subject).value_or(""));
  result.set_duration_ms(absl::ToInt64Milliseconds(clock_->Now() - started));
  *result.mutable_state() = AppState(app);
  absl::Status st = state_.SaveResult(result);
  if (!st.ok()) spdlog::error("cannot store result of {}: {}", command.id(), st.message());
  if (command.has_activate()) {
    // After the result: a crash in between makes Recover() see the stored
    // result and only clear the journal.
    state_.ClearJournal(app).IgnoreError();
  }
  return result;
}

std::atomic<bool>* Deployer::CancelFlag(const std::string& app) {
  absl::MutexLock lock(&mu_);
  auto& slot = cancel_[app];
  if (!slot) slot = std::make_unique<std::atomic<bool>>(false);
  return slot.get();
}

void Deployer::CancelActivation(const std::string& app) { CancelFlag(app)->store(true); }

void Deployer::ResetCancel(const std::string& app) { CancelFlag(app)->store(false); }

absl::Status Deployer::ProbeRelease(const AppSpec& spec, const Env& env, absl::Duration bake,
                                    const std::atomic<bool>* cancelled) {
  std::vector<fleet::v1::HealthCheck> checks;
  for (const auto& check : spec.health()) {
    fleet::v1::HealthCheck expanded = check;
    for (std::string* field :
         {expanded.mutable_http(), expanded.mutable_tcp(), expanded.mutable_exec()}) {
      if (field->empty()) continue;
      auto value = ExpandVars(*field, env.vars);
      if (!value.ok()) return Annotate(value.status(), "health check");
      *field = *value;
    }
    checks.push_back(std::move(expanded));
  }
  ProbeContext ctx;
  ctx.cwd = env.release_dir;
  ctx.env = env.vars;
  ctx.recorder = env.recorder;
  if (!env.user.empty()) {
    absl::StatusOr<RunAs> run_as = LookupUser(env.user);
    if (!run_as.ok()) return Annotate(run_as.status(), "health check");
    ctx.run_as = *std::move(run_as);
  }
  auto var = [&env](const char* name) {
    auto it = env.vars.find(name);
    return it == env.vars.end() || it->second.empty() ? std::string("-") : it->second;
  };
  ctx.log_context = absl::StrCat("app=", var("FLEET_APP"), " release=", var("FLEET_RELEASE"),
                                 " config=", var("FLEET_CONFIG"), " host=", var("FLEET_HOST"),
                                 " rollout=", var("FLEET_ROLLOUT"));
  return probe_runner_.RunChecks(checks, ctx, bake, cancelled);
}

absl::Status Deployer::SwitchBack(const AppLayout& layout, const Track& track, const AppSpec& spec,
                                  const std::string& from, const std::string& rollout_id,
                                  ActivationRecorder* recorder) {
  if (!from.empty()) FLEET_RETURN_IF_ERROR(CheckBeforeSwitch(layout, track, from));
  FLEET_RETURN_IF_ERROR(from.empty() ? layout.RemoveLink(track.subject())
                                     : layout.SwitchLink(track.subject(), from));
  // Whatever is current now gets reloaded; without a release nothing runs.
  Env env = MakeEnv(spec, layout, layout.CurrentRelease().value_or(""),
                    layout.CurrentConfig().value_or(""));
  env.vars["FLEET_ROLLOUT"] = rollout_id;
  env.recorder = recorder;
  if (env.release_dir.empty()) return absl::OkStatus();
  FLEET_RETURN_IF_ERROR(RunCommand("reload", spec.reload(), env, spec.reload_timeout_ms()));
  return RunCommand("after_rollback hook", spec.hooks().after_rollback(), env,
                    spec.hooks().timeout_ms());
}

namespace {

// Expands every command and probe target before anything switches, so a
// missing --var fails the host while it still runs the old version; found
// only after the switch, it would restart the new one and then switch back.
absl::Status CheckExpansions(const AppSpec& spec, const std::map<std::string, std::string>& vars) {
  for (const std::string* text : {&spec.reload(), &spec.hooks().before_switch(),
                                  &spec.hooks().after_switch(), &spec.hooks().after_rollback()}) {
    FLEET_RETURN_IF_ERROR(ExpandVars(*text, vars).status());
  }
  for (const fleet::v1::HealthCheck& check : spec.health()) {
    for (const std::string* text : {&check.http(), &check.tcp(), &check.exec()}) {
      absl::Status st = ExpandVars(*text, vars).status();
      if (!st.ok()) return Annotate(st, "health check");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Deployer::ReloadAndProbe(const ActivateCommand& cmd, const Env& env,
                                      const ProgressFn& progress) {
  const AppSpec& spec = cmd.spec();
  const bool rollback = cmd.mode() == fleet::v1::ACTIVATE_MODE_ROLLBACK;
  progress(fleet::v1::PROGRESS_STEP_RELOADING, cmd.version());
  FLEET_RETURN_IF_ERROR(RunCommand("reload", spec.reload(), env, spec.reload_timeout_ms()));
  FLEET_RETURN_IF_ERROR(
      RunCommand(rollback ? "after_rollback hook" : "after_switch hook",
                 rollback ? spec.hooks().after_rollback() : spec.hooks().after_switch(), env,
                 spec.hooks().timeout_ms()));
  progress(fleet::v1::PROGRESS_STEP_PROBING, cmd.version());
  int64_t bake_ms = cmd.has_bake() ? cmd.bake_ms() : spec.bake_ms();
  absl::Duration bake = rollback ? absl::ZeroDuration() : absl::Milliseconds(bake_ms);
  return ProbeRelease(spec, env, bake, CancelFlag(spec.name()));
}

std::unique_ptr<ActivationRecorder> Deployer::RecordActivation(const Command& command) {
  const ActivateCommand& cmd = command.activate();
  fleet::v1::ActivationOutput header;
  header.set_app(cmd.spec().name());
  header.set_command_id(command.id());
  header.set_rollout_id(command.rollout_id());
  header.set_version(cmd.version());
  header.set_subject(cmd.subject());
  const bool rollback = cmd.mode() == fleet::v1::ACTIVATE_MODE_ROLLBACK;
  header.set_kind(command.ref().phase() == fleet::v1::COMMAND_PHASE_REVERT ? "revert"
                  : !rollback                                               ? "deploy"
                  : command.rollout_id().empty()                            ? "local rollback"
                                                                            : "rollback");
  header.set_started_at_ms(absl::ToUnixMillis(clock_->Now()));
  return output_log_.Begin(header);
}

void Deployer::Activate(const Command& command, const ProgressFn& progress, CommandResult* result) {
  const ActivateCommand& cmd = command.activate();
  const AppSpec& spec = cmd.spec();
  const std::string& version = cmd.version();
  const bool rollback = cmd.mode() == fleet::v1::ACTIVATE_MODE_ROLLBACK;
  const Track track(cmd.subject());
  AppLayout layout(options_.apps_root, spec.name());

  if (track.config() && version.empty() && rollback) {
    // Back to no config: the revert of the app's first config. Like every
    // rollback it is not journalled; an interrupted one is sent again.
    const std::string from = layout.CurrentConfig().value_or("");
    progress(fleet::v1::PROGRESS_STEP_SWITCHING,
             absl::StrCat(OrNone(from, track), " -> no config"));
    absl::Status st = SwitchBack(layout, track, spec, "", command.rollout_id(), nullptr);
    if (!st.ok()) {
      result->set_reason(absl::StrCat("cannot remove the config link: ", st.message()));
      return;
    }
    AgentAppRecord record = state_.LoadApp(spec.name());
    *track.mutable_previous(&record) = from;
    state_.SaveApp(record).IgnoreError();
    result->set_ok(true);
    return;
  }
  if (absl::Status complete = CheckBeforeSwitch(layout, track, version); !complete.ok()) {
    result->set_reason(std::string(complete.message()));
    return;
  }
  // Before every switch, rollbacks and catch-ups included: trusted_keys
  // added since a release was staged keep it from running again. (Switching
  // back to what ran before a failed activation is not checked: it restores,
  // it does not activate anything new.)
  if (!track.config()) {
    if (absl::Status trusted = CheckTrustedRelease(spec, version); !trusted.ok()) {
      result->set_reason(std::string(trusted.message()));
      return;
    }
  }
  // Staged before the spec named its user, or another one.
  absl::Status owned = GiveToUser(spec, layout.version_dir(track.subject(), version));
  if (owned.ok()) owned = GiveSharedDirsToUser(spec, layout);
  if (!owned.ok()) {
    result->set_reason(std::string(owned.message()));
    return;
  }
  std::string from = layout.LinkedVersion(track.subject()).value_or("");
  // Releases unpacked before Fleet linked config into every release get the
  // link now; one with a config of its own cannot take config releases.
  const std::string release = track.config() ? layout.CurrentRelease().value_or("") : version;
  if (!release.empty()) {
    absl::Status linked = LinkConfigInto(layout.release_dir(release));
    if (!linked.ok() && track.config()) {
      result->set_reason(std::string(linked.message()));
      return;
    }
    if (!linked.ok()) spdlog::warn("{}: {}", spec.name(), linked.message());
  }
  // What runs after the switch: the new version of this subject with the
  // current one of the other.
  Env env = track.config() ? MakeEnv(spec, layout, layout.CurrentRelease().value_or(""), version)
                           : MakeEnv(spec, layout, version, layout.CurrentConfig().value_or(""));
  env.vars["FLEET_ROLLOUT"] = command.rollout_id();
  std::unique_ptr<ActivationRecorder> recorder = RecordActivation(command);
  env.recorder = recorder.get();
  // A config for an app that has no release on this host: nothing runs
  // that could read it, so the link alone switches.
  const bool runs = !env.release_dir.empty();
  if (runs) {
    absl::Status st = CheckExpansions(spec, env.vars);
    if (st.ok() && !rollback) {
      progress(fleet::v1::PROGRESS_STEP_BEFORE_SWITCH, version);
      st = RunCommand("before_switch hook", spec.hooks().before_switch(), env,
                      spec.hooks().timeout_ms());
    }
    if (!st.ok()) {
      result->set_reason(std::string(st.message()));
      return;
    }
  }

  fleet::v1::JournalEntry journal;
  journal.set_command_id(command.id());
  journal.set_rollout_id(command.rollout_id());
  journal.set_app(spec.name());
  journal.set_from_release(from);
  journal.set_to_release(version);
  journal.set_mode(cmd.mode());
  journal.set_started_at_ms(absl::ToUnixMillis(clock_->Now()));
  journal.set_subject(track.subject());
  *journal.mutable_spec() = spec;
  absl::Status st = state_.WriteJournal(journal);
  if (!st.ok()) {
    result->set_reason(absl::StrCat("cannot write journal: ", st.message()));
    return;
  }

  progress(fleet::v1::PROGRESS_STEP_SWITCHING,
           absl::StrCat(from.empty() ? "(none)" : from, " -> ", version));
  auto switch_start = std::chrono::steady_clock::now();
  st = layout.SwitchLink(track.subject(), version);
  result->set_switch_us(std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - switch_start)
                            .count());
  if (!st.ok()) {
    result->set_reason(std::string(st.message()));
    return;
  }
  spdlog::info("{}: {}: switched {} {} -> {} in {} us", options_.host_id, spec.name(),
               track.config() ? "config" : "current", from, version, result->switch_us());

  if (runs) st = ReloadAndProbe(cmd, env, progress);

  AgentAppRecord record = state_.LoadApp(spec.name());
  if (absl::IsCancelled(st)) {
    // A newer activation (a rollback taking over) is waiting: it decides
    // where the link goes, so this one stops here without switching back.
    result->set_reason(absl::StrCat("activation of ", version, " superseded by a newer command"));
    return;
  }
  if (!st.ok()) {
    result->set_reason(std::string(st.message()));
    if (!rollback) {
      spdlog::warn("{}: {} {} failed on {}: {}; switching back to {}", spec.name(), track.noun(),
                   version, options_.host_id, st.message(), OrNone(from, track));
      progress(fleet::v1::PROGRESS_STEP_SWITCHING_BACK, std::string(st.message()));
      absl::Status back =
          SwitchBack(layout, track, spec, from, command.rollout_id(), recorder.get());
      result->set_switched_back(true);
      if (!back.ok()) {
        result->set_reason(
            absl::StrCat(result->reason(), "; switching back failed: ", back.message()));
      }
    } else {
      // A rollback target that fails its probes stays: there is nothing
      // better to go back to, and the controller reports it.
      *track.mutable_previous(&record) = from;
      state_.SaveApp(record).IgnoreError();
    }
    return;
  }
  *track.mutable_last_good(&record) = version;
  if (from != version) *track.mutable_previous(&record) = from;
  if (!track.config() && !command.rollout_id().empty()) {
    record.set_rollback_target(cmd.rollback_target());
  }
  st = state_.SaveApp(record);
  if (!st.ok()) spdlog::error("cannot save state of {}: {}", spec.name(), st.message());
  std::vector<std::string> keep(cmd.keep().begin(), cmd.keep().end());
  // The fleet's rollback target stays on disk whatever the limit says.
  if (!cmd.rollback_target().empty()) keep.push_back(cmd.rollback_target());
  ApplyRetention(layout, track, spec, record, keep);
  result->set_ok(true);
}

}  // namespace fleet::agent
