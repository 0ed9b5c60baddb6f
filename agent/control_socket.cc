#include "agent/control_socket.h"

#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace fleet::agent {
namespace {

constexpr uint32_t kMaxMessageBytes = 64 * 1024;

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::StatusOr<sockaddr_un> Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "control socket path ", path, " is longer than ", sizeof(addr.sun_path) - 1,
        " bytes; use a shorter --state-dir"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool ReadAll(int fd, char* data, size_t size) {
  while (size > 0) {
    ssize_t n = recv(fd, data, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool SendMessage(int fd, const google::protobuf::Message& message) {
  std::string body = message.SerializeAsString();
  const uint32_t n = static_cast<uint32_t>(body.size());
  const char header[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                          static_cast<char>(n >> 8), static_cast<char>(n)};
  return WriteAll(fd, header, 4) && WriteAll(fd, body.data(), body.size());
}

bool ReceiveMessage(int fd, google::protobuf::Message* message) {
  unsigned char header[4];
  if (!ReadAll(fd, reinterpret_cast<char*>(header), 4)) return false;
  const uint32_t n = (uint32_t{header[0]} << 24) | (uint32_t{header[1]} << 16) |
                     (uint32_t{header[2]} << 8) | uint32_t{header[3]};
  if (n > kMaxMessageBytes) return false;
  std::string body(n, '\0');
  return ReadAll(fd, body.data(), n) && message->ParseFromString(body);
}

}  // namespace

std::string LocalActor(uid_t uid, const std::string& host_id) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  const std::string user = getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found
                               ? std::string(found->pw_name)
                               : absl::StrCat("uid ", uid);
  return absl::StrCat(user, "@", host_id);
}

absl::StatusOr<std::unique_ptr<ControlSocket>> ControlSocket::Listen(const std::string& path,
                                                                     const std::string& host_id,
                                                                     Handler handler) {
  absl::StatusOr<sockaddr_un> addr = Address(path);
  if (!addr.ok()) return addr.status();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("cannot make the control socket");
  unlink(path.c_str());  // left by an agent that died; we hold the lock
  // Created 0600 (umask), then made so explicitly.
  const mode_t old_mask = umask(0177);
  int bound = bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr));
  umask(old_mask);
  if (bound != 0 || chmod(path.c_str(), 0600) != 0 || listen(fd, 4) != 0) {
    absl::Status st = Errno(absl::StrCat("cannot listen on ", path));
    close(fd);
    return st;
  }
  return std::unique_ptr<ControlSocket>(
      new ControlSocket(fd, path, host_id, std::move(handler)));
}

ControlSocket::ControlSocket(int fd, std::string path, std::string host_id, Handler handler)
    : fd_(fd), path_(std::move(path)), host_id_(std::move(host_id)), handler_(std::move(handler)) {
  thread_ = std::thread([this] { Serve(); });
}

ControlSocket::~ControlSocket() {
  shutdown(fd_, SHUT_RDWR);  // wakes accept()
  if (thread_.joinable()) thread_.join();
  close(fd_);
  unlink(path_.c_str());
}

void ControlSocket::Serve() {
  while (true) {
    int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down
    }
    ServeOne(client);
    close(client);
  }
}

void ControlSocket::ServeOne(int client) {
  // A client that connects and says nothing does not block the next one.
  timeval timeout{10, 0};
  setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ucred peer{};
  socklen_t len = sizeof(peer);
  if (getsockopt(client, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) return;
  fleet::v1::LocalRollbackRequest request;
  if (!ReceiveMessage(client, &request)) {
    spdlog::warn("control socket: unreadable request from uid {}", peer.uid);
    return;
  }
  fleet::v1::LocalRollbackReply reply = handler_(request, LocalActor(peer.uid, host_id_));
  if (!SendMessage(client, reply)) {
    spdlog::warn("control socket: the client left before the reply: {}", reply.message());
  }
}

absl::StatusOr<fleet::v1::LocalRollbackReply> AskAgent(
    const std::string& path, const fleet::v1::LocalRollbackRequest& request) {
  absl::StatusOr<sockaddr_un> addr = Address(path);
  if (!addr.ok()) return addr.status();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("cannot make a socket");
  if (connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    const int error = errno;
    close(fd);
    if (error == ENOENT) return absl::NotFoundError(absl::StrCat("no agent socket ", path));
    if (error == ECONNREFUSED) {
      return absl::UnavailableError(absl::StrCat("no agent listens on ", path));
    }
    return absl::InternalError(
        absl::StrCat("cannot connect to ", path, ": ", std::strerror(error)));
  }
  fleet::v1::LocalRollbackReply reply;
  const bool ok = SendMessage(fd, request) && ReceiveMessage(fd, &reply);
  close(fd);
  if (!ok) {
    return absl::InternalError(absl::StrCat(
        "the agent on ", path, " closed the connection before it answered; see its log"));
  }
  return reply;
}

}  // namespace fleet::agent
