#include "agent/layout.h"

#include <unistd.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::agent {
namespace {

using ::fleet::testing::StatusIs;
using ::fleet::testing::ToStatus;

using ::fleet::testing::TempDir;
using ::fleet::testing::WriteTextFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// The raw target of a symlink, "" when there is none.
std::string LinkTarget(const std::string& path) {
  absl::StatusOr<std::string> target = ReadLink(path);
  return target.ok() ? *target : "";
}

class LayoutTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(layout_.Ensure().ok()); }

  // A complete release with one file in it.
  void AddRelease(const std::string& version) {
    WriteTextFile(layout_.release_dir(version) + "/VERSION", version);
  }

  std::string TempLink() const { return layout_.app_dir() + "/.current.tmp"; }

  TempDir root_;
  AppLayout layout_{root_.path(), "web"};
};

TEST_F(LayoutTest, Ensure_CreatesAppReleasesAndSharedDirs) {
  EXPECT_TRUE(PathExists(root_.Sub("web/releases")));
  EXPECT_TRUE(PathExists(root_.Sub("web/shared")));
  EXPECT_TRUE(layout_.Ensure().ok()) << "a second Ensure must be a no-op";
}

TEST_F(LayoutTest, CurrentRelease_IsEmptyWithoutCurrentLink) {
  absl::StatusOr<std::string> current = layout_.CurrentRelease();
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_EQ(*current, "");
}

TEST_F(LayoutTest, SwitchCurrent_PointsCurrentAtReleaseAndLeavesNoTempLink) {
  AddRelease("v1");
  ASSERT_TRUE(layout_.SwitchCurrent("v1").ok());

  EXPECT_EQ(LinkTarget(layout_.current_link()), "releases/v1");
  EXPECT_EQ(layout_.CurrentRelease().value_or("?"), "v1");
  EXPECT_FALSE(PathExists(TempLink()));
  // The link is relative, so it still resolves when the apps root moves.
  EXPECT_EQ(::fleet::testing::ReadTextFile(layout_.current_link() + "/VERSION"), "v1");
}

TEST_F(LayoutTest, SwitchCurrent_ReplacesAnExistingCurrentLink) {
  AddRelease("v1");
  AddRelease("v2");
  ASSERT_TRUE(layout_.SwitchCurrent("v1").ok());
  ASSERT_TRUE(layout_.SwitchCurrent("v2").ok());

  EXPECT_EQ(layout_.CurrentRelease().value_or("?"), "v2");
  EXPECT_FALSE(PathExists(TempLink()));
}

TEST_F(LayoutTest, SwitchCurrent_RefusesMissingReleaseAndLeavesCurrentUnchanged) {
  AddRelease("v1");
  ASSERT_TRUE(layout_.SwitchCurrent("v1").ok());

  EXPECT_THAT(layout_.SwitchCurrent("v9"), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                    HasSubstr("release v9 of web is not on disk")));
  EXPECT_EQ(LinkTarget(layout_.current_link()), "releases/v1");
  EXPECT_FALSE(PathExists(TempLink()));
}

TEST_F(LayoutTest, SwitchCurrent_RefusesAStagingDirAndAnUnsafeName) {
  AddRelease("v1");
  ASSERT_TRUE(MakeDirs(layout_.releases_dir() + "/.staging-v2-abc").ok());
  ASSERT_TRUE(layout_.SwitchCurrent("v1").ok());

  EXPECT_THAT(layout_.SwitchCurrent(".staging-v2-abc"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not on disk")));
  EXPECT_THAT(layout_.SwitchCurrent("../releases/v1"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not on disk")));
  EXPECT_EQ(LinkTarget(layout_.current_link()), "releases/v1");
}

TEST_F(LayoutTest, SwitchCurrent_SucceedsOverAStaleTempLinkLeftByACrash) {
  AddRelease("v1");
  AddRelease("v2");
  ASSERT_TRUE(layout_.SwitchCurrent("v1").ok());
  // A crash between symlinkat and renameat leaves the temp link behind,
  // pointing anywhere.
  ASSERT_EQ(symlink("/nowhere/at/all", TempLink().c_str()), 0);

  ASSERT_TRUE(layout_.SwitchCurrent("v2").ok());

  EXPECT_EQ(LinkTarget(layout_.current_link()), "releases/v2");
  EXPECT_FALSE(PathExists(TempLink()));
}

TEST_F(LayoutTest, RemoveCurrent_RemovesTheLinkAndIsOkWithoutOne) {
  AddRelease("v1");
  ASSERT_TRUE(layout_.SwitchCurrent("v1").ok());

  ASSERT_TRUE(layout_.RemoveCurrent().ok());
  EXPECT_FALSE(PathExists(layout_.current_link()));
  EXPECT_TRUE(PathExists(layout_.release_dir("v1"))) << "only the link goes";
  EXPECT_TRUE(layout_.RemoveCurrent().ok());
}

TEST_F(LayoutTest, RemoveLeftovers_RemovesStagingDirsAndTempLinkButNoCompleteRelease) {
  AddRelease("v1");
  AddRelease("v2");
  AddRelease("staging-v3");  // a legal release name, not a leftover
  ASSERT_TRUE(layout_.SwitchCurrent("v2").ok());
  WriteTextFile(layout_.releases_dir() + "/.staging-v3-AbC123/bin/start", "half");
  ASSERT_TRUE(MakeDirs(layout_.releases_dir() + "/.staging-v4-XyZ789").ok());
  ASSERT_EQ(symlink("releases/v1", TempLink().c_str()), 0);

  std::vector<std::string> removed = layout_.RemoveLeftovers();

  EXPECT_THAT(removed,
              UnorderedElementsAre(layout_.releases_dir() + "/.staging-v3-AbC123",
                                   layout_.releases_dir() + "/.staging-v4-XyZ789", TempLink()));
  EXPECT_FALSE(PathExists(layout_.releases_dir() + "/.staging-v3-AbC123"));
  EXPECT_FALSE(PathExists(layout_.releases_dir() + "/.staging-v4-XyZ789"));
  EXPECT_FALSE(PathExists(TempLink()));
  EXPECT_THAT(layout_.ListReleases(), ElementsAre("staging-v3", "v1", "v2"));
  EXPECT_EQ(::fleet::testing::ReadTextFile(layout_.release_dir("v1") + "/VERSION"), "v1");
  EXPECT_EQ(LinkTarget(layout_.current_link()), "releases/v2");
}

TEST_F(LayoutTest, RemoveLeftovers_ReturnsNothingWhenThereIsNothingToRemove) {
  AddRelease("v1");
  ASSERT_TRUE(layout_.SwitchCurrent("v1").ok());
  EXPECT_THAT(layout_.RemoveLeftovers(), IsEmpty());
  EXPECT_THAT(layout_.ListReleases(), ElementsAre("v1"));
}

TEST_F(LayoutTest, CurrentRelease_IsDataLossForAnAbsoluteLink) {
  AddRelease("v1");
  ASSERT_EQ(symlink(layout_.release_dir("v1").c_str(), layout_.current_link().c_str()), 0);
  EXPECT_THAT(layout_.CurrentRelease().status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("not into releases/")));
}

TEST_F(LayoutTest, CurrentRelease_IsDataLossForALinkOutsideReleases) {
  ASSERT_TRUE(MakeDirs(root_.Sub("elsewhere/v1")).ok());
  ASSERT_EQ(symlink("../elsewhere/v1", layout_.current_link().c_str()), 0);
  EXPECT_THAT(layout_.CurrentRelease().status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("'../elsewhere/v1'")));
}

TEST_F(LayoutTest, CurrentRelease_IsDataLossForALinkThatClimbsOutOfReleases) {
  ASSERT_TRUE(MakeDirs(root_.Sub("elsewhere")).ok());
  ASSERT_EQ(symlink("releases/../../elsewhere", layout_.current_link().c_str()), 0);
  EXPECT_THAT(layout_.CurrentRelease().status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("releases/../../elsewhere")));
}

TEST_F(LayoutTest, CurrentRelease_IsDataLossForALinkIntoAReleaseSubdir) {
  AddRelease("v1");
  ASSERT_TRUE(MakeDirs(layout_.release_dir("v1") + "/bin").ok());
  ASSERT_EQ(symlink("releases/v1/bin", layout_.current_link().c_str()), 0);
  EXPECT_THAT(layout_.CurrentRelease().status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("'releases/v1/bin'")));
}

TEST_F(LayoutTest, ListReleases_SkipsStagingDirsFilesAndSymlinks) {
  AddRelease("v2");
  AddRelease("v1");
  ASSERT_TRUE(MakeDirs(layout_.releases_dir() + "/.staging-v3-AbC123").ok());
  WriteTextFile(layout_.releases_dir() + "/notes.txt", "not a release");
  ASSERT_EQ(symlink("v1", (layout_.releases_dir() + "/alias").c_str()), 0);

  EXPECT_THAT(layout_.ListReleases(), ElementsAre("v1", "v2"));
  EXPECT_TRUE(layout_.HasRelease("v1"));
  EXPECT_FALSE(layout_.HasRelease(".staging-v3-AbC123"));
  EXPECT_FALSE(layout_.HasRelease("v3"));
}

TEST(ListAppDirsTest, ListsOnlyDirsWithReleases) {
  TempDir root;
  ASSERT_TRUE(AppLayout(root.path(), "web").Ensure().ok());
  ASSERT_TRUE(AppLayout(root.path(), "api").Ensure().ok());
  ASSERT_TRUE(MakeDirs(root.Sub("lost+found")).ok());
  WriteTextFile(root.Sub("README"), "x");

  EXPECT_THAT(ListAppDirs(root.path()), ElementsAre("api", "web"));
}

}  // namespace
}  // namespace fleet::agent
