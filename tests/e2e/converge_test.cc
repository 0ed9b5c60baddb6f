// End-to-end: the fleet never stays split (issue 16 item 5). Retention keeps
// the fleet's rollback target on every host, so the sequence of failed
// rollouts that pruned it ("Why" 5) no longer breaks `fleetctl rollback`,
// and a connected host left on another release is brought back without a
// reconnect. Three simulated hosts; the controller checks every second.
#include <filesystem>
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

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ArchiveBuilder;
using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;

constexpr int kHosts = 3;

ClusterOptions ThreeHosts() {
  ClusterOptions options;
  options.simulated = kHosts;
  options.controller_args = {"--reconcile-interval", "1s"};
  return options;
}

class E2EConvergeTest : public ::testing::Test {
 protected:
  E2EConvergeTest() : cluster_(ThreeHosts()) {}

  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(kHosts)) << cluster_.ControllerLog();
    // A release holding bad-<host> fails its probe on that host only; a host
    // is also unhealthy while <app dir>/broken exists.
    const std::string path = cluster_.dir() + "/prune.yaml";
    testing::WriteTextFile(path, R"(name: prune
keep_releases: 3
reload: "echo ${FLEET_RELEASE} >> ${FLEET_APP_DIR}/reloads"
health:
  - exec: "test ! -e bad-$FLEET_HOST && test ! -e ${FLEET_APP_DIR}/broken"
    timeout: 2s
    retries: 0
    interval: 200ms
)");
    CommandOutput out = cluster_.Fleetctl({"app", "apply", "-f", path});
    ASSERT_EQ(out.exit_code, 0) << out.err;
  }

  // Pushes `version`; it fails its probe on host `bad_host` (-1: nowhere).
  void Push(const std::string& version, int bad_host = -1) {
    ArchiveBuilder archive;
    archive.AddFile("VERSION", version + "\n");
    if (bad_host >= 0) archive.AddFile("bad-" + cluster_.HostId(bad_host), "");
    const std::string artifact = cluster_.dir() + "/" + version + ".tar.gz";
    ASSERT_TRUE(archive.WriteTarGz(artifact).ok());
    CommandOutput out = cluster_.Fleetctl({"release", "push", "prune", version, artifact});
    ASSERT_EQ(out.exit_code, 0) << out.err;
  }

  int RollOut(const std::string& version) {
    CommandOutput out =
        cluster_.Fleetctl({"rollout", "prune", version, "--waves", "1,100%", "--wait"});
    return out.exit_code;
  }

  std::vector<std::string> OnDisk(int i) const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e :
         std::filesystem::directory_iterator(cluster_.AppsRoot(i) + "/prune/releases", ec)) {
      out.push_back(e.path().filename().string());
    }
    return out;
  }

  bool AllOn(const std::string& version) const {
    for (int i = 0; i < kHosts; ++i) {
      if (cluster_.Current(i, "prune") != version) return false;
    }
    return true;
  }

  Cluster cluster_;
};

TEST_F(E2EConvergeTest, PrunedRollbackTarget_RollbackSucceedsAndTheFleetStaysOnIt) {
  const int bad = kHosts - 1;  // last host: the canary and wave 2's first host pass
  for (const char* v : {"v1", "v2", "v3"}) {
    Push(v);
    ASSERT_EQ(RollOut(v), 0) << v << "\n" << cluster_.ControllerLog();
  }
  for (const char* v : {"v4", "v5"}) {
    Push(v, bad);
    ASSERT_NE(RollOut(v), 0) << v;
  }
  ASSERT_TRUE(AllOn("v3"));
  // Retention ran on the hosts that activated v4 and v5 (v1 is gone there)
  // but kept v2, the fleet's rollback target.
  for (int i = 0; i < bad; ++i) {
    EXPECT_THAT(OnDisk(i), Contains("v2")) << cluster_.HostId(i);
    EXPECT_THAT(OnDisk(i), Not(Contains("v1"))) << cluster_.HostId(i);
  }

  CommandOutput out = cluster_.Fleetctl({"rollback", "prune", "--wait"});

  EXPECT_EQ(out.exit_code, 0) << out.out << out.err;
  EXPECT_TRUE(AllOn("v2"));
  CommandOutput status = cluster_.Fleetctl({"status", "prune"});
  EXPECT_THAT(status.out, HasSubstr("fleet release v2"));
  // Converged and staying so: several periodic checks later nothing moved.
  absl::SleepFor(absl::Seconds(4));
  EXPECT_TRUE(AllOn("v2"));
  EXPECT_TRUE(cluster_.HistoryEvents("prune", "host.reconcile").empty());
  EXPECT_TRUE(cluster_.HistoryEvents("prune", "host.catch_up").empty());
}

TEST_F(E2EConvergeTest, ConnectedHostLeftBehind_IsBroughtToTheFleetReleaseWithAnEvent) {
  Push("v1");
  ASSERT_EQ(RollOut("v1"), 0);
  Push("v2");
  const int left = 1;
  testing::WriteTextFile(cluster_.AppsRoot(left) + "/prune/broken", "");
  // One failure is within the threshold: the rollout succeeds, host 1 stays
  // on v1 while the fleet runs v2.
  CommandOutput out = cluster_.Fleetctl(
      {"rollout", "prune", "v2", "--waves", "100%", "--max-failures", "1", "--wait"});
  ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  ASSERT_EQ(cluster_.Current(left, "prune"), "v1");

  std::filesystem::remove(cluster_.AppsRoot(left) + "/prune/broken");

  // No reconnect: the periodic check notices and brings it over (a first
  // catch-up that ran before the file was gone is retried 2s later, then 4s).
  EXPECT_TRUE(testing::WaitFor([&] { return AllOn("v2"); }, absl::Seconds(60)))
      << cluster_.ControllerLog();
  std::vector<nlohmann::json> events = cluster_.HistoryEvents("prune", "host.reconcile");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().value("host_id", ""), cluster_.HostId(left));
  EXPECT_THAT(events.back().value("message", ""),
              HasSubstr("switching from v1 to v2 (found by the periodic check while connected"));
  EXPECT_TRUE(testing::WaitFor(
      [&] { return !cluster_.HistoryEvents("prune", "host.reconciled").empty(); },
      absl::Seconds(10)));
}

}  // namespace
}  // namespace fleet
