#include "tests/testing/archive_builder.h"

#include <archive.h>
#include <archive_entry.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fleet::testing {
namespace {

// Offset of the checksum field in a ustar header block.
constexpr size_t kTarChecksumOffset = 148;

struct WriteArchiveDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
using WriteArchive = std::unique_ptr<archive, WriteArchiveDeleter>;

struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using EntryPtr = std::unique_ptr<archive_entry, EntryDeleter>;

la_ssize_t AppendToString(archive*, void* client, const void* buf, size_t len) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), len);
  return static_cast<la_ssize_t>(len);
}

absl::Status LibarchiveError(archive* a, absl::string_view what) {
  const char* msg = archive_error_string(a);
  return absl::InternalError(
      absl::StrCat(what, ": ", msg != nullptr ? msg : "unknown error"));
}

void ToEntry(const ArchiveBuilder::Entry& spec, bool with_size,
             archive_entry* e) {
  using Type = ArchiveBuilder::Type;
  archive_entry_set_pathname(e, spec.path.c_str());
  archive_entry_set_mtime(e, spec.mtime, 0);
  archive_entry_set_uid(e, spec.uid);
  archive_entry_set_gid(e, spec.gid);
  if (!spec.uname.empty()) archive_entry_set_uname(e, spec.uname.c_str());
  if (!spec.gname.empty()) archive_entry_set_gname(e, spec.gname.c_str());
  int64_t size = 0;
  switch (spec.type) {
    case Type::kFile:
      archive_entry_set_filetype(e, AE_IFREG);
      size =
          spec.claimed_size.value_or(static_cast<int64_t>(spec.content.size()));
      break;
    case Type::kDirectory:
      archive_entry_set_filetype(e, AE_IFDIR);
      break;
    case Type::kSymlink:
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_symlink(e, spec.target.c_str());
      break;
    case Type::kHardlink:
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_hardlink(e, spec.target.c_str());
      size =
          spec.claimed_size.value_or(static_cast<int64_t>(spec.content.size()));
      break;
    case Type::kCharDevice:
      archive_entry_set_filetype(e, AE_IFCHR);
      archive_entry_set_rdevmajor(e, spec.dev_major);
      archive_entry_set_rdevminor(e, spec.dev_minor);
      break;
    case Type::kBlockDevice:
      archive_entry_set_filetype(e, AE_IFBLK);
      archive_entry_set_rdevmajor(e, spec.dev_major);
      archive_entry_set_rdevminor(e, spec.dev_minor);
      break;
    case Type::kFifo:
      archive_entry_set_filetype(e, AE_IFIFO);
      break;
  }
  archive_entry_set_perm(
      e, spec.type == Type::kSymlink ? 0777 : (spec.mode & 07777));
  if (with_size) {
    archive_entry_set_size(e, size);
  } else {
    archive_entry_unset_size(e);
  }
}

// gzip of `bytes` through libarchive's "raw" format, which writes one
// entry's data with no archive framing.
absl::StatusOr<std::string> Gzip(const std::string& bytes) {
  std::string out;
  WriteArchive a(archive_write_new());
  archive_write_set_format_raw(a.get());
  archive_write_add_filter_gzip(a.get());
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open(a.get(), &out, nullptr, AppendToString, nullptr) !=
      ARCHIVE_OK) {
    return LibarchiveError(a.get(), "cannot start gzip stream");
  }
  EntryPtr e(archive_entry_new());
  archive_entry_set_pathname(e.get(), "data");
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_size(e.get(), static_cast<int64_t>(bytes.size()));
  if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK ||
      archive_write_data(a.get(), bytes.data(), bytes.size()) < 0 ||
      archive_write_close(a.get()) != ARCHIVE_OK) {
    return LibarchiveError(a.get(), "cannot gzip");
  }
  return out;
}

}  // namespace

ArchiveBuilder& ArchiveBuilder::Add(Entry entry) {
  entries_.push_back(std::move(entry));
  return *this;
}

ArchiveBuilder& ArchiveBuilder::AddFile(const std::string& path,
                                        const std::string& content, int mode) {
  Entry e;
  e.path = path;
  e.content = content;
  e.mode = mode;
  return Add(std::move(e));
}

ArchiveBuilder& ArchiveBuilder::AddDirectory(const std::string& path,
                                             int mode) {
  Entry e;
  e.type = Type::kDirectory;
  e.path = path;
  e.mode = mode;
  return Add(std::move(e));
}

ArchiveBuilder& ArchiveBuilder::AddSymlink(const std::string& path,
                                           const std::string& target) {
  Entry e;
  e.type = Type::kSymlink;
  e.path = path;
  e.target = target;
  return Add(std::move(e));
}

ArchiveBuilder& ArchiveBuilder::AddHardlink(const std::string& path,
                                            const std::string& target) {
  Entry e;
  e.type = Type::kHardlink;
  e.path = path;
  e.target = target;
  return Add(std::move(e));
}

ArchiveBuilder& ArchiveBuilder::AddCharDevice(const std::string& path,
                                              unsigned major, unsigned minor) {
  Entry e;
  e.type = Type::kCharDevice;
  e.path = path;
  e.dev_major = major;
  e.dev_minor = minor;
  return Add(std::move(e));
}

ArchiveBuilder& ArchiveBuilder::AddBlockDevice(const std::string& path,
                                               unsigned major, unsigned minor) {
  Entry e;
  e.type = Type::kBlockDevice;
  e.path = path;
  e.dev_major = major;
  e.dev_minor = minor;
  return Add(std::move(e));
}

ArchiveBuilder& ArchiveBuilder::AddFifo(const std::string& path) {
  Entry e;
  e.type = Type::kFifo;
  e.path = path;
  return Add(std::move(e));
}

ArchiveBuilder& ArchiveBuilder::AddFileClaimingSize(const std::string& path,
                                                    const std::string& content,
                                                    int64_t claimed_size) {
  Entry e;
  e.path = path;
  e.content = content;
  e.claimed_size = claimed_size;
  return Add(std::move(e));
}

absl::StatusOr<std::string> ArchiveBuilder::Build(
    Format format, std::vector<int64_t>* header_offsets) const {
  std::string out;
  WriteArchive a(archive_write_new());
  const bool zip = format == Format::kZip || format == Format::kStreamedZip;
  if (zip) {
    archive_write_set_format_zip(a.get());
  } else {
    // pax_restricted writes plain ustar headers and adds a pax extended
    // header only for what ustar cannot hold (long paths, big ids).
    archive_write_set_format_pax_restricted(a.get());
  }
  if (format == Format::kTarGz) archive_write_add_filter_gzip(a.get());
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open(a.get(), &out, nullptr, AppendToString, nullptr) !=
      ARCHIVE_OK) {
    return LibarchiveError(a.get(), "cannot start archive");
  }
  for (const Entry& spec : entries_) {
    if (zip && spec.type != Type::kFile && spec.type != Type::kDirectory &&
        spec.type != Type::kSymlink) {
      return absl::InvalidArgumentError(
          absl::StrCat("zip cannot hold entry '", spec.path,
                       "': only files, directories "
                       "and symlinks"));
    }
    EntryPtr e(archive_entry_new());
    ToEntry(spec, format != Format::kStreamedZip, e.get());
    // Filter 0 counts the bytes the format has produced so far, before any
    // compression: the offset of this entry's first header block.
    if (header_offsets != nullptr) {
      header_offsets->push_back(archive_filter_bytes(a.get(), 0));
    }
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) {
      return LibarchiveError(
          a.get(), absl::StrCat("cannot write header of '", spec.path, "'"));
    }
    if (!spec.content.empty() &&
        archive_write_data(a.get(), spec.content.data(), spec.content.size()) <
            0) {
      return LibarchiveError(
          a.get(), absl::StrCat("cannot write data of '", spec.path, "'"));
    }
    // Writes the padding, so that the next offset is exact.
    if (archive_write_finish_entry(a.get()) != ARCHIVE_OK) {
      return LibarchiveError(a.get(),
                             absl::StrCat("cannot finish '", spec.path, "'"));
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    return LibarchiveError(a.get(), "cannot finish archive");
  }
  return out;
}

absl::StatusOr<std::string> ArchiveBuilder::TarBytes(bool gzip) const {
  return Build(gzip ? Format::kTarGz : Format::kTar);
}

absl::Status ArchiveBuilder::WriteTar(const std::string& path) const {
  absl::StatusOr<std::string> bytes = Build(Format::kTar);
  if (!bytes.ok()) return bytes.status();
  return WriteBytes(path, *bytes);
}

absl::Status ArchiveBuilder::WriteTarGz(const std::string& path) const {
  absl::StatusOr<std::string> bytes = Build(Format::kTarGz);
  if (!bytes.ok()) return bytes.status();
  return WriteBytes(path, *bytes);
}

absl::Status ArchiveBuilder::WriteZip(const std::string& path) const {
  absl::StatusOr<std::string> bytes = Build(Format::kZip);
  if (!bytes.ok()) return bytes.status();
  return WriteBytes(path, *bytes);
}

absl::Status ArchiveBuilder::WriteStreamedZipGz(const std::string& path) const {
  absl::StatusOr<std::string> zip = Build(Format::kStreamedZip);
  if (!zip.ok()) return zip.status();
  absl::StatusOr<std::string> gz = Gzip(*zip);
  if (!gz.ok()) return gz.status();
  return WriteBytes(path, *gz);
}

absl::Status ArchiveBuilder::WriteTruncatedTarGz(const std::string& path,
                                                 size_t keep_bytes) const {
  absl::StatusOr<std::string> bytes = Build(Format::kTarGz);
  if (!bytes.ok()) return bytes.status();
  if (keep_bytes >= bytes->size()) keep_bytes = bytes->size() / 2;
  return WriteBytes(path, bytes->substr(0, keep_bytes));
}

absl::Status ArchiveBuilder::WriteTarWithCorruptHeader(const std::string& path,
                                                       size_t index) const {
  std::vector<int64_t> offsets;
  absl::StatusOr<std::string> bytes = Build(Format::kTar, &offsets);
  if (!bytes.ok()) return bytes.status();
  if (index >= offsets.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no entry ", index, " to corrupt; the archive has ", offsets.size()));
  }
  // The checksum is octal digits; flipping the low bit keeps it a digit, so
  // the header still looks like tar but no longer adds up.
  (*bytes)[static_cast<size_t>(offsets[index]) + kTarChecksumOffset] ^= 0x01;
  return WriteBytes(path, *bytes);
}

absl::Status ArchiveBuilder::WriteBytes(const std::string& path,
                                        const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    return absl::InternalError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace fleet::testing
