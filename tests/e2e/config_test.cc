// End-to-end: config releases with a real controller and three real agents
// running the hello example, which reads config/hello.properties.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"

namespace fleet {
namespace {

using testing::Cluster;
using testing::CommandOutput;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunCommand;

constexpr char kConfigSection[] = R"(config:
  file: hello.properties
  required: [greeting]
)";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class E2EConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(3)) << cluster_.ControllerLog();
    cluster_.ApplyHelloSpec("500ms", kConfigSection);
    std::string artifact = cluster_.MakeHelloArtifact("v1");
    CommandOutput out = cluster_.Fleetctl({"release", "push", "hello", "v1", artifact});
    ASSERT_EQ(out.exit_code, 0) << out.err;
    out = cluster_.Fleetctl({"rollout", "hello", "v1", "--wait"});
    ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  }

  // A config dir holding `files` (path -> content); returns its path.
  std::string ConfigDir(const std::string& name, const std::map<std::string, std::string>& files) {
    std::string dir = absl::StrCat(cluster_.dir(), "/config-src/", name);
    for (const auto& [path, content] : files) {
      std::string full = absl::StrCat(dir, "/", path);
      std::filesystem::create_directories(std::filesystem::path(full).parent_path());
      std::ofstream(full, std::ios::binary) << content;
    }
    return dir;
  }

  CommandOutput PushConfig(const std::string& version,
                           const std::map<std::string, std::string>& files) {
    return cluster_.Fleetctl({"config", "push", "hello", version, ConfigDir(version, files)});
  }

  void PushAndRollOut(const std::string& version, const std::string& greeting) {
    CommandOutput out =
        PushConfig(version, {{"hello.properties", absl::StrCat("greeting=", greeting, "\n")}});
    ASSERT_EQ(out.exit_code, 0) << out.err;
    out = cluster_.Fleetctl({"config", "rollout", "hello", version, "--wait"});
    ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  }

  std::string ConfigLink(int i) const {
    std::error_code ec;
    auto target =
        std::filesystem::read_symlink(absl::StrCat(cluster_.AppsRoot(i), "/hello/config"), ec);
    return ec ? "" : target.string();
  }

  void ExpectFleetServes(const std::string& config, const std::string& body) {
    for (int i = 0; i < cluster_.agents(); ++i) {
      EXPECT_EQ(ConfigLink(i), "configs/" + config) << cluster_.HostId(i);
      EXPECT_EQ(cluster_.HttpGet(i, "/"), body) << cluster_.HostId(i);
    }
  }

  Cluster cluster_;
};

TEST_F(E2EConfigTest, ConfigRollout_ChangesWhatEveryHostServesWithoutANewRelease) {
  PushAndRollOut("c1", "hi");
  ExpectFleetServes("c1", "hi from v1\n");
  // Every release reaches the config through its own link.
  EXPECT_EQ(std::filesystem::read_symlink(cluster_.AppsRoot(0) + "/hello/releases/v1/config"),
            "../../config");

  CommandOutput status = cluster_.Fleetctl({"status", "hello"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("fleet release v1, config c1"));
  EXPECT_THAT(status.out, ContainsRegex("web-01 +yes +v1 +c1 "));

  CommandOutput json = cluster_.Fleetctl({"--output", "json", "status", "hello"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr("\"current_config\": \"c1\""));
}

TEST_F(E2EConfigTest, ConfigRollout_UnhealthyConfigGoesBackAutomaticallyWithTheReason) {
  PushAndRollOut("c1", "hi");
  CommandOutput out =
      PushConfig("c2", {{"hello.properties", "greeting=broken\nhealthz_status=503\n"}});
  ASSERT_EQ(out.exit_code, 0) << out.err;

  CommandOutput failed = cluster_.Fleetctl({"config", "rollout", "hello", "c2", "--wait"});
  EXPECT_EQ(failed.exit_code, 2) << failed.out << failed.err;
  EXPECT_THAT(failed.err, HasSubstr("/healthz returned 503"));
  ExpectFleetServes("c1", "hi from v1\n");

  CommandOutput history = cluster_.Fleetctl({"history", "hello"});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  std::vector<std::string> lines = absl::StrSplit(history.out, '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 2u);
  EXPECT_THAT(lines[1], HasSubstr("config rollout"));
  EXPECT_THAT(lines[1], HasSubstr("rolled_back"));
  EXPECT_THAT(lines[1], HasSubstr("/healthz returned 503"));
}

TEST_F(E2EConfigTest, ConfigRollback_PutsEveryHostBackOnThePreviousConfig) {
  PushAndRollOut("c1", "hi");
  PushAndRollOut("c2", "hey");
  ExpectFleetServes("c2", "hey from v1\n");

  CommandOutput rollback = cluster_.Fleetctl({"config", "rollback", "hello", "--wait"});
  EXPECT_EQ(rollback.exit_code, 0) << rollback.out << rollback.err;
  ExpectFleetServes("c1", "hi from v1\n");

  // The code stayed where it was, and history shows the pair of each step.
  for (int i = 0; i < cluster_.agents(); ++i) EXPECT_EQ(cluster_.Current(i), "v1");
  CommandOutput history = cluster_.Fleetctl({"history", "hello"});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  std::vector<std::string> lines = absl::StrSplit(testing::RolloutsTable(history.out), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << history.out;
  EXPECT_THAT(lines[1], ContainsRegex("config rollback +c1 +c2 +v1 +c1 +succeeded"));
  EXPECT_THAT(lines[2], ContainsRegex("config rollout +c2 +c1 +v1 +c2 +succeeded"));
  EXPECT_THAT(lines[4], ContainsRegex("rollout +v1 +- +v1 +- +succeeded"));
}

TEST_F(E2EConfigTest, CodeRollout_KeepsTheConfigHostsHave) {
  PushAndRollOut("c1", "hi");
  std::string artifact = cluster_.MakeHelloArtifact("v2");
  ASSERT_EQ(cluster_.Fleetctl({"release", "push", "hello", "v2", artifact}).exit_code, 0);
  CommandOutput out = cluster_.Fleetctl({"rollout", "hello", "v2", "--wait"});
  ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  ExpectFleetServes("c1", "hi from v2\n");

  // Code rolls back without touching config.
  out = cluster_.Fleetctl({"rollback", "hello", "--wait"});
  ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  ExpectFleetServes("c1", "hi from v1\n");
  CommandOutput history = cluster_.Fleetctl({"history", "hello"});
  std::vector<std::string> lines = absl::StrSplit(history.out, '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 3u) << history.out;
  EXPECT_THAT(lines[1], ContainsRegex("rollback +v1 +v2 +v1 +c1 +succeeded"));
  EXPECT_THAT(lines[2], ContainsRegex("rollout +v2 +v1 +v2 +c1 +succeeded"));
}

TEST_F(E2EConfigTest, ConfigPush_InvalidSyntaxIsRefusedWithFileAndLineAndStoresNothing) {
  struct Case {
    std::string file, content, expected;
  } cases[] = {
      {"db.yaml", "db:\n  url: [x\n  pool: 3\n", "db.yaml:"},
      {"db.json", "{\n  \"url\": \"x\",\n}\n", "db.json:3: invalid JSON"},
      {"db.toml", "url = \"x\"\npool = = 3\n", "db.toml:2: invalid TOML"},
  };
  int n = 0;
  for (const Case& c : cases) {
    CommandOutput out = PushConfig(absl::StrCat("bad", ++n),
                                   {{"hello.properties", "greeting=hi\n"}, {c.file, c.content}});
    EXPECT_EQ(out.exit_code, 1) << out.out;
    EXPECT_THAT(out.err, HasSubstr(c.expected));
    EXPECT_EQ(std::count(out.err.begin(), out.err.end(), '\n'), 1) << out.err;
  }
  CommandOutput list = cluster_.Fleetctl({"config", "list", "hello"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, Not(HasSubstr("bad")));
}

TEST_F(E2EConfigTest, ConfigPush_RequiredKeyMissingOrChangedContentIsRefused) {
  CommandOutput out = PushConfig("c1", {{"hello.properties", "healthz_status=200\n"}});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.err, HasSubstr("hello.properties lacks required keys: greeting"));

  ASSERT_EQ(PushConfig("c1", {{"hello.properties", "greeting=hi\n"}}).exit_code, 0);
  // The same files again: fine (a retried CI job); other files: refused.
  out = PushConfig("c1", {{"hello.properties", "greeting=hi\n"}});
  EXPECT_EQ(out.exit_code, 0) << out.err;
  EXPECT_THAT(out.out, HasSubstr("already pushed"));
  out = cluster_.Fleetctl({"config", "push", "hello", "c1",
                           ConfigDir("c1-other", {{"hello.properties", "greeting=yo\n"}})});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.err, HasSubstr("config hello@c1 exists with other content"));
}

TEST_F(E2EConfigTest, Secret_IsDecryptedOnlyOnTheHostsInto0600File) {
  // A value that appears nowhere unless the plaintext leaked.
  std::mt19937_64 rng(std::random_device{}());
  const std::string secret = absl::StrCat("s3cr3t-", rng());
  const std::string plain = absl::StrCat(cluster_.dir(), "/plain.env");
  std::ofstream(plain) << "DB_PASSWORD=" << secret << "\n";
  const std::string dir = ConfigDir("c1", {{"hello.properties", "greeting=hi\n"}});
  CommandOutput enc =
      RunCommand({"age", "-r", cluster_.AgeRecipient(), "-o", dir + "/secrets.env.age", plain});
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  std::filesystem::remove(plain);

  CommandOutput out = cluster_.Fleetctl({"config", "push", "hello", "c1", dir});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_THAT(out.out, HasSubstr("(1 secret)"));
  out = cluster_.Fleetctl({"config", "rollout", "hello", "c1", "--wait"});
  ASSERT_EQ(out.exit_code, 0) << out.out << out.err;

  for (int i = 0; i < cluster_.agents(); ++i) {
    const std::string file = cluster_.AppsRoot(i) + "/hello/configs/c1/secrets.env";
    EXPECT_EQ(ReadFile(file), absl::StrCat("DB_PASSWORD=", secret, "\n"));
    struct stat st;
    ASSERT_EQ(stat(file.c_str(), &st), 0) << file;
    EXPECT_EQ(st.st_mode & 07777, 0600u) << file;
    EXPECT_FALSE(std::filesystem::exists(file + ".age"));
    EXPECT_THAT(cluster_.AgentLog(i), Not(HasSubstr(secret)));
  }
  for (const auto& entry : std::filesystem::recursive_directory_iterator(cluster_.DataDir())) {
    if (!entry.is_regular_file()) continue;
    EXPECT_THAT(ReadFile(entry.path().string()), Not(HasSubstr(secret))) << entry.path();
  }
  EXPECT_THAT(cluster_.ControllerLog(), Not(HasSubstr(secret)));
}

TEST_F(E2EConfigTest, Secret_HostsThatCannotDecryptDoNotSwitch) {
  PushAndRollOut("c1", "hi");
  // Encrypted to a key the hosts do not have.
  const std::string other_key = cluster_.dir() + "/other.key";
  ASSERT_EQ(RunCommand({"age-keygen", "-o", other_key}).exit_code, 0);
  CommandOutput recipient = RunCommand({"age-keygen", "-y", other_key});
  ASSERT_EQ(recipient.exit_code, 0);
  const std::string plain = cluster_.dir() + "/plain.env";
  std::ofstream(plain) << "DB_PASSWORD=x\n";
  const std::string dir = ConfigDir("c2", {{"hello.properties", "greeting=hey\n"}});
  ASSERT_EQ(RunCommand({"age", "-r", std::string(absl::StripAsciiWhitespace(recipient.out)), "-o",
                        dir + "/secrets.env.age", plain})
                .exit_code,
            0);
  ASSERT_EQ(cluster_.Fleetctl({"config", "push", "hello", "c2", dir}).exit_code, 0);

  CommandOutput out = cluster_.Fleetctl({"config", "rollout", "hello", "c2", "--wait"});
  EXPECT_EQ(out.exit_code, 2) << out.out << out.err;
  EXPECT_THAT(out.err, HasSubstr("cannot decrypt secrets.env.age"));
  EXPECT_THAT(out.err, HasSubstr("nothing was switched"));
  ExpectFleetServes("c1", "hi from v1\n");
  for (int i = 0; i < cluster_.agents(); ++i) {
    EXPECT_FALSE(std::filesystem::exists(cluster_.AppsRoot(i) + "/hello/configs/c2"));
  }
}

TEST_F(E2EConfigTest, OneRolloutPerApp_CodeAndConfigShareTheLockButRollbackAlwaysWorks) {
  PushAndRollOut("c1", "hi");
  PushAndRollOut("c2", "hey");
  ASSERT_EQ(PushConfig("c3", {{"hello.properties", "greeting=yo\n"}}).exit_code, 0);
  std::string artifact = cluster_.MakeHelloArtifact("v2");
  ASSERT_EQ(cluster_.Fleetctl({"release", "push", "hello", "v2", artifact}).exit_code, 0);
  CommandOutput started = cluster_.Fleetctl({"rollout", "hello", "v2", "--manual-promote"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  const std::string id = Cluster::RolloutId(started.out);

  CommandOutput out = cluster_.Fleetctl({"config", "rollout", "hello", "c3"});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.err, HasSubstr(absl::StrCat("rollout ", id, " of hello is running (v2")));
  // The emergency exit for config works while the code rollout goes on.
  out = cluster_.Fleetctl({"config", "rollback", "hello", "--wait"});
  EXPECT_EQ(out.exit_code, 0) << out.out << out.err;
  for (int i = 0; i < cluster_.agents(); ++i) EXPECT_EQ(ConfigLink(i), "configs/c1");

  ASSERT_EQ(cluster_.Fleetctl({"rollout", "abort", id}).exit_code, 0);
  out = cluster_.Fleetctl({"rollout", "watch", id});
  EXPECT_EQ(out.exit_code, 2) << out.out << out.err;
  ExpectFleetServes("c1", "hi from v1\n");
}

TEST_F(E2EConfigTest, FailedFirstConfigRollout_LeavesHostsWithoutConfig) {
  // The canary takes the app's first config; aborting sends it back to
  // having none, the state it came from.
  const std::string before = cluster_.HttpGet(0, "/");  // the artifact's own greeting
  CommandOutput out = PushConfig("c1", {{"hello.properties", "greeting=hi\n"}});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  CommandOutput started =
      cluster_.Fleetctl({"config", "rollout", "hello", "c1", "--manual-promote"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  const std::string id = Cluster::RolloutId(started.out);
  // Wait for the canary to be healthy, then abort: it must go back.
  for (int tries = 0; tries < 100; ++tries) {
    CommandOutput st = cluster_.Fleetctl({"rollout", "status", id});
    if (absl::StrContains(st.out, "paused")) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(ConfigLink(0), "configs/c1");
  CommandOutput aborted = cluster_.Fleetctl({"rollout", "abort", id});
  ASSERT_EQ(aborted.exit_code, 0) << aborted.err;
  out = cluster_.Fleetctl({"rollout", "watch", id});
  EXPECT_EQ(out.exit_code, 2) << out.out << out.err;
  EXPECT_THAT(out.out, HasSubstr("reverted"));
  for (int i = 0; i < cluster_.agents(); ++i) {
    EXPECT_EQ(ConfigLink(i), "") << cluster_.HostId(i);
    EXPECT_EQ(cluster_.HttpGet(i, "/"), before) << cluster_.HostId(i);
  }
}

}  // namespace
}  // namespace fleet
