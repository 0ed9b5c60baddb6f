// The agent's local control socket and its one-writer lock.
#include "agent/control_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

#include "agent/agent_lock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::agent {
namespace {

using ::fleet::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ControlSocketTest, AskAgent_ReachesTheHandlerWithThePeersUserAsActor) {
  fleet::testing::TempDir dir;
  const std::string path = dir.Sub("agent.sock");
  std::string seen_actor, seen_app;
  absl::StatusOr<std::unique_ptr<ControlSocket>> socket = ControlSocket::Listen(
      path, "h1",
      [&](const fleet::v1::LocalRollbackRequest& req, const std::string& actor) {
        seen_actor = actor;
        seen_app = req.app();
        fleet::v1::LocalRollbackReply reply;
        reply.set_ok(true);
        reply.set_message("done");
        return reply;
      });
  ASSERT_OK(socket.status());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  fleet::v1::LocalRollbackRequest req;
  req.set_app("web");
  req.set_actor("someone-else@h1");  // not trusted: the socket says who
  absl::StatusOr<fleet::v1::LocalRollbackReply> reply = AskAgent(path, req);

  ASSERT_OK(reply.status());
  EXPECT_TRUE(reply->ok());
  EXPECT_EQ(reply->message(), "done");
  EXPECT_EQ(seen_app, "web");
  EXPECT_EQ(seen_actor, LocalActor(geteuid(), "h1"));
}

TEST(ControlSocketTest, AskAgent_WithoutSocketIsNotFoundAndAfterStopToo) {
  fleet::testing::TempDir dir;
  const std::string path = dir.Sub("agent.sock");
  EXPECT_THAT(AskAgent(path, {}).status(), StatusIs(absl::StatusCode::kNotFound));
  {
    auto socket = ControlSocket::Listen(path, "h1", [](const auto&, const auto&) {
      return fleet::v1::LocalRollbackReply();
    });
    ASSERT_OK(socket.status());
  }
  EXPECT_THAT(AskAgent(path, {}).status(), StatusIs(absl::StatusCode::kNotFound));
}

TEST(ControlSocketTest, AskAgent_OnTheSocketOfAnAgentThatDiedIsUnavailable) {
  fleet::testing::TempDir dir;
  const std::string path = dir.Sub("agent.sock");
  // What kill -9 leaves: the socket file, with nobody listening.
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);

  EXPECT_THAT(AskAgent(path, {}).status(), StatusIs(absl::StatusCode::kUnavailable));
  // A new agent replaces it.
  auto socket = ControlSocket::Listen(path, "h1", [](const auto&, const auto&) {
    fleet::v1::LocalRollbackReply reply;
    reply.set_message("new agent");
    return reply;
  });
  ASSERT_OK(socket.status());
  absl::StatusOr<fleet::v1::LocalRollbackReply> reply = AskAgent(path, {});
  ASSERT_OK(reply.status());
  EXPECT_EQ(reply->message(), "new agent");
}

TEST(ControlSocketTest, Listen_RefusesAPathTooLongForAUnixSocket) {
  const std::string path = "/tmp/" + std::string(120, 'x') + "/agent.sock";
  EXPECT_THAT(ControlSocket::Listen(path, "h1", nullptr).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("use a shorter --state-dir")));
}

TEST(AgentLockTest, Acquire_SecondHolderIsRefusedNamingTheFirstUntilItLets) {
  fleet::testing::TempDir dir;
  const std::string path = dir.Sub("agent.lock");
  {
    absl::StatusOr<AgentLock> first = AgentLock::Acquire(path, absl::ZeroDuration());
    ASSERT_OK(first.status());

    absl::StatusOr<AgentLock> second = AgentLock::Acquire(path, absl::Milliseconds(300));
    EXPECT_THAT(second.status(),
                StatusIs(absl::StatusCode::kUnavailable,
                         HasSubstr(absl::StrCat("is held by process ", getpid()))));
  }
  EXPECT_OK(AgentLock::Acquire(path, absl::ZeroDuration()).status());
}

}  // namespace
}  // namespace fleet::agent
