// Break-glass rollback on the host (Deployer::RollBackLocally) and the
// retention of the fleet's rollback target.
#include <string>
#include <vector>

#include "agent/deployer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/agent/deployer_fixture.h"

namespace fleet::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

fleet::v1::LocalRollbackRequest Request(const std::string& to = "",
                                        const std::string& reason = "") {
  fleet::v1::LocalRollbackRequest req;
  req.set_app("web");
  req.set_to_version(to);
  req.set_reason(reason);
  return req;
}

TEST_F(DeployerTest, Retention_KeepsTheRollbackTargetTheCommandNames) {
  AppSpec spec = Spec();
  spec.set_keep_releases(3);
  StageAndDeploy("v1", spec);
  for (const char* v : {"v2", "v3", "v4", "v5"}) ASSERT_TRUE(Stage(v, spec).ok());
  Command deploy = ActivateCommand("deploy-v5", "v5", spec);
  deploy.mutable_activate()->set_rollback_target("v3");

  CommandResult result = Run(deploy);

  ASSERT_TRUE(result.ok()) << result.reason();
  // v1 is the previous release, v3 the fleet's rollback target, v5 current.
  EXPECT_THAT(OnDisk(), ElementsAre("v1", "v3", "v5"));
  EXPECT_EQ(Record().rollback_target(), "v3");
}

TEST_F(DeployerTest, RollBackLocally_SwitchesToThePreviousReleaseWithReloadAndHooks) {
  StageAndDeploy("v1", Spec());
  StageAndDeploy("v2", Spec());

  fleet::v1::LocalRollbackReply reply =
      deployer_->RollBackLocally(Request("", "v2 leaks memory"), "root@h1");

  ASSERT_TRUE(reply.ok()) << reply.message();
  EXPECT_EQ(reply.message(), "web on host h1 rolled back from v2 to v1; reload and probes passed");
  EXPECT_EQ(Current(), "v1");
  EXPECT_EQ(Reloads().back(), "v1");
  EXPECT_THAT(AfterRollbacks(), ElementsAre("v1"));
  EXPECT_FALSE(HasJournal());
  const fleet::v1::LocalRollback& lr = reply.rollback();
  EXPECT_EQ(lr.from_version(), "v2");
  EXPECT_EQ(lr.to_version(), "v1");
  EXPECT_EQ(lr.actor(), "root@h1");
  EXPECT_EQ(lr.reason(), "v2 leaks memory");
  EXPECT_TRUE(lr.ok());
  EXPECT_EQ(lr.state().current_release(), "v1");
  // Kept for every hello until the next one replaces it.
  EXPECT_EQ(Record().local_rollback().id(), lr.id());
  std::vector<fleet::v1::LocalRollback> reported = deployer_->LocalRollbacks();
  ASSERT_THAT(reported, SizeIs(1));
  EXPECT_EQ(reported[0].id(), lr.id());
  EXPECT_EQ(Record().previous_release(), "v2");
}

TEST_F(DeployerTest, RollBackLocally_WorksFromTheRecordAfterARestart) {
  StageAndDeploy("v1", Spec());
  StageAndDeploy("v2", Spec());
  StageAndDeploy("v3", Spec());
  NewDeployer();  // a process that never received a command: the spec is on disk

  fleet::v1::LocalRollbackReply reply = deployer_->RollBackLocally(Request("v1"), "ops@h1");

  ASSERT_TRUE(reply.ok()) << reply.message();
  EXPECT_EQ(Current(), "v1");
  EXPECT_EQ(Reloads().back(), "v1");
}

TEST_F(DeployerTest, RollBackLocally_RefusesAVersionNotOnDiskAndChangesNothing) {
  StageAndDeploy("v1", Spec());
  StageAndDeploy("v2", Spec());
  const size_t reloads = Reloads().size();

  fleet::v1::LocalRollbackReply reply = deployer_->RollBackLocally(Request("v9"), "root@h1");

  EXPECT_FALSE(reply.ok());
  EXPECT_FALSE(reply.has_rollback());
  EXPECT_THAT(reply.message(), HasSubstr("release v9 of web is not on disk on host h1"));
  EXPECT_EQ(Current(), "v2");
  EXPECT_EQ(Reloads().size(), reloads);
  EXPECT_FALSE(Record().has_local_rollback());
  EXPECT_THAT(deployer_->LocalRollbacks(), IsEmpty());
}

TEST_F(DeployerTest, RollBackLocally_RefusesWhenNothingEarlierIsOnDisk) {
  StageAndDeploy("v1", Spec());

  fleet::v1::LocalRollbackReply reply = deployer_->RollBackLocally(Request(), "root@h1");

  EXPECT_FALSE(reply.has_rollback());
  EXPECT_EQ(reply.message(),
            "no earlier release of web on disk on host h1 to roll back to (current: v1; on "
            "disk: v1); name one with --to VERSION");
  EXPECT_EQ(Current(), "v1");
}

TEST_F(DeployerTest, RollBackLocally_RefusesAnAppThisAgentNeverRan) {
  fleet::v1::LocalRollbackRequest req = Request();
  req.set_app("api");

  fleet::v1::LocalRollbackReply reply = deployer_->RollBackLocally(req, "root@h1");

  EXPECT_FALSE(reply.has_rollback());
  EXPECT_THAT(reply.message(), HasSubstr("app api has no spec on host h1"));
}

TEST_F(DeployerTest, RollBackLocally_FailingProbesLeaveTheLinkAndReportUnhealthy) {
  StageAndDeploy("v1", Spec());
  StageAndDeploy("v2", Spec());
  probes_.Fail("127.0.0.1:18080", "connection refused");

  fleet::v1::LocalRollbackReply reply = deployer_->RollBackLocally(Request(), "root@h1");

  EXPECT_FALSE(reply.ok());
  ASSERT_TRUE(reply.has_rollback());
  EXPECT_FALSE(reply.rollback().ok());
  EXPECT_THAT(reply.rollback().failure(), HasSubstr("connection refused"));
  EXPECT_THAT(reply.message(), HasSubstr("switched from v2 to v1 but it is unhealthy"));
  // Like every rollback, it does not switch away again on its own.
  EXPECT_EQ(Current(), "v1");
  EXPECT_EQ(Record().local_rollback().id(), reply.rollback().id());
}

}  // namespace
}  // namespace fleet::agent
