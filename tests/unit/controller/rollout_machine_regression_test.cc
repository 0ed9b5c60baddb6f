// Bugs in the rollout state machine (controller/rollout_machine.h) found
// while writing its tests, each kept as a test of what the header (and
// proto/fleet/v1) promise.
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
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Not;

using RolloutMachineRegressionTest = MachineTest;

// Was: rollout_events.cc:101-111 (PrepareAction, kResume) resumes straight
// to ACTIVATING when no task is PENDING or STAGING, so a rollout paused
// while STAGING whose hosts all staged during the pause skips
// AdvanceStaging's StartWave(0): wave 1 never gets started_at_ms nor a
// wave.started event (it does get wave.finished).
TEST_F(RolloutMachineRegressionTest, ResumeAfterStagingFinishedWhilePaused_StartsWaveOne) {
  Rollout r = Deploy(ROLLOUT_STATE_STAGING, {"1", "100%"});
  AddTask(&r, "h1", TASK_STATE_STAGING, 0);
  AddTask(&r, "h2", TASK_STATE_STAGING, 1);
  ConnectAll(r);
  std::vector<std::string> events;
  auto record = [&](const Decision& d) {
    for (const std::string& e : Events(d)) events.push_back(e);
  };
  Decision d;
  ASSERT_TRUE(ApplyAction(&r, RolloutAction::kPause, "bob", kT0, &d).ok());
  ASSERT_TRUE(ApplyAnswer(&r, Answer(r, "h1", COMMAND_PHASE_STAGE, true, "v1"), kT0, &d));
  ASSERT_TRUE(ApplyAnswer(&r, Answer(r, "h2", COMMAND_PHASE_STAGE, true, "v1"), kT0, &d));
  record(d);
  record(AdvanceAt(&r, kT0 + absl::Seconds(1)));
  const absl::Time resumed = kT0 + absl::Seconds(2);
  d = Decision();
  ASSERT_TRUE(ApplyAction(&r, RolloutAction::kResume, "bob", resumed, &d).ok());
  record(d);
  d = AdvanceAt(&r, resumed);
  record(d);
  ASSERT_EQ(r.state(), ROLLOUT_STATE_ACTIVATING);
  ASSERT_THAT(Sent(d), ElementsAre("activate h1"));

  EXPECT_EQ(r.plan().waves(0).started_at_ms(), Ms(resumed));
  EXPECT_THAT(events, Contains("wave.started"));
}

// Was: rollout_machine.cc:350-356 (AdvancePaused) calls StartRollingBack
// for any kind. A PAUSED rollback whose failures pass the threshold goes
// ROLLING_BACK and sends REVERT to the hosts it already brought back (v2
// again, the version being rolled back), although "A rollback ... is never
// undone" and, unpaused, the same rollback ends FAILED with rollback.failed
// (ActivatingOverThreshold, rollout_machine.cc:227-236).
TEST_F(RolloutMachineRegressionTest, PausedRollbackPastItsThreshold_DoesNotSendHostsBackToV2) {
  Rollout r = RollbackRollout(ROLLOUT_STATE_ACTIVATING);
  AddTask(&r, "h1", TASK_STATE_HEALTHY);  // back on v1
  AddTask(&r, "h2", TASK_STATE_ACTIVATING);
  ConnectAll(r);
  Decision d;
  ASSERT_TRUE(ApplyAction(&r, RolloutAction::kPause, "bob", kT0, &d).ok());
  ASSERT_TRUE(ApplyAnswer(&r, Answer(r, "h2", COMMAND_PHASE_ACTIVATE, false, "v2", true), kT0, &d));
  d = AdvanceAt(&r, kT0 + absl::Seconds(1));

  EXPECT_THAT(Sent(d), Not(Contains("revert h1")));
  EXPECT_EQ(Name(StateOf(r, "h1")), "TASK_STATE_HEALTHY");
  EXPECT_NE(Name(r.state()), "ROLLOUT_STATE_ROLLING_BACK");
}

// Was: rollout_machine.cc:274-285 (FinishLastWave) ends a deploy in which
// no host became healthy ROLLED_BACK at once, "The hosts switched
// themselves back". A LOST host may still run the new version (types.proto:
// "A rollback sends it back"; ROLLED_BACK means "every switched host is
// back"), yet it is never sent REVERT. With failures past the threshold
// the same LOST host is reverted (RollBackTask).
TEST_F(RolloutMachineRegressionTest, NoHostHealthyWithALostHost_SendsTheLostHostBack) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  r.mutable_plan()->set_max_failures(2);
  AddTask(&r, "h1", TASK_STATE_ACTIVATING);
  AddTask(&r, "h2", TASK_STATE_FAILED)->set_reason("probe failed");
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + kHostTimeout + kBake + absl::Milliseconds(1));
  ASSERT_THAT(Events(d), Contains("host.lost h1"));

  EXPECT_THAT(Sent(d), Contains("revert h1"));
  EXPECT_NE(Name(r.state()), "ROLLOUT_STATE_ROLLED_BACK");
}

}  // namespace
}  // namespace fleet::controller
