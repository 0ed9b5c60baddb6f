#include "agent/deployer.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/fs.h"
#include "common/status.h"
#include "common/vars.h"
#include "common/logging.h"

namespace fleet::agent {

using fleet::v1::ActivateCommand;
using fleet::v1::AgentAppRecord;
using fleet::v1::AppSpec;
using fleet::v1::Command;
using fleet::v1::CommandResult;
using fleet::v1::HostAppState;

namespace {

void RemoveVersion(google::protobuf::RepeatedPtrField<std::string>* list,
                   const std::string& version) {
  for (int i = list->size() - 1; i >= 0; --i) {
    if (list->Get(i) == version) list->DeleteSubrange(i, 1);
  }
}

// Releases on disk, oldest first: those the record does not know (staged
// before the state dir existed) by name, then in the order they were staged.
std::vector<std::string> ReleasesOldestFirst(const AppLayout& layout,
                                             const AgentAppRecord& record) {
  std::vector<std::string> on_disk = layout.ListReleases();
  std::set<std::string> known(record.staged().begin(), record.staged().end());
  std::vector<std::string> order;
  for (const std::string& v : on_disk) {
    if (known.count(v) == 0) order.push_back(v);
  }
  std::set<std::string> present(on_disk.begin(), on_disk.end());
  for (const std::string& v : record.staged()) {
    if (present.count(v)) order.push_back(v);
  }
  return order;
}

}  // namespace

Deployer::Deployer(AgentOptions options, ProcessRunner* runner, ProbeTransport* probes,
                   Clock* clock, ArtifactSource* artifacts)
    : options_(std::move(options)),
      runner_(runner),
      probe_runner_(probes, clock),
      clock_(clock),
      artifacts_(artifacts),
      state_(options_.state_dir) {}

absl::Mutex* Deployer::AppMutex(const std::string& app) {
  absl::MutexLock lock(&mu_);
  auto& slot = app_mu_[app];
  if (!slot) slot = std::make_unique<absl::Mutex>();
  return slot.get();
}

Deployer::Env Deployer::MakeEnv(const AppLayout& layout, const std::string& version) const {
  Env env;
  env.vars = options_.vars;
  env.release_dir = version.empty() ? "" : layout.release_dir(version);
  env.vars["FLEET_APP"] = layout.app();
  env.vars["FLEET_RELEASE"] = version;
  env.vars["FLEET_RELEASE_DIR"] = env.release_dir;
  env.vars["FLEET_APP_DIR"] = layout.app_dir();
  env.vars["FLEET_HOST"] = options_.host_id;
  return env;
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
  auto result = runner_->Run(spec);
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
    for (const std::string& path : AppLayout(options_.apps_root, app).RemoveLeftovers()) {
      spdlog::info("removed leftover of an interrupted step: {}", path);
    }
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
    if (entry->mode() == fleet::v1::ACTIVATE_MODE_ROLLBACK) {
      spdlog::warn("{}: rollback of {} to {} was interrupted; it runs again when the "
                   "controller resends it", options_.host_id, app, entry->to_release());
      state_.ClearJournal(app).IgnoreError();
      continue;
    }
    auto current = layout.CurrentRelease();
    std::string reason = absl::StrCat("agent restarted during activation of ",
                                      entry->to_release());
    absl::Status back = SwitchBack(layout, entry->spec(), entry->from_release());
    if (back.ok()) {
      absl::StrAppend(&reason, "; switched back to ",
                      entry->from_release().empty() ? "no release" : entry->from_release());
    } else {
      absl::StrAppend(&reason, "; switching back failed: ", back.message());
    }
    spdlog::warn("{}: {}: {}", options_.host_id, app, reason);
    CommandResult result;
    result.set_command_id(entry->command_id());
    result.set_ok(false);
    result.set_reason(reason);
    result.set_previous_release(entry->from_release());
    result.set_current_release(layout.CurrentRelease().value_or(""));
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
  HostAppState state;
  state.set_app(app);
  state.set_current_release(layout.CurrentRelease().value_or(""));
  for (const std::string& v : ReleasesOldestFirst(layout, record)) state.add_releases(v);
  state.set_last_known_good(record.last_known_good());
  state.set_previous_release(record.previous_release());
  return state;
}

std::vector<HostAppState> Deployer::AppStates() {
  std::vector<HostAppState> out;
  for (const std::string& app : ListAppDirs(options_.apps_root)) out.push_back(AppState(app));
  return out;
}

CommandResult Deployer::Execute(const Command& command, const ProgressFn& progress) {
  auto started = clock_->Now();
  std::string app = command.has_stage() ? command.stage().spec().name()
                                        : command.activate().spec().name();
  CommandResult result;
  result.set_command_id(command.id());
  if (!IsSafeName(app)) {
    result.set_reason(absl::StrCat("invalid app name '", app, "'"));
    return result;
  }
  absl::MutexLock app_lock(AppMutex(app));
  if (auto stored = state_.LoadResult(command.id())) return *stored;

  AppLayout layout(options_.apps_root, app);
  result.set_previous_release(layout.CurrentRelease().value_or(""));
  if (command.has_stage()) {
    absl::Status st = Stage(command.stage(), progress);
    result.set_ok(st.ok());
    if (!st.ok()) result.set_reason(std::string(st.message()));
  } else if (command.has_activate()) {
    Activate(command, progress, &result);
  } else {
    result.set_reason("unknown command");
  }
  result.set_current_release(layout.CurrentRelease().value_or(""));
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

absl::Status Deployer::Stage(const fleet::v1::StageCommand& cmd, const ProgressFn& progress) {
  const AppSpec& spec = cmd.spec();
  const fleet::v1::Release& release = cmd.release();
  const std::string& version = release.version();
  if (!IsSafeName(version)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid version '", version, "'"));
  }
  AppLayout layout(options_.apps_root, spec.name());
  absl::Status st = layout.Ensure();
  if (!st.ok()) return st;
  if (layout.HasRelease(version)) {
    // A crash between the rename and the record leaves it unrecorded, which
    // would make it the first release retention removes.
    AgentAppRecord record = state_.LoadApp(spec.name());
    if (std::find(record.staged().begin(), record.staged().end(), version) ==
        record.staged().end()) {
      record.add_staged(version);
      st = state_.SaveApp(record);
      if (!st.ok()) return st;
    }
    progress("staged", absl::StrCat(version, " is already on disk"));
    return absl::OkStatus();
  }

  progress("downloading", absl::StrCat(release.size(), " bytes"));
  std::string part = state_.DownloadPath(spec.name(), release.sha256());
  st = artifacts_->Fetch(release, part);
  if (!st.ok()) return st;

  progress("unpacking", version);
  auto staging = MakeTempDir(layout.releases_dir(), absl::StrCat(".staging-", version, "-"));
  if (!staging.ok()) return staging.status();
  auto cleanup = [&](absl::Status failure) {
    RemoveAll(*staging).IgnoreError();
    std::remove(part.c_str());
    return failure;
  };
  // mkdtemp makes 0700; a release must be readable by the service's user.
  if (chmod(staging->c_str(), 0755) != 0) {
    return cleanup(absl::InternalError(absl::StrCat("cannot chmod ", *staging)));
  }
  UnpackStats stats;
  st = UnpackArchive(part, *staging, options_.unpack_limits, &stats);
  if (!st.ok()) {
    return cleanup(Annotate(st, absl::StrCat("cannot unpack ", spec.name(), "@", version)));
  }
  for (const std::string& dir : spec.shared_dirs()) {
    std::string shared = absl::StrCat(layout.shared_dir(), "/", dir);
    st = MakeDirs(shared);
    if (!st.ok()) return cleanup(st);
    std::string link = absl::StrCat(*staging, "/", dir);
    // The shared dir replaces whatever the artifact had at that path.
    RemoveAll(link).IgnoreError();
    std::error_code ec;
    std::filesystem::create_directory_symlink(absl::StrCat("../../shared/", dir), link, ec);
    if (ec) {
      return cleanup(absl::InternalError(absl::StrCat("cannot link shared dir ", dir, ": ",
                                                      ec.message())));
    }
  }
  // after_unpack runs in the staging dir, before the rename: a release in
  // releases/ has always passed it, even after a crash in between.
  Env env = MakeEnv(layout, version);
  env.release_dir = *staging;
  env.vars["FLEET_RELEASE_DIR"] = *staging;
  st = RunCommand("after_unpack hook", spec.hooks().after_unpack(), env, spec.hooks().timeout_ms());
  if (!st.ok()) return cleanup(st);
  st = FsyncTree(*staging);
  if (!st.ok()) return cleanup(st);
  std::string final_dir = layout.release_dir(version);
  if (std::rename(staging->c_str(), final_dir.c_str()) != 0) {
    return cleanup(absl::InternalError(absl::StrCat("cannot move ", *staging, " to ", final_dir)));
  }
  std::remove(part.c_str());
  st = FsyncDir(layout.releases_dir());
  if (!st.ok()) return st;
  AgentAppRecord record = state_.LoadApp(spec.name());
  RemoveVersion(record.mutable_staged(), version);
  record.add_staged(version);
  st = state_.SaveApp(record);
  if (!st.ok()) return st;
  progress("staged", absl::StrCat(version, ": ", stats.entries, " entries, ", stats.bytes,
                                  " bytes"));
  return absl::OkStatus();
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
  return probe_runner_.RunChecks(checks, ctx, bake, cancelled);
}

absl::Status Deployer::SwitchBack(const AppLayout& layout, const AppSpec& spec,
                                  const std::string& from) {
  if (from.empty()) return layout.RemoveCurrent();
  absl::Status st = layout.SwitchCurrent(from);
  if (!st.ok()) return st;
  Env env = MakeEnv(layout, from);
  st = RunCommand("reload", spec.reload(), env, spec.reload_timeout_ms());
  if (!st.ok()) return st;
  return RunCommand("after_rollback hook", spec.hooks().after_rollback(), env,
                    spec.hooks().timeout_ms());
}

void Deployer::Activate(const Command& command, const ProgressFn& progress,
                        CommandResult* result) {
  const ActivateCommand& cmd = command.activate();
  const AppSpec& spec = cmd.spec();
  const std::string& version = cmd.version();
  const bool rollback = cmd.mode() == fleet::v1::ACTIVATE_MODE_ROLLBACK;
  AppLayout layout(options_.apps_root, spec.name());

  if (!layout.HasRelease(version)) {
    result->set_reason(absl::StrCat("release ", version, " of ", spec.name(),
                                    " is not on disk on host ", options_.host_id, " (on disk: ",
                                    absl::StrJoin(layout.ListReleases(), ", "), ")"));
    return;
  }
  std::string from = layout.CurrentRelease().value_or("");
  Env env = MakeEnv(layout, version);

  // Expand every command before switching, so a missing --var fails the host
  // while it still runs the old release.
  for (const std::string* text : {&spec.reload(), &spec.hooks().before_switch(),
                                   &spec.hooks().after_switch(), &spec.hooks().after_rollback()}) {
    auto expanded = ExpandVars(*text, env.vars);
    if (!expanded.ok()) {
      result->set_reason(std::string(expanded.status().message()));
      return;
    }
  }
  // Probe targets too: found only after the switch, the missing var would
  // restart the new release and then switch back.
  for (const fleet::v1::HealthCheck& check : spec.health()) {
    for (const std::string* text : {&check.http(), &check.tcp(), &check.exec()}) {
      auto expanded = ExpandVars(*text, env.vars);
      if (!expanded.ok()) {
        result->set_reason(std::string(Annotate(expanded.status(), "health check").message()));
        return;
      }
    }
  }
  if (!rollback) {
    progress("before_switch", version);
    absl::Status st = RunCommand("before_switch hook", spec.hooks().before_switch(), env,
                                 spec.hooks().timeout_ms());
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
  *journal.mutable_spec() = spec;
  absl::Status st = state_.WriteJournal(journal);
  if (!st.ok()) {
    result->set_reason(absl::StrCat("cannot write journal: ", st.message()));
    return;
  }

  progress("switching", absl::StrCat(from.empty() ? "(none)" : from, " -> ", version));
  auto switch_start = std::chrono::steady_clock::now();
  st = layout.SwitchCurrent(version);
  result->set_switch_us(std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - switch_start)
                            .count());
  if (!st.ok()) {
    result->set_reason(std::string(st.message()));
    return;
  }
  spdlog::info("{}: {}: switched current {} -> {} in {} us", options_.host_id, spec.name(), from,
               version,
               result->switch_us());

  progress("reloading", version);
  st = RunCommand("reload", spec.reload(), env, spec.reload_timeout_ms());
  if (st.ok()) {
    const std::string& hook = rollback ? spec.hooks().after_rollback() : spec.hooks().after_switch();
    st = RunCommand(rollback ? "after_rollback hook" : "after_switch hook", hook, env,
                    spec.hooks().timeout_ms());
  }
  if (st.ok()) {
    progress("probing", version);
    int64_t bake_ms = cmd.has_bake() ? cmd.bake_ms() : spec.bake_ms();
    absl::Duration bake = rollback ? absl::ZeroDuration() : absl::Milliseconds(bake_ms);
    st = ProbeRelease(spec, env, bake, CancelFlag(spec.name()));
  }

  AgentAppRecord record = state_.LoadApp(spec.name());
  if (absl::IsCancelled(st)) {
    // A newer activation (a rollback taking over) is waiting: it decides
    // where current goes, so this one stops here without switching back.
    result->set_reason(absl::StrCat("activation of ", version, " superseded by a newer command"));
    return;
  }
  if (!st.ok()) {
    result->set_reason(std::string(st.message()));
    if (!rollback) {
      spdlog::warn("{}: {} failed on {}: {}; switching back to {}", spec.name(), version,
                   options_.host_id, st.message(), from.empty() ? "no release" : from);
      progress("switching back", std::string(st.message()));
      absl::Status back = SwitchBack(layout, spec, from);
      result->set_switched_back(true);
      if (!back.ok()) {
        result->set_reason(
            absl::StrCat(result->reason(), "; switching back failed: ", back.message()));
      }
    } else {
      // A rollback target that fails its probes stays: there is nothing
      // better to go back to, and the controller reports it.
      record.set_previous_release(from);
      state_.SaveApp(record).IgnoreError();
    }
    return;
  }
  record.set_last_known_good(version);
  if (from != version) record.set_previous_release(from);
  st = state_.SaveApp(record);
  if (!st.ok()) spdlog::error("cannot save state of {}: {}", spec.name(), st.message());
  std::vector<std::string> keep(cmd.keep().begin(), cmd.keep().end());
  ApplyRetention(layout, spec, record, keep);
  result->set_ok(true);
}

void Deployer::ApplyRetention(const AppLayout& layout, const AppSpec& spec,
                              const AgentAppRecord& record,
                              const std::vector<std::string>& keep) {
  std::vector<std::string> on_disk = layout.ListReleases();
  size_t limit = static_cast<size_t>(std::max(spec.keep_releases(), 3));
  if (on_disk.size() <= limit) return;
  std::set<std::string> protect(keep.begin(), keep.end());
  protect.insert(layout.CurrentRelease().value_or(""));
  protect.insert(record.last_known_good());
  protect.insert(record.previous_release());
  std::vector<std::string> order = ReleasesOldestFirst(layout, record);
  size_t count = on_disk.size();
  AgentAppRecord updated = record;
  for (const std::string& v : order) {
    if (count <= limit) break;
    if (protect.count(v)) continue;
    absl::Status st = RemoveAll(layout.release_dir(v));
    if (!st.ok()) {
      spdlog::warn("retention: {}", st.message());
      continue;
    }
    spdlog::info("{}: {}: retention removed release {}", options_.host_id, spec.name(), v);
    RemoveVersion(updated.mutable_staged(), v);
    --count;
  }
  state_.SaveApp(updated).IgnoreError();
}

}  // namespace fleet::agent
