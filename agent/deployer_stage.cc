#include "agent/deployer.h"
#include "agent/deployer_internal.h"

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

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// Where each release links the app's config release.
constexpr char kReleaseConfigLink[] = "../../config";

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

namespace {

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
  absl::Status st = WriteFully(fd, content, path);
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
    absl::Status complete = layout.CheckComplete(track.subject(), version);
    if (complete.ok()) {
      // What is on disk is what was checked when it was staged, not what
      // this command describes; refused now rather than at its activation.
      if (!track.config()) FLEET_RETURN_IF_ERROR(CheckTrustedRelease(spec, version));
      // A crash between the rename and the record leaves it unrecorded,
      // which would make it the first version retention removes (its
      // manifests were recorded before the rename).
      FLEET_RETURN_IF_ERROR(RecordStaged(track, spec.name(), version, /*fresh=*/false));
      progress(fleet::v1::PROGRESS_STEP_STAGED, absl::StrCat(version, " is already on disk"));
      return absl::OkStatus();
    }
    // Never reused: it goes (unless it is linked) and is staged anew.
    spdlog::warn("{}: {}; staging it again", options_.host_id, complete.message());
    absl::Status discarded = layout.DiscardVersion(track.subject(), version);
    if (!discarded.ok()) return Annotate(discarded, complete.message());
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
  const std::string label = absl::StrCat(spec.name(), "@", version);
  FLEET_RETURN_IF_ERROR(Annotate(CheckSpaceToDownload(layout, track, blob),
                                 absl::StrCat("not enough space to stage ", label)));

  progress(fleet::v1::PROGRESS_STEP_DOWNLOADING, absl::StrCat(blob.size(), " bytes"));
  std::string part = state_.DownloadPath(spec.name(), blob.sha256());
  if (absl::Status fetched = artifacts_->Fetch(blob, part); !fetched.ok()) {
    // Nothing resumes it later: a failed stage is answered from its stored
    // result, and a new one may never come; a full disk must not stay full.
    std::remove(part.c_str());
    return fetched;
  }
  return PlaceDownload(cmd, track, layout, manifest, part, progress);
}

absl::Status Deployer::CheckSpaceToDownload(const AppLayout& layout, const Track& track,
                                            const fleet::v1::Release& blob) const {
  const uint64_t size = static_cast<uint64_t>(std::max<int64_t>(blob.size(), 0));
  const std::string downloads = state_.downloads_dir();
  const std::string versions = layout.versions_dir(track.subject());
  // Unpacked, an archive takes at least about what it downloads; the
  // figure from its headers is checked after the download.
  struct stat a, b;
  if (stat(downloads.c_str(), &a) == 0 && stat(versions.c_str(), &b) == 0 &&
      a.st_dev == b.st_dev) {
    return CheckFreeSpace(versions, 2 * size);
  }
  FLEET_RETURN_IF_ERROR(CheckFreeSpace(downloads, size));
  return CheckFreeSpace(versions, size);
}

absl::Status Deployer::PlaceDownload(const StageCommand& cmd, const Track& track,
                                     const AppLayout& layout, const fleet::v1::Release& manifest,
                                     const std::string& part, const ProgressFn& progress) {
  const std::string& app = cmd.spec().name();
  const std::string& version = manifest.version();
  progress(fleet::v1::PROGRESS_STEP_UNPACKING, version);
  auto staging =
      MakeTempDir(layout.versions_dir(track.subject()), absl::StrCat(".staging-", version, "-"));
  if (!staging.ok()) {
    std::remove(part.c_str());
    return staging.status();
  }
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
    AgentAppRecord record = state_.LoadApp(app);
    (*record.mutable_staged_releases())[version] = manifest;
    st = state_.SaveApp(record);
    if (!st.ok()) return cleanup(st);
  }
  // The tree manifest too: a version directory always has one, and one
  // without its directory is a leftover that the next start removes.
  st = layout.RecordManifest(track.subject(), version, *staging);
  if (!st.ok()) return cleanup(st);
  std::string final_dir = layout.version_dir(track.subject(), version);
  if (std::rename(staging->c_str(), final_dir.c_str()) != 0) {
    return cleanup(ErrnoError(absl::StrCat("cannot move ", *staging, " to"), final_dir));
  }
  std::remove(part.c_str());
  FLEET_RETURN_IF_ERROR(FsyncDir(layout.versions_dir(track.subject())));
  FLEET_RETURN_IF_ERROR(RecordStaged(track, app, version, /*fresh=*/true,
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
  absl::Status st = MeasureArchive(artifact, options_.unpack_limits, &stats);
  if (!st.ok()) return Annotate(st, absl::StrCat("cannot unpack ", label));
  // A block per entry on top of the bytes: small files and directories
  // take a whole one each.
  st = CheckFreeSpace(layout.releases_dir(), stats.bytes + stats.entries * 4096, stats.entries);
  if (!st.ok()) return Annotate(st, absl::StrCat("not enough space to unpack ", label));
  st = UnpackArchive(artifact, staging, options_.unpack_limits, &stats);
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
  absl::Status st = WriteFully(fd, file.content(), input);
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

}  // namespace fleet::agent
