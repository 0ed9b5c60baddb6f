#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "controller/rollout_engine.h"

namespace fleet::controller {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<int> WaveHosts(const fleet::v1::RolloutPlan& plan) {
  std::vector<int> out;
  for (const auto& w : plan.waves()) out.push_back(w.hosts());
  return out;
}

fleet::v1::StartRolloutRequest Request(std::vector<std::string> waves,
                                       const std::string& max_failures = "") {
  fleet::v1::StartRolloutRequest req;
  for (auto& w : waves) req.add_waves(w);
  req.set_max_failures(max_failures);
  return req;
}

TEST(RolloutPlanTest, Waves_AreCumulativeAndRoundedUp) {
  auto plan = BuildRolloutPlan(Request({"1", "10%", "50%", "100%"}), {}, 20, absl::Minutes(2));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(WaveHosts(*plan), ElementsAre(1, 2, 10, 20));
  plan = BuildRolloutPlan(Request({"25%", "100%"}), {}, 7, absl::Minutes(2));
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(WaveHosts(*plan), ElementsAre(2, 7));
}

TEST(RolloutPlanTest, Waves_EveryWaveAddsAHostAndTheLastCoversAll) {
  auto plan = BuildRolloutPlan(Request({"1", "1%", "2%", "50%"}), {}, 10, absl::Minutes(2));
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(WaveHosts(*plan), ElementsAre(1, 2, 3, 5, 10));
  EXPECT_EQ(plan->waves(4).target(), "100%");
  // Waves past the last host are dropped.
  plan = BuildRolloutPlan(Request({"1", "2", "3", "100%"}), {}, 2, absl::Minutes(2));
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(WaveHosts(*plan), ElementsAre(1, 2));
}

TEST(RolloutPlanTest, Waves_DefaultToSpecThenCanaryAndRest) {
  fleet::v1::AppSpec spec;
  auto plan = BuildRolloutPlan(Request({}), spec, 5, absl::Minutes(2));
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(WaveHosts(*plan), ElementsAre(1, 5));
  spec.mutable_rollout()->add_waves("2");
  spec.mutable_rollout()->add_waves("100%");
  spec.mutable_rollout()->set_max_failures("1");
  spec.set_bake_ms(3000);
  plan = BuildRolloutPlan(Request({}), spec, 5, absl::Minutes(2));
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(WaveHosts(*plan), ElementsAre(2, 5));
  EXPECT_EQ(plan->max_failures(), 1);
  EXPECT_EQ(plan->bake_ms(), 3000);
}

TEST(RolloutPlanTest, MaxFailures_PercentRoundsDown) {
  auto plan = BuildRolloutPlan(Request({}, "10%"), {}, 20, absl::Minutes(2));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->max_failures(), 2);
  plan = BuildRolloutPlan(Request({}, "10%"), {}, 29, absl::Minutes(2));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->max_failures(), 2);
  plan = BuildRolloutPlan(Request({}, "3"), {}, 29, absl::Minutes(2));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->max_failures(), 3);
}

TEST(RolloutPlanTest, BadValues_AreInvalidArgumentNamingTheValue) {
  for (const auto& [waves, max_failures, message] :
       std::vector<std::tuple<std::vector<std::string>, std::string, std::string>>{
           {{"0"}, "", "wave '0' must be more than 0"},
           {{"abc"}, "", "wave 'abc' must be a host count"},
           {{"150%"}, "", "wave '150%'"},
           {{"1.5"}, "", "wave '1.5'"},
           {{}, "-1", "max-failures '-1'"},
           {{}, "x%", "max-failures 'x%'"},
       }) {
    auto plan = BuildRolloutPlan(Request(waves, max_failures), {}, 10, absl::Minutes(2));
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument) << message;
    EXPECT_THAT(std::string(plan.status().message()), HasSubstr(message));
  }
  fleet::v1::StartRolloutRequest req;
  req.set_bake("soon");
  EXPECT_THAT(std::string(BuildRolloutPlan(req, {}, 3, absl::Minutes(2)).status().message()),
              HasSubstr("bake 'soon'"));
  req.set_bake("");
  req.set_host_timeout("0s");
  EXPECT_THAT(std::string(BuildRolloutPlan(req, {}, 3, absl::Minutes(2)).status().message()),
              HasSubstr("host-timeout '0s'"));
}

}  // namespace
}  // namespace fleet::controller
