// Safe extraction of release archives (tar, tar.gz, tar.zst, zip: whatever
// libarchive reads) into a staging directory.
#ifndef FLEET_AGENT_UNPACK_H_
#define FLEET_AGENT_UNPACK_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "common/archive.h"

namespace fleet::agent {

// The caps are shared with the check of every push (common/archive.h).
using UnpackLimits = ArchiveLimits;

struct UnpackStats {
  uint64_t entries = 0;
  uint64_t bytes = 0;
};

// Extracts `archive_path` into `dest_dir`, which must exist and be empty.
//
// Refuses the whole archive with InvalidArgument (message names the entry and
// the rule, e.g. "archive entry '../x': path escapes the release directory")
// and writes nothing outside dest_dir when an entry:
//   - has an absolute path or a ".." component,
//   - is a symlink whose target is absolute or resolves outside dest_dir,
//   - is written through a symlink (a path with a symlink as a parent),
//   - is a hardlink whose target is absolute, escapes, or is not an earlier entry,
//   - is a device node, FIFO or socket,
// or when the archive exceeds `limits` (ResourceExhausted). setuid, setgid
// and sticky bits are stripped; ownership recorded in the archive is ignored
// (files belong to the agent's user). A corrupt archive is InvalidArgument.
// On error the caller removes dest_dir; its content is undefined.
absl::Status UnpackArchive(const std::string& archive_path,
                           const std::string& dest_dir,
                           const UnpackLimits& limits, UnpackStats* stats);

// Reads only the headers of `archive_path` and sets *stats to what
// UnpackArchive would write: entries, and bytes of regular files as their
// headers declare them (entries without a declared size count 0; the
// unpack itself still holds them to the limits). For a free-space check
// before unpacking. Refuses what exceeds `limits` (ResourceExhausted) and
// a corrupt archive (InvalidArgument) like UnpackArchive; applies none of
// its path rules.
absl::Status MeasureArchive(const std::string& archive_path,
                            const UnpackLimits& limits, UnpackStats* stats);

}  // namespace fleet::agent

#endif  // FLEET_AGENT_UNPACK_H_
