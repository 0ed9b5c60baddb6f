#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/rollout_state.h"
#include "common/status.h"
#include "controller/rollout_machine.h"
#include "controller/rollout_transitions.h"

// Answers, actions and supersession: the events from outside a rollout.
namespace fleet::controller {

using fleet::v1::CommandResult;
using fleet::v1::HostTask;
using fleet::v1::Rollout;
using fleet::v1::RolloutState;
using fleet::v1::TaskState;
using namespace fleet::v1;  // NOLINT: the enum values read better bare here

namespace {

// The task state an answer to `phase` moves a task in `task.state()` to,
// and the event it makes; false when the task waits for something else.
bool ResultTransition(const Rollout& r, const HostTask& task, const CommandResult& result,
                      TaskState* to, EventKind* kind) {
  const bool ok = result.ok();
  switch (result.ref().phase()) {
    case COMMAND_PHASE_STAGE:
      if (task.state() != TASK_STATE_STAGING) return false;
      *to = ok ? TASK_STATE_STAGED : TASK_STATE_FAILED;
      *kind = ok ? EventKind::kHostStaged : EventKind::kHostStageFailed;
      return true;
    case COMMAND_PHASE_ACTIVATE: {
      if (task.state() != TASK_STATE_ACTIVATING) return false;
      // A failed host that is not on its previous version (superseded, or
      // switching back failed) may still run the new one: LOST, so that
      // going back sends it back. A rollback is never undone.
      const bool back = result.current_version() == task.from_version();
      *to = ok ? TASK_STATE_HEALTHY
               : (back || IsRollback(r) ? TASK_STATE_FAILED : TASK_STATE_LOST);
      *kind = ok ? EventKind::kHostHealthy
                 : (result.switched_back() && back ? EventKind::kHostSwitchedBack
                                                   : EventKind::kHostFailed);
      return true;
    }
    case COMMAND_PHASE_REVERT:
      if (task.state() != TASK_STATE_REVERTING) return false;
      *to = ok ? TASK_STATE_REVERTED : TASK_STATE_REVERT_FAILED;
      *kind = ok ? EventKind::kHostReverted : EventKind::kHostRevertFailed;
      return true;
    default:
      return false;
  }
}

}  // namespace

bool ApplyResult(Rollout* r, HostTask* task, const CommandResult& result, absl::Time now,
                 Decision* d) {
  if (IsTerminal(r->state())) return false;
  // Only the answer to the command the task waits for counts.
  if (task->command_id() != result.command_id()) return false;
  TaskState to;
  EventKind kind;
  if (!ResultTransition(*r, *task, result, &to, &kind)) return false;
  Machine m(r, now, d);
  task->set_reason("");
  if (!m.SetTask(task, to, result.ok() ? "" : result.reason())) return false;
  m.EventBy(kind, task->host_id(), task->host_id(),
            result.ok() ? absl::StrCat("on ", VersionLabel(r->subject(), result.current_version()),
                                       " (switch ", result.switch_us(), " us)")
                        : result.reason());
  return true;
}

namespace {

absl::Status Refuse(const Rollout& r, const std::string& why) {
  return absl::FailedPreconditionError(absl::StrCat("rollout ", r.id(), " ", why));
}

// Checks `action` and sets what it changes besides the state; *to is the
// new state, *kind and *message the event.
absl::Status PrepareAction(Rollout* r, RolloutAction action, RolloutState* to, EventKind* kind,
                           std::string* message) {
  const bool paused = r->state() == ROLLOUT_STATE_PAUSED;
  switch (action) {
    case RolloutAction::kPause:
      if (paused) return Refuse(*r, "is paused already");
      if (r->state() == ROLLOUT_STATE_ROLLING_BACK) return Refuse(*r, "is rolling back");
      *to = ROLLOUT_STATE_PAUSED;
      *kind = EventKind::kRolloutPaused;
      *message = "no further host switches until resumed";
      return absl::OkStatus();
    case RolloutAction::kResume: {
      if (!paused) return Refuse(*r, "is not paused");
      if (r->awaiting_promote()) {
        return Refuse(*r, absl::StrCat("waits for promote: fleetctl rollout promote ", r->id()));
      }
      // Paused before its first wave started: staging finishes that step
      // (wave 1 starts) even if every host staged during the pause.
      const bool first_wave_started =
          r->plan().waves_size() == 0 || r->plan().waves(0).started_at_ms() > 0;
      const bool staging =
          !first_wave_started ||
          std::any_of(r->tasks().begin(), r->tasks().end(), [](const HostTask& t) {
            return t.state() == TASK_STATE_PENDING || t.state() == TASK_STATE_STAGING;
          });
      *to = staging ? ROLLOUT_STATE_STAGING : ROLLOUT_STATE_ACTIVATING;
      *kind = EventKind::kRolloutResumed;
      return absl::OkStatus();
    }
    case RolloutAction::kPromote:
      if (!paused || !r->awaiting_promote()) return Refuse(*r, "is not waiting for promote");
      *to = ROLLOUT_STATE_ACTIVATING;
      *kind = EventKind::kRolloutPromoted;
      *message = absl::StrCat("wave ", r->current_wave() + 2, " starts");
      return absl::OkStatus();
    case RolloutAction::kAbort:
      if (r->kind() == ROLLOUT_KIND_ROLLBACK) {
        return Refuse(*r, "is a rollback, which is never undone; roll out the version you want");
      }
      if (r->state() == ROLLOUT_STATE_ROLLING_BACK) return Refuse(*r, "is rolling back already");
      *to = ROLLOUT_STATE_ROLLING_BACK;
      *kind = EventKind::kRolloutAborted;
      *message = "every host this rollout switched goes back";
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("unknown rollout action");
}

}  // namespace

absl::Status ApplyAction(Rollout* r, RolloutAction action, const std::string& actor, absl::Time now,
                         Decision* d) {
  if (IsTerminal(r->state())) {
    return Refuse(*r, absl::StrCat("has ended (", RolloutStateName(r->state()), ")"));
  }
  RolloutState to = r->state();
  EventKind kind = EventKind::kRolloutPaused;
  std::string message;
  FLEET_RETURN_IF_ERROR(PrepareAction(r, action, &to, &kind, &message));
  if (!RolloutTransitionAllowed(r->state(), to)) {
    return Refuse(*r, absl::StrCat("cannot go from ", RolloutStateName(r->state()), " to ",
                                   RolloutStateName(to)));
  }
  const bool was_analysis = r->pause_reason() == PAUSE_REASON_ANALYSIS;
  Machine m(r, now, d);
  m.SetRollout(to, action == RolloutAction::kAbort ? absl::StrCat("aborted by ", actor) : "");
  switch (action) {
    case RolloutAction::kPause:
      r->set_paused_by(actor);
      r->set_pause_reason(PAUSE_REASON_MANUAL);
      break;
    case RolloutAction::kResume:
      // The inconclusive evaluation that paused it is history now.
      if (was_analysis) r->set_reason("");
      r->set_paused_by("");
      break;
    case RolloutAction::kPromote:
      r->set_paused_by("");
      StartWave(m, r->current_wave() + 1);
      break;
    case RolloutAction::kAbort:
      break;
  }
  m.EventBy(kind, "", actor, message);
  return absl::OkStatus();
}

void Supersede(Rollout* r, const std::string& actor, const std::string& rollback_id,
               const std::string& reason, absl::Time now, Decision* d) {
  Machine m(r, now, d);
  for (HostTask& t : *r->mutable_tasks()) {
    if (IsTaskTerminal(t.state())) continue;
    m.SetTask(&t, TASK_STATE_CANCELLED, absl::StrCat("superseded by rollback ", rollback_id));
  }
  if (!m.SetRollout(ROLLOUT_STATE_ROLLED_BACK, reason)) return;
  if (IsCatchUp(*r)) return;  // a catch-up ends quietly
  m.EventBy(EventKind::kRolloutAborted, "", actor, reason);
}

}  // namespace fleet::controller
