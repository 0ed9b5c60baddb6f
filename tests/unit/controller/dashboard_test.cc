// The dashboard's pure parts: event filters and paging, the live event
// feed, rollouts as the API shows them, and the page built into the binary.
#include <thread>

#include "absl/time/clock.h"
#include "controller/dashboard_json.h"
#include "controller/dashboard_ui.h"
#include "controller/event_feed.h"
#include "controller/event_filter.h"
#include "fleet/v1/api.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fleet::controller {
namespace {

using ::fleet::testing::StatusIs;
using ::testing::HasSubstr;

fleet::v1::Event MakeEvent(int64_t id, const std::string& kind, const std::string& actor = "ci") {
  fleet::v1::Event e;
  e.set_id(id);
  e.set_kind(kind);
  e.set_actor(actor);
  return e;
}

// Newest first, as the store lists them: ids 10..1.
std::vector<fleet::v1::Event> TenEvents() {
  std::vector<fleet::v1::Event> events;
  for (int id = 10; id >= 1; --id) {
    events.push_back(MakeEvent(id, id % 2 == 0 ? "rollout.started" : "host.healthy",
                               id <= 3 ? "alice (token 3fa9)" : "bob"));
  }
  return events;
}

TEST(EventFilterTest, KindMatchesAKindOrItsGroupButNotAPrefixOfAWord) {
  EXPECT_TRUE(EventKindMatches("rollout.started", {}));
  EXPECT_TRUE(EventKindMatches("rollout.started", {"rollout.started"}));
  EXPECT_TRUE(EventKindMatches("rollout.started", {"rollout"}));
  EXPECT_TRUE(EventKindMatches("rollout.started", {"rollout.*"}));
  EXPECT_TRUE(EventKindMatches("auth.denied", {"host", "auth"}));
  EXPECT_FALSE(EventKindMatches("rollback.started", {"roll"}));
  EXPECT_FALSE(EventKindMatches("rollout.started", {"rollout.paused"}));
}

TEST(EventFilterTest, UnknownKindAndNegativeNumbersAreRefusedWithTheirName) {
  fleet::v1::ListEventsRequest req;
  req.add_kinds("rollout");
  req.add_kinds("auth.denied");
  EXPECT_TRUE(CheckEventFilters(req).ok());
  req.add_kinds("nonsense");
  EXPECT_THAT(CheckEventFilters(req),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'nonsense'")));
  fleet::v1::ListEventsRequest negative;
  negative.set_limit(-1);
  EXPECT_THAT(CheckEventFilters(negative), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(EventFilterTest, FiltersByKindAndActorAndPagesWithBeforeId) {
  fleet::v1::ListEventsRequest req;
  req.add_kinds("rollout");
  req.set_limit(2);
  fleet::v1::ListEventsResponse first = FilterEvents(TenEvents(), req);
  ASSERT_EQ(first.events_size(), 2);
  EXPECT_EQ(first.events(0).id(), 10);
  EXPECT_EQ(first.events(1).id(), 8);
  EXPECT_TRUE(first.more());

  req.set_before_id(first.events(1).id());
  fleet::v1::ListEventsResponse second = FilterEvents(TenEvents(), req);
  ASSERT_EQ(second.events_size(), 2);
  EXPECT_EQ(second.events(0).id(), 6);

  fleet::v1::ListEventsRequest by_actor;
  by_actor.set_actor("alice");
  fleet::v1::ListEventsResponse alice = FilterEvents(TenEvents(), by_actor);
  ASSERT_EQ(alice.events_size(), 3);
  EXPECT_FALSE(alice.more());
}

TEST(EventFilterTest, LimitDefaultsAndIsCapped) {
  std::vector<fleet::v1::Event> many;
  for (int id = 2000; id >= 1; --id) many.push_back(MakeEvent(id, "host.healthy"));
  EXPECT_EQ(FilterEvents(many, {}).events_size(), kDefaultListedEvents);
  fleet::v1::ListEventsRequest big;
  big.set_limit(5000);
  EXPECT_EQ(FilterEvents(many, big).events_size(), kMaxListedEvents);
}

EngineEvent Published(int64_t id) {
  EngineEvent e;
  e.event = MakeEvent(id, "host.healthy");
  return e;
}

TEST(EventFeedTest, WaitGivesEventsAfterTheIdInIdOrder) {
  EventFeed feed;
  feed.OnEvents({Published(1), Published(3)});
  feed.OnEvents({Published(2)});  // committed by the other publisher, told late
  EXPECT_EQ(feed.last_id(), 3);
  EventFeed::Batch batch = feed.Wait(1, absl::ZeroDuration());
  ASSERT_EQ(batch.events.size(), 2u);
  EXPECT_EQ(batch.events[0].id(), 2);
  EXPECT_EQ(batch.events[1].id(), 3);
  EXPECT_FALSE(batch.shut_down);
}

TEST(EventFeedTest, WaitWakesOnANewEventAndOnShutdown) {
  EventFeed feed;
  std::thread publisher([&] {
    absl::SleepFor(absl::Milliseconds(50));
    feed.OnEvents({Published(7)});
  });
  EventFeed::Batch batch = feed.Wait(0, absl::Seconds(30));
  publisher.join();
  ASSERT_EQ(batch.events.size(), 1u);
  EXPECT_EQ(batch.events[0].id(), 7);

  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(50));
    feed.Shutdown();
  });
  EXPECT_TRUE(feed.Wait(7, absl::Seconds(30)).shut_down);
  stopper.join();
}

TEST(EventFeedTest, KeepsOnlyTheNewestEvents) {
  EventFeed feed;
  for (int64_t id = 1; id <= static_cast<int64_t>(EventFeed::kKept) + 5; ++id) {
    feed.OnEvents({Published(id)});
  }
  EventFeed::Batch batch = feed.Wait(0, absl::ZeroDuration());
  ASSERT_EQ(batch.events.size(), EventFeed::kKept);
  EXPECT_EQ(batch.events.front().id(), 6);
}

fleet::v1::HostTask Task(const std::string& host, fleet::v1::TaskState state,
                         const std::string& from, const std::string& to) {
  fleet::v1::HostTask t;
  t.set_host_id(host);
  t.set_state(state);
  t.set_from_version(from);
  t.set_to_version(to);
  return t;
}

TEST(DashboardJsonTest, RolloutCountsPhasesAndHostsThatChange) {
  fleet::v1::Rollout r;
  r.set_id("7");
  *r.add_tasks() = Task("web-1", fleet::v1::TASK_STATE_HEALTHY, "v1", "v2");
  *r.add_tasks() = Task("web-2", fleet::v1::TASK_STATE_FAILED, "v1", "v2");
  *r.add_tasks() = Task("web-3", fleet::v1::TASK_STATE_ACTIVATING, "v1", "v2");
  *r.add_tasks() = Task("web-4", fleet::v1::TASK_STATE_PENDING, "v2", "v2");
  nlohmann::json out = RolloutJson(r, /*with_tasks=*/true);
  EXPECT_EQ(out["id"], "7");
  EXPECT_EQ(out["progress"]["done"], 1);
  EXPECT_EQ(out["progress"]["failed"], 1);
  EXPECT_EQ(out["progress"]["switching"], 1);
  EXPECT_EQ(out["progress"]["pending"], 1);
  EXPECT_EQ(out["progress"]["total"], 4);
  EXPECT_EQ(out["progress"]["changing"], 3);
  ASSERT_EQ(out["tasks"].size(), 4u);
  EXPECT_EQ(out["tasks"][1]["phase"], "failed");
  EXPECT_EQ(out["tasks"][1]["state"], "TASK_STATE_FAILED");

  nlohmann::json summary = RolloutJson(r, /*with_tasks=*/false);
  EXPECT_TRUE(summary["tasks"].empty());
  EXPECT_EQ(summary["progress"]["total"], 4);
  EXPECT_FALSE(RolloutJson(fleet::v1::Rollout(), false).contains("progress"));
}

TEST(DashboardJsonTest, PartialUpdateHasNoProgressOfItsFewTasks) {
  fleet::v1::RolloutUpdate update;
  *update.mutable_rollout()->add_tasks() = Task("web-1", fleet::v1::TASK_STATE_HEALTHY, "v1", "v2");
  EXPECT_FALSE(RolloutUpdateJson(update)["rollout"].contains("progress"));
  update.set_snapshot(true);
  EXPECT_EQ(RolloutUpdateJson(update)["rollout"]["progress"]["done"], 1);
}

TEST(DashboardUiTest, ThePageIsBuiltIn) {
  for (const char* name : {"index.html", "app.js", "style.css"}) {
    const DashboardAsset* asset = FindDashboardAsset(name);
    ASSERT_NE(asset, nullptr) << name;
    EXPECT_GT(asset->size, 100u) << name;
  }
  const DashboardAsset* index = FindDashboardAsset("index.html");
  EXPECT_THAT(std::string(reinterpret_cast<const char*>(index->data), index->size),
              HasSubstr("<script src=\"app.js\""));
  EXPECT_EQ(FindDashboardAsset("nope.js"), nullptr);
  EXPECT_STREQ(DashboardContentType("app.js"), "text/javascript; charset=utf-8");
  EXPECT_STREQ(DashboardContentType("x.bin"), "application/octet-stream");
}

}  // namespace
}  // namespace fleet::controller
