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
using Versions = google::protobuf::RepeatedPtrField<std::string>;

// Releases and configs are staged, activated, retained and recovered by the
// same code; a Track names what differs between them: the subject's link and
// directory (AppLayout takes the subject) and its fields in the app record.
class Track {
 public:
  explicit Track(Subject subject) : subject_(subject) {}

  Subject subject() const { return subject_; }
  bool config() const { return subject_ == fleet::v1::SUBJECT_CONFIG; }
  const char* noun() const { return config() ? "config" : "release"; }

  const std::string& last_good(const AgentAppRecord& r) const {
    return config() ? r.last_good_config() : r.last_known_good();
  }
  std::string* mutable_last_good(AgentAppRecord* r) const {
    return config() ? r->mutable_last_good_config() : r->mutable_last_known_good();
  }
  const std::string& previous(const AgentAppRecord& r) const {
    return config() ? r.previous_config() : r.previous_release();
  }
  std::string* mutable_previous(AgentAppRecord* r) const {
    return config() ? r->mutable_previous_config() : r->mutable_previous_release();
  }
  // Versions in the order they were staged, oldest first.
  const Versions& staged(const AgentAppRecord& r) const {
    return config() ? r.staged_configs() : r.staged();
  }
  Versions* mutable_staged(AgentAppRecord* r) const {
    return config() ? r->mutable_staged_configs() : r->mutable_staged();
  }

 private:
  Subject subject_;
};

namespace {

Subject SubjectOf(const Command& command) {
  if (command.has_stage()) {
    return command.stage().has_config() ? fleet::v1::SUBJECT_CONFIG : fleet::v1::SUBJECT_RELEASE;
  }
  return command.activate().subject();
}

void RemoveVersion(Versions* list, const std::string& version) {
  for (int i = list->size() - 1; i >= 0; --i) {
    if (list->Get(i) == version) list->DeleteSubrange(i, 1);
  }
}

// Versions on disk, oldest first: those the record does not know (staged
// before the state dir existed) by name, then in the order they were staged.
std::vector<std::string> VersionsOldestFirst(const AppLayout& layout, const Track& track,
                                             const AgentAppRecord& record) {
  std::vector<std::string> on_disk = layout.ListVersions(track.subject());
  const Versions& staged = track.staged(record);
  std::set<std::string> known(staged.begin(), staged.end());
  std::vector<std::string> order;
  for (const std::string& v : on_disk) {
    if (known.count(v) == 0) order.push_back(v);
  }
  std::set<std::string> present(on_disk.begin(), on_disk.end());
  for (const std::string& v : staged) {
    if (present.count(v)) order.push_back(v);
  }
  return order;
}

std::string OrNone(const std::string& version, const Track& track) {
  return version.empty() ? absl::StrCat("no ", track.noun()) : version;
}

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// Where each release links the app's config release.
constexpr char kReleaseConfigLink[] = "../../config";

// Makes `config -> ../../config` in a release dir, unless it is there.
// FailedPrecondition when the release has a `config` of its own.
absl::Status LinkConfigInto(const std::string& release_dir) {
  const std::string link = absl::StrCat(release_dir, "/config");
  absl::StatusOr<std::string> target = ReadLink(link);
  if (target.ok() && *target == kReleaseConfigLink) return absl::OkStatus();
  if (PathExists(link)) {
    return absl::FailedPreconditionError(absl::StrCat(
        release_dir, " has its own 'config', so config releases cannot reach it; ship the "
        "release without one"));
  }
  if (symlink(kReleaseConfigLink, link.c_str()) != 0) {
    return ErrnoError("cannot link the config release into", release_dir);
  }
  return FsyncDir(release_dir);
}


absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("cannot write", path);
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Creates the missing parent directories of `rel` below `root`, each 0755
// whatever the umask: the service's user must be able to read its config.
absl::Status MakeParentDirs(const std::string& root, const std::string& rel) {
  for (size_t slash = rel.find('/'); slash != std::string::npos; slash = rel.find('/', slash + 1)) {
    std::string dir = absl::StrCat(root, "/", rel.substr(0, slash));
    if (mkdir(dir.c_str(), 0755) == 0) {
      if (chmod(dir.c_str(), 0755) != 0) return ErrnoError("cannot chmod", dir);
    } else if (errno != EEXIST) {
      return ErrnoError("cannot create directory", dir);
    }
  }
  return absl::OkStatus();
}

// Writes a new file (never through a link, never over an existing file)
// with exactly `mode`. Durable only after the caller's FsyncTree.
absl::Status WriteNewFile(const std::string& path, const std::string& content, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("cannot create", path);
  absl::Status st = WriteAll(fd, content, path);
  // Explicitly: the umask must not take bits away that the bundle gave.
  if (st.ok() && fchmod(fd, mode) != 0) st = ErrnoError("cannot chmod", path);
  close(fd);
  return st;
}

// The line of age's output that says what went wrong ("age: error: no
// identity matched any of the recipients" -> "age: no identity matched any
// of the recipients"); age ends its errors with a line asking for bug
// reports, which explains nothing.
std::string AgeFailure(const ProcessResult& result) {
  std::vector<absl::string_view> lines = absl::StrSplit(result.output, '\n', absl::SkipEmpty());
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    absl::string_view line = absl::StripAsciiWhitespace(*it);
    if (absl::ConsumePrefix(&line, "age: error: ")) {
      return absl::StrCat("age: ", absl::CHexEscape(line.substr(0, 300)));
    }
  }
  return absl::StrCat("age ", result.Describe());
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
    absl::Status back = SwitchBack(layout, track, entry->spec(), entry->from_release());
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
  auto started = clock_->Now();
  std::string app =
      command.has_stage() ? command.stage().spec().name() : command.activate().spec().name();
  CommandResult result;
  result.set_command_id(command.id());
  *result.mutable_ref() = command.ref();
  if (!IsSafeName(app)) {
    result.set_reason(absl::StrCat("invalid app name '", app, "'"));
    return result;
  }
  absl::MutexLock app_lock(AppMutex(app));
  if (auto stored = state_.LoadResult(command.id())) {
    // Results stored by an interrupted activation's recovery have no ref.
    *stored->mutable_ref() = command.ref();
    return *stored;
  }

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

absl::Status Deployer::RecordStaged(const Track& track, const std::string& app,
                                    const std::string& version, bool fresh,
                                    const fleet::v1::Release* manifest) {
  AgentAppRecord record = state_.LoadApp(app);
  Versions* staged = track.mutable_staged(&record);
  if (!fresh && std::find(staged->begin(), staged->end(), version) != staged->end()) {
    return absl::OkStatus();
  }
  // A fresh version is the newest, wherever a stale entry had it.
  RemoveVersion(staged, version);
  staged->Add()->assign(version);
  // In the same write as the version: a release on disk never has the
  // manifest of an earlier staging of the same name.
  if (fresh && !track.config()) {
    if (manifest != nullptr) {
      (*record.mutable_staged_releases())[version] = *manifest;
    } else {
      record.mutable_staged_releases()->erase(version);
    }
  }
  return state_.SaveApp(record);
}

absl::Status Deployer::CheckTrustedRelease(const AppSpec& spec, const std::string& version) const {
  if (spec.trusted_keys().empty()) return absl::OkStatus();
  const AgentAppRecord record = state_.LoadApp(spec.name());
  fleet::v1::Release manifest;
  if (auto it = record.staged_releases().find(version); it != record.staged_releases().end()) {
    manifest = it->second;
  }
  // The names are those of the directory about to be switched to, whatever
  // the entry says: a signature for another app or version must not pass.
  manifest.set_app(spec.name());
  manifest.set_version(version);
  return VerifyReleaseSignature(manifest, spec.trusted_keys());
}

absl::Status Deployer::Stage(const StageCommand& cmd, const ProgressFn& progress) {
  const AppSpec& spec = cmd.spec();
  const Track track(cmd.has_config() ? fleet::v1::SUBJECT_CONFIG : fleet::v1::SUBJECT_RELEASE);
  // What to download: a release's artifact, or a config's bundle, which
  // artifact sources serve and verify the same way.
  fleet::v1::Release blob;
  if (track.config()) {
    blob.set_app(cmd.config().app());
    blob.set_version(cmd.config().version());
    blob.set_sha256(cmd.config().sha256());
    blob.set_size(cmd.config().size());
  } else {
    blob = cmd.release();
  }
  const std::string& version = blob.version();
  if (!IsSafeName(version)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid version '", version, "'"));
  }
  AppLayout layout(options_.apps_root, spec.name());
  FLEET_RETURN_IF_ERROR(layout.Ensure());
  if (layout.HasVersion(track.subject(), version)) {
    // What is on disk is what was checked when it was staged, not what
    // this command describes; refused now rather than at its activation.
    if (!track.config()) FLEET_RETURN_IF_ERROR(CheckTrustedRelease(spec, version));
    // A crash between the rename and the record leaves it unrecorded, which
    // would make it the first version retention removes (its manifest was
    // recorded before the rename).
    FLEET_RETURN_IF_ERROR(RecordStaged(track, spec.name(), version, /*fresh=*/false));
    progress(fleet::v1::PROGRESS_STEP_STAGED, absl::StrCat(version, " is already on disk"));
    return absl::OkStatus();
  }
  // What is recorded, and checked again before every switch to it: the
  // names it is staged under here with what the download is checked against.
  fleet::v1::Release manifest;
  manifest.set_app(spec.name());
  manifest.set_version(version);
  manifest.set_sha256(blob.sha256());
  manifest.set_size(blob.size());
  manifest.set_signature(blob.signature());
  if (!track.config()) {
    // The manifest binds the sha256 and size that Fetch holds the download
    // to, so a signature that verifies here covers the artifact's bytes; an
    // untrusted release is refused before anything is downloaded, let alone
    // opened or unpacked.
    FLEET_RETURN_IF_ERROR(VerifyReleaseSignature(manifest, spec.trusted_keys()));
  }

  progress(fleet::v1::PROGRESS_STEP_DOWNLOADING, absl::StrCat(blob.size(), " bytes"));
  std::string part = state_.DownloadPath(spec.name(), blob.sha256());
  FLEET_RETURN_IF_ERROR(artifacts_->Fetch(blob, part));

  progress(fleet::v1::PROGRESS_STEP_UNPACKING, version);
  auto staging =
      MakeTempDir(layout.versions_dir(track.subject()), absl::StrCat(".staging-", version, "-"));
  if (!staging.ok()) return staging.status();
  auto cleanup = [&](absl::Status failure) {
    RemoveAll(*staging).IgnoreError();
    std::remove(part.c_str());
    return failure;
  };
  std::string summary;
  absl::Status st = track.config() ? WriteConfig(cmd, part, *staging, &summary)
                                   : UnpackRelease(cmd, layout, part, *staging, &summary);
  if (!st.ok()) return cleanup(st);
  // mkdtemp makes 0700, which also keeps a config's files private while
  // they are written; the service's user must be able to read the result.
  if (chmod(staging->c_str(), 0755) != 0) return cleanup(ErrnoError("cannot chmod", *staging));
  st = FsyncTree(*staging);
  if (!st.ok()) return cleanup(st);
  if (!track.config()) {
    // The manifest is persisted before the rename: a kill -9 between the
    // rename and RecordStaged would otherwise leave releases/<version> with
    // no manifest, unsigned for good under trusted_keys. Recording it later
    // from a stage command that verifies would not be safe: a directory
    // without a manifest may also be one unpacked, unchecked, before the
    // keys were set. An entry whose rename never happened is harmless (only
    // a directory on disk is looked up) and the next staging overwrites it.
    AgentAppRecord record = state_.LoadApp(spec.name());
    (*record.mutable_staged_releases())[version] = manifest;
    st = state_.SaveApp(record);
    if (!st.ok()) return cleanup(st);
  }
  std::string final_dir = layout.version_dir(track.subject(), version);
  if (std::rename(staging->c_str(), final_dir.c_str()) != 0) {
    return cleanup(absl::InternalError(absl::StrCat("cannot move ", *staging, " to ", final_dir)));
  }
  std::remove(part.c_str());
  FLEET_RETURN_IF_ERROR(FsyncDir(layout.versions_dir(track.subject())));
  FLEET_RETURN_IF_ERROR(RecordStaged(track, spec.name(), version, /*fresh=*/true,
                                     track.config() ? nullptr : &manifest));
  progress(fleet::v1::PROGRESS_STEP_STAGED, absl::StrCat(version, ": ", summary));
  return absl::OkStatus();
}

absl::Status Deployer::UnpackRelease(const StageCommand& cmd, const AppLayout& layout,
                                     const std::string& artifact, const std::string& staging,
                                     std::string* summary) {
  const AppSpec& spec = cmd.spec();
  const std::string& version = cmd.release().version();
  const std::string label = absl::StrCat(spec.name(), "@", version);
  UnpackStats stats;
  absl::Status st = UnpackArchive(artifact, staging, options_.unpack_limits, &stats);
  if (!st.ok()) return Annotate(st, absl::StrCat("cannot unpack ", label));
  const std::string config_link = absl::StrCat(staging, "/config");
  // An app that uses config releases (its spec has `config:`) needs the
  // link; one that does not may ship its own config/ and keeps it.
  const bool own_config = PathExists(config_link);
  if (own_config && spec.has_config()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "artifact of ", label,
        " has 'config', where Fleet links the app's config release (config -> ../../config); "
        "move it elsewhere in the artifact"));
  }
  for (const std::string& dir : spec.shared_dirs()) {
    if (dir == "config") {
      return absl::InvalidArgumentError(
          absl::StrCat("shared dir 'config' of ", spec.name(),
                       " is where Fleet links the app's config release; rename it"));
    }
    FLEET_RETURN_IF_ERROR(MakeDirs(absl::StrCat(layout.shared_dir(), "/", dir)));
    std::string link = absl::StrCat(staging, "/", dir);
    // The shared dir replaces whatever the artifact had at that path.
    RemoveAll(link).IgnoreError();
    std::error_code ec;
    std::filesystem::create_directory_symlink(absl::StrCat("../../shared/", dir), link, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("cannot link shared dir ", dir, ": ", ec.message()));
    }
  }
  // Dangles until the app's first config is activated; the release sees its
  // config through it whichever config is active.
  if (!own_config) FLEET_RETURN_IF_ERROR(LinkConfigInto(staging));
  // after_unpack runs in the staging dir, before the rename: a release in
  // releases/ has always passed it, even after a crash in between.
  // Before after_unpack, which runs as that user too.
  FLEET_RETURN_IF_ERROR(GiveToUser(spec, staging));
  FLEET_RETURN_IF_ERROR(GiveSharedDirsToUser(spec, layout));
  Env env = MakeEnv(spec, layout, version, layout.CurrentConfig().value_or(""));
  env.release_dir = staging;
  env.vars["FLEET_RELEASE_DIR"] = staging;
  FLEET_RETURN_IF_ERROR(
      RunCommand("after_unpack hook", spec.hooks().after_unpack(), env, spec.hooks().timeout_ms()));
  *summary = absl::StrCat(stats.entries, " entries, ", stats.bytes, " bytes");
  return absl::OkStatus();
}

absl::Status Deployer::WriteConfig(const StageCommand& cmd, const std::string& bundle_path,
                                   const std::string& staging, std::string* summary) {
  const AppSpec& spec = cmd.spec();
  const std::string label = absl::StrCat(spec.name(), "@", cmd.config().version());
  FLEET_ASSIGN_OR_RETURN(std::string bytes, ReadFile(bundle_path));
  fleet::v1::ConfigBundle bundle;
  if (!bundle.ParseFromString(bytes)) {
    return absl::DataLossError(
        absl::StrCat("config ", label, " is not a config bundle (", bytes.size(), " bytes)"));
  }
  int secrets = 0;
  for (const ConfigFile& file : bundle.files()) {
    // The controller checked the paths at push time; the host does not
    // trust that with its filesystem.
    if (!CheckConfigPath(file.path()).ok()) {
      return absl::InvalidArgumentError(absl::StrCat("config ", label, " has an unsafe path '",
                                                     absl::CHexEscape(file.path()), "'"));
    }
    if (!IsSecretPath(file.path())) {
      FLEET_RETURN_IF_ERROR(MakeParentDirs(staging, file.path()));
      absl::Status st = WriteNewFile(absl::StrCat(staging, "/", file.path()), file.content(),
                                     static_cast<mode_t>(file.mode() & kConfigModeMask));
      if (!st.ok()) return Annotate(st, absl::StrCat("config ", label));
      continue;
    }
    ++secrets;
    FLEET_RETURN_IF_ERROR(DecryptSecret(label, file, staging));
    // The controller cannot read a secret: its syntax and required keys are
    // checked here, on the plaintext, which no message ever quotes.
    const std::string plain = DecryptedPath(file.path());
    FLEET_ASSIGN_OR_RETURN(std::string content, ReadFile(absl::StrCat(staging, "/", plain)));
    absl::Status st = CheckConfigSyntax(plain, content);
    if (st.ok() && plain == spec.config().file()) st = CheckRequiredKeys(plain, content, spec);
    if (!st.ok()) return Annotate(st, absl::StrCat("config ", label));
  }
  // The service reads its config, secrets included, as its own user.
  FLEET_RETURN_IF_ERROR(GiveToUser(spec, staging));
  *summary = absl::StrCat(bundle.files_size(), " files, ", secrets, " of them decrypted");
  return absl::OkStatus();
}

absl::Status Deployer::DecryptSecret(const std::string& label, const ConfigFile& file,
                                     const std::string& staging) {
  auto failure = [&](absl::string_view why) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot decrypt ", file.path(), " for ", label, ": ", why));
  };
  const std::string& identity = options_.age_identity;
  if (access(identity.c_str(), F_OK) != 0) {
    return failure(absl::StrCat("age identity ", identity,
                                " does not exist (set fleet-agent --age-identity)"));
  }
  const std::string plain = DecryptedPath(file.path());
  const std::string output = absl::StrCat(staging, "/", plain);
  // age would overwrite it.
  if (PathExists(output)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config ", label, " has both ", plain, " and ", file.path()));
  }
  FLEET_RETURN_IF_ERROR(MakeParentDirs(staging, plain));
  // age reads the ciphertext from a file; the staging dir is 0700 and goes
  // away on any failure.
  std::string input = absl::StrCat(staging, "/.age-input-XXXXXX");
  int fd = mkstemp(input.data());
  if (fd < 0) return ErrnoError("cannot create a temp file in", staging);
  absl::Status st = WriteAll(fd, file.content(), input);
  close(fd);
  if (!st.ok()) {
    unlink(input.c_str());
    return st;
  }
  ProcessSpec spec;
  // Paths go through the environment: nothing to quote.
  spec.command =
      "umask 077 && exec age --decrypt -i \"$FLEET_AGE_IDENTITY\" -o \"$FLEET_AGE_OUTPUT\" "
      "\"$FLEET_AGE_INPUT\"";
  spec.cwd = staging;
  spec.env = {
      {"FLEET_AGE_IDENTITY", identity}, {"FLEET_AGE_OUTPUT", output}, {"FLEET_AGE_INPUT", input}};
  spec.timeout = absl::Seconds(60);
  absl::StatusOr<ProcessResult> result = runner_->Run(spec);
  unlink(input.c_str());
  if (!result.ok()) return failure(result.status().message());
  if (!result->ok()) return failure(AgeFailure(*result));
  // Whatever age and the umask made of it: a secret is for the owner only.
  if (chmod(output.c_str(), 0600) != 0) return ErrnoError("cannot chmod", output);
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
                                  const std::string& from) {
  FLEET_RETURN_IF_ERROR(from.empty() ? layout.RemoveLink(track.subject())
                                     : layout.SwitchLink(track.subject(), from));
  // Whatever is current now gets reloaded; without a release nothing runs.
  Env env = MakeEnv(spec, layout, layout.CurrentRelease().value_or(""),
                    layout.CurrentConfig().value_or(""));
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
    progress(fleet::v1::PROGRESS_STEP_SWITCHING, absl::StrCat(OrNone(from, track), " -> no config"));
    absl::Status st = SwitchBack(layout, track, spec, "");
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
  if (!layout.HasVersion(track.subject(), version)) {
    result->set_reason(absl::StrCat(
        track.noun(), " ", version, " of ", spec.name(), " is not on disk on host ",
        options_.host_id, " (on disk: ", absl::StrJoin(layout.ListVersions(track.subject()), ", "),
        ")"));
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

  progress(fleet::v1::PROGRESS_STEP_SWITCHING, absl::StrCat(from.empty() ? "(none)" : from, " -> ", version));
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
      absl::Status back = SwitchBack(layout, track, spec, from);
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
  st = state_.SaveApp(record);
  if (!st.ok()) spdlog::error("cannot save state of {}: {}", spec.name(), st.message());
  std::vector<std::string> keep(cmd.keep().begin(), cmd.keep().end());
  ApplyRetention(layout, track, spec, record, keep);
  result->set_ok(true);
}

void Deployer::ApplyRetention(const AppLayout& layout, const Track& track, const AppSpec& spec,
                              const AgentAppRecord& record, const std::vector<std::string>& keep) {
  std::vector<std::string> on_disk = layout.ListVersions(track.subject());
  size_t limit = static_cast<size_t>(std::max(spec.keep_releases(), 3));
  if (on_disk.size() <= limit) return;
  std::set<std::string> protect(keep.begin(), keep.end());
  protect.insert(layout.LinkedVersion(track.subject()).value_or(""));
  protect.insert(track.last_good(record));
  protect.insert(track.previous(record));
  std::vector<std::string> order = VersionsOldestFirst(layout, track, record);
  size_t count = on_disk.size();
  AgentAppRecord updated = record;
  for (const std::string& v : order) {
    if (count <= limit) break;
    if (protect.count(v)) continue;
    absl::Status st = RemoveAll(layout.version_dir(track.subject(), v));
    if (!st.ok()) {
      spdlog::warn("retention: {}", st.message());
      continue;
    }
    spdlog::info("{}: {}: retention removed {} {}", options_.host_id, spec.name(), track.noun(), v);
    RemoveVersion(track.mutable_staged(&updated), v);
    if (!track.config()) updated.mutable_staged_releases()->erase(v);
    --count;
  }
  state_.SaveApp(updated).IgnoreError();
}

}  // namespace fleet::agent
