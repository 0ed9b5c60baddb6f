#include "common/fs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_env.h"

namespace fleet {
namespace {

using ::fleet::testing::TempDir;
using ::fleet::testing::WriteTextFile;

constexpr uid_t kUid = 65534;
constexpr gid_t kGid = 65534;

struct stat LStat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st;
}

class ChownTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to give files away";
    ASSERT_EQ(mkdir(tmp_.Sub("tree").c_str(), 0755), 0);
    ASSERT_EQ(mkdir(tmp_.Sub("tree/sub").c_str(), 0755), 0);
    ASSERT_EQ(mkdir(tmp_.Sub("outside").c_str(), 0755), 0);
    WriteTextFile(tmp_.Sub("tree/sub/file"), "x");
    WriteTextFile(tmp_.Sub("outside/file"), "x");
  }

  TempDir tmp_;
};

TEST_F(ChownTreeTest, ChownTree_GivesEveryEntryAndTheRootToTheOwner) {
  ASSERT_EQ(symlink("sub/file", tmp_.Sub("tree/link").c_str()), 0);

  ASSERT_TRUE(ChownTree(tmp_.Sub("tree"), kUid, kGid).ok());

  for (const char* path : {"tree", "tree/sub", "tree/sub/file", "tree/link"}) {
    EXPECT_EQ(LStat(tmp_.Sub(path)).st_uid, kUid) << path;
    EXPECT_EQ(LStat(tmp_.Sub(path)).st_gid, kGid) << path;
  }
}

TEST_F(ChownTreeTest, ChownTree_NeverFollowsALinkOutOfTheTree) {
  ASSERT_EQ(symlink(tmp_.Sub("outside/file").c_str(), tmp_.Sub("tree/to-file").c_str()), 0);
  ASSERT_EQ(symlink(tmp_.Sub("outside").c_str(), tmp_.Sub("tree/sub/to-dir").c_str()), 0);

  ASSERT_TRUE(ChownTree(tmp_.Sub("tree"), kUid, kGid).ok());

  EXPECT_EQ(LStat(tmp_.Sub("outside")).st_uid, 0u);
  EXPECT_EQ(LStat(tmp_.Sub("outside/file")).st_uid, 0u);
  EXPECT_EQ(LStat(tmp_.Sub("tree/to-file")).st_uid, kUid);
  EXPECT_EQ(LStat(tmp_.Sub("tree/sub/to-dir")).st_uid, kUid);
}

TEST_F(ChownTreeTest, ChownTree_RefusesARootThatIsALink) {
  ASSERT_EQ(symlink(tmp_.Sub("outside").c_str(), tmp_.Sub("link-root").c_str()), 0);

  absl::Status st = ChownTree(tmp_.Sub("link-root"), kUid, kGid);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), ::testing::HasSubstr("cannot open directory"));
  EXPECT_EQ(LStat(tmp_.Sub("outside")).st_uid, 0u);
  EXPECT_EQ(LStat(tmp_.Sub("outside/file")).st_uid, 0u);
}

TEST(WriteFileDurablyTest, WritesExactlyTheModeWhateverTheUmask) {
  TempDir tmp;
  mode_t old = umask(0077);
  absl::Status st = WriteFileDurably(tmp.Sub("pub"), "key\n", 0644, /*replace=*/false);
  umask(old);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(::fleet::testing::FileMode(tmp.Sub("pub")), 0644u);
  EXPECT_EQ(::fleet::testing::ReadTextFile(tmp.Sub("pub")), "key\n");
  EXPECT_FALSE(PathExists(tmp.Sub("pub.tmp")));
}

TEST(WriteFileDurablyTest, WithoutReplaceNeverOverwritesAndSaysSo) {
  TempDir tmp;
  WriteTextFile(tmp.Sub("token"), "first\n");

  absl::Status st = WriteFileDurably(tmp.Sub("token"), "second\n", 0600, /*replace=*/false);

  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  EXPECT_EQ(::fleet::testing::ReadTextFile(tmp.Sub("token")), "first\n");
  EXPECT_FALSE(PathExists(tmp.Sub("token.tmp")));
}

TEST(WriteFileDurablyTest, WithReplaceReplacesAndRemovesALeftoverTempFile) {
  TempDir tmp;
  WriteTextFile(tmp.Sub("ca.crt"), "old\n");
  WriteTextFile(tmp.Sub("ca.crt.tmp"), "left by a killed write");

  ASSERT_TRUE(WriteFileDurably(tmp.Sub("ca.crt"), "new\n", 0644, /*replace=*/true).ok());

  EXPECT_EQ(::fleet::testing::ReadTextFile(tmp.Sub("ca.crt")), "new\n");
  EXPECT_FALSE(PathExists(tmp.Sub("ca.crt.tmp")));
}

TEST(CheckFreeSpaceTest, RefusesMoreThanTheDiskHasWithOneLineNamingBoth) {
  TempDir tmp;
  EXPECT_TRUE(CheckFreeSpace(tmp.path(), 1).ok());

  absl::Status st = CheckFreeSpace(tmp.path(), uint64_t{1} << 60);

  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_THAT(std::string(st.message()),
              ::testing::MatchesRegex("needs 1[0-9.]+ TiB in " + tmp.path() +
                                      ", [0-9.]+ [KMGT]?i?B free"));
}

TEST(FormatBytesTest, UsesTheLargestUnitBelowTheValue) {
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(uint64_t{300} << 20), "300.0 MiB");
  EXPECT_EQ(FormatBytes((uint64_t{12} << 30) / 10), "1.2 GiB");
}

TEST(MakePrivateTreeTest, CreatesA0700DirAndTightensWhatIsLooser) {
  TempDir tmp;
  const std::string root = tmp.Sub("data");
  absl::StatusOr<int> made = MakePrivateTree(root);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(*made, 0) << "a new dir is private from the start";
  EXPECT_EQ(LStat(root).st_mode & 07777, 0700u);

  ASSERT_EQ(chmod(root.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((root + "/blobs").c_str(), 0755), 0);
  WriteTextFile(root + "/blobs/ab", "blob");
  ASSERT_EQ(chmod((root + "/blobs/ab").c_str(), 0644), 0);
  WriteTextFile(tmp.Sub("elsewhere"), "x");
  ASSERT_EQ(chmod(tmp.Sub("elsewhere").c_str(), 0644), 0);
  ASSERT_EQ(symlink(tmp.Sub("elsewhere").c_str(), (root + "/link").c_str()), 0);

  made = MakePrivateTree(root);

  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(*made, 3);
  EXPECT_EQ(LStat(root).st_mode & 07777, 0700u);
  EXPECT_EQ(LStat(root + "/blobs").st_mode & 07777, 0700u);
  EXPECT_EQ(LStat(root + "/blobs/ab").st_mode & 07777, 0600u);
  EXPECT_EQ(LStat(tmp.Sub("elsewhere")).st_mode & 07777, 0644u) << "links are not followed";
}

}  // namespace
}  // namespace fleet
