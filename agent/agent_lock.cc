#include "agent/agent_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace fleet::agent {
namespace {

// The pid the holder wrote into the file, for the message; "" if none.
std::string HolderPid(int fd) {
  char buf[32] = {};
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "";
  std::string text(buf, static_cast<size_t>(n));
  int pid = 0;
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid) ? std::to_string(pid) : "";
}

}  // namespace

absl::StatusOr<AgentLock> AgentLock::Acquire(const std::string& path, absl::Duration wait) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  const absl::Time deadline = absl::Now() + wait;
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      std::string error = std::strerror(errno);
      close(fd);
      return absl::InternalError(absl::StrCat("cannot lock ", path, ": ", error));
    }
    if (absl::Now() >= deadline) {
      std::string pid = HolderPid(fd);
      close(fd);
      return absl::UnavailableError(absl::StrCat(
          path, " is held by ", pid.empty() ? "another process" : "process " + pid));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  // Who holds it, for the message of the next one who waits.
  std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // Only the message suffers.
  }
  return AgentLock(fd);
}

AgentLock& AgentLock::operator=(AgentLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

AgentLock::~AgentLock() {
  if (fd_ >= 0) close(fd_);  // closing the last descriptor drops the flock
}

}  // namespace fleet::agent
