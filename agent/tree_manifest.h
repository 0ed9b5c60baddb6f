// What a staged release (or config) directory holds, recorded once its
// staging is finished and checked before every switch to it, so a directory
// that lost files (a removal killed half-way by an older agent, a person
// cleaning by hand, a disk error) is never switched to.
//
// The manifest is text: a first line "fleet-manifest 1 <entries> <bytes>",
// then one line per entry "<f|d|l> <size> <path>" (size: a file's length, a
// symlink's target length, 0 for a directory; the path relative to the
// directory, C-escaped so that every entry is one line).
#ifndef FLEET_AGENT_TREE_MANIFEST_H_
#define FLEET_AGENT_TREE_MANIFEST_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fleet::agent {

// Walks `dir` without following symlinks and returns its manifest. The
// top-level `config` symlink is left out: Fleet makes it (`config ->
// ../../config`) and makes it again at activation when it is missing.
// Devices, FIFOs and sockets (which unpacking never writes) are refused.
absl::StatusOr<std::string> DescribeTree(const std::string& dir);

// OK when every entry of `manifest` is in `dir` with its type and size.
// Entries that are in `dir` but not in the manifest are allowed (a service
// that writes into its release directory does not break it). Otherwise
// DataLoss with one line naming how many entries differ and the first one
// ("412 of 20001 entries missing or changed, first: 'lib/a.so' is missing").
// InvalidArgument when `manifest` is not one.
absl::Status CheckTree(const std::string& dir, const std::string& manifest);

}  // namespace fleet::agent

#endif  // FLEET_AGENT_TREE_MANIFEST_H_
