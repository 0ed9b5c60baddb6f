#include "controller/blob_store.h"

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::controller {
namespace {

using ::fleet::testing::StatusIs;
using ::fleet::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<std::string> Uploads(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(root + "/tmp")) {
    out.push_back(e.path().string());
  }
  return out;
}

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(blobs_.Init().ok()); }
  TempDir dir_;
  BlobStore blobs_{dir_.Sub("blobs")};
};

TEST_F(BlobStoreTest, NewWriter_RefusesAnUploadThatDoesNotFitBeforeWritingAnything) {
  auto writer = blobs_.NewWriter(uint64_t{1} << 60);

  EXPECT_THAT(writer.status(), StatusIs(absl::StatusCode::kResourceExhausted,
                                        HasSubstr(" TiB in " + dir_.Sub("blobs") + ", ")));
  EXPECT_THAT(Uploads(dir_.Sub("blobs")), IsEmpty());
}

TEST_F(BlobStoreTest, Commit_StoresTheBlobOwnerOnly) {
  auto writer = blobs_.NewWriter(5);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append("hello").ok());
  absl::StatusOr<std::string> sha = (*writer)->Commit();
  ASSERT_TRUE(sha.ok()) << sha.status();

  struct stat st;
  ASSERT_EQ(stat(blobs_.PathFor(*sha).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(BlobStoreTest, Writer_DestroyedWithoutCommit_LeavesNoPartialBlob) {
  {
    auto writer = blobs_.NewWriter(10);
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append("hello").ok());
    EXPECT_EQ(Uploads(dir_.Sub("blobs")).size(), 1u);
  }
  EXPECT_THAT(Uploads(dir_.Sub("blobs")), IsEmpty());
}

}  // namespace
}  // namespace fleet::controller
