// Hermetic test helpers: temp dirs, free loopback ports and child processes
// that are always cleaned up.
#ifndef FLEET_TESTS_TESTING_TEST_ENV_H_
#define FLEET_TESTS_TESTING_TEST_ENV_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace fleet::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its content when
// the object is destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0).
int FreePort();

// Writes `content` to `path`, creating parents. Aborts the test on failure.
void WriteTextFile(const std::string& path, const std::string& content, int mode = 0644);
std::string ReadTextFile(const std::string& path);

// The permission bits (07777) and the owner of `path`, itself when it is a
// link. A path that cannot be read fails the test and gives 0.
mode_t FileMode(const std::string& path);
uid_t FileOwner(const std::string& path);

// A child process with its own process group; killed (SIGKILL to the group)
// when destroyed unless it already exited.
class Subprocess {
 public:
  // Starts argv[0] with argv; stdout and stderr go to `log_path` ("" = inherit).
  Subprocess(const std::vector<std::string>& argv, const std::string& log_path,
             const std::map<std::string, std::string>& env = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // SIGKILL to the process group, then reap.
  void Kill();
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status.
  int Stop(absl::Duration grace = absl::Seconds(5));
  // Waits for exit up to `timeout`; returns the exit code or -1 on timeout.
  int Wait(absl::Duration timeout);

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

struct CommandOutput {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a command to completion (with a timeout) and captures its output.
CommandOutput RunCommand(const std::vector<std::string>& argv,
                         absl::Duration timeout = absl::Seconds(120),
                         const std::map<std::string, std::string>& env = {});

// A "NAME:  N kB" field of /proc/<pid>/status (VmRSS, VmHWM, ...) in KiB;
// -1 when the process or field is not there.
long ProcStatusKiB(pid_t pid, const std::string& field);

// The user + system CPU seconds process `pid` used so far (its threads
// included, its children not), from /proc/<pid>/stat; -1 when the process
// is not there.
double ProcCpuSeconds(pid_t pid);

// Polls `pred` every 20 ms until it returns true or `timeout` passes.
template <typename Pred>
bool WaitFor(Pred pred, absl::Duration timeout);

}  // namespace fleet::testing

#include "absl/time/clock.h"

namespace fleet::testing {
template <typename Pred>
bool WaitFor(Pred pred, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return pred();
}
}  // namespace fleet::testing

#endif  // FLEET_TESTS_TESTING_TEST_ENV_H_
