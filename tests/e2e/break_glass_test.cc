// End-to-end: break-glass rollback on a host (issue 16 item 6).
// `fleet-agent rollback` works with the controller down (through the
// running agent's control socket, or under the agent's lock when no agent
// runs); the controller records it on reconnect, holds the host (also
// across its own restart) and leaves it alone until `fleetctl host
// release` or the next rollout. Two real agent processes.
#include <pwd.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/archive_builder.h"
#include "tests/testing/cluster.h"

namespace fleet {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::ArchiveBuilder;
using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;

ClusterOptions TwoHosts() {
  ClusterOptions options;
  options.agents = 2;
  options.controller_args = {"--reconcile-interval", "1s"};
  return options;
}

std::string UserName() {
  const passwd* pw = getpwuid(geteuid());
  return pw != nullptr ? pw->pw_name : absl::StrCat("uid ", geteuid());
}

class E2EBreakGlassTest : public ::testing::Test {
 protected:
  E2EBreakGlassTest() : cluster_(TwoHosts()) {}

  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(2)) << cluster_.ControllerLog();
    const std::string path = cluster_.dir() + "/svc.yaml";
    testing::WriteTextFile(path, R"(name: svc
keep_releases: 3
reload: "echo ${FLEET_RELEASE} >> ${FLEET_APP_DIR}/reloads"
health:
  - exec: "test -f VERSION"
    timeout: 2s
    retries: 0
    interval: 200ms
)");
    CommandOutput out = cluster_.Fleetctl({"app", "apply", "-f", path});
    ASSERT_EQ(out.exit_code, 0) << out.err;
    for (const char* v : {"v1", "v2"}) RollOut(v);
  }

  void RollOut(const std::string& version) {
    ArchiveBuilder archive;
    archive.AddFile("VERSION", version + "\n");
    const std::string artifact = cluster_.dir() + "/" + version + ".tar.gz";
    ASSERT_TRUE(archive.WriteTarGz(artifact).ok());
    CommandOutput out = cluster_.Fleetctl({"release", "push", "svc", version, artifact});
    ASSERT_EQ(out.exit_code, 0) << out.err;
    out = cluster_.Fleetctl({"rollout", "svc", version, "--waves", "100%", "--wait"});
    ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  }

  CommandOutput BreakGlass(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {Cluster::Binary("fleet-agent"), "rollback"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--state-dir", cluster_.StateDir(0)});
    return testing::RunCommand(argv, absl::Seconds(60));
  }

  std::string Status() { return cluster_.Fleetctl({"status", "svc"}).out; }

  std::vector<nlohmann::json> LocalRollbacks() {
    return cluster_.HistoryEvents("svc", "host.local_rollback");
  }

  void RestartController() {
    cluster_.KillController();
    cluster_.StartController();
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(2)) << cluster_.ControllerLog();
  }

  Cluster cluster_;
};

TEST_F(E2EBreakGlassTest, ControllerDown_AgentRollsBack_HeldAcrossRestarts_ReleaseConverges) {
  cluster_.KillController();

  CommandOutput out = BreakGlass({"svc", "--reason", "v2 leaks memory"});

  ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  EXPECT_THAT(out.out, HasSubstr("svc on host web-01 rolled back from v2 to v1; reload and "
                                 "probes passed"));
  EXPECT_EQ(cluster_.Current(0, "svc"), "v1");
  EXPECT_EQ(cluster_.Current(1, "svc"), "v2");
  EXPECT_EQ(testing::FileMode(cluster_.StateDir(0) + "/agent.sock"), 0600u);
  EXPECT_EQ(testing::FileMode(cluster_.StateDir(0)), 0700u);
  // The running agent did it: its log says so.
  EXPECT_THAT(cluster_.AgentLog(0), HasSubstr("break-glass rollback of svc from v2 to v1"));

  cluster_.StartController();
  ASSERT_TRUE(cluster_.WaitForConnectedHosts(2)) << cluster_.ControllerLog();
  ASSERT_TRUE(testing::WaitFor([&] { return !LocalRollbacks().empty(); }, absl::Seconds(30)))
      << cluster_.ControllerLog();
  nlohmann::json event = LocalRollbacks()[0];
  EXPECT_EQ(event.value("host_id", ""), "web-01");
  EXPECT_EQ(event.value("actor", ""), UserName() + "@web-01");
  EXPECT_THAT(event.value("message", ""),
              HasSubstr("rolled back on the host from v2 to v1 (v2 leaks memory); held"));
  EXPECT_THAT(Status(), HasSubstr("fleetctl host release web-01 svc ends the hold"));
  EXPECT_THAT(cluster_.Fleetctl({"hosts"}).out, HasSubstr("svc@v1 (held)"));
  // Several periodic checks: the controller does not undo it.
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(cluster_.Current(0, "svc"), "v1");

  RestartController();
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(cluster_.Current(0, "svc"), "v1");
  EXPECT_THAT(Status(), HasSubstr("held: web-01 was rolled back on the host to v1"));
  EXPECT_EQ(LocalRollbacks().size(), 1u);  // reported in every hello, recorded once

  out = cluster_.Fleetctl({"host", "release", "web-01", "svc"});

  ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  EXPECT_TRUE(testing::WaitFor([&] { return cluster_.Current(0, "svc") == "v2"; },
                               absl::Seconds(30)))
      << cluster_.ControllerLog();
  EXPECT_THAT(Status(), Not(HasSubstr("held:")));
  EXPECT_EQ(cluster_.HistoryEvents("svc", "host.hold_released").size(), 1u);
  out = cluster_.Fleetctl({"host", "release", "web-01", "svc"});
  EXPECT_NE(out.exit_code, 0);
  EXPECT_THAT(out.err, HasSubstr("app svc is not held on host web-01"));
}

TEST_F(E2EBreakGlassTest, AgentAndControllerDown_TakesTheLock_NextRolloutEndsTheHold) {
  cluster_.KillAgent(0);
  cluster_.KillController();

  CommandOutput refused = BreakGlass({"svc", "--to", "v9"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("nothing changed: release v9 of svc is not on disk"));
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  EXPECT_EQ(cluster_.Current(0, "svc"), "v2");

  CommandOutput out = BreakGlass({"svc"});

  ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  EXPECT_THAT(out.out, HasSubstr("rolled back from v2 to v1"));
  EXPECT_THAT(out.out, HasSubstr("the controller hears of it when the agent next connects"));
  EXPECT_EQ(cluster_.Current(0, "svc"), "v1");

  cluster_.StartController();
  cluster_.StartAgent(0);
  ASSERT_TRUE(cluster_.WaitForConnectedHosts(2)) << cluster_.ControllerLog();
  ASSERT_TRUE(testing::WaitFor([&] { return !LocalRollbacks().empty(); }, absl::Seconds(30)));
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ(cluster_.Current(0, "svc"), "v1");

  RollOut("v3");

  EXPECT_EQ(cluster_.Current(0, "svc"), "v3");
  EXPECT_EQ(cluster_.Current(1, "svc"), "v3");
  std::vector<nlohmann::json> released = cluster_.HistoryEvents("svc", "host.hold_released");
  ASSERT_EQ(released.size(), 1u);
  EXPECT_THAT(released[0].value("message", ""), HasSubstr("hold ended: rollout"));
  EXPECT_THAT(Status(), Not(HasSubstr("held:")));
}

}  // namespace
}  // namespace fleet
