// fleetctl's JSON (README "JSON output") and suggestions, on messages and
// words built here.
#include "cli/output.h"

#include "cli/suggest.h"
#include "fleet/v1/api.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet::cli {
namespace {

TEST(OutputTest, ToJson_NamesEnumsAsTextCountsWavesFromOneAndKeepsNumbersNumeric) {
  fleet::v1::Rollout r;
  r.set_id("7");
  r.set_state(fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
  r.set_kind(fleet::v1::ROLLOUT_KIND_CATCH_UP);
  r.set_subject(fleet::v1::SUBJECT_CONFIG);
  r.set_created_at_ms(1700000000123);
  r.set_current_wave(0);
  r.mutable_plan()->set_bake_ms(5000000000);
  auto* wave = r.mutable_plan()->add_waves();
  wave->set_index(0);
  auto* task = r.add_tasks();
  task->set_wave(1);
  task->set_state(fleet::v1::TASK_STATE_REVERT_FAILED);
  nlohmann::ordered_json j = ToJson(r);
  EXPECT_EQ(j["state"], "rolled_back");
  EXPECT_EQ(j["kind"], "catch_up");
  EXPECT_EQ(j["subject"], "config");
  EXPECT_EQ(j["pause_reason"], "unspecified");
  EXPECT_EQ(j["created_at_ms"], 1700000000123);
  EXPECT_THAT(j["created_at"].get<std::string>(), ::testing::StartsWith("2023-11-1"));
  EXPECT_TRUE(j["finished_at"].is_null());  // 0: never
  EXPECT_EQ(j["finished_at_ms"], 0);
  EXPECT_EQ(j["plan"]["bake_ms"], 5000000000);
  EXPECT_FALSE(j["plan"].contains("bake"));  // a duration, not a time
  EXPECT_EQ(j["current_wave"], 1);
  EXPECT_EQ(j["plan"]["waves"][0]["index"], 1);
  EXPECT_EQ(j["tasks"][0]["wave"], 2);
  EXPECT_EQ(j["tasks"][0]["state"], "revert_failed");
  EXPECT_EQ(j["reason"], "");

  fleet::v1::AppStatus status;
  EXPECT_TRUE(ToJson(status)["active_rollout"].is_null());
}

TEST(OutputTest, Paint_ColoursOnlyKnownStatesAndOnlyWhenAsked) {
  EXPECT_EQ(Paint("succeeded", true), "\033[32msucceeded\033[0m");
  EXPECT_EQ(Paint("rolled_back", true), "\033[31mrolled_back\033[0m");
  EXPECT_EQ(Paint("activating", true), "\033[33mactivating\033[0m");
  EXPECT_EQ(Paint("succeeded", false), "succeeded");
  EXPECT_EQ(Paint("web-01", true), "web-01");
}

TEST(SuggestTest, ClosestMatch_SuggestsTyposOnly) {
  const std::vector<std::string> commands = {"rollout", "rollback", "release", "hosts"};
  EXPECT_EQ(ClosestMatch("rollot", commands), "rollout");
  EXPECT_EQ(ClosestMatch("rolbalck", commands), "rollback");
  EXPECT_EQ(ClosestMatch("hsots", commands), "hosts");
  EXPECT_EQ(ClosestMatch("rele", commands), "release");  // a prefix
  EXPECT_EQ(ClosestMatch("deploy", commands), "");
  EXPECT_EQ(ClosestMatch("x", commands), "");
}

}  // namespace
}  // namespace fleet::cli
