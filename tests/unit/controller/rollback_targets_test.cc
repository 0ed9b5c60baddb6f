// The default rollback target the engine names in every activation, and
// the command builder that carries it to the agents.
#include "controller/rollback_targets.h"

#include "controller/command_builder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/controller/store_fixture.h"

namespace fleet::controller {
namespace {

using ::testing::ElementsAre;

class RollbackTargetsTest : public SqliteStoreTest {
 protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  }
  // A rollout of `version` that ended in `state`.
  void Finished(const std::string& version, fleet::v1::RolloutState state,
                fleet::v1::RolloutKind kind = fleet::v1::ROLLOUT_KIND_DEPLOY,
                const std::string& from = "") {
    Rollout r = MakeRollout("web", version);
    r.set_kind(kind);
    r.set_state(state);
    r.set_from_version(from);
    r.set_subject(fleet::v1::SUBJECT_RELEASE);
    ASSERT_OK(store_->CreateRollout(&r));
    if (state == fleet::v1::ROLLOUT_STATE_SUCCEEDED) {
      ASSERT_OK(store_->SetDesired("web", fleet::v1::SUBJECT_RELEASE, version));
    }
  }
  App Web() { return store_->GetApp("web").value(); }
};

TEST_F(RollbackTargetsTest, Get_IsTheLastSuccessfulReleaseBeforeTheDesiredOne) {
  Finished("v1", fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  Finished("v2", fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  Finished("v3", fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  Finished("v4", fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
  Finished("v5", fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
  RollbackTargets targets(store_.get());

  // Failed rollouts count for nothing: v2, the target of Why 5 of issue 16.
  EXPECT_EQ(targets.Get(Web(), fleet::v1::SUBJECT_RELEASE), "v2");
  EXPECT_EQ(targets.Get(Web(), fleet::v1::SUBJECT_CONFIG), "");
}

TEST_F(RollbackTargetsTest, Get_FollowsTheDesiredVersionAfterARollback) {
  Finished("v1", fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  Finished("v2", fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  Finished("v3", fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  RollbackTargets targets(store_.get());
  ASSERT_EQ(targets.Get(Web(), fleet::v1::SUBJECT_RELEASE), "v2");

  Finished("v2", fleet::v1::ROLLOUT_STATE_SUCCEEDED, fleet::v1::ROLLOUT_KIND_ROLLBACK, "v3");
  targets.Forget("web");

  // Rolling back twice goes further back, not forward to v3 again.
  EXPECT_EQ(targets.Get(Web(), fleet::v1::SUBJECT_RELEASE), "v1");
}

TEST_F(RollbackTargetsTest, Get_WithNothingBeforeTheFirstReleaseIsEmpty) {
  Finished("v1", fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  RollbackTargets targets(store_.get());
  EXPECT_EQ(targets.Get(Web(), fleet::v1::SUBJECT_RELEASE), "");
}

TEST(CommandBuilderTest, Activate_NamesTheRollbackTargetBesidesTheKeepList) {
  App app = MakeApp("web");
  app.set_desired_version("v3");
  Rollout r = MakeRollout("web", "v4");
  r.set_id("7");
  HostTask task;
  task.set_host_id("h1");
  task.set_from_version("v3");
  task.set_to_version("v4");
  fleet::v1::CommandRef ref;
  ref.set_rollout_id("7");
  ref.set_host_id("h1");
  ref.set_phase(fleet::v1::COMMAND_PHASE_ACTIVATE);
  const CommandBuilder builder(r, app, StagePayload{}, "v2");

  std::optional<fleet::v1::Command> cmd = builder.Build(task, ref);

  ASSERT_TRUE(cmd.has_value());
  EXPECT_EQ(cmd->activate().version(), "v4");
  EXPECT_EQ(cmd->activate().rollback_target(), "v2");
  EXPECT_THAT(cmd->activate().keep(), ElementsAre("v3"));
  ref.set_phase(fleet::v1::COMMAND_PHASE_REVERT);
  cmd = builder.Build(task, ref);
  ASSERT_TRUE(cmd.has_value());
  EXPECT_EQ(cmd->activate().version(), "v3");
  EXPECT_EQ(cmd->activate().rollback_target(), "v2");
}

}  // namespace
}  // namespace fleet::controller
