// Filesystem helpers with the durability Fleet relies on: every write that
// must survive a crash is written to a temporary name, fsynced, renamed and
// followed by an fsync of the directory.
#ifndef FLEET_COMMON_FS_H_
#define FLEET_COMMON_FS_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fleet {

// Reads the whole file. NotFound when it does not exist.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Replaces `path` with `content` atomically: after a crash the file holds
// either the old or the new content, never a mix. Fsyncs file and directory.
absl::Status WriteFileAtomic(const std::string& path, const std::string& content,
                             int mode = 0644);

// Fsyncs a directory so that renames and creations inside it are durable.
absl::Status FsyncDir(const std::string& dir);

// Fsyncs every regular file and directory below `root`, then `root` itself.
absl::Status FsyncTree(const std::string& root);

// Writes `content` to PATH.tmp with exactly `mode` (whatever the umask),
// fsyncs it, moves it to `path` and fsyncs the directory, so `path` never
// holds a partial file: with `replace` by rename(2); otherwise by link(2),
// which fails with AlreadyExists instead of replacing a file that is there
// (or appeared meanwhile). A PATH.tmp left by an interrupted write is
// removed first; one writer per path at a time.
absl::Status WriteFileDurably(const std::string& path, const std::string& content, mode_t mode,
                              bool replace);

// Gives everything below the directory `root` and then `root` itself to
// uid:gid. Never follows a symlink (links themselves are changed), also not
// one swapped in for a directory while this runs: the walk goes by
// descriptors. Once `root` has the new owner so has the whole tree, even
// after a crash in between. Modes stay as they are (chown clears
// setuid/setgid, which Fleet never sets). Fails on a tree deeper than 256.
absl::Status ChownTree(const std::string& root, uid_t uid, gid_t gid);

// Creates `dir` and its parents. OK when it exists already.
absl::Status MakeDirs(const std::string& dir, int mode = 0755);

// Removes `path` recursively without following symlinks. OK when absent.
absl::Status RemoveAll(const std::string& path);

// The target of the symlink at `path`; NotFound when there is no link.
absl::StatusOr<std::string> ReadLink(const std::string& path);

// Whether `path` exists (without following a final symlink).
bool PathExists(const std::string& path);

// Makes a fresh directory below `parent` named `prefix` + random suffix.
absl::StatusOr<std::string> MakeTempDir(const std::string& parent,
                                        const std::string& prefix);

// Whether `name` is safe as one path component for an app or release id:
// [A-Za-z0-9._-]+, not starting with '.', at most 128 characters.
bool IsSafeName(const std::string& name);

}  // namespace fleet

#endif  // FLEET_COMMON_FS_H_
