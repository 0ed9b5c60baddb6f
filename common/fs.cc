#include "common/fs.h"

#include <dirent.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"

namespace fleet {
namespace {

absl::Status ErrnoStatus(absl::string_view what, const std::string& path) {
  int err = errno;
  std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  if (err == EEXIST) return absl::AlreadyExistsError(msg);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

std::string DirName(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoStatus("cannot read", path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

absl::Status WriteFileAtomic(const std::string& path, const std::string& content,
                             int mode) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus("cannot create", tmp);
  if (absl::Status st = WriteFully(fd, content, tmp); !st.ok()) {
    close(fd);
    unlink(tmp.c_str());
    return st;
  }
  if (fsync(fd) != 0) {
    absl::Status st = ErrnoStatus("cannot fsync", tmp);
    close(fd);
    unlink(tmp.c_str());
    return st;
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status st = ErrnoStatus("cannot rename into", path);
    unlink(tmp.c_str());
    return st;
  }
  return FsyncDir(DirName(path));
}

absl::Status WriteFully(int fd, absl::string_view data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("cannot write", path);
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status FsyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open directory", dir);
  int rc = fsync(fd);
  absl::Status st = rc == 0 ? absl::OkStatus() : ErrnoStatus("cannot fsync", dir);
  close(fd);
  return st;
}

absl::Status FsyncTree(const std::string& root) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const auto& entry = *it;
    if (entry.is_symlink()) continue;
    if (!entry.is_regular_file() && !entry.is_directory()) continue;
    int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (entry.is_directory() ? O_DIRECTORY : 0);
    int fd = open(entry.path().c_str(), flags);
    if (fd < 0) return ErrnoStatus("cannot open", entry.path().string());
    int rc = fsync(fd);
    close(fd);
    if (rc != 0) return ErrnoStatus("cannot fsync", entry.path().string());
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot walk ", root, ": ", ec.message()));
  return FsyncDir(root);
}

namespace {

constexpr int kMaxChownDepth = 256;

// Gives every entry below the open directory `dir_fd` (named `path` in
// messages) to uid:gid. Every step is relative to a descriptor and never
// follows a link, so a tree whose owner swaps a directory for a symlink
// while this runs cannot make it change anything outside the tree.
absl::Status ChownBelow(int dir_fd, const std::string& path, uid_t uid, gid_t gid, int depth) {
  if (depth > kMaxChownDepth) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot chown ", path, ": more than ", kMaxChownDepth, " levels deep"));
  }
  int list_fd = dup(dir_fd);
  if (list_fd < 0) return ErrnoStatus("cannot read directory", path);
  DIR* dir = fdopendir(list_fd);
  if (dir == nullptr) {
    close(list_fd);
    return ErrnoStatus("cannot read directory", path);
  }
  absl::Status result;
  errno = 0;
  while (struct dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    const std::string child = absl::StrCat(path, "/", name);
    struct stat st;
    if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      result = ErrnoStatus("cannot stat", child);
      break;
    }
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        result = ErrnoStatus("cannot open directory", child);
        break;
      }
      result = ChownBelow(sub, child, uid, gid, depth + 1);
      if (result.ok() && fchown(sub, uid, gid) != 0) result = ErrnoStatus("cannot chown", child);
      close(sub);
      if (!result.ok()) break;
    } else if (fchownat(dir_fd, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
      result = ErrnoStatus("cannot chown", child);
      break;
    }
    errno = 0;
  }
  if (result.ok() && errno != 0) result = ErrnoStatus("cannot read directory", path);
  closedir(dir);
  return result;
}

}  // namespace

absl::Status WriteFileDurably(const std::string& path, const std::string& content, mode_t mode,
                              bool replace) {
  const std::string tmp = path + ".tmp";
  if (unlink(tmp.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("cannot remove", tmp);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("cannot create", tmp);
  absl::Status st;
  if (fchmod(fd, mode) != 0) st = ErrnoStatus("cannot chmod", tmp);
  if (st.ok()) st = WriteFully(fd, content, tmp);
  if (st.ok() && fsync(fd) != 0) st = ErrnoStatus("cannot fsync", tmp);
  close(fd);
  if (st.ok()) {
    if (replace) {
      if (rename(tmp.c_str(), path.c_str()) != 0) st = ErrnoStatus("cannot rename into", path);
    } else if (link(tmp.c_str(), path.c_str()) != 0) {
      st = errno == EEXIST ? absl::AlreadyExistsError(absl::StrCat(path, " exists already"))
                           : ErrnoStatus("cannot create", path);
    }
  }
  unlink(tmp.c_str());  // after link(2) the data lives on under `path`
  if (!st.ok()) return st;
  const size_t slash = path.find_last_of('/');
  return FsyncDir(slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash));
}

absl::Status ChownTree(const std::string& root, uid_t uid, gid_t gid) {
  int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open directory", root);
  absl::Status st = ChownBelow(fd, root, uid, gid, 0);
  if (st.ok() && fchown(fd, uid, gid) != 0) st = ErrnoStatus("cannot chown", root);
  close(fd);
  return st;
}

absl::Status MakeDirs(const std::string& dir, int mode) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create directory ", dir, ": ", ec.message()));
  (void)mode;
  return absl::OkStatus();
}

absl::Status RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot remove ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return ErrnoStatus("cannot read link", path);
  return std::string(buf, static_cast<size_t>(n));
}

bool PathExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

absl::StatusOr<std::string> MakeTempDir(const std::string& parent,
                                        const std::string& prefix) {
  std::string tmpl = absl::StrCat(parent, "/", prefix, "XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("cannot create temp dir in", parent);
  return tmpl;
}

absl::Status CheckFreeSpace(const std::string& dir, uint64_t bytes, uint64_t inodes) {
  struct statvfs vfs;
  if (statvfs(dir.c_str(), &vfs) != 0) return ErrnoStatus("cannot read free space of", dir);
  const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  const uint64_t needed = bytes + kFreeSpaceMargin + bytes / 20;
  if (free_bytes < needed) {
    return absl::ResourceExhaustedError(absl::StrCat("needs ", FormatBytes(needed), " in ", dir,
                                                     ", ", FormatBytes(free_bytes), " free"));
  }
  // Filesystems without an inode table (btrfs) report no inodes at all.
  if (vfs.f_files > 0 && static_cast<uint64_t>(vfs.f_favail) < inodes) {
    return absl::ResourceExhaustedError(absl::StrCat("needs ", inodes, " inodes in ", dir, ", ",
                                                     vfs.f_favail, " free"));
  }
  return absl::OkStatus();
}

std::string FormatBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

absl::StatusOr<int> MakePrivateTree(const std::string& root) {
  if (mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) {
    FLEET_RETURN_IF_ERROR(MakeDirs(root));
  }
  int changed = 0;
  auto tighten = [&changed](const std::string& path) -> absl::Status {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) return ErrnoStatus("cannot stat", path);
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) return absl::OkStatus();
    const mode_t mode = st.st_mode & 07777;
    if ((mode & 077) == 0) return absl::OkStatus();
    if (chmod(path.c_str(), mode & ~static_cast<mode_t>(077)) != 0) {
      return ErrnoStatus("cannot chmod", path);
    }
    ++changed;
    return absl::OkStatus();
  };
  FLEET_RETURN_IF_ERROR(tighten(root));
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    FLEET_RETURN_IF_ERROR(tighten(it->path().string()));
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot walk ", root, ": ", ec.message()));
  return changed;
}

bool IsSafeName(const std::string& name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace fleet
