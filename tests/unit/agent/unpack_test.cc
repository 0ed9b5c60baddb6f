#include "agent/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/archive_builder.h"
#include "tests/testing/test_env.h"

namespace fleet::agent {
namespace {

using ::fleet::testing::ArchiveBuilder;
using ::fleet::testing::ReadTextFile;
using ::fleet::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr char kSentinel[] = "untouched";
constexpr int64_t kMtime = 1700000000;  // ArchiveBuilder's default

MATCHER_P2(
    StatusIs, code, message_matcher,
    absl::StrCat("has code ", absl::StatusCodeToString(code),
                 " and a message that ",
                 ::testing::DescribeMatcher<std::string>(message_matcher))) {
  if (arg.code() != code) {
    *result_listener << "has code " << absl::StatusCodeToString(arg.code())
                     << ": " << arg.message();
    return false;
  }
  return ::testing::ExplainMatchResult(
      message_matcher, std::string(arg.message()), result_listener);
}

// Every path below `root`, relative to it, without following symlinks.
std::vector<std::string> ListTree(const std::string& root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    out.push_back(it->path().lexically_relative(root).string());
  }
  return out;
}

struct stat LStat(const std::string& path) {
  struct stat st = {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st;
}

int Mode(const std::string& path) { return LStat(path).st_mode & 07777; }

// Incompressible bytes, so that a cut gzip stream ends inside the data.
std::string NoiseBytes(size_t n) {
  std::mt19937 gen(42);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(gen());
  return out;
}

// Each test unpacks into dest_ next to outside_, a directory holding one
// sentinel file: the target of every escape the hostile archives attempt.
class UnpackArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(mkdir(dest_.c_str(), 0755), 0);
    fleet::testing::WriteTextFile(outside_ + "/sentinel", kSentinel);
  }

  absl::Status UnpackTarGz(const ArchiveBuilder& builder,
                           const UnpackLimits& limits = UnpackLimits()) {
    absl::Status st = builder.WriteTarGz(archive_);
    EXPECT_TRUE(st.ok()) << st;
    return UnpackArchive(archive_, dest_, limits, &stats_);
  }

  void ExpectNothingWrittenOutside() {
    EXPECT_THAT(ListTree(outside_), UnorderedElementsAre("sentinel"));
    EXPECT_EQ(ReadTextFile(outside_ + "/sentinel"), kSentinel);
    EXPECT_EQ(LStat(outside_ + "/sentinel").st_nlink, 1u)
        << "a hardlink to the sentinel was made";
    std::vector<std::string> top;
    for (const auto& e : std::filesystem::directory_iterator(tmp_.path())) {
      top.push_back(e.path().filename().string());
    }
    EXPECT_THAT(top,
                UnorderedElementsAre("release", "outside", "artifact.tar.gz"));
  }

  TempDir tmp_;
  const std::string dest_ = tmp_.Sub("release");
  const std::string outside_ = tmp_.Sub("outside");
  const std::string archive_ = tmp_.Sub("artifact.tar.gz");
  UnpackStats stats_;
};

TEST_F(UnpackArchiveTest,
       Unpack_ExtractsNestedTreeWithModesSymlinksAndHardlink) {
  ArchiveBuilder b;
  b.AddDirectory("bin", 0755)
      .AddFile("bin/start", "#!/bin/sh\necho hi\n", 0755)
      .AddFile("lib/v1/libapp.so", "elf", 0644)  // lib/ and lib/v1/ implicit
      .AddFile("etc/app.conf", "port=8080\n", 0600)
      .AddFile("share/doc/README", "read me", 0444)
      .AddDirectory("private", 0750)
      .AddSymlink("lib/current", "v1")
      .AddSymlink("bin/libapp.so", "../lib/v1/libapp.so")
      .AddHardlink("bin/start-again", "bin/start");

  ASSERT_TRUE(UnpackTarGz(b).ok());

  EXPECT_EQ(stats_.entries, 9u);
  EXPECT_EQ(stats_.bytes, 18u + 3u + 10u + 7u);
  EXPECT_EQ(ReadTextFile(dest_ + "/bin/start"), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(ReadTextFile(dest_ + "/etc/app.conf"), "port=8080\n");
  EXPECT_EQ(Mode(dest_ + "/bin"), 0755);
  EXPECT_EQ(Mode(dest_ + "/bin/start"), 0755);
  EXPECT_EQ(Mode(dest_ + "/lib/v1/libapp.so"), 0644);
  EXPECT_EQ(Mode(dest_ + "/etc/app.conf"), 0600);
  EXPECT_EQ(Mode(dest_ + "/share/doc/README"), 0444);
  EXPECT_EQ(Mode(dest_ + "/private"), 0750);
  EXPECT_TRUE(S_ISDIR(LStat(dest_ + "/share/doc").st_mode));
  EXPECT_EQ(LStat(dest_ + "/bin/start").st_mtime, kMtime);
  EXPECT_EQ(ReadLink(dest_ + "/lib/current").value_or(""), "v1");
  EXPECT_EQ(ReadLink(dest_ + "/bin/libapp.so").value_or(""),
            "../lib/v1/libapp.so");
  EXPECT_EQ(ReadTextFile(dest_ + "/bin/libapp.so"), "elf");
  EXPECT_EQ(LStat(dest_ + "/bin/start-again").st_ino,
            LStat(dest_ + "/bin/start").st_ino);
  EXPECT_EQ(LStat(dest_ + "/bin/start").st_nlink, 2u);
  ExpectNothingWrittenOutside();
}

TEST_F(UnpackArchiveTest, Unpack_StripsLeadingDotSlashAndSkipsTheRootEntry) {
  ArchiveBuilder b;  // as `tar -C build .` writes it
  b.AddDirectory("./", 0700)
      .AddDirectory("./bin", 0755)
      .AddFile("./bin/start", "x", 0755)
      .AddFile(".//etc/./app.conf", "y", 0644);

  ASSERT_TRUE(UnpackTarGz(b).ok());

  EXPECT_THAT(ListTree(dest_),
              UnorderedElementsAre("bin", "bin/start", "etc", "etc/app.conf"));
  EXPECT_EQ(Mode(dest_), 0755) << "the './' entry changed the destination";
  EXPECT_EQ(stats_.entries, 4u);
}

TEST_F(UnpackArchiveTest, Unpack_ExtractsZipArchive) {
  ArchiveBuilder b;
  b.AddFile("bin/start", "#!/bin/sh\n", 0755)
      .AddFile("README", "hello", 0644)
      .AddSymlink("bin/readme", "../README");
  std::string zip = tmp_.Sub("artifact.zip");
  ASSERT_TRUE(b.WriteZip(zip).ok());

  ASSERT_TRUE(UnpackArchive(zip, dest_, UnpackLimits(), &stats_).ok());

  EXPECT_EQ(ReadTextFile(dest_ + "/bin/start"), "#!/bin/sh\n");
  EXPECT_EQ(Mode(dest_ + "/bin/start"), 0755);
  EXPECT_EQ(ReadLink(dest_ + "/bin/readme").value_or(""), "../README");
  EXPECT_EQ(stats_.entries, 3u);
}

TEST_F(UnpackArchiveTest, Unpack_RefusesDotDotPath) {
  ArchiveBuilder b;
  b.AddFile("ok", "fine").AddFile("../outside/pwned", "gotcha");

  EXPECT_THAT(UnpackTarGz(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("archive entry '../outside/pwned': path "
                                 "escapes the release directory")));
  ExpectNothingWrittenOutside();
}

TEST_F(UnpackArchiveTest, Unpack_RefusesDotDotInsideThePath) {
  ArchiveBuilder b;
  b.AddDirectory("bin").AddFile("bin/../../outside/pwned", "gotcha");

  EXPECT_THAT(UnpackTarGz(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'bin/../../outside/pwned'"),
                             HasSubstr("escapes the release directory"))));
  ExpectNothingWrittenOutside();
}

TEST_F(UnpackArchiveTest, Unpack_RefusesAbsolutePath) {
  ArchiveBuilder b;
  b.AddFile(outside_ + "/pwned", "gotcha");

  EXPECT_THAT(UnpackTarGz(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat("archive entry '", outside_,
                                              "/pwned': path is absolute"))));
  ExpectNothingWrittenOutside();
  EXPECT_THAT(ListTree(dest_), IsEmpty());
}

TEST_F(UnpackArchiveTest, Unpack_RefusesSymlinkWithAbsoluteTarget) {
  ArchiveBuilder b;
  b.AddSymlink("data", outside_);

  EXPECT_THAT(UnpackTarGz(b), StatusIs(absl::StatusCode::kInvalidArgument,
                                       AllOf(HasSubstr("archive entry 'data'"),
                                             HasSubstr("is absolute"))));
  EXPECT_FALSE(PathExists(dest_ + "/data"));
  ExpectNothingWrittenOutside();
}

TEST_F(UnpackArchiveTest, Unpack_RefusesSymlinkWhoseTargetResolvesOutside) {
  ArchiveBuilder b;
  b.AddDirectory("a").AddSymlink("a/evil", "../../outside");

  EXPECT_THAT(UnpackTarGz(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("archive entry 'a/evil'"),
                             HasSubstr("resolves outside the release"))));
  EXPECT_FALSE(PathExists(dest_ + "/a/evil"));
  ExpectNothingWrittenOutside();
}

TEST_F(UnpackArchiveTest, Unpack_RefusesSymlinkEscapeFollowedByWriteThroughIt) {
  ArchiveBuilder b;
  b.AddSymlink("evil", "../outside").AddFile("evil/pwned", "gotcha");

  EXPECT_THAT(UnpackTarGz(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("archive entry 'evil'"),
                             HasSubstr("resolves outside the release"))));
  EXPECT_FALSE(PathExists(dest_ + "/evil"));
  ExpectNothingWrittenOutside();
}

TEST_F(UnpackArchiveTest, Unpack_RefusesWriteThroughSymlinkCreatedEarlier) {
  ArchiveBuilder b;
  b.AddDirectory("real").AddSymlink("alias", "real").AddFile("alias/f", "x");

  EXPECT_THAT(
      UnpackTarGz(b),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("archive entry 'alias/f': is written through symlink "
                         "'alias' created earlier in the archive")));
  EXPECT_FALSE(PathExists(dest_ + "/real/f"));
  ExpectNothingWrittenOutside();
}

// Lexically "d/up/../outside" is "d/outside", inside the release; the kernel
// follows d/up to the release root first, and ".." then leaves it.
TEST_F(UnpackArchiveTest, Unpack_RefusesSymlinkTargetClimbingThroughALink) {
  ArchiveBuilder b;
  b.AddDirectory("d")
      .AddSymlink("d/up", "..")
      .AddSymlink("esc", "d/up/../outside");

  EXPECT_THAT(UnpackTarGz(b), StatusIs(absl::StatusCode::kInvalidArgument,
                                       AllOf(HasSubstr("archive entry 'esc'"),
                                             HasSubstr("'..' after a name"))));
  EXPECT_FALSE(PathExists(dest_ + "/esc"));
  ExpectNothingWrittenOutside();
}

TEST_F(UnpackArchiveTest, Unpack_RefusesHardlinkToAbsolutePath) {
  ArchiveBuilder b;
  b.AddHardlink("passwd", "/etc/passwd");

  EXPECT_THAT(UnpackTarGz(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("archive entry 'passwd': hardlink target "
                                 "'/etc/passwd' is absolute")));
  EXPECT_FALSE(PathExists(dest_ + "/passwd"));
}

// A hardlink carrying data would write that data into the linked file.
TEST_F(UnpackArchiveTest, Unpack_RefusesHardlinkWithDataToFileOutside) {
  ArchiveBuilder::Entry link;
  link.type = ArchiveBuilder::Type::kHardlink;
  link.path = "innocent";
  link.target = outside_ + "/sentinel";
  link.content = "overwritten";
  ArchiveBuilder b;
  b.Add(link);

  EXPECT_THAT(UnpackTarGz(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("archive entry 'innocent'"),
                             HasSubstr("is absolute"))));
  ExpectNothingWrittenOutside();
}

TEST_F(UnpackArchiveTest, Unpack_RefusesHardlinkEscapingWithDotDot) {
  ArchiveBuilder b;
  b.AddHardlink("h", "../outside/sentinel");

  EXPECT_THAT(UnpackTarGz(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("archive entry 'h': hardlink target "
                                 "'../outside/sentinel' escapes the release "
                                 "directory")));
  ExpectNothingWrittenOutside();
}

TEST_F(UnpackArchiveTest, Unpack_RefusesHardlinkToEntryNotYetExtracted) {
  ArchiveBuilder b;
  b.AddHardlink("h", "later").AddFile("later", "x");

  EXPECT_THAT(UnpackTarGz(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("archive entry 'h': hardlink target 'later' "
                                 "is not a regular file earlier in the "
                                 "archive")));
  EXPECT_FALSE(PathExists(dest_ + "/h"));
}

// link(2) does not follow symlinks: "h" would become a second name of a/s,
// whose "../x" then resolves from the release root, outside it.
TEST_F(UnpackArchiveTest, Unpack_RefusesHardlinkToSymlinkEntry) {
  ArchiveBuilder b;
  b.AddFile("x", "x")
      .AddDirectory("a")
      .AddSymlink("a/s", "../x")
      .AddHardlink("h", "a/s");

  EXPECT_THAT(UnpackTarGz(b), StatusIs(absl::StatusCode::kInvalidArgument,
                                       AllOf(HasSubstr("archive entry 'h'"),
                                             HasSubstr("not a regular file"))));
  EXPECT_FALSE(PathExists(dest_ + "/h"));
}

TEST_F(UnpackArchiveTest, Unpack_RefusesCharacterDevice) {
  ArchiveBuilder b;
  b.AddCharDevice("dev/mem", 1, 1);

  EXPECT_THAT(UnpackTarGz(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("archive entry 'dev/mem': is a character "
                                 "device")));
  EXPECT_THAT(ListTree(dest_), IsEmpty());
}

TEST_F(UnpackArchiveTest, Unpack_RefusesBlockDevice) {
  ArchiveBuilder b;
  b.AddBlockDevice("dev/sda", 8, 0);

  EXPECT_THAT(UnpackTarGz(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("archive entry 'dev/sda': is a block "
                                 "device")));
  EXPECT_THAT(ListTree(dest_), IsEmpty());
}

TEST_F(UnpackArchiveTest, Unpack_RefusesFifo) {
  ArchiveBuilder b;
  b.AddFifo("run/pipe");

  EXPECT_THAT(UnpackTarGz(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("archive entry 'run/pipe': is a FIFO")));
  EXPECT_THAT(ListTree(dest_), IsEmpty());
}

TEST_F(UnpackArchiveTest, Unpack_StripsSetuidSetgidAndStickyBits) {
  ArchiveBuilder b;
  b.AddFile("bin/suid", "x", 04755)
      .AddFile("bin/sgid", "x", 02711)
      .AddDirectory("tmp", 01777)
      .AddDirectory("shared", 02775);

  ASSERT_TRUE(UnpackTarGz(b).ok());

  EXPECT_EQ(Mode(dest_ + "/bin/suid"), 0755);
  EXPECT_EQ(Mode(dest_ + "/bin/sgid"), 0711);
  EXPECT_EQ(Mode(dest_ + "/tmp"), 0755);
  EXPECT_EQ(Mode(dest_ + "/shared"), 0755);
}

TEST_F(UnpackArchiveTest, Unpack_LeavesNothingWritableButByItsOwner) {
  ArchiveBuilder b;
  b.AddFile("bin/run", "x", 0777)
      .AddFile("etc/app.conf", "x", 0666)
      .AddDirectory("var", 0777)
      .AddFile("deep/implicit/parent/file", "x", 0646);
  // Implicit parent directories come from the umask; the widest one must
  // not make them writable for everyone either.
  mode_t old = umask(0);
  absl::Status st = UnpackTarGz(b);
  umask(old);
  ASSERT_TRUE(st.ok()) << st;

  EXPECT_EQ(Mode(dest_ + "/bin/run"), 0755);
  EXPECT_EQ(Mode(dest_ + "/etc/app.conf"), 0644);
  EXPECT_EQ(Mode(dest_ + "/var"), 0755);
  EXPECT_EQ(Mode(dest_ + "/deep/implicit/parent/file"), 0644);
  for (const char* dir : {"/deep", "/deep/implicit", "/deep/implicit/parent"}) {
    EXPECT_EQ(Mode(dest_ + dir) & 0022, 0) << dir << " is writable by others";
  }
}

TEST_F(UnpackArchiveTest, Unpack_IgnoresOwnershipRecordedInArchive) {
  ArchiveBuilder::Entry file;
  file.path = "owned/file";
  file.content = "x";
  file.uid = 4242;
  file.gid = 4243;
  file.uname = "mallory";
  file.gname = "mallory";
  ArchiveBuilder::Entry dir = file;
  dir.type = ArchiveBuilder::Type::kDirectory;
  dir.path = "owned";
  dir.content.clear();
  ArchiveBuilder b;
  b.Add(dir).Add(file);

  ASSERT_TRUE(UnpackTarGz(b).ok());

  for (const std::string& path : {dest_ + "/owned", dest_ + "/owned/file"}) {
    struct stat st = LStat(path);
    EXPECT_EQ(st.st_uid, geteuid()) << path;
    EXPECT_EQ(st.st_gid, getegid()) << path;
  }
}

TEST_F(UnpackArchiveTest, Unpack_RefusesArchiveOverByteLimitBeforeWritingIt) {
  ArchiveBuilder b;
  b.AddFile("small", std::string(600, 'a'))
      .AddFileClaimingSize("big", "tiny", 5000);
  UnpackLimits limits;
  limits.max_total_bytes = 1000;

  EXPECT_THAT(
      UnpackTarGz(b, limits),
      StatusIs(absl::StatusCode::kResourceExhausted,
               AllOf(HasSubstr("more than 1000 bytes"), HasSubstr("'big'"))));
  EXPECT_TRUE(PathExists(dest_ + "/small"));
  EXPECT_FALSE(PathExists(dest_ + "/big"));
  EXPECT_EQ(stats_.bytes, 600u);
}

// A streamed zip read through gzip cannot be seeked, so its entries arrive
// with no size in their headers: only counting the data stops them.
TEST_F(UnpackArchiveTest, Unpack_StopsWritingWhenDataOutgrowsTheLimit) {
  ArchiveBuilder b;
  b.AddFile("blob", std::string(3000, 'z'));
  std::string zip = tmp_.Sub("artifact.zip.gz");
  ASSERT_TRUE(b.WriteStreamedZipGz(zip).ok());
  {
    archive* a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_zip(a);
    ASSERT_EQ(archive_read_open_filename(a, zip.c_str(), 4096), ARCHIVE_OK);
    archive_entry* e = nullptr;
    ASSERT_EQ(archive_read_next_header(a, &e), ARCHIVE_OK);
    EXPECT_FALSE(archive_entry_size_is_set(e)) << "the premise is gone";
    archive_read_free(a);
  }
  UnpackLimits limits;
  limits.max_total_bytes = 1000;

  EXPECT_THAT(
      UnpackArchive(zip, dest_, limits, &stats_),
      StatusIs(absl::StatusCode::kResourceExhausted,
               AllOf(HasSubstr("more than 1000 bytes"), HasSubstr("'blob'"))));
  if (PathExists(dest_ + "/blob")) {
    EXPECT_LE(LStat(dest_ + "/blob").st_size, 1000);
  }
}

TEST_F(UnpackArchiveTest, Unpack_ExtractsStreamedZipWithoutSizesInHeaders) {
  ArchiveBuilder b;
  b.AddFile("bin/start", "#!/bin/sh\n", 0755).AddFile("blob", "abc");
  std::string zip = tmp_.Sub("artifact.zip.gz");
  ASSERT_TRUE(b.WriteStreamedZipGz(zip).ok());

  ASSERT_TRUE(UnpackArchive(zip, dest_, UnpackLimits(), &stats_).ok());

  EXPECT_EQ(ReadTextFile(dest_ + "/bin/start"), "#!/bin/sh\n");
  EXPECT_EQ(ReadTextFile(dest_ + "/blob"), "abc");
  EXPECT_EQ(stats_.bytes, 13u);
}

TEST_F(UnpackArchiveTest, Unpack_RefusesArchiveOverEntryLimit) {
  ArchiveBuilder b;
  for (int i = 0; i < 5; ++i) b.AddFile(absl::StrCat("f", i), "x");
  UnpackLimits limits;
  limits.max_entries = 3;

  EXPECT_THAT(
      UnpackTarGz(b, limits),
      StatusIs(absl::StatusCode::kResourceExhausted,
               AllOf(HasSubstr("more than 3 entries"), HasSubstr("'f3'"))));
  EXPECT_FALSE(PathExists(dest_ + "/f3"));
}

TEST_F(UnpackArchiveTest, Unpack_AcceptsArchiveExactlyAtItsLimits) {
  ArchiveBuilder b;
  b.AddFile("a", "0123456789")
      .AddFile("b", "0123456789")
      .AddFile("c", "0123456789");
  UnpackLimits limits;
  limits.max_entries = 3;
  limits.max_total_bytes = 30;

  ASSERT_TRUE(UnpackTarGz(b, limits).ok());

  EXPECT_EQ(stats_.entries, 3u);
  EXPECT_EQ(stats_.bytes, 30u);
}

TEST_F(UnpackArchiveTest, Unpack_RefusesTruncatedArchive) {
  ArchiveBuilder b;
  b.AddFile("blob", NoiseBytes(64 * 1024));
  ASSERT_TRUE(b.WriteTruncatedTarGz(archive_, 32 * 1024).ok());

  EXPECT_THAT(
      UnpackArchive(archive_, dest_, UnpackLimits(), &stats_),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("corrupt archive: "), HasSubstr(archive_))));
}

TEST_F(UnpackArchiveTest, Unpack_RefusesArchiveWithCorruptHeader) {
  ArchiveBuilder b;
  b.AddFile("a", "1").AddFile("b", "2").AddFile("c", "3");
  std::string tar = tmp_.Sub("artifact.tar");
  ASSERT_TRUE(b.WriteTarWithCorruptHeader(tar, 1).ok());

  EXPECT_THAT(UnpackArchive(tar, dest_, UnpackLimits(), &stats_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("corrupt archive: ")));
  EXPECT_FALSE(PathExists(dest_ + "/b"));
}

TEST_F(UnpackArchiveTest, Unpack_RefusesFileThatIsNotAnArchive) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "this is not an archive\n";
  ASSERT_TRUE(ArchiveBuilder::WriteBytes(archive_, text).ok());

  EXPECT_THAT(UnpackArchive(archive_, dest_, UnpackLimits(), &stats_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("corrupt archive: ")));
}

// An mtree manifest names files without holding them; libarchive can fill
// them from the host's files, which a release must never contain.
TEST_F(UnpackArchiveTest, Unpack_RefusesMtreeManifest) {
  ASSERT_TRUE(ArchiveBuilder::WriteBytes(
                  archive_, absl::StrCat("#mtree\nstolen type=file size=9 "
                                         "contents=",
                                         outside_, "/sentinel\n"))
                  .ok());

  EXPECT_THAT(UnpackArchive(archive_, dest_, UnpackLimits(), &stats_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("corrupt archive: ")));
  EXPECT_THAT(ListTree(dest_), IsEmpty());
}

TEST_F(UnpackArchiveTest, Unpack_RefusesEmptyFile) {
  ASSERT_TRUE(ArchiveBuilder::WriteBytes(archive_, "").ok());

  EXPECT_THAT(UnpackArchive(archive_, dest_, UnpackLimits(), &stats_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("corrupt archive: ")));
}

TEST_F(UnpackArchiveTest, Unpack_RefusesEntryThatReplacesAnEarlierOne) {
  ArchiveBuilder b;
  b.AddDirectory("d").AddFile("d/f", "x").AddSymlink("d", "..");

  EXPECT_THAT(UnpackTarGz(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("archive entry 'd': replaces an earlier "
                                 "entry")));
  EXPECT_TRUE(S_ISDIR(LStat(dest_ + "/d").st_mode));
}

TEST_F(UnpackArchiveTest, Unpack_RefusesEntryBelowARegularFile) {
  ArchiveBuilder b;
  b.AddFile("f", "x").AddFile("f/g", "y");

  EXPECT_THAT(UnpackTarGz(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("archive entry 'f/g': is below 'f'")));
}

// libarchive would chdir(2) into the tree to create such a path, moving the
// working directory of every thread in the agent.
TEST_F(UnpackArchiveTest, Unpack_RefusesPathLongerThanPathMax) {
  std::vector<std::string> parts(PATH_MAX / 200 + 1, std::string(199, 'd'));
  std::string deep = absl::StrJoin(parts, "/");
  ArchiveBuilder b;
  b.AddFile(deep, "x");
  char cwd_before[PATH_MAX];
  ASSERT_NE(getcwd(cwd_before, sizeof(cwd_before)), nullptr);

  EXPECT_THAT(UnpackTarGz(b), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("path is longer than")));
  char cwd_after[PATH_MAX];
  ASSERT_NE(getcwd(cwd_after, sizeof(cwd_after)), nullptr);
  EXPECT_STREQ(cwd_before, cwd_after);
}

TEST_F(UnpackArchiveTest, Unpack_RefusesNonEmptyDestination) {
  fleet::testing::WriteTextFile(dest_ + "/leftover", "x");
  ArchiveBuilder b;
  b.AddFile("a", "x");

  EXPECT_THAT(UnpackTarGz(b), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr("is not empty")));
}

TEST_F(UnpackArchiveTest, Unpack_ReturnsNotFoundForMissingArchive) {
  EXPECT_THAT(
      UnpackArchive(tmp_.Sub("missing.tar.gz"), dest_, UnpackLimits(), &stats_),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.tar.gz")));
}

}  // namespace
}  // namespace fleet::agent
