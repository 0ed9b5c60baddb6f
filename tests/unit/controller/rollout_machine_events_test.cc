// The rollout state machine (controller/rollout_machine.h) fed from outside:
// agents' answers (ApplyResult), operators' actions (ApplyAction), a
// rollback taking over (Supersede), catch-ups, and rollouts loaded after a
// controller restart. The tables are in rollout_machine_test.cc, Advance()
// per state in rollout_machine_advance_test.cc.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "controller/rollout_machine.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/controller/rollout_machine_fixture.h"

namespace fleet::controller {
namespace {

using namespace fleet::v1;                // NOLINT: the enum values read better bare here
using namespace rollout_machine_testing;  // NOLINT: the fixture's helpers
using ::fleet::testing::StatusIs;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::Contains;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

struct ResultCase {
  const char* name;
  RolloutKind kind;
  TaskState task;
  CommandPhase phase;
  bool ok;
  const char* current_version;
  bool switched_back;
  TaskState want;
  EventKind want_event;
};

TEST(RolloutMachineResultTest, Answer_MovesTheTaskAndRecordsTheHostsEvent) {
  // A deploy goes v1 -> v2; a rollback v2 -> v1 (each task's from_version
  // is the rollout's).
  const ResultCase cases[] = {
      {"stage ok", ROLLOUT_KIND_DEPLOY, TASK_STATE_STAGING, COMMAND_PHASE_STAGE, true, "v1", false,
       TASK_STATE_STAGED, EventKind::kHostStaged},
      {"stage failed", ROLLOUT_KIND_DEPLOY, TASK_STATE_STAGING, COMMAND_PHASE_STAGE, false, "v1",
       false, TASK_STATE_FAILED, EventKind::kHostStageFailed},
      {"activate ok", ROLLOUT_KIND_DEPLOY, TASK_STATE_ACTIVATING, COMMAND_PHASE_ACTIVATE, true,
       "v2", false, TASK_STATE_HEALTHY, EventKind::kHostHealthy},
      {"activate failed, switched back", ROLLOUT_KIND_DEPLOY, TASK_STATE_ACTIVATING,
       COMMAND_PHASE_ACTIVATE, false, "v1", true, TASK_STATE_FAILED, EventKind::kHostSwitchedBack},
      {"activate failed before switching", ROLLOUT_KIND_DEPLOY, TASK_STATE_ACTIVATING,
       COMMAND_PHASE_ACTIVATE, false, "v1", false, TASK_STATE_FAILED, EventKind::kHostFailed},
      {"activate failed, still on new", ROLLOUT_KIND_DEPLOY, TASK_STATE_ACTIVATING,
       COMMAND_PHASE_ACTIVATE, false, "v2", false, TASK_STATE_LOST, EventKind::kHostFailed},
      {"activate failed, switching back failed", ROLLOUT_KIND_DEPLOY, TASK_STATE_ACTIVATING,
       COMMAND_PHASE_ACTIVATE, false, "v2", true, TASK_STATE_LOST, EventKind::kHostFailed},
      {"catch-up activate failed, still on new", ROLLOUT_KIND_CATCH_UP, TASK_STATE_ACTIVATING,
       COMMAND_PHASE_ACTIVATE, false, "v2", false, TASK_STATE_LOST, EventKind::kHostFailed},
      {"rollback activate ok", ROLLOUT_KIND_ROLLBACK, TASK_STATE_ACTIVATING, COMMAND_PHASE_ACTIVATE,
       true, "v1", false, TASK_STATE_HEALTHY, EventKind::kHostHealthy},
      {"rollback activate failed, switched back", ROLLOUT_KIND_ROLLBACK, TASK_STATE_ACTIVATING,
       COMMAND_PHASE_ACTIVATE, false, "v2", true, TASK_STATE_FAILED, EventKind::kHostSwitchedBack},
      {"rollback activate failed, not back", ROLLOUT_KIND_ROLLBACK, TASK_STATE_ACTIVATING,
       COMMAND_PHASE_ACTIVATE, false, "v1", false, TASK_STATE_FAILED, EventKind::kHostFailed},
      {"revert ok", ROLLOUT_KIND_DEPLOY, TASK_STATE_REVERTING, COMMAND_PHASE_REVERT, true, "v1",
       false, TASK_STATE_REVERTED, EventKind::kHostReverted},
      {"revert failed", ROLLOUT_KIND_DEPLOY, TASK_STATE_REVERTING, COMMAND_PHASE_REVERT, false,
       "v2", false, TASK_STATE_REVERT_FAILED, EventKind::kHostRevertFailed},
  };
  for (const ResultCase& c : cases) {
    SCOPED_TRACE(c.name);
    Rollout r = c.kind == ROLLOUT_KIND_ROLLBACK   ? RollbackRollout(ROLLOUT_STATE_ACTIVATING)
                : c.kind == ROLLOUT_KIND_CATCH_UP ? CatchUp(ROLLOUT_STATE_ACTIVATING)
                                                  : Deploy(ROLLOUT_STATE_ACTIVATING);
    if (c.task == TASK_STATE_STAGING) r.set_state(ROLLOUT_STATE_STAGING);
    if (c.task == TASK_STATE_REVERTING) r.set_state(ROLLOUT_STATE_ROLLING_BACK);
    const RolloutState rollout_state = r.state();
    AddTask(&r, "h1", c.task)->set_reason("an earlier reason");
    const absl::Time now = kT0 + absl::Seconds(10);
    Decision d;
    EXPECT_TRUE(ApplyAnswer(&r, Answer(r, "h1", c.phase, c.ok, c.current_version, c.switched_back),
                            now, &d));
    EXPECT_EQ(Name(StateOf(r, "h1")), Name(c.want));
    EXPECT_EQ(Task(r, "h1").reason(), c.ok ? "" : "probe /healthz failed");
    EXPECT_EQ(Task(r, "h1").updated_at_ms(), Ms(now));
    EXPECT_THAT(d.changed_tasks, ElementsAre("h1"));
    ASSERT_EQ(d.events.size(), 1u);
    EXPECT_EQ(EventKindName(d.events[0].kind), std::string(EventKindName(c.want_event)));
    EXPECT_EQ(d.events[0].host_id, "h1");
    EXPECT_EQ(d.events[0].actor, "h1");
    EXPECT_EQ(d.events[0].message, c.ok
                                       ? absl::StrCat("on ", c.current_version, " (switch 1200 us)")
                                       : "probe /healthz failed");
    // An answer moves the task only; the next Advance moves the rollout.
    EXPECT_EQ(r.state(), rollout_state);
    EXPECT_FALSE(d.rollout_changed);
    EXPECT_THAT(Sent(d), IsEmpty());
  }
}

TEST(RolloutMachineResultTest, ConfigAnswer_NamesTheConfig) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  r.set_subject(SUBJECT_CONFIG);
  r.set_version("c2");
  AddTask(&r, "h1", TASK_STATE_ACTIVATING);
  Decision d;
  ASSERT_TRUE(ApplyAnswer(&r, Answer(r, "h1", COMMAND_PHASE_ACTIVATE, true, "c2"), kT0, &d));
  EXPECT_EQ(d.events[0].message, "on config c2 (switch 1200 us)");
}

struct IgnoredCase {
  const char* name;
  RolloutState rollout;
  TaskState task;
  CommandPhase phase;
  // Applied to a well-formed answer.
  void (*spoil)(CommandResult*);
};

TEST(RolloutMachineResultTest, AnswerTheTaskDoesNotWaitFor_IsIgnoredAndChangesNothing) {
  auto keep = [](CommandResult*) {};
  const IgnoredCase cases[] = {
      {"earlier command id", ROLLOUT_STATE_ACTIVATING, TASK_STATE_ACTIVATING,
       COMMAND_PHASE_ACTIVATE, [](CommandResult* c) { c->set_command_id("cmd-h1-earlier"); }},
      {"stage answer while activating", ROLLOUT_STATE_ACTIVATING, TASK_STATE_ACTIVATING,
       COMMAND_PHASE_STAGE, keep},
      {"activate answer while staging", ROLLOUT_STATE_STAGING, TASK_STATE_STAGING,
       COMMAND_PHASE_ACTIVATE, keep},
      {"second activate answer", ROLLOUT_STATE_ACTIVATING, TASK_STATE_HEALTHY,
       COMMAND_PHASE_ACTIVATE, keep},
      {"revert answer to a healthy host", ROLLOUT_STATE_ROLLING_BACK, TASK_STATE_HEALTHY,
       COMMAND_PHASE_REVERT, keep},
      {"answer to a cancelled task", ROLLOUT_STATE_ROLLING_BACK, TASK_STATE_CANCELLED,
       COMMAND_PHASE_ACTIVATE, keep},
      {"no phase", ROLLOUT_STATE_ACTIVATING, TASK_STATE_ACTIVATING, COMMAND_PHASE_UNSPECIFIED,
       keep},
      {"another rollout", ROLLOUT_STATE_ACTIVATING, TASK_STATE_ACTIVATING, COMMAND_PHASE_ACTIVATE,
       [](CommandResult* c) { c->mutable_ref()->set_rollout_id("r0"); }},
      {"unknown host", ROLLOUT_STATE_ACTIVATING, TASK_STATE_ACTIVATING, COMMAND_PHASE_ACTIVATE,
       [](CommandResult* c) { c->mutable_ref()->set_host_id("h9"); }},
      {"rollout succeeded", ROLLOUT_STATE_SUCCEEDED, TASK_STATE_ACTIVATING, COMMAND_PHASE_ACTIVATE,
       keep},
      {"rollout rolled back", ROLLOUT_STATE_ROLLED_BACK, TASK_STATE_ACTIVATING,
       COMMAND_PHASE_ACTIVATE, keep},
      {"rollout failed", ROLLOUT_STATE_FAILED, TASK_STATE_REVERTING, COMMAND_PHASE_REVERT, keep},
  };
  for (const IgnoredCase& c : cases) {
    SCOPED_TRACE(c.name);
    Rollout r = Deploy(c.rollout);
    AddTask(&r, "h1", c.task);
    CommandResult result = Answer(r, "h1", c.phase, true, "v2");
    c.spoil(&result);
    const Rollout before = r;
    Decision d;
    EXPECT_FALSE(ApplyAnswer(&r, result, kT0 + absl::Seconds(10), &d));
    EXPECT_TRUE(d.empty());
    EXPECT_TRUE(MessageDifferencer::Equals(r, before));
  }
}

using RolloutMachineActionTest = MachineTest;

const char* ActionName(RolloutAction a) {
  switch (a) {
    case RolloutAction::kPause:
      return "pause";
    case RolloutAction::kResume:
      return "resume";
    case RolloutAction::kPromote:
      return "promote";
    case RolloutAction::kAbort:
      return "abort";
  }
  return "?";
}

// A two-wave rollout in `state`: h1 (wave 1) healthy, h2 (wave 2) staged;
// `gate` puts a PAUSED one at the promote gate.
Rollout ActionTarget(RolloutState state, bool gate) {
  Rollout r = Deploy(state, {"1", "100%"});
  AddTask(&r, "h1", TASK_STATE_HEALTHY, 0);
  AddTask(&r, "h2", TASK_STATE_STAGED, 1);
  if (state == ROLLOUT_STATE_PAUSED) {
    r.set_pause_reason(gate ? PAUSE_REASON_PROMOTE_GATE : PAUSE_REASON_MANUAL);
    r.set_awaiting_promote(gate);
    r.set_paused_by(gate ? "" : "carol");
  }
  return r;
}

struct ActionCase {
  RolloutState state;
  bool gate;
  RolloutAction action;
  // "" when allowed; else the FailedPrecondition message.
  std::string refusal;
  RolloutState want;
  EventKind want_event;
};

TEST_F(RolloutMachineActionTest, EveryActionFromEveryState_IsAllowedOrRefusedSayingWhy) {
  using A = RolloutAction;
  constexpr RolloutState S = ROLLOUT_STATE_STAGING, AC = ROLLOUT_STATE_ACTIVATING,
                         P = ROLLOUT_STATE_PAUSED, RB = ROLLOUT_STATE_ROLLING_BACK,
                         OK = ROLLOUT_STATE_SUCCEEDED, BACK = ROLLOUT_STATE_ROLLED_BACK,
                         FAIL = ROLLOUT_STATE_FAILED, NONE = ROLLOUT_STATE_UNSPECIFIED;
  constexpr EventKind kPaused = EventKind::kRolloutPaused, kResumed = EventKind::kRolloutResumed,
                      kPromoted = EventKind::kRolloutPromoted,
                      kAborted = EventKind::kRolloutAborted;
  constexpr EventKind kNo = EventKind::kAuthDenied;  // not looked at when refused
  const std::string kNotPaused = "rollout r1 is not paused";
  const std::string kNotWaiting = "rollout r1 is not waiting for promote";
  const std::string kPausedAlready = "rollout r1 is paused already";
  const std::string kEnded = "rollout r1 has ended (";
  // clang-format off
  const std::vector<ActionCase> cases = {
      // state, at the gate, action, refusal, then the new state and event when allowed
      {S, false, A::kPause, "", P, kPaused},
      {S, false, A::kResume, kNotPaused, {}, kNo},
      {S, false, A::kPromote, kNotWaiting, {}, kNo},
      {S, false, A::kAbort, "", RB, kAborted},
      {AC, false, A::kPause, "", P, kPaused},
      {AC, false, A::kResume, kNotPaused, {}, kNo},
      {AC, false, A::kPromote, kNotWaiting, {}, kNo},
      {AC, false, A::kAbort, "", RB, kAborted},
      {P, false, A::kPause, kPausedAlready, {}, kNo},
      {P, false, A::kResume, "", AC, kResumed},
      {P, false, A::kPromote, kNotWaiting, {}, kNo},
      {P, false, A::kAbort, "", RB, kAborted},
      {P, true, A::kPause, kPausedAlready, {}, kNo},
      {P, true, A::kResume, "rollout r1 waits for promote: fleetctl rollout promote r1", {}, kNo},
      {P, true, A::kPromote, "", AC, kPromoted},
      {P, true, A::kAbort, "", RB, kAborted},
      {RB, false, A::kPause, "rollout r1 is rolling back", {}, kNo},
      {RB, false, A::kResume, kNotPaused, {}, kNo},
      {RB, false, A::kPromote, kNotWaiting, {}, kNo},
      {RB, false, A::kAbort, "rollout r1 is rolling back already", {}, kNo},
      {OK, false, A::kPause, kEnded + "succeeded)", {}, kNo},
      {OK, false, A::kResume, kEnded + "succeeded)", {}, kNo},
      {OK, false, A::kPromote, kEnded + "succeeded)", {}, kNo},
      {OK, false, A::kAbort, kEnded + "succeeded)", {}, kNo},
      {BACK, false, A::kPause, kEnded + "rolled_back)", {}, kNo},
      {BACK, false, A::kResume, kEnded + "rolled_back)", {}, kNo},
      {BACK, false, A::kPromote, kEnded + "rolled_back)", {}, kNo},
      {BACK, false, A::kAbort, kEnded + "rolled_back)", {}, kNo},
      {FAIL, false, A::kPause, kEnded + "failed)", {}, kNo},
      {FAIL, false, A::kResume, kEnded + "failed)", {}, kNo},
      {FAIL, false, A::kPromote, kEnded + "failed)", {}, kNo},
      {FAIL, false, A::kAbort, kEnded + "failed)", {}, kNo},
      // A state outside the table: the transition check refuses.
      {NONE, false, A::kPause, "rollout r1 cannot go from unspecified to paused", {}, kNo},
      {NONE, false, A::kResume, kNotPaused, {}, kNo},
      {NONE, false, A::kPromote, kNotWaiting, {}, kNo},
      {NONE, false, A::kAbort, "rollout r1 cannot go from unspecified to rolling_back", {}, kNo},
  };
  // clang-format on
  // Every (state, action) pair has a row.
  ASSERT_EQ(cases.size(), (AllRolloutStates().size() + 1) * 4);
  for (const ActionCase& c : cases) {
    SCOPED_TRACE(
        absl::StrCat(Name(c.state), c.gate ? " at the gate" : "", ": ", ActionName(c.action)));
    Rollout r = ActionTarget(c.state, c.gate);
    const Rollout before = r;
    Decision d;
    absl::Status st = ApplyAction(&r, c.action, "bob", kT0 + absl::Seconds(10), &d);
    if (!c.refusal.empty()) {
      EXPECT_THAT(st, StatusIs(absl::StatusCode::kFailedPrecondition, c.refusal));
      EXPECT_TRUE(d.empty());
      EXPECT_TRUE(MessageDifferencer::Equals(r, before));
      continue;
    }
    EXPECT_TRUE(st.ok()) << st;
    EXPECT_EQ(Name(r.state()), Name(c.want));
    EXPECT_TRUE(d.rollout_changed);
    EXPECT_THAT(Events(d), Contains(EventKindName(c.want_event)));
    EXPECT_EQ(EventOf(d, c.want_event).actor, "bob");
    EXPECT_THAT(Sent(d), IsEmpty());  // commands come from the next Advance
  }
}

TEST_F(RolloutMachineActionTest, Pause_RecordsWhoPausedItAndWhy) {
  Rollout r = ActionTarget(ROLLOUT_STATE_ACTIVATING, false);
  Decision d;
  ASSERT_TRUE(ApplyAction(&r, RolloutAction::kPause, "bob", kT0, &d).ok());
  EXPECT_EQ(r.state(), ROLLOUT_STATE_PAUSED);
  EXPECT_EQ(r.paused_by(), "bob");
  EXPECT_EQ(r.pause_reason(), PAUSE_REASON_MANUAL);
  EXPECT_FALSE(r.awaiting_promote());
  EXPECT_THAT(Events(d), ElementsAre("rollout.paused"));
  EXPECT_EQ(d.events[0].message, "no further host switches until resumed");
}

TEST_F(RolloutMachineActionTest, Resume_GoesBackToStagingWhileHostsStillStage) {
  Rollout r = Deploy(ROLLOUT_STATE_PAUSED);
  r.set_pause_reason(PAUSE_REASON_MANUAL);
  r.set_paused_by("carol");
  AddTask(&r, "h1", TASK_STATE_PENDING);
  AddTask(&r, "h2", TASK_STATE_STAGED);
  Decision d;
  ASSERT_TRUE(ApplyAction(&r, RolloutAction::kResume, "bob", kT0, &d).ok());
  EXPECT_EQ(r.state(), ROLLOUT_STATE_STAGING);
  EXPECT_EQ(r.paused_by(), "");
  EXPECT_EQ(r.pause_reason(), PAUSE_REASON_UNSPECIFIED);
  EXPECT_THAT(Events(d), ElementsAre("rollout.resumed"));
}

TEST_F(RolloutMachineActionTest, ResumeAfterAnAnalysisPause_ClearsItsReason) {
  Rollout r = Deploy(ROLLOUT_STATE_PAUSED);
  r.set_pause_reason(PAUSE_REASON_ANALYSIS);
  r.set_paused_by("analysis");
  r.set_reason("p99 latency: no data");
  AddTask(&r, "h1", TASK_STATE_HEALTHY);
  Decision d;
  ASSERT_TRUE(ApplyAction(&r, RolloutAction::kResume, "bob", kT0, &d).ok());
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ACTIVATING);
  EXPECT_EQ(r.reason(), "");
  EXPECT_EQ(r.paused_by(), "");
  EXPECT_EQ(r.pause_reason(), PAUSE_REASON_UNSPECIFIED);
}

TEST_F(RolloutMachineActionTest, Promote_StartsTheNextWave) {
  Rollout r = ActionTarget(ROLLOUT_STATE_PAUSED, /*gate=*/true);
  ConnectAll(r);
  const absl::Time now = kT0 + absl::Seconds(10);
  Decision d;
  ASSERT_TRUE(ApplyAction(&r, RolloutAction::kPromote, "bob", now, &d).ok());
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ACTIVATING);
  EXPECT_EQ(r.current_wave(), 1);
  EXPECT_EQ(r.plan().waves(1).started_at_ms(), Ms(now));
  EXPECT_FALSE(r.awaiting_promote());
  EXPECT_EQ(r.pause_reason(), PAUSE_REASON_UNSPECIFIED);
  EXPECT_THAT(Events(d), ElementsAre("wave.started", "rollout.promoted"));
  EXPECT_EQ(d.events[0].message, "wave 2/2 (100%)");
  EXPECT_EQ(d.events[1].message, "wave 2 starts");

  EXPECT_THAT(Sent(AdvanceAt(&r, now)), ElementsAre("activate h2"));
}

TEST_F(RolloutMachineActionTest, Abort_RollsBackNamingTheActor) {
  Rollout r = ActionTarget(ROLLOUT_STATE_PAUSED, /*gate=*/true);
  ConnectAll(r);
  Decision d;
  ASSERT_TRUE(ApplyAction(&r, RolloutAction::kAbort, "bob", kT0, &d).ok());
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLING_BACK);
  EXPECT_EQ(r.reason(), "aborted by bob");
  EXPECT_FALSE(r.awaiting_promote());
  EXPECT_EQ(r.pause_reason(), PAUSE_REASON_UNSPECIFIED);
  EXPECT_THAT(Events(d), ElementsAre("rollout.aborted"));
  EXPECT_EQ(d.events[0].message, "every host this rollout switched goes back");

  d = AdvanceAt(&r, kT0 + absl::Seconds(1));
  EXPECT_THAT(Sent(d), ElementsAre("revert h1"));
  EXPECT_EQ(StateOf(r, "h2"), TASK_STATE_CANCELLED);
  d = Decision();
  ASSERT_TRUE(ApplyAnswer(
      &r,
      [&] {
        CommandResult res;
        res.set_command_id(Task(r, "h1").command_id());
        res.set_ok(true);
        res.set_current_version("v1");
        res.mutable_ref()->set_rollout_id("r1");
        res.mutable_ref()->set_host_id("h1");
        res.mutable_ref()->set_phase(COMMAND_PHASE_REVERT);
        return res;
      }(),
      kT0 + absl::Seconds(2), &d));
  d = AdvanceAt(&r, kT0 + absl::Seconds(2));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLED_BACK);
  EXPECT_EQ(EventOf(d, EventKind::kRolloutRolledBack).message,
            "every switched host is back: aborted by bob");
}

using RolloutMachineSupersedeTest = MachineTest;

TEST_F(RolloutMachineSupersedeTest, UnfinishedTasks_AreCancelledAndTheRolloutEndsRolledBack) {
  for (RolloutState state : {ROLLOUT_STATE_STAGING, ROLLOUT_STATE_ACTIVATING, ROLLOUT_STATE_PAUSED,
                             ROLLOUT_STATE_ROLLING_BACK}) {
    SCOPED_TRACE(Name(state));
    Rollout r = Deploy(state);
    if (state == ROLLOUT_STATE_PAUSED) r.set_pause_reason(PAUSE_REASON_MANUAL);
    for (TaskState t : AllTaskStates()) {
      if (t != TASK_STATE_UNSPECIFIED) AddTask(&r, Name(t), t)->set_reason("earlier");
    }
    const absl::Time now = kT0 + absl::Seconds(10);
    Decision d;
    Supersede(&r, "bob", "rb7", "superseded by rollback rb7 to v1", now, &d);
    EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLED_BACK);
    EXPECT_EQ(r.reason(), "superseded by rollback rb7 to v1");
    EXPECT_EQ(r.finished_at_ms(), Ms(now));
    EXPECT_EQ(r.pause_reason(), PAUSE_REASON_UNSPECIFIED);
    for (TaskState t : AllTaskStates()) {
      if (t == TASK_STATE_UNSPECIFIED) continue;
      const bool unfinished = !IsTaskTerminal(t);
      const HostTask& task = Task(r, Name(t));
      EXPECT_EQ(Name(task.state()), unfinished ? Name(TASK_STATE_CANCELLED) : Name(t));
      EXPECT_EQ(task.reason(), unfinished ? "superseded by rollback rb7" : "earlier");
      EXPECT_EQ(d.changed_tasks.count(Name(t)), unfinished ? 1u : 0u) << Name(t);
    }
    EXPECT_THAT(Events(d), ElementsAre("rollout.aborted"));
    EXPECT_EQ(d.events[0].actor, "bob");
    EXPECT_EQ(d.events[0].message, "superseded by rollback rb7 to v1");
    EXPECT_THAT(Sent(d), IsEmpty());
    EXPECT_EQ(d.set_desired, std::nullopt);
  }
}

TEST_F(RolloutMachineSupersedeTest, CatchUp_EndsWithoutAnEvent) {
  Rollout r = CatchUp(ROLLOUT_STATE_ACTIVATING);
  AddTask(&r, "h1", TASK_STATE_ACTIVATING);
  Decision d;
  Supersede(&r, "bob", "rb7", "superseded by rollback rb7 to v1", kT0, &d);
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLED_BACK);
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_CANCELLED);
  EXPECT_THAT(Events(d), IsEmpty());
}

#ifdef NDEBUG
TEST_F(RolloutMachineSupersedeTest, EndedRollout_IsLeftAsItWas) {
  Rollout r = Deploy(ROLLOUT_STATE_SUCCEEDED);
  AddTask(&r, "h1", TASK_STATE_HEALTHY);
  const Rollout before = r;
  Decision d;
  Supersede(&r, "bob", "rb7", "superseded by rollback rb7 to v1", kT0, &d);
  EXPECT_TRUE(MessageDifferencer::Equals(r, before));
  EXPECT_TRUE(d.empty());
}
#endif

using RolloutMachineCatchUpTest = MachineTest;

TEST_F(RolloutMachineCatchUpTest, Success_EmitsHostReconciledWithoutWavesOrDesiredVersion) {
  Rollout r = CatchUp(ROLLOUT_STATE_STAGING);
  AddTask(&r, "h1", TASK_STATE_PENDING);
  ConnectAll(r);
  std::vector<std::string> events;
  auto step = [&](const Decision& d) {
    for (const std::string& e : Events(d)) events.push_back(e);
    EXPECT_EQ(d.set_desired, std::nullopt);
  };
  Decision d = AdvanceAt(&r, kT0);
  step(d);
  EXPECT_THAT(Sent(d), ElementsAre("stage h1"));

  d = Decision();
  ASSERT_TRUE(ApplyAnswer(&r, Answer(r, "h1", COMMAND_PHASE_STAGE, true, "v1"), kT0, &d));
  step(d);
  d = AdvanceAt(&r, kT0 + absl::Seconds(1));
  step(d);
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ACTIVATING);
  EXPECT_THAT(Sent(d), ElementsAre("activate h1"));

  d = Decision();
  ASSERT_TRUE(ApplyAnswer(&r, Answer(r, "h1", COMMAND_PHASE_ACTIVATE, true, "v2"), kT0, &d));
  step(d);
  d = AdvanceAt(&r, kT0 + absl::Seconds(2));
  step(d);
  EXPECT_EQ(r.state(), ROLLOUT_STATE_SUCCEEDED);
  EXPECT_THAT(events, ElementsAre("host.staged h1", "host.healthy h1", "host.reconciled h1"));
  const MachineEvent reconciled = EventOf(d, EventKind::kHostReconciled);
  EXPECT_EQ(reconciled.actor, "controller");
  EXPECT_EQ(reconciled.message, "now on v2");
}

TEST_F(RolloutMachineCatchUpTest, StagingFailure_EmitsHostReconcileFailed) {
  Rollout r = CatchUp(ROLLOUT_STATE_STAGING);
  AddTask(&r, "h1", TASK_STATE_STAGING);
  ConnectAll(r);
  Decision d;
  ASSERT_TRUE(ApplyAnswer(&r, Answer(r, "h1", COMMAND_PHASE_STAGE, false, "v1"), kT0, &d));
  d = AdvanceAt(&r, kT0 + absl::Seconds(1));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLED_BACK);
  EXPECT_EQ(r.reason(), "staging failed: probe /healthz failed on h1; nothing was switched");
  EXPECT_THAT(Events(d), ElementsAre("host.reconcile_failed h1"));
  EXPECT_EQ(d.events[0].actor, "controller");
}

TEST_F(RolloutMachineCatchUpTest, ActivationFailure_EmitsHostReconcileFailedAndNoRolloutEvent) {
  Rollout r = CatchUp(ROLLOUT_STATE_ACTIVATING);
  AddTask(&r, "h1", TASK_STATE_ACTIVATING);
  ConnectAll(r);
  Decision d;
  ASSERT_TRUE(ApplyAnswer(&r, Answer(r, "h1", COMMAND_PHASE_ACTIVATE, false, "v1", true), kT0, &d));
  d = AdvanceAt(&r, kT0 + absl::Seconds(1));
  EXPECT_EQ(r.state(), ROLLOUT_STATE_ROLLED_BACK);
  EXPECT_THAT(Events(d), Contains("host.reconcile_failed h1"));
  EXPECT_THAT(Events(d), Each(StartsWith("host.reconcile_failed")));
  EXPECT_EQ(d.set_desired, std::nullopt);
  EXPECT_THAT(Sent(d), IsEmpty());  // it switched itself back
}

TEST_F(RolloutMachineCatchUpTest, AnalysisVerdict_DoesNotApply) {
  Rollout r = CatchUp(ROLLOUT_STATE_ACTIVATING);
  AddTask(&r, "h1", TASK_STATE_HEALTHY);
  ConnectAll(r);
  AnalysisGate gate;
  gate.has_checks = true;
  gate.all_passed = false;
  gate.verdict = AnalysisGate::Verdict::kFail;
  gate.reason = "error_rate 4.2% > 1%";
  Decision d = AdvanceAt(&r, kT0, gate);
  EXPECT_EQ(r.state(), ROLLOUT_STATE_SUCCEEDED);
  EXPECT_THAT(Events(d), ElementsAre("host.reconciled h1"));
}

// A rollout as loaded after a restart: its one task h1 was last updated an
// hour before; h1 reconnected when the controller came back (`restart`).
// `soon` is one second after the restart, `later` past the answer timeout
// (host timeout + bake) from the restart.
struct RestartCase {
  RolloutState rollout;
  TaskState task;
  RolloutState rollout_soon;
  TaskState task_soon;
  const char* sent_soon;  // "" = no command
  RolloutState rollout_later;
  TaskState task_later;
  const char* sent_later;
};

using RolloutMachineRestartTest = MachineTest;

TEST_F(RolloutMachineRestartTest, EveryPersistedState_ContinuesWithoutResendingWhatIsInFlight) {
  constexpr RolloutState S = ROLLOUT_STATE_STAGING, A = ROLLOUT_STATE_ACTIVATING,
                         P = ROLLOUT_STATE_PAUSED, RB = ROLLOUT_STATE_ROLLING_BACK,
                         OK = ROLLOUT_STATE_SUCCEEDED, BACK = ROLLOUT_STATE_ROLLED_BACK,
                         FAIL = ROLLOUT_STATE_FAILED;
  constexpr TaskState kPending = TASK_STATE_PENDING, kStaging = TASK_STATE_STAGING,
                      kStaged = TASK_STATE_STAGED, kActivating = TASK_STATE_ACTIVATING,
                      kHealthy = TASK_STATE_HEALTHY, kFailed = TASK_STATE_FAILED,
                      kLost = TASK_STATE_LOST, kReverting = TASK_STATE_REVERTING,
                      kReverted = TASK_STATE_REVERTED, kRevertFailed = TASK_STATE_REVERT_FAILED,
                      kCancelled = TASK_STATE_CANCELLED;
  const RestartCase cases[] = {
      // rollout, task     soon: rollout, task, sent    later: rollout, task, sent
      {S, kPending, S, kStaging, "stage h1", S, kStaging, ""},
      {S, kStaging, S, kStaging, "", BACK, kFailed, ""},
      {S, kStaged, A, kActivating, "activate h1", A, kActivating, ""},
      {S, kFailed, BACK, kFailed, "", BACK, kFailed, ""},
      {A, kStaged, A, kActivating, "activate h1", A, kActivating, ""},
      {A, kActivating, A, kActivating, "", RB, kReverting, "revert h1"},
      {A, kHealthy, OK, kHealthy, "", OK, kHealthy, ""},
      {A, kFailed, BACK, kFailed, "", BACK, kFailed, ""},
      {A, kLost, RB, kReverting, "revert h1", RB, kReverting, ""},
      {P, kPending, P, kStaging, "stage h1", P, kStaging, ""},
      {P, kStaging, P, kStaging, "", BACK, kFailed, ""},
      {P, kStaged, P, kStaged, "", P, kStaged, ""},
      {P, kActivating, P, kActivating, "", RB, kReverting, "revert h1"},
      {P, kHealthy, P, kHealthy, "", P, kHealthy, ""},
      {P, kFailed, BACK, kFailed, "", BACK, kFailed, ""},
      {P, kLost, RB, kReverting, "revert h1", RB, kReverting, ""},
      {RB, kPending, BACK, kCancelled, "", BACK, kCancelled, ""},
      {RB, kStaging, BACK, kCancelled, "", BACK, kCancelled, ""},
      {RB, kStaged, BACK, kCancelled, "", BACK, kCancelled, ""},
      {RB, kActivating, RB, kActivating, "", RB, kReverting, "revert h1"},
      {RB, kHealthy, RB, kReverting, "revert h1", RB, kReverting, ""},
      {RB, kLost, RB, kReverting, "revert h1", RB, kReverting, ""},
      {RB, kFailed, BACK, kFailed, "", BACK, kFailed, ""},
      {RB, kReverting, RB, kReverting, "", FAIL, kRevertFailed, ""},
      {RB, kReverted, BACK, kReverted, "", BACK, kReverted, ""},
      {RB, kRevertFailed, FAIL, kRevertFailed, "", FAIL, kRevertFailed, ""},
      {RB, kCancelled, BACK, kCancelled, "", BACK, kCancelled, ""},
  };
  const absl::Time restart = kT0 + absl::Hours(1);
  const absl::Time soon = restart + absl::Seconds(1);
  const absl::Time later = restart + kHostTimeout + kBake + absl::Milliseconds(1);
  auto sent = [](const Decision& d) {
    std::vector<std::string> s = Sent(d);
    return s.empty() ? std::string() : s[0];
  };
  for (const RestartCase& c : cases) {
    SCOPED_TRACE(absl::StrCat(Name(c.rollout), " with a ", Name(c.task), " task"));
    Rollout r = Deploy(c.rollout);
    if (c.rollout == P) {
      r.set_pause_reason(PAUSE_REASON_MANUAL);
      r.set_paused_by("bob");
    }
    if (c.rollout == RB) r.set_reason("aborted by bob");
    AddTask(&r, "h1", c.task);
    hosts_.Connect("h1", restart);

    Decision d = AdvanceAt(&r, soon);
    EXPECT_EQ(Name(r.state()), Name(c.rollout_soon)) << "soon";
    EXPECT_EQ(Name(StateOf(r, "h1")), Name(c.task_soon)) << "soon";
    EXPECT_EQ(sent(d), c.sent_soon) << "soon";
    EXPECT_LE(d.commands.size(), 1u);

    d = AdvanceAt(&r, later);
    EXPECT_EQ(Name(r.state()), Name(c.rollout_later)) << "later";
    EXPECT_EQ(Name(StateOf(r, "h1")), Name(c.task_later)) << "later";
    EXPECT_EQ(sent(d), c.sent_later) << "later";
  }
}

TEST_F(RolloutMachineRestartTest, ActivatingTaskOfAConnectedHost_IsNotResentButIsLostLater) {
  Rollout r = Deploy(ROLLOUT_STATE_ACTIVATING);
  r.mutable_plan()->set_max_failures(1);
  AddTask(&r, "h1", TASK_STATE_ACTIVATING);
  AddTask(&r, "h2", TASK_STATE_HEALTHY);
  const absl::Time restart = kT0 + absl::Hours(1);
  hosts_.Connect("h1", restart);
  hosts_.Connect("h2", restart);
  // The hour the controller was down does not count against the host.
  EXPECT_TRUE(AdvanceAt(&r, restart + kHostTimeout + kBake).empty());
  Decision d = AdvanceAt(&r, restart + kHostTimeout + kBake + absl::Milliseconds(1));
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_LOST);
  EXPECT_THAT(Events(d), Contains("host.lost h1"));
  EXPECT_THAT(Sent(d), Not(Contains("activate h1")));
  // Within the threshold, the wave ends with h2.
  EXPECT_EQ(r.state(), ROLLOUT_STATE_SUCCEEDED);
}

TEST_F(RolloutMachineRestartTest, StagingTaskOfAConnectedHost_IsNotResentButFailsLater) {
  Rollout r = Deploy(ROLLOUT_STATE_STAGING);
  r.mutable_plan()->set_max_failures(1);
  AddTask(&r, "h1", TASK_STATE_STAGING);
  AddTask(&r, "h2", TASK_STATE_STAGING);
  const absl::Time restart = kT0 + absl::Hours(1);
  hosts_.Connect("h1", restart);
  hosts_.Connect("h2", restart);
  hosts_.Progress("h2", restart + absl::Minutes(1));
  EXPECT_TRUE(AdvanceAt(&r, restart + kHostTimeout + kBake).empty());
  Decision d = AdvanceAt(&r, restart + kHostTimeout + kBake + absl::Milliseconds(1));
  EXPECT_EQ(StateOf(r, "h1"), TASK_STATE_FAILED);
  EXPECT_EQ(Task(r, "h1").reason(), "no answer from host for 1m30s");
  EXPECT_EQ(StateOf(r, "h2"), TASK_STATE_STAGING);  // it reported progress
  EXPECT_THAT(Sent(d), IsEmpty());
  EXPECT_EQ(r.state(), ROLLOUT_STATE_STAGING);
}

TEST_F(RolloutMachineRestartTest, PausedAtThePromoteGate_StaysThereUntilPromoted) {
  Rollout r = ActionTarget(ROLLOUT_STATE_PAUSED, /*gate=*/true);
  ConnectAll(r);
  EXPECT_TRUE(AdvanceAt(&r, kT0 + absl::Hours(5)).empty());
  EXPECT_TRUE(r.awaiting_promote());
}

}  // namespace
}  // namespace fleet::controller
