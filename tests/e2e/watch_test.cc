// End-to-end: `--wait` follows a rollout over WatchRollout through a
// controller killed and started again, and `--output jsonl` prints each
// update as it happens. Five simulated hosts.
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"

namespace fleet {
namespace {

using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kHosts = 5;

ClusterOptions FiveHosts() {
  ClusterOptions options;
  options.simulated = kHosts;
  return options;
}

class E2EWatchTest : public ::testing::Test {
 protected:
  E2EWatchTest() : cluster_(FiveHosts()) {}

  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(kHosts)) << cluster_.ControllerLog();
    // While SlowSwitches() is on, every reload marks that it began and
    // takes 5 seconds, so a switch is under way long enough to kill the
    // controller in the middle of it.
    const std::string spec = absl::StrCat(R"(name: tiny
keep_releases: 3
reload: "if test -e )",
                                          SlowFlag(), "; then touch ", ReloadStarted(),
                                          R"(; sleep 5; fi"
health:
  - exec: "test -f ${FLEET_RELEASE_DIR}/healthy"
    timeout: 2s
    retries: 0
    interval: 200ms
)");
    const std::string path = cluster_.dir() + "/tiny.yaml";
    testing::WriteTextFile(path, spec);
    CommandOutput out = cluster_.Fleetctl({"app", "apply", "-f", path});
    ASSERT_EQ(out.exit_code, 0) << out.err;
    for (const char* version : {"v1", "v2"}) {
      out = cluster_.Fleetctl(
          {"release", "push", "tiny", version, cluster_.MakeExecArtifact(version, true)});
      ASSERT_EQ(out.exit_code, 0) << out.err;
      out = cluster_.Fleetctl({"rollout", "tiny", version, "--waves", "100%", "--wait"});
      ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
    }
  }

  std::string SlowFlag() const { return cluster_.dir() + "/slow"; }
  std::string ReloadStarted() const { return cluster_.dir() + "/reload-started"; }
  void SlowSwitches() { testing::WriteTextFile(SlowFlag(), ""); }

  int CountOn(const std::string& version) const {
    int n = 0;
    for (int i = 0; i < kHosts; ++i) n += cluster_.Current(i, "tiny") == version;
    return n;
  }

  Cluster cluster_;
};

TEST_F(E2EWatchTest, RollbackWait_SurvivesControllerKilledAndRestartedAndReportsSuccess) {
  SlowSwitches();
  std::future<CommandOutput> rollback = std::async(std::launch::async, [this] {
    return cluster_.Fleetctl({"rollback", "tiny", "--wait"}, absl::Seconds(180));
  });
  ASSERT_TRUE(
      testing::WaitFor([&] { return std::filesystem::exists(ReloadStarted()); }, absl::Seconds(30)))
      << cluster_.ControllerLog();
  // fleetctl has its answer to Rollback by now and watches.
  absl::SleepFor(absl::Seconds(1));
  cluster_.KillController();
  absl::SleepFor(absl::Seconds(1));
  cluster_.StartController();

  CommandOutput out = rollback.get();
  EXPECT_EQ(out.exit_code, 0) << out.out << out.err;
  const std::string id = Cluster::RolloutId(out.out);
  EXPECT_THAT(out.out, HasSubstr(absl::StrCat("rollback ", id, " succeeded")));
  EXPECT_THAT(out.err, HasSubstr("controller unavailable; reconnecting..."));
  EXPECT_THAT(out.err, Not(HasSubstr("CANCELLED")));
  EXPECT_EQ(CountOn("v1"), kHosts);
}

TEST_F(E2EWatchTest, JsonLines_PrintsEveryUpdateAsItHappensTheLastOneTerminal) {
  SlowSwitches();  // the snapshot shows the rollback under way
  CommandOutput out =
      cluster_.Fleetctl({"--output", "jsonl", "rollback", "tiny", "--to", "v1", "--wait"});
  ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  std::vector<std::string> lines = absl::StrSplit(out.out, '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 2u) << out.out;
  std::vector<nlohmann::json> updates;
  for (const std::string& line : lines) {
    nlohmann::json update = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(update.is_object()) << line;
    updates.push_back(update);
  }
  EXPECT_TRUE(updates.front().value("snapshot", false));
  EXPECT_EQ(updates.front()["rollout"]["tasks"].size(), static_cast<size_t>(kHosts));
  for (size_t i = 1; i < updates.size(); ++i) EXPECT_FALSE(updates[i].value("snapshot", true));
  EXPECT_EQ(updates.back()["rollout"]["state"], "succeeded");
  for (size_t i = 0; i + 1 < updates.size(); ++i) {
    EXPECT_NE(updates[i]["rollout"]["state"], "succeeded") << lines[i];
  }
  EXPECT_EQ(CountOn("v1"), kHosts);
}

}  // namespace
}  // namespace fleet
