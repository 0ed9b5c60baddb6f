#include "agent/tree_manifest.h"

#include <unistd.h>

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::agent {
namespace {

using ::fleet::testing::StatusIs;
using ::fleet::testing::TempDir;
using ::fleet::testing::WriteTextFile;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class TreeManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteTextFile(dir_.Sub("VERSION"), "v1");
    WriteTextFile(dir_.Sub("bin/start"), "#!/bin/sh\n");
    WriteTextFile(dir_.Sub("odd name\nwith newline"), "x");
    ASSERT_EQ(symlink("bin/start", dir_.Sub("start").c_str()), 0);
    absl::StatusOr<std::string> manifest = DescribeTree(dir_.path());
    ASSERT_TRUE(manifest.ok()) << manifest.status();
    manifest_ = *manifest;
  }

  TempDir dir_;
  std::string manifest_;
};

TEST_F(TreeManifestTest, Describe_CountsEveryEntryAndTheFilesBytes) {
  // VERSION, bin, bin/start, the odd name, start.
  EXPECT_THAT(manifest_, StartsWith("fleet-manifest 1 5 13\n"));
  EXPECT_THAT(manifest_, HasSubstr("f 1 odd name\\nwith newline\n"));
  EXPECT_TRUE(CheckTree(dir_.path(), manifest_).ok());
}

TEST_F(TreeManifestTest, Check_NamesAMissingFile) {
  std::filesystem::remove(dir_.Sub("bin/start"));

  EXPECT_THAT(CheckTree(dir_.path(), manifest_),
              StatusIs(absl::StatusCode::kDataLoss,
                       "1 of 5 entries missing or changed, first: 'bin/start' is missing"));
}

TEST_F(TreeManifestTest, Check_FindsAFileWithAnotherSizeOrType) {
  WriteTextFile(dir_.Sub("VERSION"), "v10");
  EXPECT_THAT(CheckTree(dir_.path(), manifest_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("'VERSION' has 3 bytes, not 2")));

  WriteTextFile(dir_.Sub("VERSION"), "v1");
  std::filesystem::remove(dir_.Sub("start"));
  WriteTextFile(dir_.Sub("start"), "not a link");
  EXPECT_THAT(CheckTree(dir_.path(), manifest_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("'start' changed its type")));
}

TEST_F(TreeManifestTest, Check_AllowsEntriesAddedLater) {
  WriteTextFile(dir_.Sub("cache/x.pyc"), "compiled");
  ASSERT_EQ(symlink("../../config", dir_.Sub("config").c_str()), 0);

  EXPECT_TRUE(CheckTree(dir_.path(), manifest_).ok());
}

TEST_F(TreeManifestTest, Describe_LeavesOutFleetsConfigLink) {
  ASSERT_EQ(symlink("../../config", dir_.Sub("config").c_str()), 0);
  absl::StatusOr<std::string> manifest = DescribeTree(dir_.path());
  ASSERT_TRUE(manifest.ok());
  std::filesystem::remove(dir_.Sub("config"));

  EXPECT_TRUE(CheckTree(dir_.path(), *manifest).ok())
      << "activation makes the link again, so its absence breaks nothing";
}

TEST_F(TreeManifestTest, Check_RefusesWhatIsNotAManifest) {
  EXPECT_THAT(CheckTree(dir_.path(), "hello\n"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CheckTree(dir_.path(), "fleet-manifest 1 1 0\nf x\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad line 2")));
}

}  // namespace
}  // namespace fleet::agent
