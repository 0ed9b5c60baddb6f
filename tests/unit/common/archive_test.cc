// Release archives: the push-time check within the agents' caps, and
// reproducible packing of a directory.
#include "common/archive.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/fs.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/archive_builder.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet {
namespace {

using ::testing::HasSubstr;
using testing::ArchiveBuilder;
using testing::StatusIs;
using testing::TempDir;

TEST(ArchiveTest, CheckReleaseArchive_AcceptsArchivesAndNamesWhatIsNot) {
  TempDir tmp;
  const std::string good = tmp.Sub("good.tar.gz");
  ASSERT_OK(ArchiveBuilder().AddFile("bin/run", "x", 0755).WriteTarGz(good));
  EXPECT_OK(CheckReleaseArchive(good, "good.tar.gz"));
  const std::string zip = tmp.Sub("good.zip");
  ASSERT_OK(ArchiveBuilder().AddFile("a", "x").WriteZip(zip));
  EXPECT_OK(CheckReleaseArchive(zip, "good.zip"));

  const std::string readme = tmp.Sub("README.md");
  testing::WriteTextFile(readme, "# hello\n");
  EXPECT_THAT(CheckReleaseArchive(readme, "README.md"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "README.md is not an archive fleet can unpack (Unrecognized archive "
                       "format); push a tar, tar.gz, tar.zst or zip"));
  const std::string empty = tmp.Sub("empty");
  testing::WriteTextFile(empty, "");
  EXPECT_THAT(CheckReleaseArchive(empty, "empty"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not an archive")));
  EXPECT_THAT(CheckReleaseArchive(tmp.Sub("missing"), "missing"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(ArchiveTest, CheckReleaseArchive_RefusesMoreThanTheAgentsUnpack) {
  TempDir tmp;
  const std::string path = tmp.Sub("many.tar");
  ASSERT_OK(ArchiveBuilder().AddFile("a", "1234").AddFile("b", "5678").WriteTar(path));
  ArchiveLimits one_entry;
  one_entry.max_entries = 1;
  EXPECT_THAT(CheckReleaseArchive(path, "many.tar", one_entry),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("more than 1 entries")));
  ArchiveLimits six_bytes;
  six_bytes.max_total_bytes = 6;
  EXPECT_THAT(CheckReleaseArchive(path, "many.tar", six_bytes),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("more than 6 bytes")));
}

TEST(ArchiveTest, PackDirectory_SameTreeGivesTheSameBytesAndUnpacksToIt) {
  TempDir tmp;
  for (const char* name : {"a", "b"}) {
    const std::string dir = tmp.Sub(name);
    std::filesystem::create_directories(dir + "/bin");
    testing::WriteTextFile(dir + "/bin/run", "#!/bin/sh\n", 0755);
    testing::WriteTextFile(dir + "/VERSION", "v1\n");
    std::filesystem::create_symlink("bin/run", dir + "/start");
    if (std::string(name) == "a") sleep(1);  // other mtimes
  }
  uint64_t entries = 0;
  ASSERT_OK(PackDirectory(tmp.Sub("a"), tmp.Sub("a.tar.gz"), &entries));
  ASSERT_OK(PackDirectory(tmp.Sub("b"), tmp.Sub("b.tar.gz")));
  EXPECT_EQ(entries, 4u);
  EXPECT_EQ(Sha256File(tmp.Sub("a.tar.gz")).value(), Sha256File(tmp.Sub("b.tar.gz")).value());
  EXPECT_OK(CheckReleaseArchive(tmp.Sub("a.tar.gz"), "a.tar.gz"));
}

TEST(ArchiveTest, PackDirectory_RefusesAFifoAndLeavesNoArchive) {
  TempDir tmp;
  std::filesystem::create_directories(tmp.Sub("d"));
  ASSERT_EQ(mkfifo(tmp.Sub("d/pipe").c_str(), 0600), 0);
  EXPECT_THAT(PackDirectory(tmp.Sub("d"), tmp.Sub("d.tar.gz")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("pipe in ")));
  EXPECT_FALSE(std::filesystem::exists(tmp.Sub("d.tar.gz")));
}

}  // namespace
}  // namespace fleet
