// The rollout state machine: pure functions from (rollout, its tasks, what
// is known of the hosts, analysis, now) to transitions, commands and events.
// No I/O: the engine (controller/rollout_engine.h) loads and persists, sends
// the commands, and records the events.
//
// Rollout states (RolloutTransitionAllowed):
//   STAGING      -> ACTIVATING | PAUSED | ROLLING_BACK (aborted)
//                 | ROLLED_BACK (too many hosts could not stage; nothing
//                   switched; or superseded by a rollback)
//   ACTIVATING   -> SUCCEEDED | PAUSED (paused, a manual-promote gate, or
//                   inconclusive analysis)
//                 | ROLLING_BACK (failures past the threshold, failed
//                   analysis, or aborted)
//                 | FAILED (a rollback whose host failed)
//                 | ROLLED_BACK (superseded by a rollback; or no host
//                   became healthy)
//   PAUSED       -> STAGING | ACTIVATING (resumed, promoted) | ROLLING_BACK
//                 | ROLLED_BACK (superseded)
//   ROLLING_BACK -> ROLLED_BACK | FAILED (a host could not go back)
// Host task states (TaskTransitionAllowed):
//   PENDING -> STAGING -> STAGED -> ACTIVATING -> HEALTHY | FAILED (back on
//                                     its previous version) | LOST (may
//                                     still run the new one)
//   HEALTHY | LOST -> REVERTING -> REVERTED | REVERT_FAILED (rolling back)
//   PENDING | STAGING | STAGED -> FAILED | CANCELLED
//   ACTIVATING | LOST | REVERTING -> CANCELLED (a rollback took over)
//
// An illegal transition is a bug, with one policy (OnIllegalTransition):
// debug builds abort; release builds log it and refuse it, leaving the
// state as it was.
//
// Waves: ACTIVATING switches the hosts of waves 0..current_wave (at most
// max_parallel at once); a wave is done when each of its hosts is healthy
// through the bake or failed, and (for a deploy with analysis) every check
// passed in it; then the next wave starts, or the rollout pauses for
// promote. A rollback has one wave of every host and is never undone. A
// catch-up (ROLLOUT_KIND_CATCH_UP) is a deploy of one host to the fleet's
// version that it missed.
#ifndef FLEET_CONTROLLER_ROLLOUT_MACHINE_H_
#define FLEET_CONTROLLER_ROLLOUT_MACHINE_H_

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/event_kind.h"
#include "fleet/v1/agent.pb.h"
#include "fleet/v1/api.pb.h"

namespace fleet::controller {

enum class RolloutAction { kPause, kResume, kPromote, kAbort };

// What the engine knows of a host's connection now.
struct HostLiveness {
  bool connected = false;
  absl::Time connected_since = absl::InfinitePast();
  absl::Time disconnected_since = absl::InfinitePast();
  absl::Time last_progress = absl::InfinitePast();  // last progress report
};

class HostsView {
 public:
  virtual ~HostsView() = default;
  virtual HostLiveness Liveness(const std::string& host_id) const = 0;
};

// What analysis says about the rollout's current wave
// (controller/analysis_state.h keeps the counts).
struct AnalysisGate {
  enum class Verdict { kNone, kFail, kPause };
  bool has_checks = false;
  bool all_passed = true;  // every check passed in the current window
  Verdict verdict = Verdict::kNone;
  std::string reason;
};

// The actor of what analysis does to a rollout (events, paused_by).
inline constexpr char kAnalysisActor[] = "analysis";

// An event to record about the rollout.
struct MachineEvent {
  EventKind kind;
  std::string host_id;  // "" = about the rollout
  std::string actor;
  std::string message;
};

// What one call decided, to be persisted in one transaction before any
// command is sent.
struct Decision {
  std::set<std::string> changed_tasks;  // host ids
  bool rollout_changed = false;
  std::vector<fleet::v1::CommandRef> commands;  // to send after the commit
  std::vector<MachineEvent> events;
  // The app's desired version of the rollout's subject changes to this.
  std::optional<std::string> set_desired;

  bool empty() const {
    return changed_tasks.empty() && !rollout_changed && events.empty() && !set_desired;
  }
};

bool RolloutTransitionAllowed(fleet::v1::RolloutState from, fleet::v1::RolloutState to);
bool TaskTransitionAllowed(fleet::v1::TaskState from, fleet::v1::TaskState to);
// HEALTHY, FAILED, REVERTED, REVERT_FAILED, CANCELLED and LOST.
bool IsTaskTerminal(fleet::v1::TaskState state);

// The policy for an illegal transition of `what` (a rollout or a task):
// aborts in debug builds; logs at error level in release builds. The caller
// then leaves the state as it was.
void OnIllegalTransition(const std::string& what, const std::string& from, const std::string& to);

// How long a connected host may owe an answer, and how long a disconnected
// host with work may stay away, for rollout `r`.
absl::Duration HostTimeout(const fleet::v1::Rollout& r, absl::Duration default_host_timeout);

// Advances `r` as far as it goes at `now`: starts staging and switches,
// times out silent hosts, finishes waves, applies the analysis verdict,
// fails or ends the rollout. Every change is recorded in *d.
void Advance(fleet::v1::Rollout* r, const HostsView& hosts, const AnalysisGate& analysis,
             absl::Time now, absl::Duration default_host_timeout, Decision* d);

// Applies an agent's answer to `task` (of `r`, the host that answered).
// Returns false (and changes nothing) when the task waits for another
// command or the rollout has ended: late answers to earlier phases are
// ignored.
bool ApplyResult(fleet::v1::Rollout* r, fleet::v1::HostTask* task,
                 const fleet::v1::CommandResult& result, absl::Time now, Decision* d);

// Pause, resume, promote (past a manual gate) or abort, by `actor`.
// FailedPrecondition naming why when the rollout's state does not allow it.
absl::Status ApplyAction(fleet::v1::Rollout* r, RolloutAction action, const std::string& actor,
                         absl::Time now, Decision* d);

// Rollback `rollback_id` takes over `r`: its unfinished tasks are
// cancelled and it ends ROLLED_BACK with `reason`, recorded as aborted by
// `actor` (a catch-up ends without an event).
void Supersede(fleet::v1::Rollout* r, const std::string& actor, const std::string& rollback_id,
               const std::string& reason, absl::Time now, Decision* d);

// "v2" for a release, "config c2" for a config: how messages name a version.
std::string VersionLabel(fleet::v1::Subject subject, const std::string& version);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_ROLLOUT_MACHINE_H_
