// End-to-end rollouts over 20 hosts (one simulator process running 20
// agents): waves, the failure threshold, gates, abort, rollback taking
// over, and a controller killed in the middle of a wave.
#include <algorithm>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"

namespace fleet {
namespace {

using ::testing::HasSubstr;
using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;

constexpr int kHosts = 20;

ClusterOptions TwentyHosts() {
  ClusterOptions options;
  options.simulated = kHosts;
  return options;
}

class E2ERolloutTest : public ::testing::Test {
 protected:
  E2ERolloutTest() : cluster_(TwentyHosts()) {}

  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(kHosts)) << cluster_.ControllerLog();
    // Each reload appends the release to <app dir>/reloads, so a test can
    // count how often a host was switched; a host is unhealthy while
    // <app dir>/broken exists.
    std::string spec = absl::StrCat(R"(name: tiny
keep_releases: 3
reload: "echo ${FLEET_RELEASE} >> ${FLEET_APP_DIR}/reloads"
health:
  - exec: "test -f ${FLEET_RELEASE_DIR}/healthy && test ! -e ${FLEET_APP_DIR}/broken"
    timeout: 2s
    retries: 0
    interval: 200ms
)");
    std::string path = cluster_.dir() + "/tiny.yaml";
    testing::WriteTextFile(path, spec);
    CommandOutput out = cluster_.Fleetctl({"app", "apply", "-f", path});
    ASSERT_EQ(out.exit_code, 0) << out.err;
    Push("v1", true);
    out = cluster_.Fleetctl({"rollout", "tiny", "v1", "--waves", "100%", "--wait"});
    ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  }

  void Push(const std::string& version, bool healthy) {
    std::string artifact = cluster_.MakeExecArtifact(version, healthy);
    CommandOutput out = cluster_.Fleetctl({"release", "push", "tiny", version, artifact});
    ASSERT_EQ(out.exit_code, 0) << out.err;
  }

  std::string AppDir(int i) const { return cluster_.AppsRoot(i) + "/tiny"; }
  void Break(int i) { testing::WriteTextFile(AppDir(i) + "/broken", ""); }

  // How many times host i was switched to `version`.
  int Switches(int i, const std::string& version) const {
    int n = 0;
    for (absl::string_view line :
         absl::StrSplit(testing::ReadTextFile(AppDir(i) + "/reloads"), '\n')) {
      n += line == version;
    }
    return n;
  }

  int CountOn(const std::string& version) const {
    int n = 0;
    for (int i = 0; i < kHosts; ++i) n += cluster_.Current(i, "tiny") == version;
    return n;
  }

  // The tasks of the rollout in `task_state` (e.g. "failed", as JSON names it).
  int Tasks(const std::string& id, const std::string& task_state) {
    CommandOutput out = cluster_.Fleetctl({"--output", "json", "rollout", "status", id});
    nlohmann::json doc = nlohmann::json::parse(out.out, nullptr, false);
    int n = 0;
    if (!doc.is_object() || !doc.contains("tasks")) return n;
    for (const nlohmann::json& t : doc["tasks"]) n += t.value("state", "") == task_state;
    return n;
  }

  bool WaitForState(const std::string& id, const std::string& state) {
    return testing::WaitFor(
        [&] {
          CommandOutput out = cluster_.Fleetctl({"rollout", "status", id});
          return absl::StrContains(out.out, absl::StrCat("  ", state));
        },
        absl::Seconds(30));
  }

  Cluster cluster_;
};

TEST_F(E2ERolloutTest, ReleaseFailingEverywhere_StopsAtTheCanary) {
  Push("v2", false);
  CommandOutput out = cluster_.Fleetctl({"rollout", "tiny", "v2", "--waves", "1,100%", "--wait"});
  EXPECT_EQ(out.exit_code, 2) << out.out << out.err;
  std::string id = Cluster::RolloutId(out.out);
  EXPECT_EQ(Tasks(id, "failed"), 1);
  EXPECT_EQ(Tasks(id, "cancelled"), kHosts - 1);
  int ever_switched = 0;
  for (int i = 0; i < kHosts; ++i) ever_switched += Switches(i, "v2");
  EXPECT_EQ(ever_switched, 1);
  EXPECT_EQ(CountOn("v1"), kHosts);
}

TEST_F(E2ERolloutTest, MaxFailuresTenPercent_ToleratesTwoFailingHosts) {
  Push("v2", true);
  Break(4);
  Break(9);
  CommandOutput out = cluster_.Fleetctl(
      {"rollout", "tiny", "v2", "--waves", "1,100%", "--max-failures", "10%", "--wait"});
  EXPECT_EQ(out.exit_code, 0) << out.out << out.err;
  EXPECT_EQ(cluster_.Current(4, "tiny"), "v1");
  EXPECT_EQ(cluster_.Current(9, "tiny"), "v1");
  EXPECT_EQ(CountOn("v2"), kHosts - 2);
  std::string id = Cluster::RolloutId(out.out);
  EXPECT_EQ(Tasks(id, "failed"), 2);
  CommandOutput status = cluster_.Fleetctl({"rollout", "status", id});
  EXPECT_THAT(status.out, HasSubstr("2 hosts failed within the threshold of 2"));
}

TEST_F(E2ERolloutTest, MaxFailuresTenPercent_FailsAtThreeAndRollsEveryHostBack) {
  Push("v2", true);
  Break(4);
  Break(9);
  Break(14);
  CommandOutput out = cluster_.Fleetctl(
      {"rollout", "tiny", "v2", "--waves", "1,100%", "--max-failures", "10%", "--wait"});
  EXPECT_EQ(out.exit_code, 2) << out.out << out.err;
  EXPECT_EQ(CountOn("v1"), kHosts);
  std::string id = Cluster::RolloutId(out.out);
  EXPECT_EQ(Tasks(id, "healthy"), 0);
  EXPECT_EQ(Tasks(id, "reverting"), 0);
}

TEST_F(E2ERolloutTest, EveryHostFailingWithinThreshold_IsNotASuccess) {
  Push("v2", false);
  CommandOutput out = cluster_.Fleetctl(
      {"rollout", "tiny", "v2", "--waves", "100%", "--max-failures", "100%", "--wait"});
  EXPECT_EQ(out.exit_code, 2) << out.out << out.err;
  EXPECT_THAT(out.err, HasSubstr("no host became healthy"));
  EXPECT_EQ(CountOn("v1"), kHosts);
}

TEST_F(E2ERolloutTest, ManualPromote_PausesAfterEachWaveUntilPromoted) {
  Push("v2", true);
  CommandOutput started = cluster_.Fleetctl(
      {"rollout", "tiny", "v2", "--waves", "1,50%,100%", "--manual-promote"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = Cluster::RolloutId(started.out);
  ASSERT_TRUE(WaitForState(id, "paused"));
  EXPECT_EQ(CountOn("v2"), 1);
  CommandOutput resume = cluster_.Fleetctl({"rollout", "resume", id});
  EXPECT_EQ(resume.exit_code, 1);
  EXPECT_THAT(resume.err, HasSubstr("waits for promote"));

  ASSERT_EQ(cluster_.Fleetctl({"rollout", "promote", id}).exit_code, 0);
  ASSERT_TRUE(testing::WaitFor([&] { return CountOn("v2") == kHosts / 2; }, absl::Seconds(30)));
  ASSERT_TRUE(WaitForState(id, "paused"));
  EXPECT_EQ(CountOn("v2"), kHosts / 2);

  ASSERT_EQ(cluster_.Fleetctl({"rollout", "promote", id}).exit_code, 0);
  CommandOutput watched = cluster_.Fleetctl({"rollout", "watch", id});
  EXPECT_EQ(watched.exit_code, 0) << watched.out;
  EXPECT_EQ(CountOn("v2"), kHosts);

  CommandOutput history = cluster_.Fleetctl({"--output", "json", "history", "tiny"});
  EXPECT_THAT(history.out, HasSubstr("\"kind\": \"rollout.promoted\""));
  EXPECT_THAT(history.out, HasSubstr("\"actor\": \"tester@ci\""));
}

TEST_F(E2ERolloutTest, Abort_RollsBackWhatTheRolloutSwitched) {
  Push("v2", true);
  CommandOutput started = cluster_.Fleetctl(
      {"rollout", "tiny", "v2", "--waves", "25%,100%", "--manual-promote"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = Cluster::RolloutId(started.out);
  ASSERT_TRUE(WaitForState(id, "paused"));
  EXPECT_EQ(CountOn("v2"), 5);

  ASSERT_EQ(cluster_.Fleetctl({"rollout", "abort", id}).exit_code, 0);
  CommandOutput watched = cluster_.Fleetctl({"rollout", "watch", id});
  EXPECT_EQ(watched.exit_code, 2) << watched.out;
  EXPECT_THAT(watched.out, HasSubstr("aborted by tester@ci"));
  EXPECT_EQ(CountOn("v1"), kHosts);
  EXPECT_EQ(Tasks(id, "reverted"), 5);
}

TEST_F(E2ERolloutTest, RollbackDuringRollout_AbortsItAndTakesOver) {
  Push("v2", true);
  CommandOutput started = cluster_.Fleetctl(
      {"rollout", "tiny", "v2", "--waves", "50%,100%", "--manual-promote"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = Cluster::RolloutId(started.out);
  ASSERT_TRUE(WaitForState(id, "paused"));

  // No --to: the rollback returns to where the running rollout started.
  CommandOutput rollback = cluster_.Fleetctl({"rollback", "tiny", "--wait"});
  EXPECT_EQ(rollback.exit_code, 0) << rollback.out << rollback.err;
  EXPECT_EQ(CountOn("v1"), kHosts);
  CommandOutput old = cluster_.Fleetctl({"rollout", "status", id});
  EXPECT_THAT(old.out, HasSubstr("rolled_back"));
  EXPECT_THAT(old.out, HasSubstr("takes over"));
  // The lock is free again.
  EXPECT_EQ(cluster_.Fleetctl({"rollout", "tiny", "v2", "--waves", "100%", "--wait"}).exit_code, 0);
}

TEST_F(E2ERolloutTest, PauseAndResume_HoldTheNextWaveUntilResumed) {
  Push("v2", true);
  CommandOutput started = cluster_.Fleetctl(
      {"rollout", "tiny", "v2", "--waves", "1,100%", "--bake", "2s"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = Cluster::RolloutId(started.out);
  ASSERT_TRUE(testing::WaitFor([&] { return CountOn("v2") == 1; }, absl::Seconds(20)));
  // The canary bakes for 2s: pause before the second wave starts.
  CommandOutput paused = cluster_.Fleetctl({"rollout", "pause", id});
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_THAT(paused.out, HasSubstr("paused"));
  absl::SleepFor(absl::Seconds(4));
  EXPECT_EQ(CountOn("v2"), 1);
  EXPECT_EQ(cluster_.Fleetctl({"rollout", "pause", id}).exit_code, 1);

  ASSERT_EQ(cluster_.Fleetctl({"rollout", "resume", id}).exit_code, 0);
  CommandOutput watched = cluster_.Fleetctl({"--output", "json", "rollout", "watch", id});
  EXPECT_EQ(watched.exit_code, 0) << watched.out;
  EXPECT_THAT(watched.out, HasSubstr("\"state\": \"succeeded\""));
  EXPECT_EQ(CountOn("v2"), kHosts);
}

TEST_F(E2ERolloutTest, MaxParallel_CapsSimultaneousSwitches) {
  Push("v2", true);
  CommandOutput started = cluster_.Fleetctl(
      {"rollout", "tiny", "v2", "--waves", "100%", "--max-parallel", "3", "--bake", "1s"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = Cluster::RolloutId(started.out);
  int most = 0;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        most = std::max(most, Tasks(id, "activating"));
        return Tasks(id, "healthy") == kHosts;
      },
      absl::Seconds(60)));
  EXPECT_LE(most, 3);
  EXPECT_GE(most, 1);
}

TEST_F(E2ERolloutTest, DryRun_PrintsThePlanAndChangesNothing) {
  Push("v2", true);
  CommandOutput out =
      cluster_.Fleetctl({"rollout", "tiny", "v2", "--waves", "1,10%,50%,100%", "--dry-run"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_THAT(out.out, HasSubstr("wave 1 (1, 1 hosts in all): web-0001\n"));
  EXPECT_THAT(out.out, HasSubstr("wave 2 (10%, 2 hosts in all): web-0002\n"));
  EXPECT_THAT(out.out, HasSubstr("wave 3 (50%, 10 hosts in all): web-0003 "));
  EXPECT_THAT(out.out, HasSubstr("wave 4 (100%, 20 hosts in all): web-0011 "));
  CommandOutput list = cluster_.Fleetctl({"rollout", "list", "tiny"});
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 2) << list.out;  // header + v1
  EXPECT_EQ(CountOn("v1"), kHosts);
}

TEST_F(E2ERolloutTest, ControllerKilledMidWave_FinishesWithEveryHostSwitchedOnce) {
  Push("v2", true);
  CommandOutput started = cluster_.Fleetctl(
      {"rollout", "tiny", "v2", "--waves", "1,50%,100%", "--bake", "2s"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = Cluster::RolloutId(started.out);
  // Kill it while the second wave bakes.
  ASSERT_TRUE(testing::WaitFor([&] { return CountOn("v2") > 1; }, absl::Seconds(30)));
  cluster_.KillController();
  cluster_.StartController();

  CommandOutput watched = cluster_.Fleetctl({"rollout", "watch", id}, absl::Seconds(120));
  EXPECT_EQ(watched.exit_code, 0) << watched.out << watched.err;
  EXPECT_EQ(CountOn("v2"), kHosts);
  for (int i = 0; i < kHosts; ++i) EXPECT_EQ(Switches(i, "v2"), 1) << cluster_.HostId(i);
  CommandOutput list = cluster_.Fleetctl({"rollout", "list", "tiny"});
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 3) << list.out;
}

}  // namespace
}  // namespace fleet
