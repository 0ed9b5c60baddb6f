// The SqliteStore's rollouts and their tasks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/rollout_state.h"
#include "tests/unit/controller/store_fixture.h"

namespace fleet::controller {
namespace {

using ::testing::ElementsAre;

TEST_P(StoreTest, Rollout_CreateAssignsIncreasingIdsAndStoresTasks) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  Rollout first = MakeRollout(
      "web", "v2", {MakeTask("web-03", 1), MakeTask("web-02", 1), MakeTask("web-01", 0)});
  first.set_id("ignored");
  ASSERT_OK(store_->CreateRollout(&first));
  Rollout second = MakeRollout("web", "v3");
  ASSERT_OK(store_->CreateRollout(&second));
  int64_t first_id = 0, second_id = 0;
  ASSERT_TRUE(absl::SimpleAtoi(first.id(), &first_id)) << first.id();
  ASSERT_TRUE(absl::SimpleAtoi(second.id(), &second_id)) << second.id();
  EXPECT_GT(second_id, first_id);

  absl::StatusOr<Rollout> got = store_->GetRollout(first.id());
  ASSERT_OK(got);
  EXPECT_EQ(got->app(), "web");
  EXPECT_EQ(got->version(), "v2");
  EXPECT_EQ(got->from_version(), "v1");
  EXPECT_EQ(got->kind(), fleet::v1::ROLLOUT_KIND_DEPLOY);
  EXPECT_EQ(got->state(), fleet::v1::ROLLOUT_STATE_STAGING);
  EXPECT_EQ(got->selector(), "env=prod");
  EXPECT_EQ(got->created_by(), "alice");
  EXPECT_EQ(got->created_at_ms(), 7000);
  // Sorted by wave, then host.
  EXPECT_THAT(TaskHosts(*got), ElementsAre("web-01", "web-02", "web-03"));
  EXPECT_EQ(got->tasks(0).to_version(), "v2");
  EXPECT_EQ(got->tasks(0).state(), fleet::v1::TASK_STATE_PENDING);
}

TEST_P(StoreTest, Rollout_CreateForUnknownAppIsNotFound) {
  Rollout rollout = MakeRollout("ghost", "v1");
  EXPECT_THAT(store_->CreateRollout(&rollout), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(rollout.id().empty());
}

TEST_P(StoreTest, Rollout_CreateWithTwoTasksForOneHostLeavesNothing) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  Rollout rollout = MakeRollout("web", "v2", {MakeTask("web-01", 0), MakeTask("web-01", 1)});
  EXPECT_THAT(store_->CreateRollout(&rollout), StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<std::vector<Rollout>> rollouts = store_->ListRollouts("", 0, true);
  ASSERT_OK(rollouts);
  EXPECT_TRUE(rollouts->empty());
}

TEST_P(StoreTest, Rollout_UpdateWritesStateReasonFinishAndFromVersionOnly) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  Rollout rollout = MakeRollout("web", "v2", {MakeTask("web-01", 0)});
  ASSERT_OK(store_->CreateRollout(&rollout));

  Rollout update = rollout;
  update.set_state(fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
  update.set_reason("/healthz returned 502 on web-01");
  update.set_finished_at_ms(8000);
  update.set_from_version("v0");
  update.set_version("not written");
  update.set_selector("not written");
  ASSERT_OK(store_->UpdateRollout(update));

  absl::StatusOr<Rollout> got = store_->GetRollout(rollout.id());
  ASSERT_OK(got);
  EXPECT_EQ(got->state(), fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
  EXPECT_EQ(got->reason(), "/healthz returned 502 on web-01");
  EXPECT_EQ(got->finished_at_ms(), 8000);
  EXPECT_EQ(got->from_version(), "v0");
  EXPECT_EQ(got->version(), "v2");
  EXPECT_EQ(got->selector(), "env=prod");
}

TEST_P(StoreTest, Rollout_UpdateTaskWritesEveryField) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  Rollout rollout = MakeRollout("web", "v2", {MakeTask("web-01", 0), MakeTask("web-02", 0)});
  ASSERT_OK(store_->CreateRollout(&rollout));

  HostTask task;
  task.set_host_id("web-02");
  task.set_state(fleet::v1::TASK_STATE_FAILED);
  task.set_from_version("v1");
  task.set_to_version("v2");
  task.set_reason("tcp 127.0.0.1:8080: connection refused");
  task.set_updated_at_ms(9100);
  task.set_wave(3);
  task.set_command_id("cmd-17");
  ASSERT_OK(store_->UpdateTask(rollout.id(), task));

  absl::StatusOr<Rollout> got = store_->GetRollout(rollout.id());
  ASSERT_OK(got);
  ASSERT_EQ(got->tasks_size(), 2);
  EXPECT_EQ(got->tasks(1).SerializeAsString(), task.SerializeAsString())
      << got->tasks(1).DebugString();
  EXPECT_EQ(got->tasks(0).state(), fleet::v1::TASK_STATE_PENDING);
}

TEST_P(StoreTest, Rollout_UnknownIsNotFound) {
  EXPECT_THAT(store_->GetRollout("42"),
              StatusIs(absl::StatusCode::kNotFound, "unknown rollout '42'"));
  EXPECT_THAT(store_->GetRollout("abc"),
              StatusIs(absl::StatusCode::kNotFound, "unknown rollout 'abc'"));
  Rollout rollout = MakeRollout("web", "v1");
  rollout.set_id("42");
  EXPECT_THAT(store_->UpdateRollout(rollout),
              StatusIs(absl::StatusCode::kNotFound, "unknown rollout '42'"));
  EXPECT_THAT(store_->UpdateTask("42", MakeTask("web-01", 0)),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(StoreTest, Rollout_ListIsNewestFirstFilteredAndLimited) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->UpsertApp(MakeApp("api"), nullptr));
  std::vector<std::string> web_ids;
  std::vector<std::string> all_ids;
  for (const char* app : {"web", "api", "web", "web"}) {
    Rollout rollout = MakeRollout(app, "v2", {MakeTask("h1", 0)});
    ASSERT_OK(store_->CreateRollout(&rollout));
    all_ids.insert(all_ids.begin(), rollout.id());
    if (rollout.app() == "web") web_ids.insert(web_ids.begin(), rollout.id());
  }

  absl::StatusOr<std::vector<Rollout>> all = store_->ListRollouts("", 0, false);
  ASSERT_OK(all);
  EXPECT_EQ(Ids(*all), all_ids);
  EXPECT_EQ((*all)[0].tasks_size(), 0);

  absl::StatusOr<std::vector<Rollout>> web = store_->ListRollouts("web", 2, true);
  ASSERT_OK(web);
  EXPECT_THAT(Ids(*web), ElementsAre(web_ids[0], web_ids[1]));
  for (const Rollout& r : *web) EXPECT_THAT(TaskHosts(r), ElementsAre("h1"));
}

TEST_P(StoreTest, Rollout_ListActiveExcludesTerminalStatesOldestFirst) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  const fleet::v1::RolloutState states[] = {
      fleet::v1::ROLLOUT_STATE_STAGING,    fleet::v1::ROLLOUT_STATE_SUCCEEDED,
      fleet::v1::ROLLOUT_STATE_ACTIVATING, fleet::v1::ROLLOUT_STATE_ROLLED_BACK,
      fleet::v1::ROLLOUT_STATE_FAILED,     fleet::v1::ROLLOUT_STATE_ROLLING_BACK};
  std::vector<std::string> active;
  for (fleet::v1::RolloutState state : states) {
    Rollout rollout = MakeRollout("web", "v2", {MakeTask("h1", 0)});
    rollout.set_state(state);
    ASSERT_OK(store_->CreateRollout(&rollout));
    if (!IsTerminal(state)) active.push_back(rollout.id());
  }
  ASSERT_EQ(active.size(), 3u);
  absl::StatusOr<std::vector<Rollout>> got = store_->ListActiveRollouts();
  ASSERT_OK(got);
  EXPECT_EQ(Ids(*got), active);
  for (const Rollout& r : *got) EXPECT_THAT(TaskHosts(r), ElementsAre("h1"));
}

TEST(StoreStateTest, Rollout_IsTerminalOnlyForSucceededRolledBackAndFailed) {
  EXPECT_TRUE(IsTerminal(fleet::v1::ROLLOUT_STATE_SUCCEEDED));
  EXPECT_TRUE(IsTerminal(fleet::v1::ROLLOUT_STATE_ROLLED_BACK));
  EXPECT_TRUE(IsTerminal(fleet::v1::ROLLOUT_STATE_FAILED));
  EXPECT_FALSE(IsTerminal(fleet::v1::ROLLOUT_STATE_UNSPECIFIED));
  EXPECT_FALSE(IsTerminal(fleet::v1::ROLLOUT_STATE_STAGING));
  EXPECT_FALSE(IsTerminal(fleet::v1::ROLLOUT_STATE_ACTIVATING));
  EXPECT_FALSE(IsTerminal(fleet::v1::ROLLOUT_STATE_ROLLING_BACK));
}

TEST_P(StoreTest, Rollout_UpdateTasksWritesEveryTaskInOneCall) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  Rollout rollout = MakeRollout(
      "web", "v2", {MakeTask("web-01", 0), MakeTask("web-02", 0), MakeTask("web-03", 1)});
  ASSERT_OK(store_->CreateRollout(&rollout));
  std::vector<HostTask> tasks = {MakeTask("web-03", 1), MakeTask("web-01", 0)};
  for (HostTask& task : tasks) {
    task.set_state(fleet::v1::TASK_STATE_HEALTHY);
    task.set_command_id("cmd-" + task.host_id());
    task.set_updated_at_ms(9100);
  }
  ASSERT_OK(store_->UpdateTasks(rollout.id(), tasks));
  ASSERT_OK(store_->UpdateTasks(rollout.id(), {}));

  absl::StatusOr<Rollout> got = store_->GetRollout(rollout.id());
  ASSERT_OK(got);
  ASSERT_EQ(got->tasks_size(), 3);
  EXPECT_EQ(got->tasks(0).SerializeAsString(), tasks[1].SerializeAsString());
  EXPECT_EQ(got->tasks(1).state(), fleet::v1::TASK_STATE_PENDING);
  EXPECT_EQ(got->tasks(2).SerializeAsString(), tasks[0].SerializeAsString());
}

TEST_P(StoreTest, Rollout_UpdateTasksWithAnUnknownHostWritesNone) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  Rollout rollout = MakeRollout("web", "v2", {MakeTask("web-01", 0)});
  ASSERT_OK(store_->CreateRollout(&rollout));
  HostTask known = MakeTask("web-01", 0);
  known.set_state(fleet::v1::TASK_STATE_FAILED);
  EXPECT_THAT(
      store_->UpdateTasks(rollout.id(), {known, MakeTask("ghost", 0)}),
      StatusIs(absl::StatusCode::kNotFound,
               absl::StrCat("unknown task of host 'ghost' in rollout '", rollout.id(), "'")));
  absl::StatusOr<Rollout> got = store_->GetRollout(rollout.id());
  ASSERT_OK(got);
  EXPECT_EQ(got->tasks(0).state(), fleet::v1::TASK_STATE_PENDING);
  EXPECT_THAT(store_->UpdateTasks("42", {known}), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(StoreTest, Rollout_PauseReasonIsWrittenAtCreationAndByUpdate) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  Rollout rollout = MakeRollout("web", "v2", {MakeTask("web-01", 0)});
  rollout.set_state(fleet::v1::ROLLOUT_STATE_PAUSED);
  rollout.set_awaiting_promote(true);
  rollout.set_pause_reason(fleet::v1::PAUSE_REASON_PROMOTE_GATE);
  ASSERT_OK(store_->CreateRollout(&rollout));
  absl::StatusOr<Rollout> got = store_->GetRollout(rollout.id());
  ASSERT_OK(got);
  EXPECT_EQ(got->pause_reason(), fleet::v1::PAUSE_REASON_PROMOTE_GATE);

  rollout.set_awaiting_promote(false);
  rollout.set_paused_by("alice");
  rollout.set_pause_reason(fleet::v1::PAUSE_REASON_MANUAL);
  ASSERT_OK(store_->UpdateRollout(rollout));
  absl::StatusOr<std::vector<Rollout>> active = store_->ListActiveRollouts();
  ASSERT_OK(active);
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ((*active)[0].pause_reason(), fleet::v1::PAUSE_REASON_MANUAL);
  EXPECT_EQ((*active)[0].paused_by(), "alice");
  EXPECT_FALSE((*active)[0].awaiting_promote());
}

}  // namespace
}  // namespace fleet::controller
