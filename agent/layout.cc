#include "agent/layout.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/tree_manifest.h"
#include "common/fs.h"
#include "common/status.h"

namespace fleet::agent {
namespace {

// The names of one subject's parts of the layout.
struct SubjectNames {
  const char* dir;        // under the app dir, holds the versions
  const char* link;       // in the app dir, selects a version
  const char* temp_link;  // the link's name while it is being switched
  const char* noun;       // for messages
};

const SubjectNames& NamesOf(fleet::v1::Subject subject) {
  static const SubjectNames kRelease{"releases", "current", ".current.tmp", "release"};
  static const SubjectNames kConfig{"configs", "config", ".config.tmp", "config"};
  return subject == fleet::v1::SUBJECT_CONFIG ? kConfig : kRelease;
}

constexpr char kManifestPrefix[] = ".manifest-";
constexpr char kTrashPrefix[] = ".trash-";

constexpr fleet::v1::Subject kSubjects[] = {fleet::v1::SUBJECT_RELEASE, fleet::v1::SUBJECT_CONFIG};

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

std::string AppLayout::versions_dir(Subject subject) const {
  return absl::StrCat(app_dir_, "/", NamesOf(subject).dir);
}

std::string AppLayout::link_path(Subject subject) const {
  return absl::StrCat(app_dir_, "/", NamesOf(subject).link);
}

absl::Status AppLayout::Ensure() const {
  for (const std::string& dir : {app_dir_, releases_dir(), configs_dir(), shared_dir()}) {
    absl::Status st = MakeDirs(dir);
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> AppLayout::LinkedVersion(Subject subject) const {
  const std::string link = link_path(subject);
  absl::StatusOr<std::string> target = ReadLink(link);
  if (absl::IsNotFound(target.status())) return std::string();
  if (!target.ok()) return target.status();
  // The rest must be one version name: "releases/../x" or "releases/v1/bin"
  // is not a release either.
  const std::string prefix = absl::StrCat(NamesOf(subject).dir, "/");
  std::string version =
      absl::StartsWith(*target, prefix) ? target->substr(prefix.size()) : std::string();
  if (!IsSafeName(version)) {
    return absl::DataLossError(absl::StrCat(link, " points to '", *target, "', not into ", prefix));
  }
  return version;
}

std::vector<std::string> AppLayout::ListVersions(Subject subject) const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(versions_dir(subject), ec)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (!entry.is_directory(ec) || entry.is_symlink(ec)) continue;
    out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool AppLayout::HasVersion(Subject subject, const std::string& version) const {
  std::error_code ec;
  // symlink_status: a link placed by hand under releases/ is not a release.
  return IsSafeName(version) && std::filesystem::is_directory(std::filesystem::symlink_status(
                                    version_dir(subject, version), ec));
}

std::string AppLayout::manifest_path(Subject subject, const std::string& version) const {
  return absl::StrCat(versions_dir(subject), "/", kManifestPrefix, version);
}

absl::Status AppLayout::RecordManifest(Subject subject, const std::string& version,
                                       const std::string& dir) const {
  FLEET_ASSIGN_OR_RETURN(std::string manifest, DescribeTree(dir));
  return WriteFileAtomic(manifest_path(subject, version), manifest, 0600);
}

std::vector<std::string> AppLayout::ListStaged(Subject subject) const {
  std::vector<std::string> out;
  for (std::string& version : ListVersions(subject)) {
    if (PathExists(manifest_path(subject, version))) out.push_back(std::move(version));
  }
  return out;
}

bool AppLayout::IsStaged(Subject subject, const std::string& version) const {
  return HasVersion(subject, version) && PathExists(manifest_path(subject, version));
}

absl::Status AppLayout::CheckComplete(Subject subject, const std::string& version) const {
  const char* noun = NamesOf(subject).noun;
  if (!IsStaged(subject, version)) {
    return absl::NotFoundError(absl::StrCat(noun, " ", version, " of ", app_, " is not on disk"));
  }
  absl::StatusOr<std::string> manifest = ReadFile(manifest_path(subject, version));
  absl::Status st = manifest.ok() ? CheckTree(version_dir(subject, version), *manifest)
                                  : manifest.status();
  if (st.ok()) return st;
  return absl::DataLossError(
      absl::StrCat(noun, " ", version, " of ", app_, " is incomplete: ", st.message()));
}

absl::Status AppLayout::DiscardVersion(Subject subject, const std::string& version) const {
  if (!IsSafeName(version)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid version '", version, "'"));
  }
  if (LinkedVersion(subject).value_or("") == version) {
    return absl::FailedPreconditionError(absl::StrCat(NamesOf(subject).noun, " ", version, " of ",
                                                      app_, " is in use; it stays"));
  }
  const std::string dir = versions_dir(subject);
  if (HasVersion(subject, version)) {
    // rename(2) onto an empty directory replaces it: the trash name is
    // reserved first, so two removals never meet.
    FLEET_ASSIGN_OR_RETURN(std::string trash,
                           MakeTempDir(dir, absl::StrCat(kTrashPrefix, version, "-")));
    if (rename(version_dir(subject, version).c_str(), trash.c_str()) != 0) {
      absl::Status st = Errno("cannot move to the trash", version_dir(subject, version));
      rmdir(trash.c_str());
      return st;
    }
    FLEET_RETURN_IF_ERROR(FsyncDir(dir));
    // Only now: a directory without its manifest would never be switched
    // to, but it would not be removed as a leftover either.
    const std::string manifest = manifest_path(subject, version);
    if (unlink(manifest.c_str()) != 0 && errno != ENOENT) return Errno("cannot remove", manifest);
    return RemoveAll(trash);
  }
  const std::string manifest = manifest_path(subject, version);
  if (unlink(manifest.c_str()) != 0 && errno != ENOENT) return Errno("cannot remove", manifest);
  return absl::OkStatus();
}

absl::Status AppLayout::SwitchLink(Subject subject, const std::string& version) const {
  const SubjectNames& names = NamesOf(subject);
  if (!HasVersion(subject, version)) {
    return absl::FailedPreconditionError(
        absl::StrCat(names.noun, " ", version, " of ", app_, " is not on disk"));
  }
  int dir_fd = open(app_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return Errno("cannot open", app_dir_);
  std::string target = absl::StrCat(names.dir, "/", version);
  // A temp link left by a crash would make symlinkat fail with EEXIST.
  unlinkat(dir_fd, names.temp_link, 0);
  absl::Status st;
  if (symlinkat(target.c_str(), dir_fd, names.temp_link) != 0) {
    st = Errno("cannot create link", absl::StrCat(app_dir_, "/", names.temp_link));
  } else if (renameat(dir_fd, names.temp_link, dir_fd, names.link) != 0) {
    st = Errno("cannot rename link over", link_path(subject));
    unlinkat(dir_fd, names.temp_link, 0);
  } else if (fsync(dir_fd) != 0) {
    st = Errno("cannot fsync", app_dir_);
  }
  close(dir_fd);
  return st;
}

absl::Status AppLayout::RemoveLink(Subject subject) const {
  const std::string link = link_path(subject);
  if (unlink(link.c_str()) != 0 && errno != ENOENT) return Errno("cannot remove", link);
  return FsyncDir(app_dir_);
}

std::vector<std::string> AppLayout::RemoveLeftovers() const {
  std::vector<std::string> removed;
  for (Subject subject : kSubjects) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(versions_dir(subject), ec)) {
      std::string name = entry.path().filename().string();
      absl::string_view version = name;
      const bool orphan_manifest = absl::ConsumePrefix(&version, kManifestPrefix) &&
                                   !HasVersion(subject, std::string(version));
      if (absl::StartsWith(name, ".staging-") || absl::StartsWith(name, kTrashPrefix) ||
          orphan_manifest) {
        if (RemoveAll(entry.path().string()).ok()) removed.push_back(entry.path().string());
      }
    }
    std::string tmp = absl::StrCat(app_dir_, "/", NamesOf(subject).temp_link);
    if (PathExists(tmp) && unlink(tmp.c_str()) == 0) removed.push_back(tmp);
  }
  return removed;
}

std::vector<std::string> ListAppDirs(const std::string& apps_root) {
  std::vector<std::string> apps;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(apps_root, ec)) {
    std::string name = entry.path().filename().string();
    if (!IsSafeName(name)) continue;
    if (std::filesystem::is_directory(entry.path() / "releases", ec)) apps.push_back(name);
  }
  std::sort(apps.begin(), apps.end());
  return apps;
}

}  // namespace fleet::agent
