// An app spec's `user:`: releases and configs belong to it, and reload,
// hooks and exec probes run as it. Switching users needs root, which CI
// has; elsewhere these tests skip.
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "agent/deployer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/agent/deployer_fixture.h"

namespace fleet::agent {
namespace {

using ::fleet::testing::FileOwner;
using ::testing::HasSubstr;

class DeployerUserTest : public DeployerTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
    DeployerTest::SetUp();
    absl::StatusOr<RunAs> nobody = LookupUser("nobody");
    ASSERT_TRUE(nobody.ok()) << nobody.status();
    nobody_ = *nobody;
  }

  // Commands write who ran them into the shared log dir, the one place the
  // user may write; relative paths, since the test's temp dir is root's.
  AppSpec Spec() const override {
    AppSpec spec = DeployerTest::Spec();
    spec.set_user("nobody");
    spec.set_reload("id -un > log/reload-user && touch log/reload-ran");
    spec.mutable_hooks()->set_after_unpack("id -un > after-unpack-user");
    spec.mutable_hooks()->set_after_rollback("id -un > log/after-rollback-user");
    return spec;
  }

  std::string Read(const std::string& path) const { return ::fleet::testing::ReadTextFile(path); }

  RunAs nobody_;
};

TEST_F(DeployerUserTest, Stage_GivesTheUnpackedReleaseAndSharedDirsToTheUser) {
  CommandResult staged = Stage("v1", Spec());
  ASSERT_TRUE(staged.ok()) << staged.reason();

  for (const std::string& path : {ReleaseDir("v1"), ReleaseDir("v1") + "/VERSION",
                                  ReleaseDir("v1") + "/bin/start", ReleaseDir("v1") + "/log",
                                  AppDir() + "/shared/log"}) {
    EXPECT_EQ(FileOwner(path), nobody_.uid) << path;
  }
  EXPECT_EQ(Read(ReleaseDir("v1") + "/after-unpack-user"), "nobody\n");
}

TEST_F(DeployerUserTest, Deploy_RunsReloadAsTheUser) {
  StageAndDeploy("v1", Spec());

  EXPECT_EQ(Read(AppDir() + "/shared/log/reload-user"), "nobody\n");
  EXPECT_EQ(FileOwner(AppDir() + "/shared/log/reload-ran"), nobody_.uid);
}

TEST_F(DeployerUserTest, Rollback_RunsAfterRollbackHookAsTheUser) {
  StageAndDeploy("v1", Spec());
  StageAndDeploy("v2", Spec());

  CommandResult back = Rollback("v1", Spec());
  ASSERT_TRUE(back.ok()) << back.reason();
  EXPECT_EQ(Read(AppDir() + "/shared/log/after-rollback-user"), "nobody\n");
}

TEST_F(DeployerUserTest, Deploy_GivesAReleaseStagedBeforeTheUserWasSet) {
  AppSpec before = DeployerTest::Spec();
  CommandResult staged = Stage("v1", before);
  ASSERT_TRUE(staged.ok()) << staged.reason();
  ASSERT_EQ(FileOwner(ReleaseDir("v1") + "/VERSION"), 0u);

  CommandResult deployed = Deploy("v1", Spec());
  ASSERT_TRUE(deployed.ok()) << deployed.reason();
  EXPECT_EQ(FileOwner(ReleaseDir("v1") + "/VERSION"), nobody_.uid);
  EXPECT_EQ(Read(AppDir() + "/shared/log/reload-user"), "nobody\n");
}

TEST_F(DeployerUserTest, Stage_FailsForAUserThisHostLacksAndKeepsNothing) {
  AppSpec spec = Spec();
  spec.set_user("fleet-no-such-user");

  CommandResult staged = Stage("v1", spec);
  EXPECT_FALSE(staged.ok());
  EXPECT_THAT(staged.reason(), HasSubstr("user 'fleet-no-such-user' does not exist on this host"));
  EXPECT_FALSE(PathExists(ReleaseDir("v1")));
}

TEST_F(DeployerUserTest, Deploy_FailsForAUserThisHostLacksAndLeavesCurrent) {
  StageAndDeploy("v1", Spec());
  CommandResult staged = Stage("v2", Spec());
  ASSERT_TRUE(staged.ok()) << staged.reason();
  AppSpec spec = Spec();
  spec.set_user("fleet-no-such-user");

  CommandResult deployed = Deploy("v2", spec);
  EXPECT_FALSE(deployed.ok());
  EXPECT_THAT(deployed.reason(), HasSubstr("does not exist on this host"));
  EXPECT_EQ(Current(), "v1");
}

}  // namespace
}  // namespace fleet::agent
