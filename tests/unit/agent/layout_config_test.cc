#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/layout.h"
#include "common/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::agent {
namespace {

using ::fleet::testing::ReadTextFile;
using ::fleet::testing::StatusIs;
using ::fleet::testing::TempDir;
using ::fleet::testing::WriteTextFile;
using ::fleet::v1::Subject;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

std::string LinkTarget(const std::string& path) {
  absl::StatusOr<std::string> target = ReadLink(path);
  return target.ok() ? *target : "";
}

class ConfigLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(layout_.Ensure().ok()); }

  void AddRelease(const std::string& version) {
    WriteTextFile(layout_.release_dir(version) + "/VERSION", version);
  }
  void AddConfig(const std::string& version) {
    WriteTextFile(layout_.config_dir(version) + "/app.yaml", "version: " + version + "\n");
  }
  std::string TempLink() const { return layout_.app_dir() + "/.config.tmp"; }

  TempDir root_;
  AppLayout layout_{root_.path(), "web"};
};

TEST_F(ConfigLayoutTest, Ensure_CreatesTheConfigsDir) {
  EXPECT_TRUE(PathExists(root_.Sub("web/configs")));
  EXPECT_EQ(layout_.configs_dir(), root_.Sub("web/configs"));
  EXPECT_EQ(layout_.config_link(), root_.Sub("web/config"));
}

TEST_F(ConfigLayoutTest, CurrentConfig_IsEmptyWithoutConfigLink) {
  absl::StatusOr<std::string> config = layout_.CurrentConfig();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config, "");
}

TEST_F(ConfigLayoutTest, SwitchConfig_PointsConfigAtTheVersionRelativelyAndLeavesCurrentAlone) {
  AddRelease("v1");
  AddConfig("c1");
  ASSERT_TRUE(layout_.SwitchCurrent("v1").ok());

  ASSERT_TRUE(layout_.SwitchConfig("c1").ok());

  EXPECT_EQ(LinkTarget(layout_.config_link()), "configs/c1");
  EXPECT_EQ(layout_.CurrentConfig().value_or("?"), "c1");
  EXPECT_EQ(ReadTextFile(layout_.config_link() + "/app.yaml"), "version: c1\n");
  EXPECT_FALSE(PathExists(TempLink()));
  EXPECT_EQ(LinkTarget(layout_.current_link()), "releases/v1");
}

TEST_F(ConfigLayoutTest, SwitchConfig_ReplacesTheLinkAndSucceedsOverAStaleTempLink) {
  AddConfig("c1");
  AddConfig("c2");
  ASSERT_TRUE(layout_.SwitchConfig("c1").ok());
  ASSERT_EQ(symlink("/nowhere/at/all", TempLink().c_str()), 0);

  ASSERT_TRUE(layout_.SwitchConfig("c2").ok());

  EXPECT_EQ(LinkTarget(layout_.config_link()), "configs/c2");
  EXPECT_FALSE(PathExists(TempLink()));
}

TEST_F(ConfigLayoutTest, SwitchConfig_RefusesAConfigNotOnDiskAndAReleaseName) {
  AddRelease("v1");
  AddConfig("c1");
  ASSERT_TRUE(layout_.SwitchConfig("c1").ok());

  EXPECT_THAT(layout_.SwitchConfig("c9"), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                   HasSubstr("config c9 of web is not on disk")));
  EXPECT_THAT(layout_.SwitchConfig("v1"), StatusIs(absl::StatusCode::kFailedPrecondition))
      << "releases are not configs";
  EXPECT_THAT(layout_.SwitchConfig("../releases/v1"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(LinkTarget(layout_.config_link()), "configs/c1");
  EXPECT_FALSE(PathExists(TempLink()));
}

TEST_F(ConfigLayoutTest, RemoveConfigLink_RemovesOnlyTheLinkAndIsOkWithoutOne) {
  AddConfig("c1");
  ASSERT_TRUE(layout_.SwitchConfig("c1").ok());

  ASSERT_TRUE(layout_.RemoveConfigLink().ok());

  EXPECT_FALSE(PathExists(layout_.config_link()));
  EXPECT_TRUE(layout_.HasConfig("c1"));
  EXPECT_TRUE(layout_.RemoveConfigLink().ok());
}

TEST_F(ConfigLayoutTest, CurrentConfig_IsDataLossForALinkOutsideConfigs) {
  AddRelease("v1");
  ASSERT_EQ(symlink("releases/v1", layout_.config_link().c_str()), 0);
  EXPECT_THAT(layout_.CurrentConfig().status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("not into configs/")));
}

TEST_F(ConfigLayoutTest, ListConfigs_SkipsStagingDirsAndIsSeparateFromReleases) {
  AddConfig("c2");
  AddConfig("c1");
  AddRelease("v1");
  ASSERT_TRUE(MakeDirs(layout_.configs_dir() + "/.staging-c3-AbC123").ok());

  EXPECT_THAT(layout_.ListConfigs(), ElementsAre("c1", "c2"));
  EXPECT_THAT(layout_.ListReleases(), ElementsAre("v1"));
  EXPECT_TRUE(layout_.HasConfig("c1"));
  EXPECT_FALSE(layout_.HasConfig("v1"));
  EXPECT_FALSE(layout_.HasConfig(".staging-c3-AbC123"));
}

TEST_F(ConfigLayoutTest, RemoveLeftovers_RemovesConfigStagingDirsAndTempLink) {
  AddConfig("c1");
  ASSERT_TRUE(layout_.SwitchConfig("c1").ok());
  WriteTextFile(layout_.configs_dir() + "/.staging-c2-AbC123/app.yaml", "half");
  ASSERT_EQ(symlink("configs/c1", TempLink().c_str()), 0);

  std::vector<std::string> removed = layout_.RemoveLeftovers();

  EXPECT_THAT(removed,
              UnorderedElementsAre(layout_.configs_dir() + "/.staging-c2-AbC123", TempLink()));
  EXPECT_FALSE(PathExists(TempLink()));
  EXPECT_THAT(layout_.ListConfigs(), ElementsAre("c1"));
  EXPECT_EQ(LinkTarget(layout_.config_link()), "configs/c1");
  EXPECT_THAT(layout_.RemoveLeftovers(), IsEmpty());
}

// Both links switch the same way; a reader racing the switches must always
// see one complete target.
class LinkSwitchTest : public ::testing::TestWithParam<Subject> {};

TEST_P(LinkSwitchTest, SwitchLink_NeverLeavesAMomentWithoutTheLink) {
  TempDir root;
  AppLayout layout(root.path(), "web");
  ASSERT_TRUE(layout.Ensure().ok());
  const Subject subject = GetParam();
  for (const char* v : {"a1", "a2"}) ASSERT_TRUE(MakeDirs(layout.version_dir(subject, v)).ok());
  ASSERT_TRUE(layout.SwitchLink(subject, "a1").ok());
  const std::string dir = subject == fleet::v1::SUBJECT_CONFIG ? "configs/" : "releases/";

  const std::string link = layout.link_path(subject);
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::vector<std::string> bad;  // written by the reader only
  std::thread reader([&] {
    char buf[256];
    while (!stop.load(std::memory_order_relaxed)) {
      ssize_t n = readlink(link.c_str(), buf, sizeof(buf));
      if (n < 0) {
        bad.push_back(absl::StrCat("readlink failed: errno ", errno));
      } else {
        std::string value(buf, static_cast<size_t>(n));
        if (value != dir + "a1" && value != dir + "a2") {
          bad.push_back(absl::StrCat("half value '", value, "'"));
        }
      }
      reads.fetch_add(1, std::memory_order_relaxed);
      if (bad.size() > 10) break;
    }
  });

  constexpr int kSwitches = 2000;
  int failed_switches = 0;
  for (int i = 0; i < kSwitches; ++i) {
    if (!layout.SwitchLink(subject, i % 2 == 0 ? "a2" : "a1").ok()) ++failed_switches;
  }
  stop = true;
  reader.join();

  EXPECT_EQ(failed_switches, 0);
  EXPECT_THAT(bad, IsEmpty());
  EXPECT_GT(reads.load(), kSwitches) << "the reader must have raced the switches";
  EXPECT_EQ(layout.LinkedVersion(subject).value_or("?"), "a1");
}

INSTANTIATE_TEST_SUITE_P(Subjects, LinkSwitchTest,
                         ::testing::Values(fleet::v1::SUBJECT_RELEASE, fleet::v1::SUBJECT_CONFIG),
                         [](const ::testing::TestParamInfo<Subject>& info) {
                           return info.param == fleet::v1::SUBJECT_CONFIG ? "Config" : "Release";
                         });

}  // namespace
}  // namespace fleet::agent
