// A full apps root while unpacking: one line naming the dir and what is
// free, instead of libarchive's "Write failed". Needs a small tmpfs, which
// only root may mount; skipped otherwise.
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/unpack.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/archive_builder.h"
#include "tests/testing/test_env.h"

namespace fleet::agent {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(UnpackDiskFullTest, Unpack_IntoAFullFilesystem_SaysWhereAndWhatIsFree) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";
  fleet::testing::TempDir tmp;
  const std::string mnt = tmp.Sub("small");
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=512k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  const std::string dest = mnt + "/release";
  ASSERT_EQ(mkdir(dest.c_str(), 0755), 0);
  std::mt19937 gen(7);
  std::string noise(2 << 20, '\0');
  for (char& c : noise) c = static_cast<char>(gen());
  fleet::testing::ArchiveBuilder archive;
  archive.AddFile("big.bin", noise);
  const std::string path = tmp.Sub("artifact.tar.gz");
  ASSERT_TRUE(archive.WriteTarGz(path).ok());

  UnpackStats stats;
  absl::Status st = UnpackArchive(path, dest, UnpackLimits(), &stats);
  umount2(mnt.c_str(), MNT_DETACH);

  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_THAT(std::string(st.message()),
              AllOf(StartsWith(absl::StrCat("no space left in ")), HasSubstr("/small/release ("),
                    HasSubstr("inodes free) while extracting 'big.bin'")));
  EXPECT_THAT(std::string(st.message()), ::testing::Not(HasSubstr("\n")));
}

}  // namespace
}  // namespace fleet::agent
