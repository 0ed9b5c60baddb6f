// Running shell commands (reload, hooks, exec probes) behind a small
// interface so tests can steer it.
#ifndef FLEET_COMMON_PROCESS_H_
#define FLEET_COMMON_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fleet {

// The user a command runs as instead of the caller's: an app spec's
// `user:`. Switching needs root (CAP_SETUID/CAP_SETGID).
struct RunAs {
  std::string user;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, from /etc/group
  std::string home;
};

// Looks `user` up in the passwd and group databases. NotFound when this
// host has no such user.
absl::StatusOr<RunAs> LookupUser(const std::string& user);

struct ProcessSpec {
  std::string command;                       // run as /bin/sh -c command
  std::string cwd;                           // working directory; "" = inherit
  std::map<std::string, std::string> env;    // added to a minimal base (PATH, HOME)
  absl::Duration timeout = absl::Seconds(60);
  // Run with these credentials (and HOME, USER, LOGNAME from them); unset =
  // the caller's. The working directory is entered before the switch, so
  // it need not be reachable by that user through its parents.
  std::optional<RunAs> run_as;
};

struct ProcessResult {
  int exit_code = -1;      // valid when !signaled && !timed_out
  int signal = 0;          // the signal that ended it, if any
  bool timed_out = false;  // killed (whole process group) at the timeout
  // stdout+stderr: all of it up to 64 KiB; beyond, the first 4 KiB and the
  // last 60 KiB with a line between them that says how much was left out.
  std::string output;
  absl::Duration elapsed;

  bool ok() const { return !timed_out && signal == 0 && exit_code == 0; }
  // One line for a failure reason: "exited with status 3: <last line>",
  // "exited with status 1: <first line that reads like an error> (last
  // line: <last line>)" or "timed out after 10s".
  std::string Describe() const;
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  // Runs the command to completion or timeout. Returns an error only when
  // the process could not be started at all (including when it cannot take
  // on spec.run_as); a failing command is an OK
  // StatusOr with !result.ok(). Thread-safe. The command runs in its own
  // process group; on timeout the whole group gets SIGKILL. Output goes to a
  // temporary file, not a pipe, so a command that leaves a daemon behind
  // (a reload that starts the service) does not hang the caller.
  virtual absl::StatusOr<ProcessResult> Run(const ProcessSpec& spec) = 0;
};

// The real runner: fork + exec /bin/sh.
ProcessRunner* DefaultProcessRunner();

}  // namespace fleet

#endif  // FLEET_COMMON_PROCESS_H_
