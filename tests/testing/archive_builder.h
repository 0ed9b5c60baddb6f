// Builds release archives for tests, including hostile ones that no
// well-behaved tool writes: absolute and ".." paths, escaping links, device
// nodes, lying sizes, corrupt and truncated streams.
//
//   ArchiveBuilder b;
//   b.AddFile("bin/start", "#!/bin/sh\nexec ./server\n", 0755)
//       .AddSymlink("lib/current", "v1");
//   absl::Status st = b.WriteTarGz(dir + "/web-1.2.tar.gz");
#ifndef FLEET_TESTS_TESTING_ARCHIVE_BUILDER_H_
#define FLEET_TESTS_TESTING_ARCHIVE_BUILDER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fleet::testing {

class ArchiveBuilder {
 public:
  enum class Type {
    kFile,
    kDirectory,
    kSymlink,
    kHardlink,
    kCharDevice,
    kBlockDevice,
    kFifo
  };

  // One archive entry, written as given: paths and link targets are not
  // cleaned, modes keep setuid/setgid/sticky bits.
  struct Entry {
    Type type = Type::kFile;
    std::string path;
    std::string content;  // kFile; a kHardlink with content carries data
    int mode = 0644;      // permission bits; ignored for links
    std::string target;   // kSymlink, kHardlink
    // Size recorded in the header when it should differ from content.size().
    // libarchive pads the data with zeros (or cuts it) to match, so the data
    // really is this long: keep it to a few MiB and test limits with small
    // UnpackLimits instead.
    std::optional<int64_t> claimed_size;
    int64_t uid = 0;
    int64_t gid = 0;
    std::string uname;
    std::string gname;
    unsigned dev_major = 0;  // kCharDevice, kBlockDevice
    unsigned dev_minor = 0;
    int64_t mtime = 1700000000;  // 2023-11-14, fixed so archives are stable
  };

  // Each Add* appends one entry and returns *this for chaining.
  ArchiveBuilder& Add(Entry entry);
  ArchiveBuilder& AddFile(const std::string& path, const std::string& content,
                          int mode = 0644);
  ArchiveBuilder& AddDirectory(const std::string& path, int mode = 0755);
  ArchiveBuilder& AddSymlink(const std::string& path,
                             const std::string& target);
  ArchiveBuilder& AddHardlink(const std::string& path,
                              const std::string& target);
  ArchiveBuilder& AddCharDevice(const std::string& path, unsigned major,
                                unsigned minor);
  ArchiveBuilder& AddBlockDevice(const std::string& path, unsigned major,
                                 unsigned minor);
  ArchiveBuilder& AddFifo(const std::string& path);
  // A regular file whose header says `claimed_size` bytes (see
  // Entry::claimed_size).
  ArchiveBuilder& AddFileClaimingSize(const std::string& path,
                                      const std::string& content,
                                      int64_t claimed_size);

  const std::vector<Entry>& entries() const { return entries_; }

  // The archive as bytes: POSIX pax tar, optionally gzip-compressed.
  absl::StatusOr<std::string> TarBytes(bool gzip = false) const;

  // Writes the archive to `path`, replacing it. Zip holds files,
  // directories and symlinks only (InvalidArgument for other types).
  absl::Status WriteTar(const std::string& path) const;
  absl::Status WriteTarGz(const std::string& path) const;
  absl::Status WriteZip(const std::string& path) const;

  // A zip whose entries carry their sizes only after their data, wrapped in
  // gzip so that a reader cannot seek to the central directory: every entry
  // reaches the unpacker with no size in its header, which is how a header
  // "lies" to a streaming reader.
  absl::Status WriteStreamedZipGz(const std::string& path) const;

  // The tar.gz cut after its first `keep_bytes` bytes (half of it when
  // keep_bytes is larger than the archive).
  absl::Status WriteTruncatedTarGz(const std::string& path,
                                   size_t keep_bytes) const;

  // The uncompressed tar with a broken header checksum on entry `index`
  // (0-based; a pax extended header before the entry counts as its header).
  absl::Status WriteTarWithCorruptHeader(const std::string& path,
                                         size_t index) const;

  // Writes raw bytes, e.g. a file that is not an archive at all.
  static absl::Status WriteBytes(const std::string& path,
                                 const std::string& bytes);

 private:
  enum class Format { kTar, kTarGz, kZip, kStreamedZip };
  // Builds the archive; when header_offsets is set it receives the offset in
  // the uncompressed stream at which each entry's header starts.
  absl::StatusOr<std::string> Build(
      Format format, std::vector<int64_t>* header_offsets = nullptr) const;

  std::vector<Entry> entries_;
};

}  // namespace fleet::testing

#endif  // FLEET_TESTS_TESTING_ARCHIVE_BUILDER_H_
