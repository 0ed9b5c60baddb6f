#include "common/archive.h"

#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace fleet {
namespace {

constexpr size_t kBlockSize = 64 * 1024;

struct ArchiveWriterDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
using ArchiveWriter = std::unique_ptr<archive, ArchiveWriterDeleter>;
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using Entry = std::unique_ptr<archive_entry, EntryDeleter>;

const char* ArchiveMessage(archive* a) {
  const char* msg = archive_error_string(a);
  return msg != nullptr ? msg : "unknown libarchive error";
}

absl::Status NotAnArchive(const std::string& label, archive* a) {
  return absl::InvalidArgumentError(absl::StrCat(label, " is not an archive fleet can unpack (",
                                                 ArchiveMessage(a),
                                                 "); push a tar, tar.gz, tar.zst or zip"));
}

// The paths under `dir`, relative to it and sorted, each with its lstat.
absl::StatusOr<std::vector<std::pair<std::string, struct stat>>> Tree(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(dir, " is not a directory"));
  }
  std::vector<std::pair<std::string, struct stat>> tree;
  fs::recursive_directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    struct stat st;
    if (lstat(it->path().c_str(), &st) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot stat ", it->path().string()));
    }
    // lexically: fs::relative would resolve a symlink to its target.
    const std::string rel = it->path().lexically_relative(dir).generic_string();
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(
          rel, " in ", dir, " is not a regular file, directory or symlink; a release holds none"));
    }
    tree.emplace_back(rel, st);
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot read ", dir, ": ", ec.message()));
  std::sort(tree.begin(), tree.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return tree;
}

// Writes one entry (header, then a regular file's content).
absl::Status WriteEntry(archive* out, const std::string& dir, const std::string& rel,
                        const struct stat& st) {
  const std::string path = absl::StrCat(dir, "/", rel);
  Entry entry(archive_entry_new());
  archive_entry_set_pathname(entry.get(), rel.c_str());
  archive_entry_set_perm(entry.get(), st.st_mode & 0777);
  archive_entry_set_mtime(entry.get(), 0, 0);
  archive_entry_set_uid(entry.get(), 0);
  archive_entry_set_gid(entry.get(), 0);
  if (S_ISDIR(st.st_mode)) {
    archive_entry_set_filetype(entry.get(), AE_IFDIR);
  } else if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(path, ec).string();
    if (ec) return absl::InternalError(absl::StrCat("cannot read link ", path, ": ", ec.message()));
    archive_entry_set_filetype(entry.get(), AE_IFLNK);
    archive_entry_set_symlink(entry.get(), target.c_str());
  } else {
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_size(entry.get(), st.st_size);
  }
  if (archive_write_header(out, entry.get()) != ARCHIVE_OK) {
    return absl::InternalError(absl::StrCat("cannot pack ", path, ": ", ArchiveMessage(out)));
  }
  if (!S_ISREG(st.st_mode)) return absl::OkStatus();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", path));
  std::vector<char> buf(kBlockSize);
  int64_t left = st.st_size;
  absl::Status result;
  while (left > 0 && result.ok()) {
    const ssize_t n = read(fd, buf.data(), buf.size());
    if (n <= 0) {
      result = n < 0 ? absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", path))
                     : absl::FailedPreconditionError(absl::StrCat(path, " shrank while packed"));
    } else if (archive_write_data(out, buf.data(), static_cast<size_t>(std::min<int64_t>(n, left))) < 0) {
      result = absl::InternalError(absl::StrCat("cannot pack ", path, ": ", ArchiveMessage(out)));
    } else {
      left -= n;
    }
  }
  close(fd);
  return result;
}

}  // namespace

ArchiveReader NewReleaseArchiveReader() {
  ArchiveReader in(archive_read_new());
  if (in == nullptr) return in;
  archive_read_support_filter_all(in.get());
  archive_read_support_format_7zip(in.get());
  archive_read_support_format_ar(in.get());
  archive_read_support_format_cab(in.get());
  archive_read_support_format_cpio(in.get());
  archive_read_support_format_iso9660(in.get());
  archive_read_support_format_lha(in.get());
  archive_read_support_format_rar(in.get());
  archive_read_support_format_rar5(in.get());
  archive_read_support_format_tar(in.get());
  archive_read_support_format_warc(in.get());
  archive_read_support_format_xar(in.get());
  archive_read_support_format_zip(in.get());
  return in;
}

absl::Status CheckReleaseArchive(const std::string& path, const std::string& label,
                                 const ArchiveLimits& limits) {
  // O_NONBLOCK: a FIFO at `path` cannot hang the open.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", label));
  ArchiveReader in = NewReleaseArchiveReader();
  if (in == nullptr) {
    close(fd);
    return absl::ResourceExhaustedError("archive_read_new");
  }
  absl::Status result;
  uint64_t entries = 0, bytes = 0;
  if (archive_read_open_fd(in.get(), fd, kBlockSize) != ARCHIVE_OK) {
    result = NotAnArchive(label, in.get());
  }
  while (result.ok()) {
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      result = NotAnArchive(label, in.get());
    } else if (++entries > limits.max_entries) {
      result = absl::ResourceExhaustedError(absl::StrCat(
          label, " has more than ", limits.max_entries, " entries, more than agents unpack"));
    } else if (archive_entry_filetype(entry) == AE_IFREG &&
               (bytes += static_cast<uint64_t>(std::max<int64_t>(
                    0, archive_entry_size(entry)))) > limits.max_total_bytes) {
      result = absl::ResourceExhaustedError(absl::StrCat(
          label, " holds more than ", limits.max_total_bytes, " bytes of files, more than "
          "agents unpack"));
    } else if (archive_read_data_skip(in.get()) != ARCHIVE_OK) {
      result = NotAnArchive(label, in.get());
    }
  }
  close(fd);
  return result;
}

absl::Status PackDirectory(const std::string& dir, const std::string& out_path,
                           uint64_t* entries) {
  absl::StatusOr<std::vector<std::pair<std::string, struct stat>>> tree = Tree(dir);
  if (!tree.ok()) return tree.status();
  ArchiveWriter out(archive_write_new());
  if (out == nullptr) return absl::ResourceExhaustedError("archive_write_new");
  // ustar/gnu rather than pax: pax headers carry atime and a pid.
  archive_write_set_format_gnutar(out.get());
  archive_write_add_filter_gzip(out.get());
  archive_write_set_filter_option(out.get(), "gzip", "timestamp", nullptr);
  if (archive_write_open_filename(out.get(), out_path.c_str()) != ARCHIVE_OK) {
    return absl::InternalError(
        absl::StrCat("cannot write ", out_path, ": ", ArchiveMessage(out.get())));
  }
  absl::Status st;
  for (const auto& [rel, stat] : *tree) {
    st = WriteEntry(out.get(), dir, rel, stat);
    if (!st.ok()) break;
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK && st.ok()) {
    st = absl::InternalError(absl::StrCat("cannot write ", out_path, ": ",
                                          ArchiveMessage(out.get())));
  }
  if (!st.ok()) {
    unlink(out_path.c_str());
    return st;
  }
  if (entries != nullptr) *entries = tree->size();
  return absl::OkStatus();
}

}  // namespace fleet
