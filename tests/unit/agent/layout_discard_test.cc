// Staged versions (a directory and its tree manifest) and their removal,
// which a kill at any point leaves either complete or unlisted.
#include <filesystem>
#include <string>

#include "agent/layout.h"
#include "common/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::agent {
namespace {

using ::fleet::testing::StatusIs;
using ::fleet::testing::TempDir;
using ::fleet::testing::WriteTextFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class LayoutDiscardTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(layout_.Ensure().ok()); }

  // Stages `version` as the agent does: fills a staging dir, records its
  // manifest, renames it into place.
  void Stage(const std::string& version, int files = 3) {
    const std::string staging = layout_.releases_dir() + "/.staging-" + version;
    for (int i = 0; i < files; ++i) {
      WriteTextFile(staging + "/lib/f" + std::to_string(i), version);
    }
    ASSERT_TRUE(layout_.RecordManifest(AppLayout::kRelease, version, staging).ok());
    std::filesystem::rename(staging, layout_.release_dir(version));
  }

  TempDir root_;
  AppLayout layout_{root_.path(), "web"};
};

TEST_F(LayoutDiscardTest, ListStaged_ListsOnlyDirectoriesWithTheirManifest) {
  Stage("v1");
  Stage("v2");
  ASSERT_TRUE(MakeDirs(layout_.release_dir("v3")).ok());  // no manifest

  EXPECT_THAT(layout_.ListStaged(AppLayout::kRelease), ElementsAre("v1", "v2"));
  EXPECT_TRUE(layout_.IsStaged(AppLayout::kRelease, "v1"));
  EXPECT_FALSE(layout_.IsStaged(AppLayout::kRelease, "v3"));
  EXPECT_THAT(layout_.CheckComplete(AppLayout::kRelease, "v3"),
              StatusIs(absl::StatusCode::kNotFound, "release v3 of web is not on disk"));
}

TEST_F(LayoutDiscardTest, CheckComplete_NamesWhatIsMissing) {
  Stage("v1");
  std::filesystem::remove(layout_.release_dir("v1") + "/lib/f1");

  EXPECT_THAT(layout_.CheckComplete(AppLayout::kRelease, "v1"),
              StatusIs(absl::StatusCode::kDataLoss,
                       "release v1 of web is incomplete: 1 of 4 entries missing or changed, "
                       "first: 'lib/f1' is missing"));
}

TEST_F(LayoutDiscardTest, DiscardVersion_RemovesDirectoryAndManifestAndLeavesNoTrash) {
  Stage("v1");
  Stage("v2");

  ASSERT_TRUE(layout_.DiscardVersion(AppLayout::kRelease, "v1").ok());

  EXPECT_THAT(layout_.ListVersions(AppLayout::kRelease), ElementsAre("v2"));
  EXPECT_FALSE(PathExists(layout_.manifest_path(AppLayout::kRelease, "v1")));
  EXPECT_THAT(layout_.RemoveLeftovers(), IsEmpty()) << "nothing was left for a restart";
  EXPECT_TRUE(layout_.DiscardVersion(AppLayout::kRelease, "v1").ok()) << "absent is fine";
}

TEST_F(LayoutDiscardTest, DiscardVersion_RefusesTheLinkedVersion) {
  Stage("v1");
  ASSERT_TRUE(layout_.SwitchCurrent("v1").ok());

  EXPECT_THAT(layout_.DiscardVersion(AppLayout::kRelease, "v1"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("in use")));
  EXPECT_TRUE(layout_.CheckComplete(AppLayout::kRelease, "v1").ok());
}

TEST_F(LayoutDiscardTest, RemoveLeftovers_RemovesTrashAndOrphanManifestsOnly) {
  Stage("v1");
  Stage("v2");
  // A removal killed after its rename: the trash holds a partial tree.
  std::filesystem::rename(layout_.release_dir("v1"), layout_.releases_dir() + "/.trash-v1-AbC123");

  EXPECT_THAT(layout_.RemoveLeftovers(),
              ::testing::UnorderedElementsAre(layout_.releases_dir() + "/.trash-v1-AbC123",
                                            layout_.manifest_path(AppLayout::kRelease, "v1")));
  EXPECT_THAT(layout_.ListStaged(AppLayout::kRelease), ElementsAre("v2"));
  EXPECT_TRUE(layout_.CheckComplete(AppLayout::kRelease, "v2").ok());
}

TEST_F(LayoutDiscardTest, DiscardVersion_OfConfigs_WorksTheSame) {
  const std::string staging = layout_.configs_dir() + "/.staging-c1";
  WriteTextFile(staging + "/app.yaml", "a: 1\n");
  ASSERT_TRUE(layout_.RecordManifest(AppLayout::kConfig, "c1", staging).ok());
  std::filesystem::rename(staging, layout_.config_dir("c1"));
  ASSERT_THAT(layout_.ListStaged(AppLayout::kConfig), ElementsAre("c1"));

  ASSERT_TRUE(layout_.DiscardVersion(AppLayout::kConfig, "c1").ok());

  EXPECT_THAT(layout_.ListStaged(AppLayout::kConfig), IsEmpty());
  EXPECT_THAT(layout_.ListVersions(AppLayout::kConfig), IsEmpty());
}

}  // namespace
}  // namespace fleet::agent
