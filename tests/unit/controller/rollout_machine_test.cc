// The rollout state machine (controller/rollout_machine.h) without any I/O:
// its transition tables, an ended rollout, and the failure threshold.
// Advance() per state is in rollout_machine_advance_test.cc; answers,
// actions, supersession, catch-ups and restarts in
// rollout_machine_events_test.cc; bugs in rollout_machine_known_bugs_test.cc.
#include "controller/rollout_machine.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "controller/rollout_engine.h"
#include "controller/rollout_transitions.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/unit/controller/rollout_machine_fixture.h"

namespace fleet::controller {
namespace {

using namespace fleet::v1;                // NOLINT: the enum values read better bare here
using namespace rollout_machine_testing;  // NOLINT: the fixture's helpers
using ::testing::ElementsAre;

// The tables, written again from the header's comment, not from the code.
const std::set<std::pair<RolloutState, RolloutState>>& DocumentedRolloutTransitions() {
  static const auto* const kTable = new std::set<std::pair<RolloutState, RolloutState>>{
      {ROLLOUT_STATE_STAGING, ROLLOUT_STATE_ACTIVATING},
      {ROLLOUT_STATE_STAGING, ROLLOUT_STATE_PAUSED},
      {ROLLOUT_STATE_STAGING, ROLLOUT_STATE_ROLLING_BACK},
      {ROLLOUT_STATE_STAGING, ROLLOUT_STATE_ROLLED_BACK},
      {ROLLOUT_STATE_ACTIVATING, ROLLOUT_STATE_SUCCEEDED},
      {ROLLOUT_STATE_ACTIVATING, ROLLOUT_STATE_PAUSED},
      {ROLLOUT_STATE_ACTIVATING, ROLLOUT_STATE_ROLLING_BACK},
      {ROLLOUT_STATE_ACTIVATING, ROLLOUT_STATE_FAILED},
      {ROLLOUT_STATE_ACTIVATING, ROLLOUT_STATE_ROLLED_BACK},
      {ROLLOUT_STATE_PAUSED, ROLLOUT_STATE_STAGING},
      {ROLLOUT_STATE_PAUSED, ROLLOUT_STATE_ACTIVATING},
      {ROLLOUT_STATE_PAUSED, ROLLOUT_STATE_ROLLING_BACK},
      {ROLLOUT_STATE_PAUSED, ROLLOUT_STATE_ROLLED_BACK},
      {ROLLOUT_STATE_ROLLING_BACK, ROLLOUT_STATE_ROLLED_BACK},
      {ROLLOUT_STATE_ROLLING_BACK, ROLLOUT_STATE_FAILED},
  };
  return *kTable;
}

const std::set<std::pair<TaskState, TaskState>>& DocumentedTaskTransitions() {
  static const auto* const kTable = new std::set<std::pair<TaskState, TaskState>>{
      {TASK_STATE_PENDING, TASK_STATE_STAGING},
      {TASK_STATE_STAGING, TASK_STATE_STAGED},
      {TASK_STATE_STAGED, TASK_STATE_ACTIVATING},
      {TASK_STATE_ACTIVATING, TASK_STATE_HEALTHY},
      {TASK_STATE_ACTIVATING, TASK_STATE_FAILED},
      {TASK_STATE_ACTIVATING, TASK_STATE_LOST},
      {TASK_STATE_HEALTHY, TASK_STATE_REVERTING},
      {TASK_STATE_LOST, TASK_STATE_REVERTING},
      {TASK_STATE_REVERTING, TASK_STATE_REVERTED},
      {TASK_STATE_REVERTING, TASK_STATE_REVERT_FAILED},
      {TASK_STATE_PENDING, TASK_STATE_FAILED},
      {TASK_STATE_PENDING, TASK_STATE_CANCELLED},
      {TASK_STATE_STAGING, TASK_STATE_FAILED},
      {TASK_STATE_STAGING, TASK_STATE_CANCELLED},
      {TASK_STATE_STAGED, TASK_STATE_FAILED},
      {TASK_STATE_STAGED, TASK_STATE_CANCELLED},
      {TASK_STATE_ACTIVATING, TASK_STATE_CANCELLED},
      {TASK_STATE_LOST, TASK_STATE_CANCELLED},
      {TASK_STATE_REVERTING, TASK_STATE_CANCELLED},
  };
  return *kTable;
}

TEST(RolloutMachineTransitionTest, RolloutTable_AllowsExactlyTheDocumentedPairs) {
  int allowed = 0;
  for (RolloutState from : AllRolloutStates()) {
    for (RolloutState to : AllRolloutStates()) {
      const bool documented = DocumentedRolloutTransitions().count({from, to}) == 1;
      EXPECT_EQ(RolloutTransitionAllowed(from, to), documented) << Name(from) << " -> " << Name(to);
      allowed += RolloutTransitionAllowed(from, to);
    }
  }
  EXPECT_EQ(allowed, 15);
}

TEST(RolloutMachineTransitionTest, TaskTable_AllowsExactlyTheDocumentedPairs) {
  int allowed = 0;
  for (TaskState from : AllTaskStates()) {
    for (TaskState to : AllTaskStates()) {
      const bool documented = DocumentedTaskTransitions().count({from, to}) == 1;
      EXPECT_EQ(TaskTransitionAllowed(from, to), documented) << Name(from) << " -> " << Name(to);
      allowed += TaskTransitionAllowed(from, to);
    }
  }
  EXPECT_EQ(allowed, 19);
}

TEST(RolloutMachineTransitionTest, IsTaskTerminal_HoldsForExactlyTheSixEndStates) {
  const std::set<TaskState> terminal = {TASK_STATE_HEALTHY,   TASK_STATE_FAILED,
                                        TASK_STATE_REVERTED,  TASK_STATE_REVERT_FAILED,
                                        TASK_STATE_CANCELLED, TASK_STATE_LOST};
  for (TaskState s : AllTaskStates()) {
    EXPECT_EQ(IsTaskTerminal(s), terminal.count(s) == 1) << Name(s);
  }
}

#ifdef NDEBUG
// Release builds log an illegal transition and refuse it.
TEST(RolloutMachineTransitionTest, SetRollout_RefusesAnIllegalTransitionAndKeepsTheState) {
  Rollout r = Deploy(ROLLOUT_STATE_STAGING);
  AddTask(&r, "h1", TASK_STATE_STAGING);
  const Rollout before = r;
  Decision d;
  Machine m(&r, kT0, &d);
  EXPECT_FALSE(m.SetRollout(ROLLOUT_STATE_SUCCEEDED, "never"));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(r, before));
  EXPECT_TRUE(d.empty());
}

TEST(RolloutMachineTransitionTest, SetTask_RefusesAnIllegalTransitionAndKeepsTheState) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  HostTask* t = AddTask(&r, "h1", TASK_STATE_HEALTHY);
  const Rollout before = r;
  Decision d;
  Machine m(&r, kT0 + absl::Minutes(1), &d);
  EXPECT_FALSE(m.SetTask(t, TASK_STATE_STAGING, "never"));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(r, before));
  EXPECT_TRUE(d.empty());
}
#else
TEST(RolloutMachineTransitionDeathTest, SetRollout_AbortsOnAnIllegalTransitionInDebugBuilds) {
  Rollout r = Deploy(ROLLOUT_STATE_STAGING);
  Decision d;
  Machine m(&r, kT0, &d);
  EXPECT_DEATH(m.SetRollout(ROLLOUT_STATE_SUCCEEDED), "");
}
#endif

TEST(RolloutMachineTransitionTest, HostTimeout_IsThePlansWhenSetElseTheDefault) {
  Rollout r = Deploy(ROLLOUT_STATE_STAGING);
  EXPECT_EQ(HostTimeout(r, kDefaultHostTimeout), kHostTimeout);
  r.mutable_plan()->set_host_timeout_ms(0);
  EXPECT_EQ(HostTimeout(r, kDefaultHostTimeout), kDefaultHostTimeout);
}

TEST(RolloutMachineTransitionTest, VersionLabel_NamesConfigsAndAMissingVersion) {
  EXPECT_EQ(VersionLabel(SUBJECT_RELEASE, "v2"), "v2");
  EXPECT_EQ(VersionLabel(SUBJECT_CONFIG, "c2"), "config c2");
  EXPECT_EQ(VersionLabel(SUBJECT_RELEASE, ""), "(none)");
  EXPECT_EQ(VersionLabel(SUBJECT_CONFIG, ""), "config (none)");
}

using RolloutMachineTerminalTest = MachineTest;

TEST_F(RolloutMachineTerminalTest, EndedRollout_AdvanceChangesNothingWhateverTheHostsDo) {
  for (RolloutState state :
       {ROLLOUT_STATE_SUCCEEDED, ROLLOUT_STATE_ROLLED_BACK, ROLLOUT_STATE_FAILED}) {
    SCOPED_TRACE(Name(state));
    Rollout r = Deploy(state);
    AddTask(&r, "h1", TASK_STATE_PENDING);
    AddTask(&r, "h2", TASK_STATE_STAGING);
    AddTask(&r, "h3", TASK_STATE_STAGED);
    AddTask(&r, "h4", TASK_STATE_ACTIVATING);
    AddTask(&r, "h5", TASK_STATE_REVERTING);
    AddTask(&r, "h6", TASK_STATE_HEALTHY);
    AddTask(&r, "h7", TASK_STATE_LOST);
    ConnectAll(r);
    hosts_.Disconnect("h2", kT0);
    const Rollout before = r;
    AnalysisGate fail;
    fail.verdict = AnalysisGate::Verdict::kFail;
    EXPECT_TRUE(AdvanceAt(&r, kT0 + absl::Hours(3), fail).empty());
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(r, before));
  }
}

// plan.max_failures is a count of hosts; FAILED and LOST both count, and
// the rollout fails when the count is exceeded, not reached.
using RolloutMachineThresholdTest = MachineTest;

struct ThresholdCase {
  int max_failures;
  int failed;
  int lost;
  bool rolls_back;
};

TEST_F(RolloutMachineThresholdTest, FailedAndLostCountAgainstMaxFailures) {
  const ThresholdCase cases[] = {
      {0, 0, 0, false}, {0, 1, 0, true}, {0, 0, 1, true},  {1, 1, 0, false}, {1, 0, 1, false},
      {1, 1, 1, true},  {1, 2, 0, true}, {2, 1, 1, false}, {2, 2, 1, true},  {2, 0, 3, true},
  };
  for (const ThresholdCase& c : cases) {
    SCOPED_TRACE(
        absl::StrCat("max_failures=", c.max_failures, " failed=", c.failed, " lost=", c.lost));
    Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
    r.mutable_plan()->set_max_failures(c.max_failures);
    AddTask(&r, "ok", TASK_STATE_HEALTHY);
    AddTask(&r, "busy", TASK_STATE_ACTIVATING);  // holds the wave open
    for (int i = 0; i < c.failed; ++i) {
      AddTask(&r, absl::StrCat("f", i), TASK_STATE_FAILED)->set_reason("probe failed");
    }
    for (int i = 0; i < c.lost; ++i) {
      AddTask(&r, absl::StrCat("l", i), TASK_STATE_LOST)->set_reason("no answer");
    }
    ConnectAll(r);
    Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10));
    EXPECT_EQ(r.state(), c.rolls_back ? ROLLOUT_STATE_ROLLING_BACK : ROLLOUT_STATE_ACTIVATING);
    if (c.rolls_back) {
      EXPECT_THAT(EventOf(d, EventKind::kRolloutFailed).message,
                  ::testing::HasSubstr(absl::StrCat("; more than ", c.max_failures,
                                                    " failed hosts allowed; rolling back")));
    }
  }
}

TEST_F(RolloutMachineThresholdTest, StagingFailuresWithinMaxFailuresStillActivate) {
  Rollout r = Deploy(ROLLOUT_STATE_STAGING);
  r.mutable_plan()->set_max_failures(1);
  AddTask(&r, "h1", TASK_STATE_FAILED)->set_reason("disk full");
  AddTask(&r, "h2", TASK_STATE_STAGED);
  ConnectAll(r);
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(10));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ACTIVATING);
  EXPECT_THAT(Sent(d), ElementsAre("activate h2"));

  Task(r, "h2").set_state(TASK_STATE_FAILED);
  d = AdvanceAt(&r, kT0 + absl::Seconds(20));
  // Past the threshold with no host switched: rolling back ends at once.
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLED_BACK);
  EXPECT_THAT(Events(d), ElementsAre("rollout.failed", "rollout.rolled_back"));
}

TEST_F(RolloutMachineThresholdTest, PercentOfHostsIsTheCountThePlanHolds) {
  StartRolloutRequest req;
  req.add_waves("100%");
  req.set_max_failures("25%");
  absl::StatusOr<RolloutPlan> plan = BuildRolloutPlan(req, AppSpec(), 10, kDefaultHostTimeout);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->max_failures(), 2);  // 25% of 10 hosts, rounded down

  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  *r.mutable_plan() = *plan;
  r.mutable_plan()->set_host_timeout_ms(absl::ToInt64Milliseconds(kHostTimeout));
  AddTask(&r, "h0", TASK_STATE_FAILED)->set_reason("probe failed");
  AddTask(&r, "h1", TASK_STATE_LOST)->set_reason("no answer");
  for (int i = 2; i < 10; ++i) AddTask(&r, absl::StrCat("h", i), TASK_STATE_ACTIVATING);
  ConnectAll(r);
  EXPECT_TRUE(AdvanceAt(&r, kT0 + absl::Seconds(10)).empty());
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ACTIVATING);

  Task(r, "h2").set_state(TASK_STATE_FAILED);
  Decision d = AdvanceAt(&r, kT0 + absl::Seconds(20));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLING_BACK);
  EXPECT_EQ(r.reason(), "probe failed on h0 (3 hosts failed)");
  EXPECT_EQ(EventOf(d, EventKind::kRolloutFailed).message,
            "probe failed on h0 (3 hosts failed); more than 2 failed hosts allowed; rolling back");
}

}  // namespace
}  // namespace fleet::controller