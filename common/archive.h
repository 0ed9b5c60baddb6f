// Release archives as every part sees them: the formats and caps the agent
// unpacks within (agent/unpack.h), the check the controller and fleetctl
// make before a push is stored, and the reproducible archive fleetctl packs
// from a directory.
#ifndef FLEET_COMMON_ARCHIVE_H_
#define FLEET_COMMON_ARCHIVE_H_

#include <archive.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"

namespace fleet {

struct ArchiveLimits {
  uint64_t max_total_bytes = 4ull << 30;  // sum of regular file sizes
  uint64_t max_entries = 200000;
};

struct ArchiveReaderDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchiveReader = std::unique_ptr<archive, ArchiveReaderDeleter>;

// A libarchive reader for release archives: every compression filter and
// the formats of archive_read_support_format_all() but mtree (a manifest
// naming files it does not hold) and empty (a failed upload rather than an
// empty release). nullptr when libarchive is out of memory.
ArchiveReader NewReleaseArchiveReader();

// Reads every entry header of the archive at `path` (and skips the data,
// which a compressed archive still decompresses) without writing anything.
// OK when it is an archive NewReleaseArchiveReader reads to its end within
// `limits`. Otherwise, named after `label` (what the caller calls the
// file):
//   - InvalidArgument "<label> is not an archive fleet can unpack
//     (<libarchive's reason>); push a tar, tar.gz, tar.zst or zip" for a
//     file that is no archive, an empty file, or a corrupt one;
//   - ResourceExhausted when it holds more entries or file bytes than
//     `limits` allow;
//   - the error of open(2) when it cannot be read.
absl::Status CheckReleaseArchive(const std::string& path, const std::string& label,
                                 const ArchiveLimits& limits = {});

// Packs the tree under `dir` into a gzip-compressed tar at `out_path`
// (created, or replaced), reproducibly: entries sorted by path, relative
// to `dir` ("bin/run"), every mtime 0, owner and group 0 with no names,
// permission bits as on disk (setuid, setgid and sticky dropped), and no
// timestamp or name in the gzip header; the same tree gives the same bytes.
// Regular files, directories and symlinks only: anything else (a FIFO, a
// device, a socket) is InvalidArgument naming it, and `out_path` is then
// removed. *entries (optional) receives the number of entries written.
absl::Status PackDirectory(const std::string& dir, const std::string& out_path,
                           uint64_t* entries = nullptr);

}  // namespace fleet

#endif  // FLEET_COMMON_ARCHIVE_H_
