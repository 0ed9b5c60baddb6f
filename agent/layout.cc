#include "agent/layout.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fs.h"

namespace fleet::agent {
namespace {

constexpr char kReleasesPrefix[] = "releases/";
constexpr char kTempLink[] = ".current.tmp";

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

absl::Status AppLayout::Ensure() const {
  for (const std::string& dir : {app_dir_, releases_dir(), shared_dir()}) {
    absl::Status st = MakeDirs(dir);
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> AppLayout::CurrentRelease() const {
  absl::StatusOr<std::string> target = ReadLink(current_link());
  if (absl::IsNotFound(target.status())) return std::string();
  if (!target.ok()) return target.status();
  // The rest must be one release name: "releases/../x" or "releases/v1/bin"
  // is not a release either.
  std::string version = absl::StartsWith(*target, kReleasesPrefix)
                            ? target->substr(sizeof(kReleasesPrefix) - 1)
                            : std::string();
  if (!IsSafeName(version)) {
    return absl::DataLossError(absl::StrCat(current_link(), " points to '", *target,
                                            "', not into releases/"));
  }
  return version;
}

std::vector<std::string> AppLayout::ListReleases() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(releases_dir(), ec)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (!entry.is_directory(ec) || entry.is_symlink(ec)) continue;
    out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool AppLayout::HasRelease(const std::string& version) const {
  std::error_code ec;
  // symlink_status: a link placed by hand under releases/ is not a release.
  return IsSafeName(version) &&
         std::filesystem::is_directory(std::filesystem::symlink_status(release_dir(version), ec));
}

absl::Status AppLayout::SwitchCurrent(const std::string& version) const {
  if (!HasRelease(version)) {
    return absl::FailedPreconditionError(
        absl::StrCat("release ", version, " of ", app_, " is not on disk"));
  }
  int dir_fd = open(app_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return Errno("cannot open", app_dir_);
  std::string target = absl::StrCat(kReleasesPrefix, version);
  // A temp link left by a crash would make symlinkat fail with EEXIST.
  unlinkat(dir_fd, kTempLink, 0);
  absl::Status st;
  if (symlinkat(target.c_str(), dir_fd, kTempLink) != 0) {
    st = Errno("cannot create link", app_dir_ + "/" + kTempLink);
  } else if (renameat(dir_fd, kTempLink, dir_fd, "current") != 0) {
    st = Errno("cannot rename link over", current_link());
    unlinkat(dir_fd, kTempLink, 0);
  } else if (fsync(dir_fd) != 0) {
    st = Errno("cannot fsync", app_dir_);
  }
  close(dir_fd);
  return st;
}

absl::Status AppLayout::RemoveCurrent() const {
  if (unlink(current_link().c_str()) != 0 && errno != ENOENT) {
    return Errno("cannot remove", current_link());
  }
  return FsyncDir(app_dir_);
}

std::vector<std::string> AppLayout::RemoveLeftovers() const {
  std::vector<std::string> removed;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(releases_dir(), ec)) {
    std::string name = entry.path().filename().string();
    if (absl::StartsWith(name, ".staging-")) {
      if (RemoveAll(entry.path().string()).ok()) removed.push_back(entry.path().string());
    }
  }
  std::string tmp = absl::StrCat(app_dir_, "/", kTempLink);
  if (PathExists(tmp) && unlink(tmp.c_str()) == 0) removed.push_back(tmp);
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
