// The one-writer rule of a host: the agent and `fleet-agent rollback` both
// change releases/, `current` and the state dir, so each holds an exclusive
// flock(2) on <state-dir>/agent.lock while it does. The kernel drops the
// lock when its holder exits, kill -9 included: a crash never leaves the
// host locked.
#ifndef FLEET_AGENT_AGENT_LOCK_H_
#define FLEET_AGENT_AGENT_LOCK_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fleet::agent {

class AgentLock {
 public:
  // Takes the lock of `path` (made 0600 if missing), waiting up to `wait`
  // for the process that holds it (0: not at all). Unavailable "PATH is
  // held by process N" when it stays held; Internal when the file cannot
  // be opened or locked.
  static absl::StatusOr<AgentLock> Acquire(const std::string& path, absl::Duration wait);

  AgentLock(AgentLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  AgentLock& operator=(AgentLock&& other) noexcept;
  AgentLock(const AgentLock&) = delete;
  ~AgentLock();  // releases the lock

 private:
  explicit AgentLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace fleet::agent

#endif  // FLEET_AGENT_AGENT_LOCK_H_
