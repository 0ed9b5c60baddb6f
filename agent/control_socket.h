// The running agent's local control socket, <state-dir>/agent.sock, through
// which `fleet-agent rollback` asks it to roll an app back, so that the one
// process that changes the host does it (never two writers). A Unix stream
// socket, mode 0600 in the 0700 state dir: only the agent's user (root) can
// connect. One request per connection, answered in order, one at a time:
// a 4-byte big-endian length, then the serialized LocalRollbackRequest;
// the reply framed the same way. The actor recorded is the peer's user
// (SO_PEERCRED), "user@host", whatever the request says.
#ifndef FLEET_AGENT_CONTROL_SOCKET_H_
#define FLEET_AGENT_CONTROL_SOCKET_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "fleet/v1/agent_state.pb.h"

namespace fleet::agent {

class ControlSocket {
 public:
  using Handler = std::function<fleet::v1::LocalRollbackReply(
      const fleet::v1::LocalRollbackRequest& request, const std::string& actor)>;

  // Listens on `path` and serves `handler` on a thread of its own. A socket
  // file left at `path` by an agent that died is replaced: the caller holds
  // the agent lock, so no other agent listens there. InvalidArgument when
  // the path is too long for a Unix socket; Internal when it cannot listen.
  static absl::StatusOr<std::unique_ptr<ControlSocket>> Listen(const std::string& path,
                                                               const std::string& host_id,
                                                               Handler handler);
  // Stops serving (a request being handled finishes first) and removes the
  // socket file.
  ~ControlSocket();

 private:
  ControlSocket(int fd, std::string path, std::string host_id, Handler handler);
  void Serve();
  void ServeOne(int client);

  int fd_;
  const std::string path_;
  const std::string host_id_;
  Handler handler_;
  std::thread thread_;
};

// Sends `request` to the agent listening on `path` and waits for its reply.
// NotFound when there is no socket file, Unavailable when no agent listens
// on it (it stopped), Internal when the exchange fails half way.
absl::StatusOr<fleet::v1::LocalRollbackReply> AskAgent(
    const std::string& path, const fleet::v1::LocalRollbackRequest& request);

// "user@host" for the local user `uid`.
std::string LocalActor(uid_t uid, const std::string& host_id);

}  // namespace fleet::agent

#endif  // FLEET_AGENT_CONTROL_SOCKET_H_
