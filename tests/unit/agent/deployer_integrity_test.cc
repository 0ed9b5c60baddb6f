// A release is switched to only when it is complete (its tree manifest
// matches), removals leave a release either whole or unlisted, and the
// state dir is the agent's alone.
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "agent/deployer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/agent/deployer_fixture.h"

namespace fleet::agent {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class DeployerIntegrityTest : public DeployerTest {
 protected:
  // v1 and v2 staged and deployed in turn: current is v2.
  void SetUp() override {
    DeployerTest::SetUp();
    StageAndDeploy("v1", Spec());
    StageAndDeploy("v2", Spec());
  }
  // What a removal killed half-way by an earlier agent left: a release
  // directory with files missing.
  void BreakRelease(const std::string& version) {
    ASSERT_TRUE(std::filesystem::remove(ReleaseDir(version) + "/bin/start"));
  }
};

TEST_F(DeployerIntegrityTest, Rollback_ToAnIncompleteRelease_IsRefusedAndItIsNoLongerListed) {
  BreakRelease("v1");

  CommandResult result = Rollback("v1", Spec());

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(),
              AllOf(HasSubstr("release v1 of web is incomplete: 1 of "),
                    HasSubstr("'bin/start' is missing"), HasSubstr("on host h1")));
  EXPECT_EQ(Current(), "v2") << "nothing switched";
  EXPECT_THAT(OnDisk(), ElementsAre("v2"));
  EXPECT_THAT(result.state().releases(), ElementsAre("v2")) << "the controller learns it is gone";
  EXPECT_FALSE(PathExists(ReleaseDir("v1")));
}

TEST_F(DeployerIntegrityTest, Stage_OfAnIncompleteRelease_UnpacksItAgain) {
  BreakRelease("v1");
  const int fetches = artifacts_.fetches();
  Command again;
  again.set_id("stage-v1-again");
  *again.mutable_stage()->mutable_spec() = Spec();
  *again.mutable_stage()->mutable_release() = PrepareRelease("v1");

  CommandResult staged = Run(again);

  ASSERT_TRUE(staged.ok()) << staged.reason();
  EXPECT_EQ(artifacts_.fetches(), fetches + 1) << "downloaded again, not reused";
  EXPECT_TRUE(PathExists(ReleaseDir("v1") + "/bin/start"));
  CommandResult rollback = Rollback("v1", Spec());
  EXPECT_TRUE(rollback.ok()) << rollback.reason();
  EXPECT_EQ(Current(), "v1");
}

TEST_F(DeployerIntegrityTest, Stage_OfACompleteRelease_ReusesIt) {
  const int fetches = artifacts_.fetches();
  Command again;
  again.set_id("stage-v1-again");
  *again.mutable_stage()->mutable_spec() = Spec();
  *again.mutable_stage()->mutable_release() = PrepareRelease("v1");

  CommandResult staged = Run(again);

  ASSERT_TRUE(staged.ok()) << staged.reason();
  EXPECT_EQ(artifacts_.fetches(), fetches);
}

TEST_F(DeployerIntegrityTest, Rollback_ToAReleaseWithFilesAdded_StillSwitches) {
  // A service that writes into its own release dir does not break it.
  WriteTextFile(ReleaseDir("v1") + "/cache/compiled.pyc", "x");

  CommandResult result = Rollback("v1", Spec());

  EXPECT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(Current(), "v1");
}

TEST_F(DeployerIntegrityTest, Recover_DiscardsAnIncompleteReleaseThatIsNotCurrent) {
  BreakRelease("v1");

  NewDeployer();

  EXPECT_THAT(OnDisk(), ElementsAre("v2"));
  EXPECT_FALSE(PathExists(ReleaseDir("v1")));
  EXPECT_EQ(Current(), "v2");
}

TEST_F(DeployerIntegrityTest, Recover_RemovesTrashAndManifestsWithoutTheirRelease) {
  // A removal killed after its rename, before its manifest went.
  const std::string releases = AppDir() + "/releases";
  std::filesystem::rename(ReleaseDir("v1"), releases + "/.trash-v1-AbC123");

  NewDeployer();

  EXPECT_THAT(FindByPrefix(releases, ".trash-"), IsEmpty());
  EXPECT_FALSE(PathExists(releases + "/.manifest-v1"));
  EXPECT_TRUE(PathExists(releases + "/.manifest-v2"));
  EXPECT_THAT(OnDisk(), ElementsAre("v2"));
}

TEST_F(DeployerIntegrityTest, Recover_RecordsTheManifestOfAReleaseStagedByAnEarlierAgent) {
  ASSERT_TRUE(std::filesystem::remove(AppDir() + "/releases/.manifest-v1"));
  EXPECT_THAT(OnDisk(), ElementsAre("v2")) << "without a manifest it is not listed";

  NewDeployer();

  EXPECT_THAT(OnDisk(), ElementsAre("v1", "v2"));
  CommandResult result = Rollback("v1", Spec());
  EXPECT_TRUE(result.ok()) << result.reason();
}

TEST_F(DeployerIntegrityTest, Retention_RemovesOldReleasesWithTheirManifests) {
  AppSpec spec = Spec();
  spec.set_keep_releases(3);
  for (const char* v : {"v3", "v4"}) StageAndDeploy(v, spec);

  EXPECT_THAT(OnDisk(), ElementsAre("v2", "v3", "v4"));
  const std::string releases = AppDir() + "/releases";
  EXPECT_FALSE(PathExists(releases + "/.manifest-v1"));
  EXPECT_THAT(FindByPrefix(releases, ".trash-"), IsEmpty());
}

TEST_F(DeployerIntegrityTest, Recover_MakesTheStateDirPrivate) {
  const std::string& state = options_.state_dir;
  ASSERT_EQ(chmod(state.c_str(), 0755), 0);
  ASSERT_EQ(chmod((state + "/apps/web.json").c_str(), 0644), 0);

  NewDeployer();

  EXPECT_EQ(ModeOf(state), 0700u);
  for (const char* sub : {"apps", "journal", "results", "downloads"}) {
    EXPECT_EQ(ModeOf(state + "/" + sub), 0700u) << sub;
  }
  EXPECT_EQ(ModeOf(state + "/apps/web.json"), 0600u);
  std::vector<std::string> results = FindByPrefix(state + "/results", "");
  ASSERT_FALSE(results.empty());
  for (const std::string& file : results) EXPECT_EQ(ModeOf(file), 0600u) << file;
}

TEST_F(DeployerIntegrityTest, Journal_IsWrittenOwnerOnly) {
  // The journal exists only while an activation runs: catch it from the
  // reload command, which runs in the middle of one.
  AppSpec spec = Spec();
  spec.set_reload("stat -c %a \"$JOURNAL\" > \"$FLEET_APP_DIR/journal-mode\"");
  options_.vars["JOURNAL"] = options_.state_dir + "/journal/web.json";
  NewDeployer();
  ASSERT_TRUE(Stage("v3", spec).ok());

  CommandResult result = Deploy("v3", spec);

  ASSERT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(::fleet::testing::ReadTextFile(AppDir() + "/journal-mode"), "600\n");
}

}  // namespace
}  // namespace fleet::agent
