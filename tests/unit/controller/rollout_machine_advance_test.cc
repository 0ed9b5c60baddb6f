// Advance() of the rollout state machine (controller/rollout_machine.h)
// from each non-terminal rollout state: STAGING, ACTIVATING, PAUSED and
// ROLLING_BACK, with a fake HostsView and fixed times.
#include <string>
#include <vector>

#include "controller/rollout_machine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/controller/rollout_machine_fixture.h"

namespace fleet::controller {
namespace {

using namespace fleet::v1;                // NOLINT: the enum values read better bare here
using namespace rollout_machine_testing;  // NOLINT: the fixture's helpers
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Optional;

using RolloutMachineStagingTest = MachineTest;

TEST_F(RolloutMachineStagingTest, AllStaged_StartsWaveOneAndActivatesOnlyWaveZeroHosts) {
  Rollout r = Deploy(ROLLOUT_STATE_STAGING, {"1", "100%"});
  AddTask(&r, "h1", TASK_STATE_STAGED, 0);
  AddTask(&r, "h2", TASK_STATE_STAGED, 1);
  AddTask(&r, "h3", TASK_STATE_STAGED, 1);
  ConnectAll(r);
  const absl::Time now = kT0 + absl::Seconds(10);
  Decision d = AdvanceAt(&r, now);
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ACTIVATING);
  EXPECT_EQ(r.current_wave(), 0);
  EXPECT_EQ(r.plan().waves(0).started_at_ms(), Ms(now));
  EXPECT_EQ(r.plan().waves(1).started_at_ms(), 0);
  EXPECT_THAT(Sent(d), ElementsAre("activate h1"));
  EXPECT_THAT(Events(d), ElementsAre("wave.started"));
  EXPECT_EQ(EventOf(d, EventKind::kWaveStarted).message, "wave 1/2 (1)");
  EXPECT_EQ(EventOf(d, EventKind::kWaveStarted).actor, "alice");
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_ACTIVATING);
  EXPECT_EQ(Task(r, "h1").updated_at_ms(), Ms(now));
  EXPECT_EQ(StateOf(r, "h2"), TASK_STATE_STAGED);
  EXPECT_TRUE(d.rollout_changed);
  EXPECT_THAT(d.changed_tasks, ElementsAre("h1"));
  EXPECT_EQ(d.set_desired, std::nullopt);
}

TEST_F(RolloutMachineStagingTest, HostStillStaging_HoldsTheRolloutWithoutResendingStage) {
  Rollout r = Deploy(ROLLOUT_STATE_STAGING);
  AddTask(&r, "h1", TASK_STATE_STAGED);
  AddTask(&r, "h2", TASK_STATE_STAGING);
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10));
  EXPECT_TRUE(d.empty());
  EXPECT_THAT(Sent(d), IsEmpty());
  EXPECT_EQ(r.state(), ROLLOUT_STATE_STAGING);
}

TEST_F(RolloutMachineStagingTest, FailuresPastMaxFailures_RollBackSayingNothingWasSwitched) {
  Rollout r = Deploy(ROLLOUT_STATE_STAGING);
  AddTask(&r, "h1", TASK_STATE_FAILED)->set_reason("artifact sha256 mismatch");
  AddTask(&r, "h2", TASK_STATE_STAGING);
  AddTask(&r, "h3", TASK_STATE_PENDING);
  AddTask(&r, "h4", TASK_STATE_STAGED);
  ConnectAll(r);
  hosts_.Disconnect("h3", kT0);  // away, but not for long
  const absl::Time now = kT0 + absl::Seconds(10);
  Decision d = AdvanceAt(&r, now);
  const std::string reason = "staging failed: artifact sha256 mismatch on h1; nothing was switched";
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLED_BACK);
  EXPECT_EQ(r.reason(), reason);
  EXPECT_EQ(r.finished_at_ms(), Ms(now));
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_FAILED);
  EXPECT_EQ(StateOf(r, "h2"), TASK_STATE_CANCELLED);
  EXPECT_EQ(StateOf(r, "h3"), TASK_STATE_CANCELLED);
  EXPECT_EQ(StateOf(r, "h4"), TASK_STATE_CANCELLED);
  EXPECT_THAT(Sent(d), IsEmpty());
  EXPECT_THAT(Events(d), ElementsAre("rollout.failed"));
  EXPECT_EQ(EventOf(d, EventKind::kRolloutFailed).message, reason);
  EXPECT_EQ(d.set_desired, std::nullopt);
}

TEST_F(RolloutMachineStagingTest, PendingHostThatConnects_IsSentStage) {
  Rollout r = Deploy(ROLLOUT_STATE_STAGING);
  AddTask(&r, "h1", TASK_STATE_PENDING);
  AddTask(&r, "h2", TASK_STATE_STAGED);
  hosts_.Disconnect("h1", kT0);
  hosts_.Connect("h2", kT0);
  EXPECT_TRUE(AdvanceAt(&r, kT0 + absl::Seconds(5)).empty());

  hosts_.Connect("h1", kT0 + absl::Seconds(8));
  const absl::Time now = kT0 + absl::Seconds(10);
  Decision d = AdvanceAt(&r, now);
  EXPECT_THAT(Sent(d), ElementsAre("stage h1"));
  EXPECT_EQ(d.commands[0].rollout_id(), "r1");
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_STAGING);
  EXPECT_EQ(Task(r, "h1").updated_at_ms(), Ms(now));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_STAGING);
  EXPECT_THAT(Events(d), IsEmpty());
}

TEST_F(RolloutMachineStagingTest, DisconnectedPendingHost_FailsOnlyPastTheHostTimeout) {
  Rollout r = Deploy(ROLLOUT_STATE_STAGING);
  r.mutable_plan()->set_max_failures(1);
  AddTask(&r, "h1", TASK_STATE_PENDING);
  AddTask(&r, "h2", TASK_STATE_STAGING);
  hosts_.Disconnect("h1", kT0);
  hosts_.Connect("h2", kT0);
  EXPECT_TRUE(AdvanceAt(&r, kT0 + kHostTimeout).empty());

  Decision d = AdvanceAt(&r, kT0 + kHostTimeout + absl::Milliseconds(1));
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_FAILED);
  EXPECT_EQ(Task(r, "h1").reason(), "host disconnected for more than 1m");
  EXPECT_THAT(Events(d), ElementsAre("host.failed h1"));
  EXPECT_EQ(EventOf(d, EventKind::kHostFailed).actor, "h1");
  EXPECT_EQ(EventOf(d, EventKind::kHostFailed).message, "host disconnected for more than 1m");
  EXPECT_EQ(r.state(), ROLLOUT_STATE_STAGING);
}

TEST_F(RolloutMachineStagingTest, SilentStagingHost_FailsPastHostTimeoutPlusBake) {
  Rollout r = Deploy(ROLLOUT_STATE_STAGING);
  r.mutable_plan()->set_max_failures(1);
  AddTask(&r, "h1", TASK_STATE_STAGING);
  AddTask(&r, "h2", TASK_STATE_PENDING);
  hosts_.Connect("h1", kT0 - absl::Hours(1));
  hosts_.Disconnect("h2", kT0 + absl::Minutes(1));
  EXPECT_TRUE(AdvanceAt(&r, kT0 + kHostTimeout + kBake).empty());

  Decision d = AdvanceAt(&r, kT0 + kHostTimeout + kBake + absl::Milliseconds(1));
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_FAILED);
  EXPECT_EQ(Task(r, "h1").reason(), "no answer from host for 1m30s");
  EXPECT_THAT(Events(d), ElementsAre("host.failed h1"));
}

TEST_F(RolloutMachineStagingTest, ProgressReport_RestartsTheAnswerClock) {
  Rollout r = Deploy(ROLLOUT_STATE_STAGING);
  AddTask(&r, "h1", TASK_STATE_STAGING);
  hosts_.Connect("h1", kT0 - absl::Hours(1));
  hosts_.Progress("h1", kT0 + absl::Minutes(1));
  EXPECT_TRUE(AdvanceAt(&r, kT0 + absl::Minutes(2)).empty());
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_STAGING);
}

using RolloutMachineActivatingTest = MachineTest;

TEST_F(RolloutMachineActivatingTest, WaveDone_StartsTheNextWave) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING, {"1", "100%"});
  AddTask(&r, "h1", TASK_STATE_HEALTHY, 0);
  AddTask(&r, "h2", TASK_STATE_STAGED, 1);
  AddTask(&r, "h3", TASK_STATE_STAGED, 1);
  ConnectAll(r);
  const absl::Time now = kT0 + absl::Seconds(10);
  Decision d = AdvanceAt(&r, now);
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ACTIVATING);
  EXPECT_EQ(r.current_wave(), 1);
  EXPECT_EQ(r.plan().waves(0).finished_at_ms(), Ms(now));
  EXPECT_EQ(r.plan().waves(1).started_at_ms(), Ms(now));
  EXPECT_THAT(Events(d), ElementsAre("wave.finished", "wave.started"));
  EXPECT_EQ(d.events[0].message, "wave 1/2 (1) done; 0 hosts failed so far");
  EXPECT_EQ(d.events[1].message, "wave 2/2 (100%)");
  EXPECT_THAT(Sent(d), ElementsAre("activate h2", "activate h3"));
}

TEST_F(RolloutMachineActivatingTest, HostOfTheWaveInFlight_HoldsTheNextWave) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING, {"1", "100%"});
  AddTask(&r, "h1", TASK_STATE_ACTIVATING, 0);
  AddTask(&r, "h2", TASK_STATE_STAGED, 1);
  ConnectAll(r);
  EXPECT_TRUE(AdvanceAt(&r, kT0 + absl::Seconds(10)).empty());
  EXPECT_EQ(StateOf(r, "h2"), TASK_STATE_STAGED);
  EXPECT_EQ(r.current_wave(), 0);
}

TEST_F(RolloutMachineActivatingTest, LastWaveDone_SucceedsAndSetsTheDesiredVersion) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING, {"1", "100%"});
  r.set_current_wave(1);
  AddTask(&r, "h1", TASK_STATE_HEALTHY, 0);
  AddTask(&r, "h2", TASK_STATE_HEALTHY, 1);
  ConnectAll(r);
  const absl::Time now = kT0 + absl::Seconds(10);
  Decision d = AdvanceAt(&r, now);
  EXPECT_EQ(r.state(), ROLLOUT_STATE_SUCCEEDED);
  EXPECT_EQ(r.reason(), "");
  EXPECT_EQ(r.finished_at_ms(), Ms(now));
  EXPECT_EQ(r.plan().waves(1).finished_at_ms(), Ms(now));
  EXPECT_THAT(d.set_desired, Optional(std::string("v2")));
  EXPECT_THAT(Events(d), ElementsAre("wave.finished", "rollout.succeeded"));
  EXPECT_EQ(EventOf(d, EventKind::kRolloutSucceeded).message, "v2 is live on 2 hosts");
  EXPECT_THAT(Sent(d), IsEmpty());
}

TEST_F(RolloutMachineActivatingTest, ManualPromote_PausesAtTheGateAfterAWave) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING, {"1", "100%"});
  r.mutable_plan()->set_manual_promote(true);
  AddTask(&r, "h1", TASK_STATE_HEALTHY, 0);
  AddTask(&r, "h2", TASK_STATE_STAGED, 1);
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_PAUSED);
  EXPECT_TRUE(r.awaiting_promote());
  EXPECT_EQ(r.pause_reason(), PAUSE_REASON_PROMOTE_GATE);
  EXPECT_EQ(r.current_wave(), 0);
  EXPECT_THAT(Events(d), ElementsAre("wave.finished", "rollout.waiting"));
  EXPECT_EQ(EventOf(d, EventKind::kRolloutWaiting).message,
            "wave 1/2 (1) is healthy; waiting for: fleetctl rollout promote r1");
  EXPECT_THAT(Sent(d), IsEmpty());
  EXPECT_EQ(StateOf(r, "h2"), TASK_STATE_STAGED);
  // The gate holds: later steps switch nothing.
  EXPECT_TRUE(AdvanceAt(&r, kT0 + absl::Hours(1)).empty());
}

TEST_F(RolloutMachineActivatingTest, ManualPromote_DoesNotGateTheLastWave) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING, {"1", "100%"});
  r.mutable_plan()->set_manual_promote(true);
  r.set_current_wave(1);
  AddTask(&r, "h1", TASK_STATE_HEALTHY, 0);
  AddTask(&r, "h2", TASK_STATE_HEALTHY, 1);
  ConnectAll(r);
  AdvanceAt(&r, kT0 + absl::Seconds(10));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_SUCCEEDED);
  EXPECT_FALSE(r.awaiting_promote());
}

TEST_F(RolloutMachineActivatingTest, MaxParallel_CapsHostsInFlight) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  r.mutable_plan()->set_max_parallel(2);
  AddTask(&r, "h1", TASK_STATE_ACTIVATING);
  for (const char* h : {"h2", "h3", "h4", "h5"}) AddTask(&r, h, TASK_STATE_STAGED);
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10));
  EXPECT_THAT(Sent(d), ElementsAre("activate h2"));

  // Still two in flight: nothing more.
  EXPECT_THAT(Sent(AdvanceAt(&r, kT0 + absl::Seconds(11))), IsEmpty());

  Task(r, "h1").set_state(TASK_STATE_HEALTHY);
  d = AdvanceAt(&r, kT0 + absl::Seconds(12));
  EXPECT_THAT(Sent(d), ElementsAre("activate h3"));
  EXPECT_EQ(StateOf(r, "h4"), TASK_STATE_STAGED);
  EXPECT_EQ(StateOf(r, "h5"), TASK_STATE_STAGED);
}

TEST_F(RolloutMachineActivatingTest, MaxParallelZero_SwitchesTheWholeWaveAtOnce) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  for (const char* h : {"h1", "h2", "h3"}) AddTask(&r, h, TASK_STATE_STAGED);
  ConnectAll(r);
  EXPECT_THAT(Sent(AdvanceAt(&r, kT0)), ElementsAre("activate h1", "activate h2", "activate h3"));
}

TEST_F(RolloutMachineActivatingTest, FailuresPastThreshold_RollADeployBack) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  AddTask(&r, "h1", TASK_STATE_HEALTHY);
  AddTask(&r, "h2", TASK_STATE_FAILED)->set_reason("probe /healthz failed");
  AddTask(&r, "h3", TASK_STATE_STAGED);
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLING_BACK);
  EXPECT_EQ(r.reason(), "probe /healthz failed on h2");
  EXPECT_THAT(Events(d), ElementsAre("rollout.failed"));
  EXPECT_EQ(EventOf(d, EventKind::kRolloutFailed).message,
            "probe /healthz failed on h2; more than 0 failed hosts allowed; rolling back");
  // Going back starts in the same step.
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_REVERTING);
  EXPECT_EQ(StateOf(r, "h3"), TASK_STATE_CANCELLED);
  EXPECT_THAT(Sent(d), ElementsAre("revert h1"));
  EXPECT_EQ(d.set_desired, std::nullopt);
}

TEST_F(RolloutMachineActivatingTest, RollbackHostFailed_KeepsSwitchingWhileHostsAreInFlight) {
  Rollout r = RollbackRollout(ROLLOUT_STATE_ACTIVATING);
  AddTask(&r, "h1", TASK_STATE_FAILED)->set_reason("switch failed");
  AddTask(&r, "h2", TASK_STATE_ACTIVATING);
  AddTask(&r, "h3", TASK_STATE_STAGED);
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ACTIVATING);
  EXPECT_THAT(Sent(d), ElementsAre("activate h3"));
  EXPECT_THAT(Events(d), IsEmpty());
}

TEST_F(RolloutMachineActivatingTest, RollbackHostFailed_FailsOnceNoHostIsInFlightWithoutReverting) {
  Rollout r = RollbackRollout(ROLLOUT_STATE_ACTIVATING);
  AddTask(&r, "h1", TASK_STATE_FAILED)->set_reason("switch failed");
  AddTask(&r, "h2", TASK_STATE_HEALTHY);
  AddTask(&r, "h3", TASK_STATE_HEALTHY);
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_FAILED);
  EXPECT_EQ(r.reason(), "switch failed on h1");
  EXPECT_THAT(Events(d), ElementsAre("rollback.failed"));
  EXPECT_EQ(EventOf(d, EventKind::kRollbackFailed).message, "switch failed on h1");
  EXPECT_THAT(Sent(d), IsEmpty());
  EXPECT_EQ(StateOf(r, "h2"), TASK_STATE_HEALTHY);
  // Some hosts moved to v1: the desired version is not reset.
  EXPECT_EQ(d.set_desired, std::nullopt);
}

TEST_F(RolloutMachineActivatingTest, RollbackWhereNoHostBecameHealthy_SetsDesiredToItsFromVersion) {
  Rollout r = RollbackRollout(ROLLOUT_STATE_ACTIVATING);
  AddTask(&r, "h1", TASK_STATE_FAILED)->set_reason("switch failed");
  AddTask(&r, "h2", TASK_STATE_FAILED)->set_reason("switch failed");
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_FAILED);
  EXPECT_EQ(r.reason(), "switch failed on h1 (2 hosts failed)");
  EXPECT_THAT(d.set_desired, Optional(std::string("v2")));
}

TEST_F(RolloutMachineActivatingTest, RollbackWithinThreshold_SucceedsWithRollbackSucceeded) {
  Rollout r = RollbackRollout(ROLLOUT_STATE_ACTIVATING);
  AddTask(&r, "h1", TASK_STATE_HEALTHY);
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_SUCCEEDED);
  EXPECT_THAT(Events(d), ElementsAre("wave.finished", "rollback.succeeded"));
  EXPECT_EQ(EventOf(d, EventKind::kRollbackSucceeded).message, "v1 is live on 1 hosts");
  EXPECT_THAT(d.set_desired, Optional(std::string("v1")));
}

TEST_F(RolloutMachineActivatingTest, EveryHostFailedWithinThreshold_EndsRolledBackNoHostHealthy) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  r.mutable_plan()->set_max_failures(2);
  AddTask(&r, "h1", TASK_STATE_FAILED)->set_reason("probe failed");
  AddTask(&r, "h2", TASK_STATE_FAILED)->set_reason("probe failed");
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10));
  const std::string reason = "no host became healthy: probe failed on h1 (2 hosts failed)";
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLED_BACK);
  EXPECT_EQ(r.reason(), reason);
  EXPECT_THAT(Events(d), ElementsAre("wave.finished", "rollout.failed"));
  EXPECT_EQ(EventOf(d, EventKind::kRolloutFailed).message, reason);
  EXPECT_EQ(d.set_desired, std::nullopt);
  EXPECT_THAT(Sent(d), IsEmpty());
}

TEST_F(RolloutMachineActivatingTest, FailuresWithinThreshold_SucceedNamingTheFailures) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  r.mutable_plan()->set_max_failures(1);
  AddTask(&r, "h1", TASK_STATE_HEALTHY);
  AddTask(&r, "h2", TASK_STATE_FAILED)->set_reason("probe failed");
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_SUCCEEDED);
  EXPECT_EQ(r.reason(),
            "1 hosts failed within the threshold of 1 and went back: probe failed on h2");
  EXPECT_THAT(d.set_desired, Optional(std::string("v2")));
  EXPECT_EQ(EventOf(d, EventKind::kRolloutSucceeded).message, "v2 is live on 1 hosts");
}

TEST_F(RolloutMachineActivatingTest, AnalysisFail_RollsBackWithAnalysisFailedEvent) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  AddTask(&r, "h1", TASK_STATE_HEALTHY);
  AddTask(&r, "h2", TASK_STATE_ACTIVATING);
  ConnectAll(r);
  AnalysisGate gate;
  gate.has_checks = true;
  gate.all_passed = false;
  gate.verdict = AnalysisGate::Verdict::kFail;
  gate.reason = "error_rate 4.2% > 1%";
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10), gate);
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLING_BACK);
  EXPECT_EQ(r.reason(), "error_rate 4.2% > 1%");
  EXPECT_THAT(Events(d), ElementsAre("analysis.failed", "rollout.failed"));
  EXPECT_EQ(d.events[0].actor, "analysis");
  EXPECT_EQ(d.events[0].message, "error_rate 4.2% > 1%");
  EXPECT_EQ(d.events[1].actor, "alice");
  EXPECT_EQ(d.events[1].message, "error_rate 4.2% > 1%; rolling back");
  EXPECT_THAT(Sent(d), ElementsAre("revert h1"));
  EXPECT_EQ(StateOf(r, "h2"), TASK_STATE_ACTIVATING);  // waits for its answer
}

TEST_F(RolloutMachineActivatingTest, AnalysisPause_PausesByAnalysisWithItsReason) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  AddTask(&r, "h1", TASK_STATE_HEALTHY);
  AddTask(&r, "h2", TASK_STATE_STAGED);
  ConnectAll(r);
  AnalysisGate gate;
  gate.has_checks = true;
  gate.all_passed = false;
  gate.verdict = AnalysisGate::Verdict::kPause;
  gate.reason = "p99 latency: no data";
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10), gate);
  EXPECT_EQ(r.state(), ROLLOUT_STATE_PAUSED);
  EXPECT_EQ(r.pause_reason(), PAUSE_REASON_ANALYSIS);
  EXPECT_EQ(r.paused_by(), "analysis");
  EXPECT_EQ(r.reason(), "p99 latency: no data");
  EXPECT_FALSE(r.awaiting_promote());
  EXPECT_THAT(Events(d), ElementsAre("analysis.inconclusive"));
  EXPECT_EQ(d.events[0].actor, "analysis");
  EXPECT_EQ(d.events[0].message, "p99 latency: no data; paused until: fleetctl rollout resume r1");
  EXPECT_THAT(Sent(d), IsEmpty());
  EXPECT_EQ(StateOf(r, "h2"), TASK_STATE_STAGED);
}

TEST_F(RolloutMachineActivatingTest, AnalysisVerdict_DoesNotApplyToARollback) {
  Rollout r = RollbackRollout(ROLLOUT_STATE_ACTIVATING);
  AddTask(&r, "h1", TASK_STATE_HEALTHY);
  ConnectAll(r);
  AnalysisGate gate;
  gate.has_checks = true;
  gate.all_passed = false;
  gate.verdict = AnalysisGate::Verdict::kFail;
  gate.reason = "error_rate 4.2% > 1%";
  AdvanceAt(&r, kT0 + absl::Seconds(10), gate);
  EXPECT_EQ(r.state(), ROLLOUT_STATE_SUCCEEDED);
}

TEST_F(RolloutMachineActivatingTest, ChecksNotAllPassed_HoldTheWaveUntilTheyPass) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING, {"1", "100%"});
  AddTask(&r, "h1", TASK_STATE_HEALTHY, 0);
  AddTask(&r, "h2", TASK_STATE_STAGED, 1);
  ConnectAll(r);
  AnalysisGate gate;
  gate.has_checks = true;
  gate.all_passed = false;
  EXPECT_TRUE(AdvanceAt(&r, kT0 + absl::Seconds(10), gate).empty());
  EXPECT_EQ(r.current_wave(), 0);
  EXPECT_EQ(StateOf(r, "h2"), TASK_STATE_STAGED);

  gate.all_passed = true;
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(20), gate);
  EXPECT_EQ(r.current_wave(), 1);
  EXPECT_THAT(Sent(d), ElementsAre("activate h2"));
}

TEST_F(RolloutMachineActivatingTest, ChecksNotAllPassed_DoNotHoldAWaveWithNoHealthyHost) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING, {"1", "100%"});
  r.mutable_plan()->set_max_failures(1);
  AddTask(&r, "h1", TASK_STATE_FAILED, 0)->set_reason("probe failed");
  AddTask(&r, "h2", TASK_STATE_STAGED, 1);
  ConnectAll(r);
  AnalysisGate gate;
  gate.has_checks = true;
  gate.all_passed = false;
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10), gate);
  EXPECT_EQ(r.current_wave(), 1);
  EXPECT_EQ(d.events[0].message, "wave 1/2 (1) done; 1 hosts failed so far");
  EXPECT_THAT(Sent(d), ElementsAre("activate h2"));
}

TEST_F(RolloutMachineActivatingTest, SilentHost_IsLostOnlyPastHostTimeoutPlusBake) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  r.mutable_plan()->set_max_failures(1);
  AddTask(&r, "h1", TASK_STATE_ACTIVATING);
  AddTask(&r, "h2", TASK_STATE_ACTIVATING)->set_updated_at_ms(Ms(kT0 + absl::Minutes(1)));
  ConnectAll(r);
  EXPECT_TRUE(AdvanceAt(&r, kT0 + kHostTimeout + kBake).empty());

  Decision d = AdvanceAt(&r, kT0 + kHostTimeout + kBake + absl::Milliseconds(1));
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_LOST);
  EXPECT_EQ(Task(r, "h1").reason(), "no answer from host for 1m30s");
  EXPECT_THAT(Events(d), ElementsAre("host.lost h1"));
  EXPECT_EQ(StateOf(r, "h2"), TASK_STATE_ACTIVATING);
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ACTIVATING);
  EXPECT_THAT(Sent(d), IsEmpty());
}

TEST_F(RolloutMachineActivatingTest, ReconnectOrProgress_RestartTheAnswerClock) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  AddTask(&r, "h1", TASK_STATE_ACTIVATING);
  AddTask(&r, "h2", TASK_STATE_ACTIVATING);
  hosts_.Connect("h1", kT0 + absl::Minutes(1));
  hosts_.Connect("h2", kT0 - absl::Hours(1));
  hosts_.Progress("h2", kT0 + absl::Minutes(1));
  EXPECT_TRUE(AdvanceAt(&r, kT0 + absl::Minutes(2)).empty());
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_ACTIVATING);
  EXPECT_EQ(StateOf(r, "h2"), TASK_STATE_ACTIVATING);
}

TEST_F(RolloutMachineActivatingTest, DisconnectedHost_IsLostAfterTheHostTimeoutWithoutBake) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  r.mutable_plan()->set_max_failures(1);
  AddTask(&r, "h1", TASK_STATE_ACTIVATING);
  AddTask(&r, "h2", TASK_STATE_ACTIVATING);
  ConnectAll(r);
  hosts_.Disconnect("h1", kT0 + absl::Seconds(10));
  EXPECT_TRUE(AdvanceAt(&r, kT0 + absl::Seconds(10) + kHostTimeout).empty());
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10) + kHostTimeout + absl::Milliseconds(1));
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_LOST);
  EXPECT_EQ(Task(r, "h1").reason(), "host disconnected for more than 1m");
}

TEST_F(RolloutMachineActivatingTest, PlanWithoutHostTimeout_UsesTheDefault) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  r.mutable_plan()->set_host_timeout_ms(0);
  r.mutable_plan()->set_max_failures(1);
  AddTask(&r, "h1", TASK_STATE_ACTIVATING);
  AddTask(&r, "h2", TASK_STATE_ACTIVATING)->set_updated_at_ms(Ms(kT0 + absl::Hours(1)));
  ConnectAll(r);
  EXPECT_TRUE(AdvanceAt(&r, kT0 + kDefaultHostTimeout + kBake).empty());
  AdvanceAt(&r, kT0 + kDefaultHostTimeout + kBake + absl::Milliseconds(1));
  EXPECT_EQ(Task(r, "h1").reason(), "no answer from host for 5m30s");
}

using RolloutMachinePausedTest = MachineTest;

Rollout PausedByBob() {
  Rollout r = Deploy(ROLLOUT_STATE_PAUSED);
  r.set_pause_reason(PAUSE_REASON_MANUAL);
  r.set_paused_by("bob");
  return r;
}

TEST_F(RolloutMachinePausedTest, Staging_GoesOnWhilePaused) {
  Rollout r = PausedByBob();
  r.mutable_plan()->set_max_failures(1);
  AddTask(&r, "h1", TASK_STATE_PENDING);
  AddTask(&r, "h2", TASK_STATE_STAGING);
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Minutes(2));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_PAUSED);
  EXPECT_EQ(r.pause_reason(), PAUSE_REASON_MANUAL);
  EXPECT_THAT(Sent(d), ElementsAre("stage h1"));
  EXPECT_EQ(StateOf(r, "h2"), TASK_STATE_FAILED);
  EXPECT_THAT(Events(d), ElementsAre("host.failed h2"));
}

TEST_F(RolloutMachinePausedTest, StagedHosts_AreNotSwitched) {
  Rollout r = PausedByBob();
  AddTask(&r, "h1", TASK_STATE_HEALTHY);
  AddTask(&r, "h2", TASK_STATE_STAGED);
  ConnectAll(r);
  EXPECT_TRUE(AdvanceAt(&r, kT0 + absl::Hours(1)).empty());
  EXPECT_EQ(StateOf(r, "h2"), TASK_STATE_STAGED);
}

TEST_F(RolloutMachinePausedTest, SilentActivatingHost_IsLostWhilePaused) {
  Rollout r = PausedByBob();
  r.mutable_plan()->set_max_failures(1);
  AddTask(&r, "h1", TASK_STATE_ACTIVATING);
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Minutes(2));
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_LOST);
  EXPECT_THAT(Events(d), ElementsAre("host.lost h1"));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_PAUSED);
}

TEST_F(RolloutMachinePausedTest, FailuresPastThreshold_RollBackAndClearThePause) {
  Rollout r = PausedByBob();
  AddTask(&r, "h1", TASK_STATE_HEALTHY);
  AddTask(&r, "h2", TASK_STATE_ACTIVATING);
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Minutes(2));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLING_BACK);
  EXPECT_EQ(r.reason(), "no answer from host for 1m30s on h2");
  EXPECT_EQ(r.pause_reason(), PAUSE_REASON_UNSPECIFIED);
  EXPECT_THAT(Events(d), ElementsAre("host.lost h2", "rollout.failed"));
  EXPECT_THAT(Sent(d), ElementsAre("revert h1", "revert h2"));
}

using RolloutMachineRollingBackTest = MachineTest;

Rollout RollingBack() {
  Rollout r = Deploy(ROLLOUT_STATE_ROLLING_BACK);
  r.set_reason("probe failed on h9");
  return r;
}

TEST_F(RolloutMachineRollingBackTest, SwitchedAndLostHosts_AreSentBackAndUnstartedOnesCancelled) {
  Rollout r = RollingBack();
  AddTask(&r, "h1", TASK_STATE_HEALTHY);
  AddTask(&r, "h2", TASK_STATE_LOST);
  AddTask(&r, "h3", TASK_STATE_FAILED);
  AddTask(&r, "h4", TASK_STATE_PENDING);
  AddTask(&r, "h5", TASK_STATE_STAGING);
  AddTask(&r, "h6", TASK_STATE_STAGED);
  ConnectAll(r);
  const absl::Time now = kT0 + absl::Seconds(10);
  Decision d = AdvanceAt(&r, now);
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLING_BACK);
  EXPECT_THAT(Sent(d), ElementsAre("revert h1", "revert h2"));
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_REVERTING);
  EXPECT_EQ(Task(r, "h1").updated_at_ms(), Ms(now));
  EXPECT_EQ(StateOf(r, "h2"), TASK_STATE_REVERTING);
  EXPECT_EQ(StateOf(r, "h3"), TASK_STATE_FAILED);
  EXPECT_EQ(StateOf(r, "h4"), TASK_STATE_CANCELLED);
  EXPECT_EQ(StateOf(r, "h5"), TASK_STATE_CANCELLED);
  EXPECT_EQ(StateOf(r, "h6"), TASK_STATE_CANCELLED);
  EXPECT_THAT(Events(d), IsEmpty());
}

TEST_F(RolloutMachineRollingBackTest, FirstRelease_HasNothingToGoBackToAndEndsFailed) {
  Rollout r = RollingBack();
  AddTask(&r, "h1", TASK_STATE_HEALTHY)->set_from_version("");
  AddTask(&r, "h2", TASK_STATE_FAILED);
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10));
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_REVERT_FAILED);
  EXPECT_EQ(Task(r, "h1").reason(), "no earlier release on this host to go back to");
  EXPECT_THAT(Sent(d), IsEmpty());
  EXPECT_EQ(r.state(), ROLLOUT_STATE_FAILED);
  EXPECT_EQ(r.reason(), "probe failed on h9; not every host could go back");
  EXPECT_THAT(Events(d), ElementsAre("host.revert_failed h1", "rollout.rollback_incomplete"));
  EXPECT_EQ(d.events[0].message, "no earlier release on this host to go back to");
  EXPECT_EQ(d.events[1].message, "probe failed on h9");
}

TEST_F(RolloutMachineRollingBackTest, FirstConfig_GoesBackToNoConfig) {
  Rollout r = RollingBack();
  r.set_subject(SUBJECT_CONFIG);
  r.set_version("c2");
  r.set_from_version("");
  AddTask(&r, "h1", TASK_STATE_HEALTHY);
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10));
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_REVERTING);
  EXPECT_THAT(Sent(d), ElementsAre("revert h1"));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLING_BACK);
}

TEST_F(RolloutMachineRollingBackTest, EveryHostBack_EndsRolledBack) {
  Rollout r = RollingBack();
  AddTask(&r, "h1", TASK_STATE_REVERTED);
  AddTask(&r, "h2", TASK_STATE_FAILED);
  AddTask(&r, "h3", TASK_STATE_CANCELLED);
  ConnectAll(r);
  const absl::Time now = kT0 + absl::Seconds(10);
  Decision d = AdvanceAt(&r, now);
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLED_BACK);
  EXPECT_EQ(r.reason(), "probe failed on h9");
  EXPECT_EQ(r.finished_at_ms(), Ms(now));
  EXPECT_THAT(Events(d), ElementsAre("rollout.rolled_back"));
  EXPECT_EQ(d.events[0].message, "every switched host is back: probe failed on h9");
  EXPECT_EQ(d.set_desired, std::nullopt);
}

TEST_F(RolloutMachineRollingBackTest, HostThatCouldNotGoBack_EndsFailed) {
  Rollout r = RollingBack();
  AddTask(&r, "h1", TASK_STATE_REVERTED);
  AddTask(&r, "h2", TASK_STATE_REVERT_FAILED);
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_FAILED);
  EXPECT_EQ(r.reason(), "probe failed on h9; not every host could go back");
  EXPECT_THAT(Events(d), ElementsAre("rollout.rollback_incomplete"));
}

TEST_F(RolloutMachineRollingBackTest, ActivatingHost_IsAwaitedThenLostAndSentBack) {
  Rollout r = RollingBack();
  AddTask(&r, "h1", TASK_STATE_ACTIVATING);
  ConnectAll(r);
  EXPECT_TRUE(AdvanceAt(&r, kT0 + kHostTimeout + kBake).empty());

  Decision d = AdvanceAt(&r, kT0 + kHostTimeout + kBake + absl::Milliseconds(1));
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_REVERTING);
  EXPECT_EQ(Task(r, "h1").reason(), "no answer from host for 1m30s");
  EXPECT_THAT(Events(d), ElementsAre("host.lost h1"));
  EXPECT_THAT(Sent(d), ElementsAre("revert h1"));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLING_BACK);
}

TEST_F(RolloutMachineRollingBackTest, LostFirstReleaseHost_RevertFailsNamingBothReasons) {
  Rollout r = RollingBack();
  AddTask(&r, "h1", TASK_STATE_ACTIVATING)->set_from_version("");
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Minutes(2));
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_REVERT_FAILED);
  EXPECT_EQ(Task(r, "h1").reason(),
            "no answer from host for 1m30s; no earlier release on this host to go back to");
  EXPECT_THAT(Sent(d), IsEmpty());
  EXPECT_EQ(r.state(), ROLLOUT_STATE_FAILED);
}

TEST_F(RolloutMachineRollingBackTest, SilentRevertingHost_RevertFailsAndTheRolloutFails) {
  Rollout r = RollingBack();
  AddTask(&r, "h1", TASK_STATE_REVERTING);
  AddTask(&r, "h2", TASK_STATE_REVERTED);
  ConnectAll(r);
  EXPECT_TRUE(AdvanceAt(&r, kT0 + kHostTimeout + kBake).empty());

  Decision d = AdvanceAt(&r, kT0 + kHostTimeout + kBake + absl::Milliseconds(1));
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_REVERT_FAILED);
  EXPECT_EQ(Task(r, "h1").reason(), "no answer from host for 1m30s");
  EXPECT_THAT(Events(d), ElementsAre("host.revert_failed h1", "rollout.rollback_incomplete"));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_FAILED);
}

}  // namespace
}  // namespace fleet::controller
