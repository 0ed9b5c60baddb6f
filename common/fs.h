// Filesystem helpers with the durability Fleet relies on: every write that
// must survive a crash is written to a temporary name, fsynced, renamed and
// followed by an fsync of the directory.
#ifndef FLEET_COMMON_FS_H_
#define FLEET_COMMON_FS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleet {

// Reads the whole file. NotFound when it does not exist.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Replaces `path` with `content` atomically: after a crash the file holds
// either the old or the new content, never a mix. Fsyncs file and directory.
absl::Status WriteFileAtomic(const std::string& path, const std::string& content,
                             int mode = 0644);

// Writes all of `data` to `fd` (named `path` in messages), retrying short
// writes and EINTR. ResourceExhausted when the disk is full (ENOSPC,
// EDQUOT), so callers can tell that from other failures.
absl::Status WriteFully(int fd, absl::string_view data, const std::string& path);

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

// OK when the filesystem holding `dir` has `bytes` plus a margin
// (kFreeSpaceMargin and 5% of `bytes`, for metadata and whatever else
// writes there meanwhile) free for an unprivileged writer, and `inodes`
// free inodes where the filesystem counts them; otherwise ResourceExhausted
// with one line such as "needs 1.2 GiB in /opt/apps, 300.0 MiB free" (the
// need includes the margin). `dir` must exist.
inline constexpr uint64_t kFreeSpaceMargin = 8ull << 20;
absl::Status CheckFreeSpace(const std::string& dir, uint64_t bytes, uint64_t inodes = 0);

// "512 B", "3.4 KiB", "1.2 GiB": a byte count for people.
std::string FormatBytes(uint64_t bytes);

// Makes `root` private to its owner: creates it 0700 when missing (parents
// as MakeDirs makes them) and takes the group and other bits off it and off
// every directory and regular file below it (symlinks are neither followed
// nor changed). Returns how many entries it changed, so the caller can say
// so once in its log; 0 for a tree that was private already.
absl::StatusOr<int> MakePrivateTree(const std::string& root);

// Whether `name` is safe as one path component for an app or release id:
// [A-Za-z0-9._-]+, not starting with '.', at most 128 characters.
bool IsSafeName(const std::string& name);

}  // namespace fleet

#endif  // FLEET_COMMON_FS_H_
