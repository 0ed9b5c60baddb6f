// End-to-end: an agent cut off during a rollout (SIGSTOP: it neither reads
// nor answers, like a network partition, without needing a network
// namespace). The host times out, the rollout follows its failure
// threshold, and once the host is back it converges to the fleet's
// release, switching to it once. Three real agent processes.
#include <signal.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/archive_builder.h"
#include "tests/testing/cluster.h"

namespace fleet {
namespace {

using testing::ArchiveBuilder;
using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;

ClusterOptions ThreeAgents() {
  ClusterOptions options;
  options.agents = 3;
  options.host_timeout = "4s";
  options.controller_args = {"--reconcile-interval", "1s"};
  return options;
}

class E2EPartitionTest : public ::testing::Test {
 protected:
  E2EPartitionTest() : cluster_(ThreeAgents()) {}

  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(3)) << cluster_.ControllerLog();
    const std::string path = cluster_.dir() + "/svc.yaml";
    testing::WriteTextFile(path, R"(name: svc
keep_releases: 3
reload: "echo ${FLEET_RELEASE} >> ${FLEET_APP_DIR}/reloads"
health:
  - exec: "test -f VERSION"
    timeout: 2s
    retries: 0
    interval: 200ms
bake: 1s
)");
    CommandOutput out = cluster_.Fleetctl({"app", "apply", "-f", path});
    ASSERT_EQ(out.exit_code, 0) << out.err;
    Push("v1");
    out = cluster_.Fleetctl({"rollout", "svc", "v1", "--waves", "100%", "--wait"});
    ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  }

  void TearDown() override {
    if (stopped_ > 0) kill(stopped_, SIGCONT);  // the cluster must be able to stop it
  }

  void Push(const std::string& version) {
    ArchiveBuilder archive;
    archive.AddFile("VERSION", version + "\n");
    const std::string artifact = cluster_.dir() + "/" + version + ".tar.gz";
    ASSERT_TRUE(archive.WriteTarGz(artifact).ok());
    CommandOutput out = cluster_.Fleetctl({"release", "push", "svc", version, artifact});
    ASSERT_EQ(out.exit_code, 0) << out.err;
  }

  // How many times host i was switched to `version` (its reloads).
  int Switches(int i, const std::string& version) const {
    int n = 0;
    const std::string reloads =
        testing::ReadTextFile(cluster_.AppsRoot(i) + "/svc/reloads");
    for (absl::string_view line : absl::StrSplit(reloads, '\n')) n += line == version;
    return n;
  }

  Cluster cluster_;
  pid_t stopped_ = -1;
};

TEST_F(E2EPartitionTest, AgentCutOffDuringARollout_TimesOutThenConvergesSwitchingOnce) {
  Push("v2");
  stopped_ = cluster_.AgentPid(2);
  ASSERT_EQ(kill(stopped_, SIGSTOP), 0);

  // One failure is within the threshold: the two others go on.
  CommandOutput out = cluster_.Fleetctl(
      {"rollout", "svc", "v2", "--waves", "100%", "--max-failures", "1", "--wait"});

  EXPECT_EQ(out.exit_code, 0) << out.out << out.err;
  const std::string id = Cluster::RolloutId(out.out);
  CommandOutput status = cluster_.Fleetctl({"rollout", "status", id});
  // Silent on an open stream, or dropped by keepalive: either way it timed out.
  EXPECT_THAT(status.out,
              ::testing::ContainsRegex("no answer from host for|host disconnected for more than"))
      << status.out;
  EXPECT_EQ(cluster_.Current(0, "svc"), "v2");
  EXPECT_EQ(cluster_.Current(1, "svc"), "v2");
  EXPECT_EQ(cluster_.Current(2, "svc"), "v1");

  ASSERT_EQ(kill(stopped_, SIGCONT), 0);
  stopped_ = -1;

  EXPECT_TRUE(testing::WaitFor([&] { return cluster_.Current(2, "svc") == "v2"; },
                               absl::Seconds(60)))
      << cluster_.ControllerLog() << cluster_.AgentLog(2);
  absl::SleepFor(absl::Seconds(3));  // a few more checks: nothing moves again
  EXPECT_EQ(cluster_.Current(2, "svc"), "v2");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Switches(i, "v2"), 1) << cluster_.HostId(i);
}

}  // namespace
}  // namespace fleet
