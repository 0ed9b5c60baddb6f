// Config releases on the agent (DESIGN.md "Config"): staging configs/<v>
// with secrets decrypted by the real `age`, the `config` link in every
// release, activation through the release loop, recovery and retention.
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/deployer.h"
#include "agent/layout.h"
#include "common/config_bundle.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_env.h"
#include "tests/unit/agent/deployer_fixture.h"

namespace fleet::agent {
namespace {

using ::fleet::testing::ReadTextFile;
using ::fleet::v1::ConfigFile;
using ::fleet::v1::ConfigRelease;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kAppYaml[] = "db:\n  url: postgres://db/web\nredis:\n  addr: 127.0.0.1:6379\n";

ConfigFile File(const std::string& path, const std::string& content, uint32_t mode = 0644) {
  ConfigFile file;
  file.set_path(path);
  file.set_content(content);
  file.set_mode(mode);
  return file;
}

// Permission bits of `path` (without following a final link); -1 if absent.
int ModeOf(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

// Reload and after_rollback record which release ran with which config,
// e.g. "v1+c2" ("v1+" without a config).
class ConfigDeployerTest : public DeployerRecoveryTest {
 protected:
  AppSpec Spec() const override {
    AppSpec spec = DeployerTest::Spec();
    spec.set_reload("echo $FLEET_RELEASE+$FLEET_CONFIG >> $FLEET_APP_DIR/reloads");
    spec.mutable_hooks()->set_after_rollback(
        "echo $FLEET_RELEASE+$FLEET_CONFIG >> $FLEET_APP_DIR/after_rollback");
    return spec;
  }

  // Serves `bytes` as the blob of config `version`.
  ConfigRelease PrepareConfigBlob(const std::string& version, const std::string& bytes) {
    std::string path = tmp_.Sub(absl::StrCat("artifacts/web-config-", version, ".bundle"));
    ::fleet::testing::WriteTextFile(path, bytes);
    artifacts_.Serve(version, path);
    ConfigRelease config;
    config.set_app("web");
    config.set_version(version);
    config.set_sha256(Sha256File(path).value_or(""));
    config.set_size(static_cast<int64_t>(bytes.size()));
    return config;
  }
  ConfigRelease PrepareConfig(const std::string& version, const std::vector<ConfigFile>& files) {
    fleet::v1::ConfigBundle bundle;
    for (const ConfigFile& file : files) *bundle.add_files() = file;
    return PrepareConfigBlob(version, SerializeConfigBundle(bundle));
  }

  CommandResult StageConfig(const ConfigRelease& config, const AppSpec& spec) {
    Command command;
    command.set_id(absl::StrCat("stage-config-", config.version()));
    *command.mutable_stage()->mutable_spec() = spec;
    *command.mutable_stage()->mutable_config() = config;
    return Run(command);
  }
  CommandResult StageConfig(const std::string& version, const std::vector<ConfigFile>& files) {
    return StageConfig(PrepareConfig(version, files), Spec());
  }
  // A config whose app.yaml names its version.
  CommandResult StageConfig(const std::string& version) {
    return StageConfig(version,
                       {File("app.yaml", absl::StrCat(kAppYaml, "version: ", version, "\n"))});
  }

  CommandResult ActivateConfig(const std::string& version, const AppSpec& spec,
                               ActivateMode mode = fleet::v1::ACTIVATE_MODE_DEPLOY,
                               const std::vector<std::string>& keep = {}) {
    Command command = ActivateCommand(
        absl::StrCat(mode == fleet::v1::ACTIVATE_MODE_DEPLOY ? "deploy-" : "rollback-", version),
        version, spec, mode, keep);
    command.mutable_activate()->set_subject(fleet::v1::SUBJECT_CONFIG);
    return Run(command);
  }
  void StageAndActivateConfig(const std::string& version) {
    CommandResult staged = StageConfig(version);
    ASSERT_TRUE(staged.ok()) << staged.reason();
    CommandResult activated = ActivateConfig(version, Spec());
    ASSERT_TRUE(activated.ok()) << activated.reason();
  }

  AppLayout Layout() const { return AppLayout(options_.apps_root, "web"); }
  std::string ConfigDir(const std::string& v) const { return AppDir() + "/configs/" + v; }
  std::string CurrentConfig() const { return Layout().CurrentConfig().value_or("<error>"); }
  std::vector<std::string> ConfigsOnDisk() const { return Layout().ListConfigs(); }
  std::vector<std::string> Downloads() const {
    return FindByPrefix(options_.state_dir + "/downloads", "");
  }
};

TEST_F(ConfigDeployerTest, Stage_LinksTheAppsConfigIntoEveryRelease) {
  ASSERT_TRUE(Stage("v1", Spec()).ok());

  EXPECT_EQ(LinkTarget(ReleaseDir("v1") + "/config"), "../../config");

  StageAndActivateConfig("c1");
  EXPECT_THAT(ReadTextFile(ReleaseDir("v1") + "/config/app.yaml"), HasSubstr("version: c1"))
      << "the release reads whichever config is active";
}

TEST_F(ConfigDeployerTest, Stage_RefusesAnArtifactThatHasItsOwnConfigWhenTheAppUsesConfigs) {
  ArchiveBuilder archive;
  archive.AddFile("VERSION", "v2").AddFile("config/app.yaml", "port: 1\n");
  Release release = PrepareRelease("v2", std::move(archive));
  AppSpec spec = Spec();
  spec.mutable_config()->set_file("app.yaml");

  CommandResult result = Stage(release, spec);

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(),
            "artifact of web@v2 has 'config', where Fleet links the app's config release "
            "(config -> ../../config); move it elsewhere in the artifact");
  EXPECT_THAT(OnDisk(), IsEmpty());
  EXPECT_THAT(FindByPrefix(AppDir(), ".staging-"), IsEmpty());
  EXPECT_THAT(Downloads(), IsEmpty());
}

TEST_F(ConfigDeployerTest, Stage_KeepsAnArtifactsOwnConfigWhenTheAppDoesNotUseConfigs) {
  ArchiveBuilder archive;
  archive.AddFile("VERSION", "v2").AddFile("config/app.yaml", "port: 1\n");
  Release release = PrepareRelease("v2", std::move(archive));

  CommandResult result = Stage(release, Spec());

  ASSERT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(ReadTextFile(AppDir() + "/releases/v2/config/app.yaml"), "port: 1\n");
}

TEST_F(ConfigDeployerTest, ActivateConfig_GivesAReleaseWithoutTheLinkItsLinkFirst) {
  // A release unpacked before releases got `config -> ../../config`.
  StageAndDeploy("v1", Spec());
  std::filesystem::remove(AppDir() + "/releases/v1/config");
  ASSERT_TRUE(StageConfig("c1", {File("app.yaml", kAppYaml, 0644)}).ok());

  CommandResult result = ActivateConfig("c1", Spec());

  ASSERT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(std::filesystem::read_symlink(AppDir() + "/releases/v1/config"), "../../config");
  EXPECT_EQ(ReadTextFile(AppDir() + "/releases/v1/config/app.yaml"), kAppYaml);
}

TEST_F(ConfigDeployerTest, RollbackConfig_ToNoConfigRemovesTheLinkAndReloads) {
  StageAndDeploy("v1", Spec());
  StageAndActivateConfig("c1");

  CommandResult result = ActivateConfig("", Spec(), fleet::v1::ACTIVATE_MODE_ROLLBACK);

  ASSERT_TRUE(result.ok()) << result.reason();
  EXPECT_FALSE(std::filesystem::exists(AppDir() + "/config"));
  EXPECT_EQ(result.current_version(), "");
  EXPECT_EQ(result.previous_version(), "c1");
}

TEST_F(ConfigDeployerTest, StageConfig_WritesFilesWithTheirModesWhateverTheUmask) {
  mode_t old_umask = umask(027);
  CommandResult result =
      StageConfig("c1", {File("app.yaml", kAppYaml, 0640), File("bin/check.sh", "exit 0\n", 0755),
                         File("db/replica/pool.ini", "[pool]\nsize = 4\n", 0664),
                         File("run.sh", "exit 0\n", 06755)});
  umask(old_umask);

  ASSERT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(ReadTextFile(ConfigDir("c1") + "/app.yaml"), kAppYaml);
  EXPECT_EQ(ReadTextFile(ConfigDir("c1") + "/db/replica/pool.ini"), "[pool]\nsize = 4\n");
  EXPECT_EQ(ModeOf(ConfigDir("c1") + "/app.yaml"), 0640);
  EXPECT_EQ(ModeOf(ConfigDir("c1") + "/bin/check.sh"), 0755);
  EXPECT_EQ(ModeOf(ConfigDir("c1") + "/db/replica/pool.ini"), 0644) << "never group/other write";
  EXPECT_EQ(ModeOf(ConfigDir("c1") + "/run.sh"), 0755) << "never setuid, setgid or sticky";
  EXPECT_EQ(ModeOf(ConfigDir("c1")), 0755);
  EXPECT_EQ(ModeOf(ConfigDir("c1") + "/db"), 0755);
  EXPECT_EQ(ModeOf(ConfigDir("c1") + "/db/replica"), 0755);
  EXPECT_EQ(CurrentConfig(), "") << "staging switches nothing";
  EXPECT_THAT(Record().staged_configs(), ElementsAre("c1"));
  EXPECT_THAT(Record().staged(), IsEmpty());
  EXPECT_THAT(result.state().configs(), ElementsAre("c1"));
  EXPECT_THAT(FindByPrefix(AppDir(), ".staging-"), IsEmpty());
  EXPECT_THAT(Downloads(), IsEmpty());
}

TEST_F(ConfigDeployerTest, StageConfig_OfAConfigAlreadyOnDiskDownloadsNothing) {
  ASSERT_TRUE(StageConfig("c1").ok());
  ASSERT_EQ(artifacts_.fetches(), 1);

  Command again;
  again.set_id("stage-config-c1-again");
  *again.mutable_stage()->mutable_spec() = Spec();
  *again.mutable_stage()->mutable_config() = PrepareConfig("c1", {File("app.yaml", kAppYaml)});
  CommandResult result = Run(again);

  EXPECT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(artifacts_.fetches(), 1);
}

TEST_F(ConfigDeployerTest, StageConfig_RefusesUnsafePathsAndWritesNothing) {
  int n = 0;
  for (const char* path : {"../x", "/etc/x", "a//b", "./a", "a/../../x", "a/", ""}) {
    SCOPED_TRACE(path);
    std::string version = absl::StrCat("c", ++n);

    CommandResult result = StageConfig(version, {File("app.yaml", kAppYaml), File(path, "x")});

    EXPECT_FALSE(result.ok());
    EXPECT_EQ(result.reason(),
              absl::StrCat("config web@", version, " has an unsafe path '", path, "'"));
  }
  EXPECT_THAT(ConfigsOnDisk(), IsEmpty());
  EXPECT_THAT(FindByPrefix(AppDir(), ".staging-"), IsEmpty());
  EXPECT_FALSE(PathExists(AppDir() + "/x"));
  EXPECT_FALSE(PathExists(tmp_.Sub("x")));
  EXPECT_THAT(Downloads(), IsEmpty());
  EXPECT_THAT(Record().staged_configs(), IsEmpty());
}

TEST_F(ConfigDeployerTest, StageConfig_BlobThatIsNoBundleIsDataLoss) {
  // Field 1, length-delimited, with a length beyond the end.
  ConfigRelease config = PrepareConfigBlob("c1", std::string("\x0a\x7f", 2));

  CommandResult result = StageConfig(config, Spec());

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(), "config web@c1 is not a config bundle (2 bytes)");
  EXPECT_THAT(ConfigsOnDisk(), IsEmpty());
  EXPECT_THAT(FindByPrefix(AppDir(), ".staging-"), IsEmpty());
  EXPECT_THAT(Downloads(), IsEmpty());
}

TEST_F(ConfigDeployerTest, ActivateConfig_SwitchesTheLinkAndReloadsTheCurrentRelease) {
  StageAndDeploy("v1", Spec());
  CommandResult staged = StageConfig("c1");
  ASSERT_TRUE(staged.ok()) << staged.reason();
  EXPECT_EQ(staged.previous_version(), "") << "a config command reports config versions";
  EXPECT_EQ(staged.current_version(), "");
  AppSpec spec = Spec();
  spec.add_health()->set_exec("test -f $FLEET_CONFIG_DIR/app.yaml");
  steps_.clear();

  CommandResult result = ActivateConfig("c1", spec);

  ASSERT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(result.previous_version(), "");
  EXPECT_EQ(result.current_version(), "c1");
  EXPECT_EQ(LinkTarget(AppDir() + "/config"), "configs/c1");
  EXPECT_EQ(Current(), "v1") << "code stays where it was";
  EXPECT_THAT(Reloads(), ElementsAre("v1+", "v1+c1"));
  EXPECT_THAT(steps_, ElementsAre("before_switch", "switching", "reloading", "probing"));
  EXPECT_GE(clock_.Elapsed(), kBake) << "probed through the bake";
  ProbeContext ctx = probes_.last_exec_context();
  EXPECT_EQ(ctx.cwd, ReleaseDir("v1"));
  EXPECT_EQ(ctx.env["FLEET_RELEASE"], "v1");
  EXPECT_EQ(ctx.env["FLEET_CONFIG"], "c1");
  EXPECT_EQ(ctx.env["FLEET_CONFIG_DIR"], ConfigDir("c1"));
  EXPECT_EQ(Record().last_good_config(), "c1");
  EXPECT_EQ(Record().previous_config(), "");
  EXPECT_EQ(Record().last_known_good(), "v1");
  EXPECT_EQ(result.state().current_config(), "c1");
  EXPECT_EQ(result.state().last_good_config(), "c1");
  EXPECT_EQ(result.state().current_release(), "v1");
  EXPECT_FALSE(HasJournal());

  StageAndActivateConfig("c2");
  EXPECT_EQ(Record().last_good_config(), "c2");
  EXPECT_EQ(Record().previous_config(), "c1");
  EXPECT_EQ(Record().previous_release(), "") << "release fields stay untouched";
}

TEST_F(ConfigDeployerTest, ActivateConfig_FailingProbeSwitchesTheConfigBackAndReloads) {
  StageAndDeploy("v1", Spec());
  StageAndActivateConfig("c1");
  ASSERT_TRUE(StageConfig("c2").ok());
  probes_.Fail("127.0.0.1:18080", "TCP connect to 127.0.0.1:18080 failed: Connection refused");

  CommandResult result = ActivateConfig("c2", Spec());

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(), HasSubstr("Connection refused"));
  EXPECT_TRUE(result.switched_back());
  EXPECT_EQ(result.previous_version(), "c1");
  EXPECT_EQ(result.current_version(), "c1");
  EXPECT_EQ(CurrentConfig(), "c1");
  EXPECT_EQ(Current(), "v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1+", "v1+c1", "v1+c2", "v1+c1"));
  EXPECT_THAT(AfterRollbacks(), ElementsAre("v1+c1"));
  EXPECT_EQ(Record().last_good_config(), "c1");
  EXPECT_EQ(result.state().last_good_config(), "c1");
  EXPECT_FALSE(HasJournal());
  EXPECT_THAT(ConfigsOnDisk(), ElementsAre("c1", "c2")) << "the failed config stays";
}

TEST_F(ConfigDeployerTest, ActivateConfig_FirstConfigFailingRemovesTheLinkAndReloadsWithout) {
  StageAndDeploy("v1", Spec());
  ASSERT_TRUE(StageConfig("c1").ok());
  probes_.Fail("127.0.0.1:18080", "refused");

  CommandResult result = ActivateConfig("c1", Spec());

  EXPECT_FALSE(result.ok());
  EXPECT_TRUE(result.switched_back());
  EXPECT_FALSE(PathExists(AppDir() + "/config"));
  EXPECT_EQ(result.current_version(), "");
  EXPECT_THAT(Reloads(), ElementsAre("v1+", "v1+c1", "v1+"));
  EXPECT_THAT(AfterRollbacks(), ElementsAre("v1+"));
  EXPECT_EQ(Record().last_good_config(), "");
}

TEST_F(ConfigDeployerTest, ActivateConfig_WithoutACurrentReleaseOnlySwitchesTheLink) {
  ASSERT_TRUE(StageConfig("c1").ok());
  AppSpec spec = Spec();
  spec.mutable_hooks()->set_before_switch("exit 1");

  CommandResult result = ActivateConfig("c1", spec);

  ASSERT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(CurrentConfig(), "c1");
  EXPECT_EQ(Current(), "");
  EXPECT_THAT(Reloads(), IsEmpty());
  EXPECT_THAT(probes_.calls(), IsEmpty());
  EXPECT_EQ(Record().last_good_config(), "c1");
  EXPECT_FALSE(HasJournal());
}

TEST_F(ConfigDeployerTest, ActivateConfig_NotOnDiskNamesTheConfigsOnDisk) {
  StageAndDeploy("v1", Spec());
  StageAndActivateConfig("c1");

  CommandResult result = ActivateConfig("c9", Spec(), fleet::v1::ACTIVATE_MODE_ROLLBACK);

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(), "config c9 of web is not on disk on host h1 (on disk: c1)");
  EXPECT_EQ(CurrentConfig(), "c1");
  EXPECT_FALSE(HasJournal());
}

TEST_F(ConfigDeployerTest, RollbackConfig_SwitchesReloadsAndRunsAfterRollbackWithoutBake) {
  StageAndDeploy("v1", Spec());
  StageAndActivateConfig("c1");
  StageAndActivateConfig("c2");
  absl::Duration before = clock_.Elapsed();

  CommandResult result = ActivateConfig("c1", Spec(), fleet::v1::ACTIVATE_MODE_ROLLBACK);

  ASSERT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(CurrentConfig(), "c1");
  EXPECT_THAT(Reloads(), ElementsAre("v1+", "v1+c1", "v1+c2", "v1+c1"));
  EXPECT_THAT(AfterRollbacks(), ElementsAre("v1+c1"));
  EXPECT_LT(clock_.Elapsed() - before, kBake);
  EXPECT_EQ(Record().previous_config(), "c2");
}

TEST_F(ConfigDeployerTest, Deploy_GivesTheReleaseTheCurrentConfigInItsEnvironment) {
  StageAndActivateConfig("c1");
  AppSpec spec = Spec();
  spec.set_reload("env > $FLEET_APP_DIR/reload.env; cat config/app.yaml > $FLEET_APP_DIR/seen");

  ASSERT_TRUE(Stage("v1", spec).ok());
  CommandResult result = Deploy("v1", spec);

  ASSERT_TRUE(result.ok()) << result.reason();
  std::vector<std::string> env = Lines(AppDir() + "/reload.env");
  EXPECT_THAT(env, Contains("FLEET_CONFIG=c1"));
  EXPECT_THAT(env, Contains("FLEET_CONFIG_DIR=" + ConfigDir("c1")));
  EXPECT_THAT(env, Contains("FLEET_RELEASE=v1"));
  EXPECT_THAT(ReadTextFile(AppDir() + "/seen"), HasSubstr("version: c1"));
}

TEST_F(ConfigDeployerTest, Recover_SwitchesBackAConfigActivationKilledAfterTheSwitch) {
  StageAndDeploy("v1", Spec());
  StageAndActivateConfig("c1");
  ASSERT_TRUE(StageConfig("c2").ok());
  SimulateKilledDeploy("c1", "c2", fleet::v1::ACTIVATE_MODE_DEPLOY, fleet::v1::SUBJECT_CONFIG);

  NewDeployer();

  EXPECT_EQ(CurrentConfig(), "c1");
  EXPECT_EQ(Current(), "v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1+c1"));
  EXPECT_THAT(AfterRollbacks(), ElementsAre("v1+c1"));
  EXPECT_FALSE(HasJournal());
  auto stored = StateStore(options_.state_dir).LoadResult("deploy-c2");
  ASSERT_TRUE(stored.has_value());
  EXPECT_FALSE(stored->ok());
  EXPECT_EQ(stored->reason(), "agent restarted during activation of c2; switched back to c1");
  EXPECT_TRUE(stored->switched_back());
  EXPECT_EQ(stored->previous_version(), "c1");
  EXPECT_EQ(stored->current_version(), "c1");
  EXPECT_EQ(stored->state().current_config(), "c1");
}

TEST_F(ConfigDeployerTest, Recover_RemovesTheConfigLinkWhenAKilledFirstConfigHadNoneBefore) {
  StageAndDeploy("v1", Spec());
  ASSERT_TRUE(StageConfig("c1").ok());
  SimulateKilledDeploy("", "c1", fleet::v1::ACTIVATE_MODE_DEPLOY, fleet::v1::SUBJECT_CONFIG);

  NewDeployer();

  EXPECT_FALSE(PathExists(AppDir() + "/config"));
  EXPECT_EQ(Current(), "v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1+"));
  auto stored = StateStore(options_.state_dir).LoadResult("deploy-c1");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->reason(),
            "agent restarted during activation of c1; switched back to no config");
}

TEST_F(ConfigDeployerTest, Recover_ForgetsAnInterruptedConfigRollback) {
  StageAndDeploy("v1", Spec());
  StageAndActivateConfig("c1");
  StageAndActivateConfig("c2");
  SimulateKilledDeploy("c2", "c1", fleet::v1::ACTIVATE_MODE_ROLLBACK, fleet::v1::SUBJECT_CONFIG);

  NewDeployer();

  EXPECT_FALSE(HasJournal());
  EXPECT_FALSE(StateStore(options_.state_dir).LoadResult("rollback-c1").has_value());
  EXPECT_EQ(CurrentConfig(), "c1") << "left for the controller's resend";
  EXPECT_THAT(Reloads(), IsEmpty());
}

TEST_F(ConfigDeployerTest, Recover_RemovesConfigStagingDirsAndTempLink) {
  StageAndActivateConfig("c1");
  ::fleet::testing::WriteTextFile(AppDir() + "/configs/.staging-c2-AbC123/app.yaml", "half");
  ASSERT_EQ(symlink("configs/c2", (AppDir() + "/.config.tmp").c_str()), 0);

  NewDeployer();

  EXPECT_THAT(FindByPrefix(AppDir(), ".staging-"), IsEmpty());
  EXPECT_FALSE(PathExists(AppDir() + "/.config.tmp"));
  EXPECT_THAT(ConfigsOnDisk(), ElementsAre("c1"));
  EXPECT_EQ(CurrentConfig(), "c1");
}

TEST_F(ConfigDeployerTest, ConfigRetention_KeepsCurrentLastGoodAndPreviousEvenWhenOldest) {
  AppSpec spec = Spec();
  spec.set_keep_releases(3);
  StageAndDeploy("v1", spec);
  StageAndActivateConfig("c1");
  StageAndActivateConfig("c2");
  for (const char* v : {"c3", "c4"}) ASSERT_TRUE(StageConfig(v).ok());

  CommandResult result = ActivateConfig("c1", spec, fleet::v1::ACTIVATE_MODE_ROLLBACK);

  ASSERT_TRUE(result.ok()) << result.reason();
  // c1 is current and last good, c2 the previous config: the newer c3 goes.
  EXPECT_THAT(ConfigsOnDisk(), ElementsAre("c1", "c2", "c4"));
  EXPECT_THAT(Record().staged_configs(), ElementsAre("c1", "c2", "c4"));
  EXPECT_THAT(result.state().configs(), ElementsAre("c1", "c2", "c4"));
  EXPECT_THAT(OnDisk(), ElementsAre("v1")) << "releases are retained on their own";
}

TEST_F(ConfigDeployerTest, ConfigRetention_KeepsTheCommandsKeepList) {
  AppSpec spec = Spec();
  spec.set_keep_releases(3);
  StageAndActivateConfig("c1");
  for (const char* v : {"c2", "c3", "c4", "c5", "c6"}) ASSERT_TRUE(StageConfig(v).ok());

  CommandResult result = ActivateConfig("c6", spec, fleet::v1::ACTIVATE_MODE_DEPLOY, {"c2"});

  ASSERT_TRUE(result.ok()) << result.reason();
  EXPECT_THAT(ConfigsOnDisk(), ElementsAre("c1", "c2", "c6"));
}

// Secrets, decrypted by the real `age` with a key made for the test.
class ConfigSecretTest : public ConfigDeployerTest {
 protected:
  void SetUp() override {
    ConfigDeployerTest::SetUp();
    identity_ = tmp_.Sub("age.key");
    recipient_ = NewKey(identity_);
    options_.age_identity = identity_;
    NewDeployer();
  }

  // Runs age or age-keygen, found on PATH, and returns its stdout.
  static std::string Age(std::vector<std::string> argv) {
    argv.insert(argv.begin(), "/usr/bin/env");
    ::fleet::testing::CommandOutput run = ::fleet::testing::RunCommand(argv);
    EXPECT_EQ(run.exit_code, 0) << absl::StrJoin(argv, " ") << ": " << run.err;
    return run.out;
  }

  // Makes an age identity at `path`; returns its recipient.
  static std::string NewKey(const std::string& path) {
    Age({"age-keygen", "-o", path});
    return std::string(absl::StripAsciiWhitespace(Age({"age-keygen", "-y", path})));
  }

  std::string Encrypt(const std::string& plaintext, const std::string& recipient) {
    std::string in = tmp_.Sub(absl::StrCat("plain-", ++encrypted_));
    std::string out = in + ".age";
    ::fleet::testing::WriteTextFile(in, plaintext);
    Age({"age", "-r", recipient, "-o", out, in});
    return ReadTextFile(out);
  }
  std::string Encrypt(const std::string& plaintext) { return Encrypt(plaintext, recipient_); }

  std::string identity_;
  std::string recipient_;
  int encrypted_ = 0;
};

TEST_F(ConfigSecretTest, StageConfig_DecryptsSecretsIntoOwnerOnlyFiles) {
  CommandResult result = StageConfig(
      "c1", {File("app.yaml", kAppYaml), File("db/creds.json.age", Encrypt("{\"pw\": \"s3\"}")),
             File("secrets.env.age", Encrypt("DB_PASSWORD=hunter2\n"), 0644)});

  ASSERT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(ReadTextFile(ConfigDir("c1") + "/secrets.env"), "DB_PASSWORD=hunter2\n");
  EXPECT_EQ(ModeOf(ConfigDir("c1") + "/secrets.env"), 0600);
  EXPECT_EQ(ReadTextFile(ConfigDir("c1") + "/db/creds.json"), "{\"pw\": \"s3\"}");
  EXPECT_EQ(ModeOf(ConfigDir("c1") + "/db/creds.json"), 0600);
  EXPECT_FALSE(PathExists(ConfigDir("c1") + "/secrets.env.age"));
  EXPECT_THAT(FindByPrefix(ConfigDir("c1"), ".age-input-"), IsEmpty());
  EXPECT_EQ(ModeOf(ConfigDir("c1") + "/app.yaml"), 0644);
}

TEST_F(ConfigSecretTest, StageConfig_WithoutTheIdentityFailsWithTheFixAndLeavesOnlyWhatWasThere) {
  ASSERT_TRUE(StageConfig("c0").ok());
  options_.age_identity = tmp_.Sub("missing/age.key");
  NewDeployer();

  CommandResult result = StageConfig(
      "c1", {File("app.yaml", kAppYaml), File("secrets.env.age", Encrypt("DB_PASSWORD=x\n"))});

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(
      result.reason(),
      absl::StrCat("cannot decrypt secrets.env.age for web@c1: age identity ",
                   options_.age_identity, " does not exist (set fleet-agent --age-identity)"));
  EXPECT_THAT(ConfigsOnDisk(), ElementsAre("c0"));
  EXPECT_THAT(FindByPrefix(AppDir(), ".staging-"), IsEmpty());
  EXPECT_THAT(Downloads(), IsEmpty());
  EXPECT_THAT(Record().staged_configs(), ElementsAre("c0"));
}

TEST_F(ConfigSecretTest, StageConfig_WithTheWrongIdentityFailsWithAgesReason) {
  std::string other = NewKey(tmp_.Sub("other.key"));

  CommandResult result = StageConfig(
      "c1",
      {File("app.yaml", kAppYaml), File("secrets.env.age", Encrypt("DB_PASSWORD=x\n", other))});

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(),
            "cannot decrypt secrets.env.age for web@c1: age: no identity matched any of the "
            "recipients");
  EXPECT_THAT(ConfigsOnDisk(), IsEmpty());
  EXPECT_THAT(FindByPrefix(AppDir(), ".staging-"), IsEmpty());
  EXPECT_THAT(Downloads(), IsEmpty());
}

TEST_F(ConfigSecretTest, StageConfig_DecryptedConfigLackingRequiredKeysFails) {
  AppSpec spec = Spec();
  spec.mutable_config()->set_file("app.yaml");
  spec.mutable_config()->add_required("db.url");
  spec.mutable_config()->add_required("redis.addr");
  spec.mutable_config()->add_required("db.host");
  ConfigRelease config =
      PrepareConfig("c1", {File("app.yaml.age", Encrypt("db:\n  host: secret-db.internal\n"))});

  CommandResult result = StageConfig(config, spec);

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(), "config web@c1: app.yaml lacks required keys: db.url, redis.addr");
  EXPECT_THAT(ConfigsOnDisk(), IsEmpty());
  EXPECT_THAT(FindByPrefix(AppDir(), ".staging-"), IsEmpty());
}

TEST_F(ConfigSecretTest, StageConfig_DecryptedFileWithBadSyntaxFailsWithoutQuotingIt) {
  CommandResult result =
      StageConfig("c1", {File("creds.json.age", Encrypt("{\"password\": \"hunter2\",\n"))});

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(), StartsWith("config web@c1: creds.json:"));
  EXPECT_THAT(result.reason(), Not(HasSubstr("hunter2")));
  EXPECT_THAT(ConfigsOnDisk(), IsEmpty());
}

TEST_F(ConfigSecretTest, StageConfig_RefusesASecretThatDecryptsOverAPlainFile) {
  CommandResult result =
      StageConfig("c1", {File("secrets.env", "A=1\n"), File("secrets.env.age", Encrypt("A=2\n"))});

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(), "config web@c1 has both secrets.env and secrets.env.age");
  EXPECT_THAT(ConfigsOnDisk(), IsEmpty());
}

}  // namespace
}  // namespace fleet::agent
