#include "agent/deployer.h"

#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/unit/agent/deployer_fixture.h"

namespace fleet::agent {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

TEST_F(DeployerTest, Deploy_SwitchesCurrentAndReloadsTheNewRelease) {
  ASSERT_TRUE(Stage("v1", Spec()).ok());
  EXPECT_EQ(Current(), "") << "staging alone switches nothing";
  steps_.clear();

  CommandResult result = Deploy("v1", Spec());

  EXPECT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(result.command_id(), "deploy-v1");
  EXPECT_EQ(result.previous_version(), "");
  EXPECT_EQ(result.current_version(), "v1");
  EXPECT_FALSE(result.switched_back());
  EXPECT_EQ(result.state().current_release(), "v1");
  EXPECT_EQ(result.state().last_known_good(), "v1");
  EXPECT_EQ(LinkTarget(AppDir() + "/current"), "releases/v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1"));
  EXPECT_THAT(AfterRollbacks(), IsEmpty());
  EXPECT_FALSE(HasJournal());
  EXPECT_THAT(steps_, ElementsAre("before_switch", "switching", "reloading", "probing"));
}

TEST_F(DeployerTest, Deploy_RunsReloadWithFleetVariablesAndAgentVarsInItsEnvironment) {
  AppSpec spec = Spec();
  spec.set_reload("env > $FLEET_APP_DIR/reload.env; pwd -P > $FLEET_APP_DIR/reload.cwd");
  ASSERT_TRUE(Stage("v1", spec).ok());
  ASSERT_TRUE(Deploy("v1", spec).ok());

  std::vector<std::string> env = Lines(AppDir() + "/reload.env");
  EXPECT_THAT(env, Contains("FLEET_APP=web"));
  EXPECT_THAT(env, Contains("FLEET_RELEASE=v1"));
  EXPECT_THAT(env, Contains("FLEET_RELEASE_DIR=" + ReleaseDir("v1")));
  EXPECT_THAT(env, Contains("FLEET_APP_DIR=" + AppDir()));
  EXPECT_THAT(env, Contains("FLEET_HOST=h1"));
  EXPECT_THAT(env, Contains(absl::StrCat("port=", kPort)));
  EXPECT_THAT(env, Contains("region=eu"));
  EXPECT_THAT(Lines(AppDir() + "/reload.cwd"),
              ElementsAre(std::filesystem::canonical(ReleaseDir("v1")).string()));
}

TEST_F(DeployerTest, Deploy_ExpandsVarsInProbeTargets) {
  AppSpec spec = Spec();
  spec.add_health()->set_exec("bin/check --region ${region}");
  ASSERT_TRUE(Stage("v1", spec).ok());
  ASSERT_TRUE(Deploy("v1", spec).ok());

  std::vector<std::string> calls = probes_.calls();
  EXPECT_THAT(calls, Contains("http http://127.0.0.1:18080/healthz 200"));
  EXPECT_THAT(calls, Contains("tcp 127.0.0.1:18080"));
  EXPECT_THAT(calls, Contains("exec bin/check --region eu"));
  ProbeContext ctx = probes_.last_exec_context();
  EXPECT_EQ(ctx.cwd, ReleaseDir("v1"));
  EXPECT_EQ(ctx.env["FLEET_RELEASE"], "v1");
  EXPECT_EQ(ctx.env["port"], kPort);
}

TEST_F(DeployerTest, Deploy_ProbesThroughTheBakeTime) {
  StageAndDeploy("v1", Spec());
  EXPECT_GE(clock_.Elapsed(), kBake);
  EXPECT_GT(probes_.calls().size(), 2u) << "more than one round of the two checks";
}

TEST_F(DeployerTest, Stage_LinksSharedDirsIntoTheRelease) {
  ASSERT_TRUE(Stage("v1", Spec()).ok());

  EXPECT_EQ(LinkTarget(ReleaseDir("v1") + "/log"), "../../shared/log");
  EXPECT_TRUE(std::filesystem::is_directory(AppDir() + "/shared/log"));
  EXPECT_FALSE(PathExists(AppDir() + "/shared/log/from-artifact.txt"))
      << "the artifact's own log dir is replaced, not merged";
  WriteTextFile(ReleaseDir("v1") + "/log/app.log", "hello");
  EXPECT_EQ(::fleet::testing::ReadTextFile(AppDir() + "/shared/log/app.log"), "hello");
  EXPECT_EQ(::fleet::testing::ReadTextFile(ReleaseDir("v1") + "/VERSION"), "v1");
}

TEST_F(DeployerTest, Stage_OfAReleaseAlreadyOnDiskDownloadsNothing) {
  ASSERT_TRUE(Stage("v1", Spec()).ok());
  ASSERT_EQ(artifacts_.fetches(), 1);

  Command again;
  again.set_id("stage-v1-again");
  *again.mutable_stage()->mutable_spec() = Spec();
  *again.mutable_stage()->mutable_release() = PrepareRelease("v1");
  CommandResult result = Run(again);

  EXPECT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(artifacts_.fetches(), 1);
}

TEST_F(DeployerTest, Deploy_RecordsLastKnownGoodAndPreviousRelease) {
  StageAndDeploy("v1", Spec());
  StageAndDeploy("v2", Spec());

  AgentAppRecord record = Record();
  EXPECT_EQ(record.last_known_good(), "v2");
  EXPECT_EQ(record.previous_release(), "v1");
  EXPECT_THAT(record.staged(), ElementsAre("v1", "v2"));
  EXPECT_EQ(Current(), "v2");
  EXPECT_THAT(Reloads(), ElementsAre("v1", "v2"));
}

TEST_F(DeployerTest, Execute_ReturnsTheStoredResultOfACompletedCommandWithoutRunningItAgain) {
  ASSERT_TRUE(Stage("v1", Spec()).ok());
  Command command = ActivateCommand("deploy-v1", "v1", Spec());
  CommandResult first = Run(command);
  ASSERT_TRUE(first.ok()) << first.reason();
  size_t probe_calls = probes_.calls().size();

  CommandResult again = Run(command);

  EXPECT_TRUE(MessageDifferencer::Equals(first, again))
      << first.DebugString() << " vs " << again.DebugString();
  EXPECT_THAT(Reloads(), ElementsAre("v1")) << "reload must not run again";
  EXPECT_EQ(probes_.calls().size(), probe_calls);
  auto stored = StateStore(options_.state_dir).LoadResult("deploy-v1");
  ASSERT_TRUE(stored.has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(first, *stored));
}

TEST_F(DeployerTest, Execute_ReturnsTheStoredResultAfterAnAgentRestart) {
  ASSERT_TRUE(Stage("v1", Spec()).ok());
  Command command = ActivateCommand("deploy-v1", "v1", Spec());
  CommandResult first = Run(command);
  ASSERT_TRUE(first.ok()) << first.reason();

  NewDeployer();
  CommandResult again = Run(command);

  EXPECT_TRUE(MessageDifferencer::Equals(first, again));
  EXPECT_THAT(Reloads(), ElementsAre("v1"));
}

TEST_F(DeployerTest, Deploy_WritesTheJournalBeforeSwitchingAndClearsItAfterTheResult) {
  AppSpec spec = Spec();
  // The reload runs after the switch: the journal must already be on disk.
  options_.vars["state_dir"] = options_.state_dir;
  NewDeployer();
  spec.set_reload(
      "if test -f ${state_dir}/journal/web.json; then echo journaled; else echo missing; fi "
      ">> $FLEET_APP_DIR/journal-seen");
  ASSERT_TRUE(Stage("v1", spec).ok());
  ASSERT_TRUE(Deploy("v1", spec).ok());

  EXPECT_THAT(Lines(AppDir() + "/journal-seen"), ElementsAre("journaled"));
  EXPECT_FALSE(HasJournal());
}

TEST_F(DeployerTest, Deploy_FailingProbeSwitchesBackAtOnceAndReportsTheReason) {
  StageAndDeploy("v1", Spec());
  ASSERT_TRUE(Stage("v2", Spec()).ok());
  probes_.Fail("http://127.0.0.1:18080/healthz", "GET http://127.0.0.1:18080/healthz returned 502");
  absl::Duration before = clock_.Elapsed();
  size_t calls_before = probes_.calls().size();

  CommandResult result = Deploy("v2", Spec());

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(), HasSubstr("GET http://127.0.0.1:18080/healthz returned 502"));
  EXPECT_TRUE(result.switched_back());
  EXPECT_EQ(result.previous_version(), "v1");
  EXPECT_EQ(result.current_version(), "v1");
  EXPECT_EQ(Current(), "v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1", "v2", "v1"));
  EXPECT_THAT(AfterRollbacks(), ElementsAre("v1"));
  // One check with one retry, then straight back: the bake is not waited out.
  EXPECT_LT(clock_.Elapsed() - before, kBake);
  EXPECT_EQ(probes_.calls().size() - calls_before, 2u);
  AgentAppRecord record = Record();
  EXPECT_EQ(record.last_known_good(), "v1");
  EXPECT_EQ(result.state().last_known_good(), "v1");
  EXPECT_FALSE(HasJournal());
  EXPECT_THAT(OnDisk(), ElementsAre("v1", "v2")) << "the failed release stays for inspection";
}

// ${FLEET_ROLLOUT} expands in every command: a reload that logs it runs
// when the agent switches back too, with the rollout of the switch undone.
TEST_F(DeployerTest, Deploy_SwitchBackRunsAReloadThatNamesTheRollout) {
  AppSpec spec = Spec();
  spec.set_reload("echo \"${FLEET_ROLLOUT} ${FLEET_RELEASE}\" >> $FLEET_APP_DIR/rollouts");
  spec.mutable_hooks()->set_after_unpack("echo \"[${FLEET_ROLLOUT}]\" >> $FLEET_APP_DIR/unpacks");
  StageAndDeploy("v1", spec);
  ASSERT_TRUE(Stage("v2", spec).ok());
  probes_.Fail("http://127.0.0.1:18080/healthz", "GET http://127.0.0.1:18080/healthz returned 502");

  CommandResult result = Deploy("v2", spec);

  EXPECT_FALSE(result.ok());
  EXPECT_TRUE(result.switched_back());
  EXPECT_THAT(result.reason(), Not(HasSubstr("switching back failed")));
  EXPECT_THAT(Lines(AppDir() + "/rollouts"), ElementsAre("r1 v1", "r1 v2", "r1 v1"));
  EXPECT_THAT(Lines(AppDir() + "/unpacks"), ElementsAre("[]", "[]"));
}

TEST_F(DeployerTest, Deploy_ProbeFailingLateInTheBakeStillSwitchesBack) {
  StageAndDeploy("v1", Spec());
  ASSERT_TRUE(Stage("v2", Spec()).ok());
  // Healthy for the first two rounds (t=0s, 1s), then refused.
  probes_.FailAfter("127.0.0.1:18080", 2,
                    "TCP connect to 127.0.0.1:18080 failed: Connection refused");
  absl::Duration before = clock_.Elapsed();

  CommandResult result = Deploy("v2", Spec());

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(), HasSubstr("Connection refused"));
  EXPECT_TRUE(result.switched_back());
  EXPECT_EQ(Current(), "v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1", "v2", "v1"));
  EXPECT_GE(clock_.Elapsed() - before, absl::Seconds(2));
  EXPECT_LT(clock_.Elapsed() - before, kBake);
  EXPECT_EQ(Record().last_known_good(), "v1");
}

TEST_F(DeployerTest, Deploy_FirstReleaseFailingItsProbeRemovesCurrent) {
  ASSERT_TRUE(Stage("v1", Spec()).ok());
  probes_.Fail("127.0.0.1:18080", "TCP connect to 127.0.0.1:18080 failed: Connection refused");

  CommandResult result = Deploy("v1", Spec());

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(), HasSubstr("Connection refused"));
  EXPECT_TRUE(result.switched_back());
  EXPECT_EQ(result.current_version(), "");
  EXPECT_FALSE(PathExists(AppDir() + "/current"));
  EXPECT_THAT(Reloads(), ElementsAre("v1")) << "nothing to reload after going back";
  EXPECT_EQ(Record().last_known_good(), "");
  EXPECT_FALSE(HasJournal());
}

TEST_F(DeployerTest, Deploy_FailingBeforeSwitchHookSwitchesNothing) {
  StageAndDeploy("v1", Spec());
  ASSERT_TRUE(Stage("v2", Spec()).ok());
  AppSpec spec = Spec();
  spec.mutable_hooks()->set_before_switch("echo migration pending >&2; exit 3");

  CommandResult result = Deploy("v2", spec);

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(),
              AllOf(StartsWith("before_switch hook"), HasSubstr("exited with status 3")));
  EXPECT_FALSE(result.switched_back());
  EXPECT_EQ(Current(), "v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1"));
  EXPECT_THAT(AfterRollbacks(), IsEmpty());
  EXPECT_FALSE(HasJournal());
  EXPECT_EQ(Record().last_known_good(), "v1");
}

TEST_F(DeployerTest, Deploy_FailingAfterSwitchHookCountsAsAFailedProbe) {
  StageAndDeploy("v1", Spec());
  ASSERT_TRUE(Stage("v2", Spec()).ok());
  AppSpec spec = Spec();
  spec.mutable_hooks()->set_after_switch("exit 4");
  size_t calls_before = probes_.calls().size();

  CommandResult result = Deploy("v2", spec);

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(),
              AllOf(StartsWith("after_switch hook 'exit 4'"), HasSubstr("exited with status 4")));
  EXPECT_TRUE(result.switched_back());
  EXPECT_EQ(Current(), "v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1", "v2", "v1"));
  EXPECT_THAT(AfterRollbacks(), ElementsAre("v1"));
  EXPECT_EQ(probes_.calls().size(), calls_before) << "no probe after a failed after_switch";
  EXPECT_EQ(Record().last_known_good(), "v1");
}

TEST_F(DeployerTest, Deploy_FailingReloadSwitchesBack) {
  StageAndDeploy("v1", Spec());
  ASSERT_TRUE(Stage("v2", Spec()).ok());
  AppSpec spec = Spec();
  spec.set_reload("echo $FLEET_RELEASE >> $FLEET_APP_DIR/reloads; test $FLEET_RELEASE != v2");

  CommandResult result = Deploy("v2", spec);

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(), StartsWith("reload "));
  EXPECT_TRUE(result.switched_back());
  EXPECT_EQ(Current(), "v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1", "v2", "v1"));
}

TEST_F(DeployerTest, Stage_FailingAfterUnpackHookRemovesTheRelease) {
  AppSpec spec = Spec();
  spec.mutable_hooks()->set_after_unpack("test -f VERSION && exit 5");

  CommandResult result = Stage("v1", spec);

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(),
              AllOf(StartsWith("after_unpack hook"), HasSubstr("exited with status 5")));
  EXPECT_FALSE(PathExists(ReleaseDir("v1")));
  EXPECT_THAT(FindByPrefix(AppDir(), ".staging-"), IsEmpty());
  EXPECT_THAT(FindByPrefix(options_.state_dir, ""), Not(Contains(HasSubstr(".part"))));
  EXPECT_THAT(Record().staged(), IsEmpty());
}

TEST_F(DeployerTest, Deploy_UnknownVarInReloadFailsBeforeSwitching) {
  StageAndDeploy("v1", Spec());
  ASSERT_TRUE(Stage("v2", Spec()).ok());
  AppSpec spec = Spec();
  spec.set_reload("bin/restart --zone ${zone}");

  CommandResult result = Deploy("v2", spec);

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(), HasSubstr("unknown variable ${zone}"));
  EXPECT_FALSE(result.switched_back());
  EXPECT_EQ(Current(), "v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1"));
  EXPECT_FALSE(HasJournal());
}

TEST_F(DeployerTest, Deploy_UnknownVarInAHealthCheckFailsBeforeSwitching) {
  StageAndDeploy("v1", Spec());
  ASSERT_TRUE(Stage("v2", Spec()).ok());
  AppSpec spec = Spec();
  spec.add_health()->set_tcp("127.0.0.1:${admin_port}");

  CommandResult result = Deploy("v2", spec);

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(), HasSubstr("unknown variable ${admin_port}"));
  EXPECT_FALSE(result.switched_back());
  EXPECT_EQ(Current(), "v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1")) << "v2 must never have been started";
}

TEST_F(DeployerTest, Rollback_SwitchesReloadsAndRunsAfterRollbackWithoutBakeOrDownload) {
  AppSpec spec = Spec();
  spec.mutable_hooks()->set_after_switch("echo $FLEET_RELEASE >> $FLEET_APP_DIR/after_switch");
  StageAndDeploy("v1", spec);
  StageAndDeploy("v2", spec);
  int fetches = artifacts_.fetches();
  absl::Duration before = clock_.Elapsed();
  size_t calls_before = probes_.calls().size();

  CommandResult result = Rollback("v1", spec);

  EXPECT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(result.previous_version(), "v2");
  EXPECT_EQ(result.current_version(), "v1");
  EXPECT_FALSE(result.switched_back());
  EXPECT_EQ(Current(), "v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1", "v2", "v1"));
  EXPECT_THAT(AfterRollbacks(), ElementsAre("v1"));
  EXPECT_THAT(Lines(AppDir() + "/after_switch"), ElementsAre("v1", "v2"))
      << "after_switch belongs to deploys";
  EXPECT_EQ(artifacts_.fetches(), fetches);
  EXPECT_EQ(probes_.calls().size() - calls_before, 2u) << "one round of the two checks";
  EXPECT_LT(clock_.Elapsed() - before, kBake);
  EXPECT_EQ(Record().last_known_good(), "v1");
  EXPECT_EQ(Record().previous_release(), "v2");
}

TEST_F(DeployerTest, Rollback_IgnoresTheBeforeSwitchHook) {
  StageAndDeploy("v1", Spec());
  StageAndDeploy("v2", Spec());
  AppSpec spec = Spec();
  spec.mutable_hooks()->set_before_switch("exit 1");

  CommandResult result = Rollback("v1", spec);

  EXPECT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(Current(), "v1");
}

TEST_F(DeployerTest, Rollback_ToAReleaseNotOnDiskNamesWhatIsOnDisk) {
  StageAndDeploy("v1", Spec());
  StageAndDeploy("v2", Spec());

  CommandResult result = Rollback("v9", Spec());

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(), "release v9 of web is not on disk on host h1 (on disk: v1, v2)");
  EXPECT_EQ(Current(), "v2");
  EXPECT_THAT(Reloads(), ElementsAre("v1", "v2"));
  EXPECT_FALSE(HasJournal());
}

TEST_F(DeployerTest, Rollback_FailingItsProbeStaysOnTheTarget) {
  StageAndDeploy("v1", Spec());
  StageAndDeploy("v2", Spec());
  probes_.Fail("127.0.0.1:18080", "TCP connect to 127.0.0.1:18080 failed: Connection refused");

  CommandResult result = Rollback("v1", Spec());

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(), HasSubstr("Connection refused"));
  EXPECT_FALSE(result.switched_back());
  EXPECT_EQ(Current(), "v1");
  EXPECT_EQ(Record().last_known_good(), "v2");
  EXPECT_EQ(Record().previous_release(), "v2");
}

TEST_F(DeployerTest, Stage_CorruptDownloadIsRejectedAndLeavesNothingBehind) {
  artifacts_.Corrupt(true);

  CommandResult result = Stage("v1", Spec());

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(), StartsWith("artifact sha256 mismatch for web@v1: expected "));
  EXPECT_FALSE(PathExists(ReleaseDir("v1")));
  EXPECT_THAT(OnDisk(), IsEmpty());
  EXPECT_THAT(FindByPrefix(AppDir(), ".staging-"), IsEmpty());
  EXPECT_THAT(FindByPrefix(options_.state_dir + "/downloads", ""), IsEmpty());
  EXPECT_THAT(Record().staged(), IsEmpty());

  artifacts_.Corrupt(false);
  Command retry;
  retry.set_id("stage-v1-retry");
  *retry.mutable_stage()->mutable_spec() = Spec();
  *retry.mutable_stage()->mutable_release() = PrepareRelease("v1");
  EXPECT_TRUE(Run(retry).ok()) << "a later good download stages normally";
}

TEST_F(DeployerTest, Stage_FailedDownloadReportsTheSourceError) {
  artifacts_.FailWith(absl::UnavailableError("cannot download web@v1: connection reset"));

  CommandResult result = Stage("v1", Spec());

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(), "cannot download web@v1: connection reset");
  EXPECT_THAT(OnDisk(), IsEmpty());
  EXPECT_THAT(FindByPrefix(AppDir(), ".staging-"), IsEmpty());
  EXPECT_THAT(FindByPrefix(options_.state_dir + "/downloads", ""), IsEmpty())
      << "half a download must not stay behind to fill the disk";
}

TEST_F(DeployerTest, Stage_HostileArchiveIsRefusedAndWritesNothingOutside) {
  ArchiveBuilder archive;
  archive.AddFile("VERSION", "v1").AddFile("../escape", "owned");
  Release release = PrepareRelease("v1", std::move(archive));

  CommandResult result = Stage(release, Spec());

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(), AllOf(StartsWith("cannot unpack web@v1: "), HasSubstr("../escape")));
  EXPECT_THAT(FindByPrefix(tmp_.path(), "escape"), IsEmpty());
  EXPECT_THAT(OnDisk(), IsEmpty());
  EXPECT_THAT(FindByPrefix(AppDir(), ".staging-"), IsEmpty());
  EXPECT_THAT(FindByPrefix(options_.state_dir + "/downloads", ""), IsEmpty());
}

TEST_F(DeployerTest, Stage_RefusesAnUnsafeVersion) {
  Release release = PrepareRelease("v1");
  release.set_version("../v1");

  CommandResult result = Stage(release, Spec());

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(), "invalid version '../v1'");
  EXPECT_EQ(artifacts_.fetches(), 0);
}

TEST_F(DeployerTest, Retention_RemovesTheOldestReleasesBeyondKeepReleases) {
  AppSpec spec = Spec();
  spec.set_keep_releases(3);
  for (const char* v : {"v1", "v2", "v3", "v4", "v5"}) StageAndDeploy(v, spec);

  EXPECT_THAT(OnDisk(), ElementsAre("v3", "v4", "v5"));
  EXPECT_THAT(Record().staged(), ElementsAre("v3", "v4", "v5"));
  EXPECT_EQ(Current(), "v5");
}

TEST_F(DeployerTest, Retention_KeepsPreviousAndKeepListEvenWhenOldest) {
  AppSpec spec = Spec();
  spec.set_keep_releases(3);
  StageAndDeploy("v1", spec);
  for (const char* v : {"v2", "v3", "v4", "v5", "v6"}) ASSERT_TRUE(Stage(v, spec).ok());

  CommandResult result = Deploy("v6", spec, /*keep=*/{"v2"});

  ASSERT_TRUE(result.ok()) << result.reason();
  // v1 is the previous release, v2 is kept by the command, v6 is current
  // and last known good; v3..v5 go although they are newer.
  EXPECT_THAT(OnDisk(), ElementsAre("v1", "v2", "v6"));
  EXPECT_THAT(result.state().releases(), ElementsAre("v1", "v2", "v6"));
  EXPECT_THAT(Record().staged(), ElementsAre("v1", "v2", "v6"));
}

TEST_F(DeployerTest, Retention_KeepsCurrentAndLastKnownGoodEvenWhenOldest) {
  AppSpec spec = Spec();
  spec.set_keep_releases(3);
  StageAndDeploy("v1", spec);
  StageAndDeploy("v2", spec);
  for (const char* v : {"v3", "v4"}) ASSERT_TRUE(Stage(v, spec).ok());

  CommandResult result = Rollback("v1", spec);

  ASSERT_TRUE(result.ok()) << result.reason();
  // v1 is current and last known good, v2 the previous release: the oldest
  // two stay and the newer v3 goes.
  EXPECT_THAT(OnDisk(), ElementsAre("v1", "v2", "v4"));
  EXPECT_EQ(Record().last_known_good(), "v1");
}

TEST_F(DeployerTest, Retention_DoesNotRunAfterAFailedDeploy) {
  AppSpec spec = Spec();
  spec.set_keep_releases(3);
  StageAndDeploy("v1", spec);
  for (const char* v : {"v2", "v3", "v4", "v5"}) ASSERT_TRUE(Stage(v, spec).ok());
  probes_.Fail("127.0.0.1:18080", "refused");

  ASSERT_FALSE(Deploy("v5", spec).ok());

  EXPECT_THAT(OnDisk(), ElementsAre("v1", "v2", "v3", "v4", "v5"));
}

TEST_F(DeployerRecoveryTest, Recover_SwitchesBackADeployKilledAfterTheSwitch) {
  StageAndDeploy("v1", Spec());
  ASSERT_TRUE(Stage("v2", Spec()).ok());
  SimulateKilledDeploy("v1", "v2");

  NewDeployer();

  EXPECT_EQ(Current(), "v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1"));
  EXPECT_THAT(AfterRollbacks(), ElementsAre("v1"));
  EXPECT_FALSE(HasJournal());
  EXPECT_THAT(StateStore(options_.state_dir).JournalApps(), IsEmpty());
  auto stored = StateStore(options_.state_dir).LoadResult("deploy-v2");
  ASSERT_TRUE(stored.has_value());
  EXPECT_FALSE(stored->ok());
  EXPECT_EQ(stored->reason(), "agent restarted during activation of v2; switched back to v1");
  EXPECT_TRUE(stored->switched_back());
  EXPECT_EQ(stored->previous_version(), "v1");
  EXPECT_EQ(stored->current_version(), "v1");
  EXPECT_EQ(stored->state().current_release(), "v1");
}

TEST_F(DeployerRecoveryTest, Recover_ResultIsAnsweredToTheResentCommandWithoutActing) {
  StageAndDeploy("v1", Spec());
  ASSERT_TRUE(Stage("v2", Spec()).ok());
  SimulateKilledDeploy("v1", "v2");
  NewDeployer();
  auto stored = StateStore(options_.state_dir).LoadResult("deploy-v2");
  ASSERT_TRUE(stored.has_value());
  size_t calls_before = probes_.calls().size();

  CommandResult result = Deploy("v2", Spec());

  EXPECT_TRUE(MessageDifferencer::Equals(result, *stored)) << result.DebugString();
  EXPECT_EQ(Current(), "v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1")) << "the resend must not reload again";
  EXPECT_EQ(probes_.calls().size(), calls_before);
}

TEST_F(DeployerRecoveryTest, Recover_RemovesCurrentWhenAKilledFirstDeployHadNothingBefore) {
  ASSERT_TRUE(Stage("v1", Spec()).ok());
  SimulateKilledDeploy("", "v1");

  NewDeployer();

  EXPECT_FALSE(PathExists(AppDir() + "/current"));
  EXPECT_THAT(Reloads(), IsEmpty());
  auto stored = StateStore(options_.state_dir).LoadResult("deploy-v1");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->reason(),
            "agent restarted during activation of v1; switched back to no release");
  EXPECT_FALSE(HasJournal());
}

TEST_F(DeployerRecoveryTest, Recover_OnlyClearsAJournalWhoseResultWasStored) {
  StageAndDeploy("v1", Spec());
  StageAndDeploy("v2", Spec());
  auto stored = StateStore(options_.state_dir).LoadResult("deploy-v2");
  ASSERT_TRUE(stored.has_value() && stored->ok());
  // Killed between storing the result and removing the journal.
  SimulateKilledDeploy("v1", "v2");

  NewDeployer();

  EXPECT_EQ(Current(), "v2");
  EXPECT_THAT(Reloads(), IsEmpty());
  EXPECT_THAT(AfterRollbacks(), IsEmpty());
  EXPECT_FALSE(HasJournal());
  auto after = StateStore(options_.state_dir).LoadResult("deploy-v2");
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(*stored, *after));
}

TEST_F(DeployerRecoveryTest, Recover_ForgetsAnInterruptedRollbackSoTheResendRedoesIt) {
  StageAndDeploy("v1", Spec());
  StageAndDeploy("v2", Spec());
  SimulateKilledDeploy("v2", "v1", fleet::v1::ACTIVATE_MODE_ROLLBACK);

  NewDeployer();

  EXPECT_FALSE(HasJournal());
  EXPECT_FALSE(StateStore(options_.state_dir).LoadResult("rollback-v1").has_value());
  EXPECT_THAT(Reloads(), IsEmpty());

  CommandResult result = Rollback("v1", Spec());
  EXPECT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(Current(), "v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1"));
}

TEST_F(DeployerRecoveryTest, Recover_RemovesStagingDirsTempLinkAndPartialDownloads) {
  StageAndDeploy("v1", Spec());
  WriteTextFile(AppDir() + "/releases/.staging-v2-AbC123/bin/start", "half");
  ASSERT_EQ(symlink("releases/v2", (AppDir() + "/.current.tmp").c_str()), 0);
  WriteTextFile(options_.state_dir + "/downloads/0123abcd.part", "half a download");

  NewDeployer();

  EXPECT_THAT(FindByPrefix(AppDir(), ".staging-"), IsEmpty());
  EXPECT_FALSE(PathExists(AppDir() + "/.current.tmp"));
  EXPECT_THAT(FindByPrefix(options_.state_dir + "/downloads", ""), IsEmpty());
  EXPECT_THAT(OnDisk(), ElementsAre("v1"));
  EXPECT_EQ(Current(), "v1");
  EXPECT_EQ(::fleet::testing::ReadTextFile(ReleaseDir("v1") + "/VERSION"), "v1");
}

}  // namespace
}  // namespace fleet::agent
