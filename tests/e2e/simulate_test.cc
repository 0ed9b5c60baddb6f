// End-to-end: twenty hosts simulated by one `fleet-agent --simulate` process
// deploy a release, then fail the next one and all stay on the first, each
// in its own apps root and state dir.
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"

namespace fleet {
namespace {

using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;

constexpr int kHosts = 20;

ClusterOptions SimulatedCluster() {
  ClusterOptions options;
  options.simulated = kHosts;
  return options;
}

class E2ESimulateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(kHosts))
        << cluster_.ControllerLog() << cluster_.AgentLog(0);
  }

  void Push(const std::string& version, bool healthy) {
    std::string artifact = cluster_.MakeExecArtifact(version, healthy);
    CommandOutput out = cluster_.Fleetctl({"release", "push", "tiny", version, artifact});
    ASSERT_EQ(out.exit_code, 0) << out.err;
  }

  void ExpectFleetOn(const std::string& version) {
    for (int i = 0; i < cluster_.agents(); ++i) {
      EXPECT_EQ(cluster_.Current(i, "tiny"), version) << cluster_.HostId(i);
    }
  }

  Cluster cluster_{SimulatedCluster()};
};

TEST_F(E2ESimulateTest, TwentySimulatedHosts_DeployAndSwitchBackEachInItsOwnDirs) {
  ASSERT_EQ(cluster_.agents(), kHosts);
  EXPECT_EQ(cluster_.HostId(0), "web-0001");
  EXPECT_EQ(cluster_.HostId(kHosts - 1), "web-0020");
  CommandOutput hosts = cluster_.Fleetctl({"hosts"});
  ASSERT_EQ(hosts.exit_code, 0) << hosts.err;
  EXPECT_THAT(hosts.out, ::testing::HasSubstr("web-0020"));

  cluster_.ApplyExecSpec("tiny", "0s");
  Push("v1", /*healthy=*/true);
  CommandOutput deployed = cluster_.Fleetctl({"rollout", "tiny", "v1", "--wait"});
  ASSERT_EQ(deployed.exit_code, 0) << deployed.out << deployed.err;
  ExpectFleetOn("v1");

  // Every host recorded the app in its own state dir, and only there.
  std::set<std::string> state_dirs;
  for (int i = 0; i < cluster_.agents(); ++i) {
    state_dirs.insert(cluster_.StateDir(i));
    EXPECT_TRUE(std::filesystem::is_regular_file(cluster_.StateDir(i) + "/apps/tiny.json"))
        << cluster_.HostId(i);
    EXPECT_TRUE(std::filesystem::is_directory(cluster_.AppsRoot(i) + "/tiny/releases/v1"))
        << cluster_.HostId(i);
  }
  EXPECT_EQ(state_dirs.size(), static_cast<size_t>(kHosts));
  EXPECT_FALSE(std::filesystem::exists(cluster_.dir() + "/sim/state/apps"));
  EXPECT_FALSE(std::filesystem::exists(cluster_.dir() + "/sim/apps/tiny"));

  // One wave of all hosts, so every host switches to v2 and back on its own.
  Push("v2", /*healthy=*/false);
  CommandOutput failed = cluster_.Fleetctl({"rollout", "tiny", "v2", "--waves", "100%", "--wait"});
  EXPECT_EQ(failed.exit_code, 2) << failed.out << failed.err;
  EXPECT_THAT(failed.err, ::testing::ContainsRegex("exec 'test -f [^']*/sim/apps/web-00[0-9][0-9]/"
                                                   "tiny/releases/v2/healthy' exited"));
  ExpectFleetOn("v1");
  CommandOutput json = cluster_.Fleetctl({"--output", "json", "history", "tiny"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  // Each host probed the release in its own apps root.
  for (int i = 0; i < cluster_.agents(); ++i) {
    EXPECT_THAT(json.out, ::testing::HasSubstr(absl::StrCat("/sim/apps/", cluster_.HostId(i),
                                                            "/tiny/releases/v2/healthy' exited")))
        << cluster_.HostId(i);
  }
  EXPECT_TRUE(cluster_.AgentRunning(0)) << cluster_.AgentLog(0);
}

}  // namespace
}  // namespace fleet
