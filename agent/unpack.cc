#include "agent/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/fs.h"

namespace fleet::agent {
namespace {

// NOABSOLUTEPATHS is deliberately absent: every pathname handed to
// archive_write_disk is rewritten to <absolute dest_dir>/<relative path>, which
// that flag would refuse. Absolute paths in the archive are refused by
// RelativeComponents before the rewrite. OWNER, ACL, XATTR and FFLAGS stay off
// so that the archive cannot choose owners, file capabilities or immutable
// flags.
constexpr int kWriteDiskFlags = ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM;

constexpr size_t kReadBlockSize = 64 * 1024;

struct WriteArchiveDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
using ReadArchive = ArchiveReader;
using WriteArchive = std::unique_ptr<archive, WriteArchiveDeleter>;

class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ScopedFd& operator=(ScopedFd&& other) {
    std::swap(fd_, other.fd_);
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// What an archive path names once extracted; implicit parent directories
// count as directories.
enum class EntryKind { kDirectory, kRegularFile, kSymlink };

// Archive paths go into messages quoted and escaped so that a hostile name
// cannot break the one-line error or forge a second line in the log.
std::string Quote(absl::string_view text) {
  return absl::StrCat("'", absl::CHexEscape(text), "'");
}

absl::Status EntryError(absl::string_view entry, absl::string_view rule) {
  return absl::InvalidArgumentError(
      absl::StrCat("archive entry ", Quote(entry), ": ", rule));
}

absl::Status ErrnoStatus(absl::string_view what, const std::string& path,
                         int err) {
  std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  return absl::InternalError(msg);
}

const char* ArchiveMessage(archive* a) {
  const char* msg = archive_error_string(a);
  return msg != nullptr ? msg : "unknown libarchive error";
}

// Splits an archive path into components, dropping "" and "." (so "./a//b/"
// is "a/b"). An empty result names the destination itself.
std::vector<std::string> SplitComponents(absl::string_view path) {
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == ".") continue;
    parts.emplace_back(part);
  }
  return parts;
}

// Validates a path (of an entry, or the target of a hardlink, as `what`
// says) and returns its components relative to the destination.
absl::StatusOr<std::vector<std::string>> RelativeComponents(
    absl::string_view entry, absl::string_view path, absl::string_view what) {
  if (path.empty()) return EntryError(entry, absl::StrCat(what, " is empty"));
  if (path[0] == '/') {
    return EntryError(entry, absl::StrCat(what, " is absolute"));
  }
  std::vector<std::string> parts = SplitComponents(path);
  for (const std::string& part : parts) {
    if (part == "..") {
      return EntryError(entry,
                        absl::StrCat(what, " escapes the release directory"));
    }
  }
  return parts;
}

// Checks a relative symlink target lexically from the link's directory.
// A ".." that follows a name is refused even when it resolves inside: the
// name may itself be a symlink (created before or after this one), and the
// kernel applies ".." to where that link leads, not to the lexical parent,
// so "d/up/../x" with d/up -> .. leaves the release directory.
absl::Status CheckSymlinkTarget(absl::string_view entry,
                                const std::vector<std::string>& link_parts,
                                absl::string_view target) {
  if (target.empty()) return EntryError(entry, "symlink target is empty");
  if (target[0] == '/') {
    return EntryError(
        entry, absl::StrCat("symlink target ", Quote(target), " is absolute"));
  }
  size_t depth = link_parts.size() - 1;  // directories above the link
  bool saw_name = false;
  for (const std::string& part : SplitComponents(target)) {
    if (part != "..") {
      saw_name = true;
      ++depth;
      continue;
    }
    if (saw_name) {
      return EntryError(
          entry, absl::StrCat("symlink target ", Quote(target),
                              " has '..' after a name, which another link "
                              "could redirect outside the release directory"));
    }
    if (depth == 0) {
      return EntryError(
          entry, absl::StrCat("symlink target ", Quote(target),
                              " resolves outside the release directory"));
    }
    --depth;
  }
  return absl::OkStatus();
}

// One extraction: the policy checks that run on each header before
// libarchive sees it, and the copy of its data under the limits.
class ReleaseExtractor {
 public:
  ReleaseExtractor(std::string archive_path, std::string dest_dir,
                   const UnpackLimits& limits, UnpackStats* stats)
      : archive_path_(std::move(archive_path)),
        dest_dir_(std::move(dest_dir)),
        limits_(limits),
        stats_(stats) {}

  absl::Status Run(archive* in, archive* out);

 private:
  // Checks `entry` and rewrites its paths under dest_dir_. Sets *skip for
  // the entry naming dest_dir_ itself ("./"), which is not written.
  absl::Status PrepareEntry(archive_entry* entry, const std::string& name,
                            bool* skip);
  absl::Status CopyData(archive* in, archive* out, archive_entry* entry,
                        const std::string& name);
  absl::Status WriteError(archive* out, const std::string& name) const;
  absl::Status Corrupt(archive* in, const std::string& name) const;
  absl::Status TooManyBytes(const std::string& name) const;

  const std::string archive_path_;
  const std::string dest_dir_;
  const UnpackLimits limits_;
  UnpackStats* stats_;
  // Every path extracted so far, relative and normalized, with the implicit
  // parent directories of each.
  std::unordered_map<std::string, EntryKind> extracted_;
};

absl::Status ReleaseExtractor::Run(archive* in, archive* out) {
  for (;;) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(in, &entry);
    if (r == ARCHIVE_EOF) break;
    // ARCHIVE_WARN is a header that was read but not perfectly (e.g. a
    // charset it could not convert); the checks below still apply to it.
    // ARCHIVE_RETRY (a damaged header that could be skipped) is corrupt.
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return Corrupt(in, "");
    const char* raw_name = archive_entry_pathname(entry);
    std::string name = raw_name != nullptr ? raw_name : "";

    if (++stats_->entries > limits_.max_entries) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "archive ", archive_path_, " has more than ", limits_.max_entries,
          " entries (limit reached at entry ", Quote(name), ")"));
    }
    bool skip = false;
    absl::Status st = PrepareEntry(entry, name, &skip);
    if (!st.ok()) return st;
    if (skip) continue;

    if (archive_write_header(out, entry) < ARCHIVE_OK) {
      return WriteError(out, name);
    }
    st = CopyData(in, out, entry, name);
    if (!st.ok()) return st;
    // Applies the mode and times of files; a failure here would leave e.g. a
    // bin/start that cannot be executed, so it fails the release.
    if (archive_write_finish_entry(out) < ARCHIVE_OK) {
      return WriteError(out, name);
    }
  }
  // Directory modes and times are applied here, after their content.
  if (archive_write_close(out) < ARCHIVE_OK) return WriteError(out, "");
  // Parents that the archive does not list were made by libarchive from
  // the umask; they must not be writable by others either.
  for (const auto& [rel, kind] : extracted_) {
    if (kind != EntryKind::kDirectory) continue;
    const std::string path = absl::StrCat(dest_dir_, "/", rel);
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0022) != 0 &&
        chmod(path.c_str(), st.st_mode & 0755) != 0) {
      return absl::InternalError(
          absl::StrCat("cannot chmod ", path, ": ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

absl::Status ReleaseExtractor::PrepareEntry(archive_entry* entry,
                                            const std::string& name,
                                            bool* skip) {
  absl::StatusOr<std::vector<std::string>> parts =
      RelativeComponents(name, name, "path");
  if (!parts.ok()) return parts.status();

  const char* hardlink = archive_entry_hardlink(entry);
  EntryKind kind;
  if (hardlink != nullptr) {
    kind = EntryKind::kRegularFile;
  } else {
    switch (archive_entry_filetype(entry)) {
      case AE_IFREG:
        kind = EntryKind::kRegularFile;
        break;
      case AE_IFDIR:
        kind = EntryKind::kDirectory;
        break;
      case AE_IFLNK:
        kind = EntryKind::kSymlink;
        break;
      case AE_IFCHR:
        return EntryError(name,
                          "is a character device; releases may hold "
                          "only files, directories and links");
      case AE_IFBLK:
        return EntryError(name,
                          "is a block device; releases may hold only "
                          "files, directories and links");
      case AE_IFIFO:
        return EntryError(name,
                          "is a FIFO; releases may hold only files, "
                          "directories and links");
      case AE_IFSOCK:
        return EntryError(name,
                          "is a socket; releases may hold only files, "
                          "directories and links");
      default:
        return EntryError(name, absl::StrFormat("has unsupported file type %#o",
                                                archive_entry_filetype(entry)));
    }
  }

  if (parts->empty()) {
    // "./" as written by `tar -C dir .`: dest_dir already exists and keeps
    // the mode its caller gave it.
    if (kind != EntryKind::kDirectory) {
      return EntryError(name, "names the release directory itself");
    }
    *skip = true;
    return absl::OkStatus();
  }

  std::string rel = absl::StrJoin(*parts, "/");
  std::string full = absl::StrCat(dest_dir_, "/", rel);
  // libarchive handles longer paths by chdir(2) into intermediate
  // directories, which would move the working directory of every thread.
  if (full.size() >= PATH_MAX) {
    return EntryError(name,
                      absl::StrCat("path is longer than ", PATH_MAX - 1,
                                   " bytes once placed under ", dest_dir_));
  }

  std::string prefix;
  for (size_t i = 0; i + 1 < parts->size(); ++i) {
    if (i > 0) prefix += '/';
    prefix += (*parts)[i];
    auto it = extracted_.find(prefix);
    if (it == extracted_.end()) continue;
    if (it->second == EntryKind::kSymlink) {
      return EntryError(
          name, absl::StrCat("is written through symlink ", Quote(prefix),
                             " created earlier in the archive"));
    }
    if (it->second == EntryKind::kRegularFile) {
      return EntryError(name, absl::StrCat("is below ", Quote(prefix),
                                           ", a file earlier in the archive"));
    }
  }
  // Replacing an earlier entry would let its type change under links and
  // paths already checked against it (a directory turning into a symlink).
  auto existing = extracted_.find(rel);
  if (existing != extracted_.end() &&
      !(existing->second == EntryKind::kDirectory &&
        kind == EntryKind::kDirectory)) {
    return EntryError(name, "replaces an earlier entry at the same path");
  }

  if (hardlink != nullptr) {
    absl::StatusOr<std::vector<std::string>> target = RelativeComponents(
        name, hardlink, absl::StrCat("hardlink target ", Quote(hardlink)));
    if (!target.ok()) return target.status();
    std::string target_rel = absl::StrJoin(*target, "/");
    // A hardlink to a symlink would re-anchor its relative target in the
    // hardlink's directory, so only regular files may be linked.
    auto it = extracted_.find(target_rel);
    if (it == extracted_.end() || it->second != EntryKind::kRegularFile) {
      return EntryError(name, absl::StrCat("hardlink target ", Quote(hardlink),
                                           " is not a regular file earlier in "
                                           "the archive"));
    }
    archive_entry_set_hardlink(
        entry, absl::StrCat(dest_dir_, "/", target_rel).c_str());
  } else if (kind == EntryKind::kSymlink) {
    const char* target = archive_entry_symlink(entry);
    absl::Status st =
        CheckSymlinkTarget(name, *parts, target != nullptr ? target : "");
    if (!st.ok()) return st;
  }

  if (kind == EntryKind::kRegularFile && archive_entry_size_is_set(entry)) {
    if (archive_entry_size(entry) < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("corrupt archive: entry ", Quote(name), " of ",
                       archive_path_, " has a negative size"));
    }
    if (static_cast<uint64_t>(archive_entry_size(entry)) >
        limits_.max_total_bytes - stats_->bytes) {
      return TooManyBytes(name);
    }
  }

  prefix.clear();
  for (size_t i = 0; i + 1 < parts->size(); ++i) {
    if (i > 0) prefix += '/';
    prefix += (*parts)[i];
    extracted_.emplace(prefix, EntryKind::kDirectory);
  }
  extracted_[rel] = kind;

  // The bits above 0777 are setuid, setgid and sticky; only the owner may
  // write (anyone else could change what runs, also a group the release's
  // user shares). Directories keep u+rwx so that the agent can always
  // remove an old release.
  mode_t perm = archive_entry_perm(entry) & 0755;
  if (kind == EntryKind::kDirectory) perm |= 0700;
  archive_entry_set_perm(entry, perm);
  archive_entry_set_pathname(entry, full.c_str());
  return absl::OkStatus();
}

absl::Status ReleaseExtractor::CopyData(archive* in, archive* out,
                                        archive_entry* entry,
                                        const std::string& name) {
  const bool size_is_set = archive_entry_size_is_set(entry);
  const uint64_t declared =
      size_is_set ? static_cast<uint64_t>(archive_entry_size(entry)) : 0;
  // The header's size was checked already, but some formats (streamed zip)
  // carry no size before the data, so the data itself is counted too.
  uint64_t end = 0;
  for (;;) {
    const void* buf = nullptr;
    size_t len = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(in, &buf, &len, &offset);
    if (r == ARCHIVE_EOF) break;
    if ((r != ARCHIVE_OK && r != ARCHIVE_WARN) || offset < 0) {
      return Corrupt(in, name);
    }
    uint64_t block_end = static_cast<uint64_t>(offset) + len;
    end = std::max(end, block_end);
    if (std::max(end, declared) > limits_.max_total_bytes - stats_->bytes) {
      return TooManyBytes(name);
    }
    if (size_is_set && end > declared) {
      return absl::InvalidArgumentError(
          absl::StrCat("corrupt archive: entry ", Quote(name), " of ",
                       archive_path_, " holds more data than the ", declared,
                       " bytes its header declares"));
    }
    if (archive_write_data_block(out, buf, len, offset) < ARCHIVE_OK) {
      return WriteError(out, name);
    }
  }
  stats_->bytes += std::max(end, declared);
  return absl::OkStatus();
}

absl::Status ReleaseExtractor::WriteError(archive* out,
                                          const std::string& name) const {
  int err = archive_errno(out);
  std::string msg =
      name.empty()
          ? absl::StrCat("cannot finish extracting into ", dest_dir_, ": ",
                         ArchiveMessage(out))
          : absl::StrCat("cannot extract archive entry ", Quote(name), " into ",
                         dest_dir_, ": ", ArchiveMessage(out));
  if (err == ENOSPC || err == EDQUOT) {
    // libarchive says only "Write failed": say where, and what is left.
    struct statvfs vfs;
    const std::string left =
        statvfs(dest_dir_.c_str(), &vfs) != 0
            ? ""
            : absl::StrCat(" (", FormatBytes(static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize),
                           " and ", vfs.f_favail, " inodes free)");
    return absl::ResourceExhaustedError(absl::StrCat(
        err == ENOSPC ? "no space left" : "disk quota exceeded", " in ", dest_dir_, left,
        name.empty() ? "" : absl::StrCat(" while extracting ", Quote(name))));
  }
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  return absl::InternalError(msg);
}

absl::Status ReleaseExtractor::Corrupt(archive* in,
                                       const std::string& name) const {
  std::string where =
      name.empty() ? archive_path_
                   : absl::StrCat("entry ", Quote(name), " of ", archive_path_);
  return absl::InvalidArgumentError(
      absl::StrCat("corrupt archive: ", ArchiveMessage(in), " in ", where));
}

absl::Status ReleaseExtractor::TooManyBytes(const std::string& name) const {
  return absl::ResourceExhaustedError(absl::StrCat(
      "archive ", archive_path_, " holds more than ", limits_.max_total_bytes,
      " bytes of files (limit reached at entry ", Quote(name), ")"));
}

// The absolute, symlink-free path of dest_dir, which must be an empty
// directory. archive_write_disk's SECURE_SYMLINKS check walks the whole
// rewritten path, so a symlink above the release (/opt -> /srv/opt) would
// otherwise refuse every entry.
absl::StatusOr<std::string> ResolveEmptyDestination(
    const std::string& dest_dir) {
  char resolved[PATH_MAX];
  if (realpath(dest_dir.c_str(), resolved) == nullptr) {
    return ErrnoStatus("cannot resolve unpack destination", dest_dir, errno);
  }
  DIR* dir = opendir(resolved);
  if (dir == nullptr) {
    return ErrnoStatus("cannot open unpack destination", dest_dir, errno);
  }
  bool empty = true;
  while (dirent* d = readdir(dir)) {
    if (std::strcmp(d->d_name, ".") != 0 && std::strcmp(d->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  closedir(dir);
  if (!empty) {
    return absl::FailedPreconditionError(
        absl::StrCat("unpack destination ", dest_dir, " is not empty"));
  }
  return std::string(resolved);
}

// Opens `archive_path`, which must be a regular file, for reading with the
// formats NewReleaseArchiveReader allows; `fd` keeps the file open for the
// reader.
absl::StatusOr<ReadArchive> OpenArchive(const std::string& archive_path,
                                        ScopedFd* fd) {
  // O_NONBLOCK so that a FIFO at archive_path cannot hang the agent in open.
  *fd = ScopedFd(open(archive_path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd->get() < 0) {
    return ErrnoStatus("cannot open archive", archive_path, errno);
  }
  struct stat st;
  if (fstat(fd->get(), &st) != 0) {
    return ErrnoStatus("cannot stat archive", archive_path, errno);
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("archive ", archive_path, " is not a regular file"));
  }
  ReadArchive in = NewReleaseArchiveReader();
  if (in == nullptr) return absl::ResourceExhaustedError("archive_read_new");
  if (archive_read_open_fd(in.get(), fd->get(), kReadBlockSize) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(absl::StrCat(
        "corrupt archive: ", ArchiveMessage(in.get()), " in ", archive_path));
  }
  return in;
}

absl::Status Unpack(const std::string& archive_path,
                    const std::string& dest_dir, const UnpackLimits& limits,
                    UnpackStats* stats) {
  absl::StatusOr<std::string> dest = ResolveEmptyDestination(dest_dir);
  if (!dest.ok()) return dest.status();
  ScopedFd fd(-1);
  absl::StatusOr<ReadArchive> in = OpenArchive(archive_path, &fd);
  if (!in.ok()) return in.status();
  WriteArchive out(archive_write_disk_new());
  if (out == nullptr)
    return absl::ResourceExhaustedError("archive_write_disk_new");
  archive_write_disk_set_options(out.get(), kWriteDiskFlags);

  ReleaseExtractor extractor(archive_path, *std::move(dest), limits, stats);
  return extractor.Run(in->get(), out.get());
}

absl::Status Measure(const std::string& archive_path,
                     const UnpackLimits& limits, UnpackStats* stats) {
  ScopedFd fd(-1);
  absl::StatusOr<ReadArchive> in = OpenArchive(archive_path, &fd);
  if (!in.ok()) return in.status();
  for (;;) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(in->get(), &entry);
    if (r == ARCHIVE_EOF) return absl::OkStatus();
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return absl::InvalidArgumentError(absl::StrCat(
          "corrupt archive: ", ArchiveMessage(in->get()), " in ", archive_path));
    }
    if (++stats->entries > limits.max_entries) {
      return absl::ResourceExhaustedError(
          absl::StrCat("archive ", archive_path, " has more than ",
                       limits.max_entries, " entries"));
    }
    if (archive_entry_filetype(entry) == AE_IFREG &&
        archive_entry_size_is_set(entry) && archive_entry_size(entry) > 0) {
      stats->bytes += static_cast<uint64_t>(archive_entry_size(entry));
      if (stats->bytes > limits.max_total_bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat("archive ", archive_path, " holds more than ",
                         limits.max_total_bytes, " bytes of files"));
      }
    }
    if (archive_read_data_skip(in->get()) != ARCHIVE_OK) {
      return absl::InvalidArgumentError(absl::StrCat(
          "corrupt archive: ", ArchiveMessage(in->get()), " in ", archive_path));
    }
  }
}

}  // namespace

absl::Status UnpackArchive(const std::string& archive_path,
                           const std::string& dest_dir,
                           const UnpackLimits& limits, UnpackStats* stats) {
  UnpackStats local;
  absl::Status st = Unpack(archive_path, dest_dir, limits, &local);
  if (stats != nullptr) *stats = local;
  return st;
}

absl::Status MeasureArchive(const std::string& archive_path,
                            const UnpackLimits& limits, UnpackStats* stats) {
  UnpackStats local;
  absl::Status st = Measure(archive_path, limits, &local);
  if (stats != nullptr) *stats = local;
  return st;
}

}  // namespace fleet::agent
