#include "tests/testing/test_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

extern char** environ;

namespace fleet::testing {

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = absl::StrCat(base && *base ? base : "/tmp", "/fleet-test-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed: " << std::strerror(errno);
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    ADD_FAILURE() << "bind failed";
    return 0;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

void WriteTextFile(const std::string& path, const std::string& content, int mode) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    ASSERT_TRUE(out.good()) << "cannot write " << path;
  }
  chmod(path.c_str(), mode);
}

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

namespace {

struct stat LStatOrFail(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st;
}

}  // namespace

mode_t FileMode(const std::string& path) { return LStatOrFail(path).st_mode & 07777; }

uid_t FileOwner(const std::string& path) { return LStatOrFail(path).st_uid; }

namespace {

pid_t Spawn(const std::vector<std::string>& argv, int out_fd, int err_fd,
            const std::map<std::string, std::string>& env) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    std::string key = entry.substr(0, entry.find('='));
    if (env.count(key) == 0) env_strings.push_back(entry);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (auto& s : args) argp.push_back(s.data());
  argp.push_back(nullptr);

  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    if (out_fd >= 0) dup2(out_fd, 1);
    if (err_fd >= 0) dup2(err_fd, 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    // PATH is searched for a bare name ("age", "sh").
    execvpe(argp[0], argp.data(), envp.data());
    _exit(127);
  }
  if (pid > 0) setpgid(pid, pid);
  return pid;
}

}  // namespace

Subprocess::Subprocess(const std::vector<std::string>& argv, const std::string& log_path,
                       const std::map<std::string, std::string>& env) {
  int fd = -1;
  if (!log_path.empty()) {
    fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
  pid_ = Spawn(argv, fd, fd, env);
  if (fd >= 0) close(fd);
}

Subprocess::~Subprocess() { Kill(); }

bool Subprocess::running() {
  if (pid_ <= 0 || reaped_) return false;
  pid_t r = waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    kill(-pid_, SIGKILL);  // leftovers in its group
    return false;
  }
  return true;
}

void Subprocess::Kill() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGKILL);
  if (!reaped_) {
    waitpid(pid_, &status_, 0);
    reaped_ = true;
  }
}

int Subprocess::Stop(absl::Duration grace) {
  if (pid_ <= 0) return -1;
  if (!reaped_) {
    kill(pid_, SIGTERM);
    if (Wait(grace) == -1 && !reaped_) Kill();
  }
  kill(-pid_, SIGKILL);
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

int Subprocess::Wait(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!reaped_) {
    pid_t r = waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      break;
    }
    if (absl::Now() > deadline) return -1;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

long ProcStatusKiB(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  const std::string prefix = field + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    long kib = -1;
    std::istringstream(line.substr(prefix.size())) >> kib;
    return kib;
  }
  return -1;
}

double ProcCpuSeconds(pid_t pid) {
  const std::string stat = ReadTextFile(absl::StrCat("/proc/", pid, "/stat"));
  // The command name in parentheses may hold spaces; fields follow the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) return -1;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  double utime = 0, stime = 0;  // fields 14 and 15 of proc(5), in clock ticks
  if (fields.size() < 13 || !absl::SimpleAtod(fields[11], &utime) ||
      !absl::SimpleAtod(fields[12], &stime)) {
    return -1;
  }
  return (utime + stime) / sysconf(_SC_CLK_TCK);
}

CommandOutput RunCommand(const std::vector<std::string>& argv, absl::Duration timeout,
                         const std::map<std::string, std::string>& env) {
  CommandOutput result;
  char out_tmpl[] = "/tmp/fleet-cmd-out-XXXXXX";
  char err_tmpl[] = "/tmp/fleet-cmd-err-XXXXXX";
  int out_fd = mkstemp(out_tmpl);
  int err_fd = mkstemp(err_tmpl);
  pid_t pid = Spawn(argv, out_fd, err_fd, env);
  absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  bool done = false;
  while (absl::Now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      done = true;
      break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  if (!done) {
    kill(-pid, SIGKILL);
    waitpid(pid, &status, 0);
    result.exit_code = -1;
  } else {
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  close(out_fd);
  close(err_fd);
  result.out = ReadTextFile(out_tmpl);
  result.err = ReadTextFile(err_tmpl);
  unlink(out_tmpl);
  unlink(err_tmpl);
  return result;
}

}  // namespace fleet::testing
