#include "common/process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace fleet {
namespace {

constexpr char kShell[] = "/bin/sh";
constexpr char kBasePath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr size_t kOutputKeep = 64 * 1024;
constexpr size_t kOutputHead = 4 * 1024;
constexpr size_t kDescribeLineMax = 200;

// Without a pidfd: the first poll interval is short so that quick commands
// (most hooks and exec probes) return within a millisecond or two; it grows
// to bound the cost of long-running ones.
constexpr auto kFirstPoll = std::chrono::milliseconds(1);
constexpr auto kMaxPoll = std::chrono::milliseconds(10);
// With one: a day at most per poll() (its timeout is an int of ms).
constexpr int kMaxPollWaitMs = 24 * 3600 * 1000;

// What the child reports through the exec-error pipe when it fails before
// exec; the pipe is close-on-exec, so a successful exec reports nothing.
struct ChildFailure {
  enum Step { kExec, kChdir, kCredentials } step;  // kExec covers dup2 too
  int error;                                       // errno
};

// Closes a descriptor when it goes out of scope.
class ScopedFd {
 public:
  explicit ScopedFd(int fd = -1) : fd_(fd) {}
  ~ScopedFd() { Reset(); }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

absl::Status ErrnoError(int error, absl::string_view what, const std::string& command) {
  return absl::ErrnoToStatus(error, absl::StrCat("cannot run '", command, "': ", what));
}

// An anonymous file for the command's output. A file rather than a pipe:
// a daemon started by the command inherits the descriptor, and with a pipe
// we would wait for EOF until that daemon exits.
int OpenOutputFile() {
  const char* tmpdir = getenv("TMPDIR");
  std::string dir = (tmpdir != nullptr && *tmpdir != '\0') ? tmpdir : "/tmp";
  int fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  // Some filesystems (and old kernels) lack O_TMPFILE.
  std::string tmpl = dir + "/fleet-output-XXXXXX";
  fd = mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd >= 0) unlink(tmpl.c_str());
  return fd;
}

std::vector<std::string> BuildEnvironment(const std::map<std::string, std::string>& extra,
                                          const std::optional<RunAs>& run_as) {
  std::map<std::string, std::string> env;
  env["PATH"] = kBasePath;
  const char* home = getenv("HOME");
  env["HOME"] = (home != nullptr && *home != '\0') ? home : "/";
  if (run_as) {
    env["HOME"] = run_as->home.empty() ? "/" : run_as->home;
    env["USER"] = run_as->user;
    env["LOGNAME"] = run_as->user;
  }
  env["LANG"] = "C.UTF-8";
  for (const auto& [key, value] : extra) env[key] = value;
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [key, value] : env) out.push_back(absl::StrCat(key, "=", value));
  return out;
}

// Closes descriptors [first, last]; `last` < 0 means all above `first`,
// which the fallback loop bounds by `max_fd`. Only async-signal-safe calls.
void CloseRange(int first, int last, int max_fd) {
  if (last >= 0 && first > last) return;
#ifdef SYS_close_range
  unsigned upper = last < 0 ? ~0U : static_cast<unsigned>(last);
  if (syscall(SYS_close_range, static_cast<unsigned>(first), upper, 0) == 0) return;
#endif
  int end = last < 0 ? max_fd - 1 : last;
  for (int fd = first; fd <= end; ++fd) close(fd);
}

// Moves `fd` above 0-2 so that the child's dup2 onto stdio cannot clobber
// it (possible when the agent itself was started with stdio closed).
int AboveStdio(int fd) {
  if (fd < 0 || fd > STDERR_FILENO) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  int saved = errno;
  close(fd);
  errno = saved;
  return moved;
}

// Takes on `run_as` in the calling task only. Raw system calls, not the
// libc wrappers: those also change every other thread of the process (the
// setxid broadcast), and in a vforked child "the process" is the agent.
int SwitchCredentials(const RunAs& run_as) {
  if (syscall(SYS_setgroups, run_as.groups.size(), run_as.groups.data()) != 0) return errno;
  if (syscall(SYS_setresgid, run_as.gid, run_as.gid, run_as.gid) != 0) return errno;
  if (syscall(SYS_setresuid, run_as.uid, run_as.uid, run_as.uid) != 0) return errno;
  return 0;
}

// Runs in the vforked child: only async-signal-safe calls until execve.
[[noreturn]] void ExecChild(int output_fd, int null_fd, int report_fd, const char* cwd,
                            const RunAs* run_as, char* const argv[], char* const envp[],
                            int max_fd) {
  setpgid(0, 0);
  ChildFailure failure{};
  if (cwd != nullptr && chdir(cwd) != 0) {
    failure = {ChildFailure::kChdir, errno};
  } else if (int error = run_as != nullptr ? SwitchCredentials(*run_as) : 0; error != 0) {
    failure = {ChildFailure::kCredentials, error};
  }
  if (failure.error != 0) {
    ssize_t ignored = write(report_fd, &failure, sizeof(failure));
    (void)ignored;
    _exit(127);
  }
  // The command dies with the agent: after a kill -9 the restarted agent
  // runs its recovery, and an orphaned reload racing it would start a second
  // instance of the service. What the command itself starts in the
  // background is not affected (the setting is not inherited across fork).
  // Set after the credentials change, which clears it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // Ignored signals and the blocked mask survive exec; the command must
  // start with defaults whatever the agent does with SIGPIPE and friends.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(output_fd, STDOUT_FILENO) < 0 ||
      dup2(output_fd, STDERR_FILENO) < 0) {
    failure = {ChildFailure::kExec, errno};
  } else {
    // Keep only 0-2 and the report pipe (close-on-exec) across exec.
    // Descriptors other threads opened without O_CLOEXEC must not leak
    // into services the command starts.
    CloseRange(STDERR_FILENO + 1, report_fd - 1, max_fd);
    CloseRange(report_fd + 1, -1, max_fd);
    execve(kShell, argv, envp);
    failure = {ChildFailure::kExec, errno};
  }
  ssize_t ignored = write(report_fd, &failure, sizeof(failure));
  (void)ignored;
  _exit(127);
}

struct ChildArgs {
  int output_fd;
  int null_fd;
  int report_fd;
  const char* cwd;
  const RunAs* run_as;  // nullptr = keep the caller's credentials
  char* const* argv;
  char* const* envp;
  int max_fd;
};

// vfork returns twice, like setjmp: keeping it in a function of its own
// leaves no caller variable live across it.
__attribute__((noinline)) pid_t SpawnChild(const ChildArgs* args) {
  pid_t pid = vfork();
  if (pid == 0) {
    ExecChild(args->output_fd, args->null_fd, args->report_fd, args->cwd, args->run_as,
              args->argv, args->envp, args->max_fd);
  }
  return pid;
}

// What is kept of a command's output: all of it up to kOutputKeep bytes;
// beyond, the first kOutputHead bytes (where a failing program usually
// says why) and the last kOutputKeep - kOutputHead, with a line between
// them that says how much was left out.
std::string ReadKept(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0) return "";
  const size_t size = static_cast<size_t>(st.st_size);
  auto read_at = [fd](size_t offset, size_t want) {
    std::string out(want, '\0');
    ssize_t n = pread(fd, out.data(), want, static_cast<off_t>(offset));
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
  };
  if (size <= kOutputKeep) return read_at(0, size);
  const size_t tail = kOutputKeep - kOutputHead;
  return absl::StrCat(read_at(0, kOutputHead), "\n[... ", size - kOutputKeep,
                      " bytes of output not kept ...]\n", read_at(size - tail, tail));
}

using SteadyTime = std::chrono::steady_clock::time_point;

struct Waited {
  enum Outcome { kExited, kDeadline, kFailed } outcome;
  int error = 0;  // errno of waitpid, with kFailed
};

// Waits until `pid` exits (its wait status in *status) or `deadline`
// passes. A pidfd wakes the thread at the exit itself, so a quick command
// costs no polling delay; without one (kernels before 5.3) waitpid is
// polled at growing intervals.
Waited WaitForExit(pid_t pid, SteadyTime deadline, int* status) {
#ifdef SYS_pidfd_open
  ScopedFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
#else
  ScopedFd pidfd;
#endif
  auto interval = std::chrono::steady_clock::duration(kFirstPoll);
  for (;;) {
    pid_t done = waitpid(pid, status, WNOHANG);
    if (done == pid) return {Waited::kExited};
    if (done < 0 && errno != EINTR) return {Waited::kFailed, errno};
    const SteadyTime now = std::chrono::steady_clock::now();
    if (now >= deadline) return {Waited::kDeadline};
    const auto left = deadline - now;
    if (pidfd.get() >= 0) {
      struct pollfd readable = {pidfd.get(), POLLIN, 0};
      // Rounded up, so that the deadline has passed when poll times out.
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
      poll(&readable, 1, ms > kMaxPollWaitMs ? kMaxPollWaitMs : static_cast<int>(ms));
    } else {
      usleep(static_cast<useconds_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(std::min(interval, left))
              .count()));
      interval = std::min<std::chrono::steady_clock::duration>(interval * 2, kMaxPoll);
    }
  }
}

class PosixProcessRunner : public ProcessRunner {
 public:
  absl::StatusOr<ProcessResult> Run(const ProcessSpec& spec) override;
};

absl::StatusOr<ProcessResult> PosixProcessRunner::Run(const ProcessSpec& spec) {
  if (spec.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot run '", spec.command, "': timeout ",
                                                   absl::FormatDuration(spec.timeout),
                                                   " is not positive"));
  }

  // Everything the child needs is built here: between fork and exec the
  // child may not allocate (another thread may hold the malloc lock).
  std::string shell = kShell;
  std::string dash_c = "-c";
  std::string command = spec.command;
  char* argv[] = {shell.data(), dash_c.data(), command.data(), nullptr};
  std::vector<std::string> env = BuildEnvironment(spec.env, spec.run_as);
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (std::string& entry : env) envp.push_back(entry.data());
  envp.push_back(nullptr);
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  struct rlimit limit;
  int max_fd = 65536;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    max_fd = static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 1 << 20));
  }

  ScopedFd output(AboveStdio(OpenOutputFile()));
  if (output.get() < 0) return ErrnoError(errno, "cannot create output file", spec.command);
  ScopedFd null_fd(AboveStdio(open("/dev/null", O_RDONLY | O_CLOEXEC)));
  if (null_fd.get() < 0) return ErrnoError(errno, "cannot open /dev/null", spec.command);
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return ErrnoError(errno, "cannot create pipe", spec.command);
  ScopedFd report_read(report[0]);
  ScopedFd report_write(AboveStdio(report[1]));
  if (report_write.get() < 0) return ErrnoError(errno, "cannot create pipe", spec.command);

  const auto start = std::chrono::steady_clock::now();
  // vfork, not fork: the child borrows our address space until execve
  // instead of copying page tables, which matters when one process runs
  // many hosts' commands (fleet-agent --simulate) or has a large heap. The
  // child only makes async-signal-safe calls on prepared data and never
  // returns (ExecChild ends in execve or _exit); it resets signal handlers
  // in its own table (vfork does not share CLONE_SIGHAND).
  const ChildArgs child{output.get(), null_fd.get(), report_write.get(),
                        cwd,          spec.run_as ? &*spec.run_as : nullptr,
                        argv,         envp.data(),   max_fd};
  pid_t pid = SpawnChild(&child);
  if (pid < 0) return ErrnoError(errno, "vfork failed", spec.command);
  // Also set the group from this side: a timeout may kill the group before
  // the child got to its own setpgid. EACCES after exec is harmless.
  setpgid(pid, pid);
  report_write.Reset();

  ChildFailure failure{};
  ssize_t got;
  do {
    got = read(report_read.get(), &failure, sizeof(failure));
  } while (got < 0 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof(failure))) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    std::string what;
    switch (failure.step) {
      case ChildFailure::kChdir:
        what = absl::StrCat("chdir to ", spec.cwd);
        break;
      case ChildFailure::kCredentials:
        what = absl::StrCat("cannot switch to user '", spec.run_as->user, "'");
        break;
      case ChildFailure::kExec:
        what = absl::StrCat("exec ", kShell);
        break;
    }
    return ErrnoError(failure.error, what, spec.command);
  }

  ProcessResult result;
  // Beyond a year (InfiniteDuration included) the deadline would overflow
  // the clock; treat such timeouts as none.
  const bool bounded = spec.timeout < absl::Hours(24 * 365);
  const auto deadline = bounded ? start + absl::ToChronoNanoseconds(spec.timeout)
                                : std::chrono::steady_clock::time_point::max();
  int status = 0;
  const Waited waited = WaitForExit(pid, deadline, &status);
  if (waited.outcome == Waited::kFailed) {
    // Only ECHILD is possible here: someone else reaped our child (a
    // SIGCHLD handler set to SIG_IGN). Its status is lost.
    return ErrnoError(waited.error, "waitpid failed", spec.command);
  }
  if (waited.outcome == Waited::kDeadline) {
    kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.timed_out = true;
  }

  if (result.timed_out) {
    // The limit, not the measured moment of the kill (a few ms later), so
    // that reasons read "timed out after 10s" as configured.
    result.elapsed = spec.timeout;
  } else {
    result.elapsed = absl::FromChrono(std::chrono::steady_clock::now() - start);
    if (WIFEXITED(status)) {
      result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      result.signal = WTERMSIG(status);
    }
  }
  result.output = ReadKept(output.get());
  return result;
}

// `line` on one line of at most kDescribeLineMax bytes (cut on a UTF-8
// character boundary), control characters as spaces.
std::string OneLine(absl::string_view line) {
  std::string out(line);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  if (out.size() > kDescribeLineMax) {
    size_t cut = kDescribeLineMax;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
    out += "...";
  }
  return out;
}

// Whether a line of output reads like the cause of a failure.
bool LooksLikeCause(absl::string_view line) {
  static constexpr absl::string_view kWords[] = {
      "error",   "fatal",  "fail",      "panic",   "exception", "cannot",  "can't",
      "unable",  "denied", "refused",   "invalid", "not found", "no such", "could not",
      "traceback"};
  const std::string lower = absl::AsciiStrToLower(line);
  for (absl::string_view word : kWords) {
    if (absl::StrContains(lower, word)) return true;
  }
  return false;
}

// What Describe() says of the output: its last line with any text, after
// the first line that reads like the cause when that is another line.
std::string OutputSummary(const std::string& output) {
  std::vector<absl::string_view> lines;
  for (absl::string_view line : absl::StrSplit(output, absl::ByAnyChar("\r\n"))) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) lines.push_back(line);
  }
  if (lines.empty()) return "";
  const std::string last = OneLine(lines.back());
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    if (LooksLikeCause(lines[i])) return absl::StrCat(OneLine(lines[i]), " (last line: ", last, ")");
  }
  return last;
}

}  // namespace

std::string ProcessResult::Describe() const {
  std::string head;
  if (timed_out) {
    head = absl::StrCat("timed out after ", absl::FormatDuration(elapsed));
  } else if (signal != 0) {
    head = absl::StrCat("killed by signal ", signal);
  } else {
    head = absl::StrCat("exited with status ", exit_code);
  }
  std::string line = OutputSummary(output);
  if (line.empty()) return head;
  return absl::StrCat(head, ": ", line);
}

absl::StatusOr<RunAs> LookupUser(const std::string& user) {
  long size_hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size_hint > 0 ? static_cast<size_t>(size_hint) : 16384);
  struct passwd pwd;
  struct passwd* found = nullptr;
  int rc;
  while ((rc = getpwnam_r(user.c_str(), &pwd, buf.data(), buf.size(), &found)) == ERANGE &&
         buf.size() < (1 << 20)) {
    buf.resize(buf.size() * 2);
  }
  if (rc != 0) return absl::ErrnoToStatus(rc, absl::StrCat("cannot look up user '", user, "'"));
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrCat("user '", user, "' does not exist on this host"));
  }
  RunAs run_as;
  run_as.user = user;
  run_as.uid = pwd.pw_uid;
  run_as.gid = pwd.pw_gid;
  run_as.home = pwd.pw_dir != nullptr ? pwd.pw_dir : "";
  int count = 32;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  while (getgrouplist(user.c_str(), pwd.pw_gid, groups.data(), &count) < 0) {
    if (count <= static_cast<int>(groups.size())) count = static_cast<int>(groups.size()) * 2;
    if (count > 65536) return absl::InternalError(absl::StrCat("user '", user, "' has too many groups"));
    groups.resize(static_cast<size_t>(count));
  }
  groups.resize(static_cast<size_t>(count));
  run_as.groups = std::move(groups);
  return run_as;
}

ProcessRunner* DefaultProcessRunner() {
  static PosixProcessRunner* runner = new PosixProcessRunner();
  return runner;
}

}  // namespace fleet
