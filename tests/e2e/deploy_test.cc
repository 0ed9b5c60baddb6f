// End-to-end: a real controller and three real agents on loopback deploy
// the hello example, fail, switch back, and roll back.
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"

namespace fleet {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::Cluster;
using testing::CommandOutput;

class E2EDeployTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(3)) << cluster_.ControllerLog();
  }

  void Push(const std::string& version, int healthz_status = 200) {
    std::string artifact = cluster_.MakeHelloArtifact(version, healthz_status);
    CommandOutput out = cluster_.Fleetctl({"release", "push", "hello", version, artifact});
    ASSERT_EQ(out.exit_code, 0) << out.err;
  }

  void Deploy(const std::string& version) {
    CommandOutput out = cluster_.Fleetctl({"rollout", "hello", version, "--wait"});
    ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  }

  void ExpectFleetOn(const std::string& version) {
    for (int i = 0; i < cluster_.agents(); ++i) {
      EXPECT_EQ(cluster_.Current(i), version) << cluster_.HostId(i);
      EXPECT_EQ(cluster_.HttpGet(i, "/version"), version + "\n") << cluster_.HostId(i);
    }
  }

  Cluster cluster_;
};

TEST_F(E2EDeployTest, DemoSequence_FailedReleaseSwitchesBackAndRollbackGoesToEarlierRelease) {
  cluster_.ApplyHelloSpec();
  Push("v1");
  Push("v2");
  Push("v3", 502);

  Deploy("v1");
  ExpectFleetOn("v1");
  Deploy("v2");
  ExpectFleetOn("v2");

  CommandOutput failed = cluster_.Fleetctl({"rollout", "hello", "v3", "--wait"});
  EXPECT_EQ(failed.exit_code, 2) << failed.out << failed.err;
  EXPECT_THAT(failed.err, HasSubstr("/healthz returned 502"));
  ExpectFleetOn("v2");

  CommandOutput rollback = cluster_.Fleetctl({"rollback", "hello", "--wait"});
  EXPECT_EQ(rollback.exit_code, 0) << rollback.out << rollback.err;
  ExpectFleetOn("v1");

  CommandOutput history = cluster_.Fleetctl({"history", "hello"});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  std::vector<std::string> lines = absl::StrSplit(testing::RolloutsTable(history.out), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << history.out;  // header + 4 rows, newest first
  EXPECT_THAT(lines[1], HasSubstr("rollback"));
  EXPECT_THAT(lines[1], ContainsRegex("v1 +v2 "));
  EXPECT_THAT(lines[1], HasSubstr("succeeded"));
  EXPECT_THAT(lines[2], ContainsRegex("v3 +v2 "));
  EXPECT_THAT(lines[2], HasSubstr("rolled_back"));
  EXPECT_THAT(lines[2], HasSubstr("/healthz returned 502"));
  EXPECT_THAT(lines[2], HasSubstr("tester@ci"));
  EXPECT_THAT(lines[4], ContainsRegex("v1 +- "));

  // Each host recorded its own reason for switching back.
  CommandOutput json = cluster_.Fleetctl({"--output", "json", "history", "hello"});
  ASSERT_EQ(json.exit_code, 0);
  EXPECT_THAT(json.out, HasSubstr("\"kind\": \"host.switched_back\""));
}

TEST_F(E2EDeployTest, Rollback_UsesReleaseOnDiskWithoutDownloading) {
  cluster_.ApplyHelloSpec();
  Push("v1");
  Push("v2");
  Deploy("v1");
  Deploy("v2");
  // With the blobs gone, a rollback can only work from the hosts' disks.
  std::filesystem::remove_all(cluster_.DataDir() + "/blobs");

  CommandOutput out = cluster_.Fleetctl({"rollback", "hello", "--to", "v1", "--wait"});
  EXPECT_EQ(out.exit_code, 0) << out.out << out.err;
  ExpectFleetOn("v1");
}

TEST_F(E2EDeployTest, Rollback_ToAReleaseMissingOnAHost_IsRefusedBeforeAnythingMoves) {
  cluster_.ApplyHelloSpec();
  Push("v1");
  Push("v2");
  // zone=a is hosts 0 and 2; host 1 (zone=b) never gets v1.
  CommandOutput out = cluster_.Fleetctl({"rollout", "hello", "v1", "--selector", "zone=a", "--wait"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  Deploy("v2");

  out = cluster_.Fleetctl({"rollback", "hello", "--wait"});
  EXPECT_EQ(out.exit_code, 1) << out.out << out.err;
  EXPECT_THAT(out.err, HasSubstr("release v1 of hello is not on disk on host web-02"));
  EXPECT_THAT(out.err, HasSubstr("nothing was changed"));
  ExpectFleetOn("v2");
  // No rollback was recorded and the fleet's release is still v2.
  CommandOutput list = cluster_.Fleetctl({"rollout", "list", "hello"});
  EXPECT_THAT(list.out, Not(HasSubstr("rollback"))) << list.out;
  CommandOutput apps = cluster_.Fleetctl({"--output", "json", "app", "list"});
  EXPECT_THAT(apps.out, HasSubstr("\"desired_version\": \"v2\"")) << apps.out;
}

TEST_F(E2EDeployTest, Rollback_ToAReleaseNeverReleased_IsRefusedAndARestartedAgentStaysOnTheFleetsRelease) {
  cluster_.ApplyHelloSpec();
  Push("v1");
  Push("v2");
  Push("v3");  // pushed, never rolled out
  Deploy("v1");
  Deploy("v2");

  CommandOutput out = cluster_.Fleetctl({"rollback", "hello", "--to", "v3", "--wait"});
  EXPECT_EQ(out.exit_code, 1) << out.out << out.err;
  EXPECT_THAT(out.err, HasSubstr("release v3 of hello was never released"));
  out = cluster_.Fleetctl({"rollback", "hello", "--to", "v9"});
  EXPECT_EQ(out.exit_code, 1) << out.out << out.err;
  EXPECT_THAT(out.err, HasSubstr("unknown release"));
  ExpectFleetOn("v2");

  // An agent that restarts now is left on the release the fleet runs: no
  // catch-up to a release the refused rollbacks named.
  cluster_.KillAgent(1);
  cluster_.StartAgent(1);
  ASSERT_TRUE(cluster_.WaitForConnectedHosts(3));
  absl::SleepFor(absl::Seconds(2));
  ExpectFleetOn("v2");
  CommandOutput history = cluster_.Fleetctl({"--output", "json", "history", "hello"});
  EXPECT_THAT(history.out, Not(HasSubstr("host.catch_up"))) << history.out;
  EXPECT_THAT(history.out, Not(HasSubstr("host.reconcile"))) << history.out;
}

TEST_F(E2EDeployTest, CorruptBlob_IsRefusedAtStagingAndNothingIsActivated) {
  cluster_.ApplyHelloSpec();
  Push("v1");
  Push("v2");
  Deploy("v1");
  // Flip bytes in the stored blob of v2, keeping its size.
  CommandOutput list = cluster_.Fleetctl({"--output", "json", "release", "list", "hello"});
  std::string sha;
  for (absl::string_view line : absl::StrSplit(list.out, '\n')) {
    if (absl::StrContains(line, "\"sha256\"")) {
      std::vector<std::string> parts = absl::StrSplit(line, '"');
      sha = parts[3];  // the last release listed is v2
    }
  }
  ASSERT_EQ(sha.size(), 64u) << list.out;
  std::string blob = absl::StrCat(cluster_.DataDir(), "/blobs/", sha.substr(0, 2), "/", sha);
  {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good()) << blob;
    f.seekp(100);
    f.write("CORRUPTED", 9);
  }

  CommandOutput out = cluster_.Fleetctl({"rollout", "hello", "v2", "--wait"});
  EXPECT_EQ(out.exit_code, 2) << out.out << out.err;
  EXPECT_THAT(out.err, HasSubstr("artifact sha256 mismatch for hello@v2"));
  EXPECT_THAT(out.err, HasSubstr("nothing was switched"));
  ExpectFleetOn("v1");
  for (int i = 0; i < cluster_.agents(); ++i) {
    for (const auto& entry :
         std::filesystem::directory_iterator(cluster_.AppsRoot(i) + "/hello/releases")) {
      // v1 and the manifest of its tree, nothing of v2.
      EXPECT_THAT(entry.path().filename().string(), ::testing::AnyOf("v1", ".manifest-v1"))
          << "unexpected " << entry.path();
    }
  }
}

TEST_F(E2EDeployTest, AgentKilledDuringActivation_RestartsOnCompleteReleaseAndRolloutEnds) {
  cluster_.ApplyHelloSpec("4s");
  Push("v1");
  Push("v2");
  Deploy("v1");

  CommandOutput started = cluster_.Fleetctl({"rollout", "hello", "v2"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = Cluster::RolloutId(started.out);
  // Kill host 0's agent while it bakes v2.
  ASSERT_TRUE(testing::WaitFor([&] { return cluster_.Current(0) == "v2"; }, absl::Seconds(20)));
  cluster_.KillAgent(0);
  cluster_.StartAgent(0);

  CommandOutput watched = cluster_.Fleetctl({"rollout", "watch", id}, absl::Seconds(90));
  ASSERT_TRUE(watched.exit_code == 0 || watched.exit_code == 2) << watched.out << watched.err;
  std::string expected = watched.exit_code == 0 ? "v2" : "v1";
  if (watched.exit_code == 2) {
    EXPECT_THAT(watched.out, HasSubstr("agent restarted during activation of v2"));
  }
  for (int i = 0; i < cluster_.agents(); ++i) {
    std::string current = cluster_.Current(i);
    EXPECT_EQ(current, expected) << cluster_.HostId(i);
    EXPECT_TRUE(std::filesystem::is_directory(cluster_.AppsRoot(i) + "/hello/releases/" + current));
  }
  ASSERT_TRUE(testing::WaitFor([&] { return cluster_.HttpGet(0, "/version") == expected + "\n"; },
                               absl::Seconds(10)));
}

TEST_F(E2EDeployTest, ControllerKilledDuringActivation_ResumesAndFinishesRollout) {
  cluster_.ApplyHelloSpec("3s");
  Push("v1");
  Deploy("v1");
  Push("v2");
  CommandOutput started = cluster_.Fleetctl({"rollout", "hello", "v2"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = Cluster::RolloutId(started.out);
  ASSERT_TRUE(testing::WaitFor([&] { return cluster_.Current(0) == "v2"; }, absl::Seconds(20)));
  cluster_.KillController();
  cluster_.StartController();

  CommandOutput watched = cluster_.Fleetctl({"rollout", "watch", id}, absl::Seconds(90));
  EXPECT_EQ(watched.exit_code, 0) << watched.out << watched.err << cluster_.ControllerLog();
  ExpectFleetOn("v2");
  // One history row per rollout, none lost or doubled by the restart.
  CommandOutput list = cluster_.Fleetctl({"rollout", "list", "hello"});
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 3) << list.out;
}

TEST_F(E2EDeployTest, HostAway_IsSkippedThenCaughtUpAndCountsAsFailedPastHostTimeout) {
  cluster_.ApplyHelloSpec();
  Push("v1");
  Deploy("v1");
  Push("v2");
  // A host that is away when the rollout starts is not a target: it gets
  // the fleet's release when it reconnects.
  cluster_.KillAgent(1);
  ASSERT_TRUE(testing::WaitFor(
      [&] { return !cluster_.WaitForConnectedHosts(3, absl::Milliseconds(100)); },
      absl::Seconds(10)));
  CommandOutput out = cluster_.Fleetctl(
      {"rollout", "hello", "v2", "--waves", "100%", "--host-timeout", "2s", "--wait"});
  EXPECT_EQ(out.exit_code, 0) << out.out << out.err;
  EXPECT_THAT(out.out, HasSubstr("on 2 hosts"));

  // A host that goes away during the rollout fails it after --host-timeout.
  Push("v3");
  cluster_.StartAgent(1);
  ASSERT_TRUE(cluster_.WaitForConnectedHosts(3));
  // web-02 missed v2: on reconnect the controller stages it there and
  // switches it over (probed like a deploy).
  ASSERT_TRUE(testing::WaitFor([&] { return cluster_.Current(1) == "v2"; }, absl::Seconds(20)));
  ASSERT_TRUE(testing::WaitFor(
      [&] { return cluster_.HttpGet(1, "/version") == "v2\n"; }, absl::Seconds(10)));
  CommandOutput history = cluster_.Fleetctl({"--output", "json", "history", "hello"});
  EXPECT_THAT(history.out, HasSubstr("\"kind\": \"host.catch_up\""));
  // Let the catch-up finish (its bake) before the next rollout takes the app.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return absl::StrContains(cluster_.Fleetctl({"--output", "json", "history", "hello"}).out,
                                 "\"kind\": \"host.reconciled\"");
      },
      absl::Seconds(20)));
  CommandOutput started =
      cluster_.Fleetctl({"rollout", "hello", "v3", "--waves", "100%", "--host-timeout", "2s"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  cluster_.KillAgent(2);  // gone while it stages or switches
  CommandOutput watched = cluster_.Fleetctl({"rollout", "watch", Cluster::RolloutId(started.out)});
  // 2 when web-03 was lost while staging (nothing switched there); 3 when it
  // was lost while switching: it may run v3 and cannot be sent back, which
  // its own journal undoes when it restarts.
  EXPECT_TRUE(watched.exit_code == 2 || watched.exit_code == 3) << watched.out;
  EXPECT_THAT(watched.out, HasSubstr("host disconnected for more than 2s"));
  EXPECT_EQ(cluster_.Current(0), "v2");
}

TEST_F(E2EDeployTest, SecondRolloutWhileOneRuns_IsRefusedWithTheRunningOne) {
  cluster_.ApplyHelloSpec("3s");
  Push("v1");
  Push("v2");
  CommandOutput first = cluster_.Fleetctl({"rollout", "hello", "v1"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  CommandOutput second = cluster_.Fleetctl({"rollout", "hello", "v2"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.err, HasSubstr(absl::StrCat("rollout ", Cluster::RolloutId(first.out),
                                                 " of hello is running (v1, started by tester@ci")));
  CommandOutput watched = cluster_.Fleetctl({"rollout", "watch", Cluster::RolloutId(first.out)});
  EXPECT_EQ(watched.exit_code, 0) << watched.out;
}

TEST_F(E2EDeployTest, BadInput_GetsOneClearLineAndChangesNothing) {
  cluster_.ApplyHelloSpec();
  Push("v1");

  auto expect_error = [&](const std::vector<std::string>& args, const std::string& message) {
    CommandOutput out = cluster_.Fleetctl(args);
    EXPECT_EQ(out.exit_code, 1) << absl::StrJoin(args, " ") << ": " << out.out;
    EXPECT_THAT(out.err, HasSubstr(message)) << absl::StrJoin(args, " ");
    EXPECT_EQ(std::count(out.err.begin(), out.err.end(), '\n'), 1) << out.err;
  };
  expect_error({"rollout", "nope", "v1"}, "unknown app 'nope'");
  expect_error({"rollout", "hello", "v9"}, "unknown release hello@v9");
  expect_error({"rollout", "hello", "v1", "--selector", "host=ghost"}, "unknown host 'ghost'");
  expect_error({"rollout", "hello", "v1", "--selector", "role=db"}, "no host matches role=db");
  expect_error({"rollback", "hello"}, "hello has no successful release yet");
  expect_error({"status", "nope"}, "unknown app 'nope'");

  // Versions are immutable: other content under v1 is refused, the same is fine.
  std::string other = cluster_.MakeHelloArtifact("v1-other");
  expect_error({"release", "push", "hello", "v1", other}, "exists already with different content");
  std::string same = cluster_.dir() + "/artifacts/v1.tar.gz";
  EXPECT_EQ(cluster_.Fleetctl({"release", "push", "hello", "v1", same}).exit_code, 0);

  std::string spec = cluster_.dir() + "/bad.yaml";
  testing::WriteTextFile(spec, "name: hello\nhealth:\n  - http: http://x/healthz\n    timeout: 20s\n");
  expect_error({"app", "apply", "-f", spec}, "bad.yaml:4: health[0].timeout: 20s is more than");
  testing::WriteTextFile(spec, "name: hello\nreloda: x\n");
  expect_error({"app", "apply", "-f", spec}, "bad.yaml:2: reloda: unknown field");

  // Nothing changed: no rollout ran, and the spec is the one applied first.
  CommandOutput list = cluster_.Fleetctl({"rollout", "list", "hello"});
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 1) << list.out;
  for (int i = 0; i < cluster_.agents(); ++i) EXPECT_EQ(cluster_.Current(i), "");
}

TEST(E2EUnreachableTest, UnreachableController_FailsWithinFiveSeconds) {
  int port = testing::FreePort();
  absl::Time start = absl::Now();
  CommandOutput out = testing::RunCommand(
      {Cluster::Binary("fleetctl"), "--controller", absl::StrCat("127.0.0.1:", port), "hosts"});
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.err, HasSubstr("cannot reach the controller at 127.0.0.1:"));
  EXPECT_LT(took, absl::Seconds(6));
}

TEST_F(E2EDeployTest, Api_NeverShowsNotificationTokensOrSecrets) {
  cluster_.ApplyHelloSpec(
      "500ms",
      "notify:\n  - { type: dingtalk, url: \"https://oapi.dingtalk.com/robot/send?access_token="
      "TOK123\", secret: SEC123 }\n");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--output", "json", "app", "list"},
        std::vector<std::string>{"--output", "json", "status", "hello"}}) {
    CommandOutput out = cluster_.Fleetctl(args);
    ASSERT_EQ(out.exit_code, 0) << out.err;
    EXPECT_THAT(out.out, HasSubstr("https://oapi.dingtalk.com/robot/send?access_token=***"));
    EXPECT_THAT(out.out, ::testing::Not(HasSubstr("TOK123")));
    EXPECT_THAT(out.out, ::testing::Not(HasSubstr("SEC123")));
  }
}

}  // namespace
}  // namespace fleet
