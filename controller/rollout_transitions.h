// Inside the rollout state machine (rollout_machine.h): the one writer of
// rollout and task states. Every write goes through the transition tables;
// an illegal one follows OnIllegalTransition's policy and is refused.
#ifndef FLEET_CONTROLLER_ROLLOUT_TRANSITIONS_H_
#define FLEET_CONTROLLER_ROLLOUT_TRANSITIONS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "controller/rollout_machine.h"

namespace fleet::controller {

// Writes the transitions of one rollout and records in a Decision what
// changed, which commands to send and which events to record. Lives for one
// call of the machine; not thread-safe.
class Machine {
 public:
  Machine(fleet::v1::Rollout* r, absl::Time now, Decision* d)
      : r_(r), d_(d), now_(now), now_ms_(absl::ToUnixMillis(now)) {}

  fleet::v1::Rollout& r() { return *r_; }
  absl::Time now() const { return now_; }
  int64_t now_ms() const { return now_ms_; }

  // Moves `task` (of this rollout) to `to`, with `reason` unless it is "".
  // False, with nothing changed, when the table does not allow it.
  bool SetTask(fleet::v1::HostTask* task, fleet::v1::TaskState to, const std::string& reason = "");
  // Moves the rollout to `to`; leaving PAUSED clears the pause reason and
  // the promote gate, a terminal state sets finished_at. False, with
  // nothing changed, when the table does not allow it.
  bool SetRollout(fleet::v1::RolloutState to, const std::string& reason = "");
  // The rollout's own fields (wave, timestamps) changed.
  void Changed() { d_->rollout_changed = true; }
  // Sends `task`'s host the command of `phase` once the decision is stored.
  void Send(fleet::v1::HostTask* task, fleet::v1::CommandPhase phase);
  // An event about the rollout (by its creator) or one of its hosts (by the
  // host).
  void Event(EventKind kind, const std::string& host, const std::string& message);
  void EventBy(EventKind kind, const std::string& host, const std::string& actor,
               const std::string& message);
  // How a rollout ends: `rollout_kind` for a deploy, `catch_up_kind` (about
  // its host) for a catch-up, which speaks of its host, not of a rollout.
  void Outcome(EventKind rollout_kind, EventKind catch_up_kind, const std::string& message);
  // An event about the rollout as a whole (waves, rolled back) that a
  // catch-up, which speaks of its host, does not record.
  void RolloutEvent(EventKind kind, const std::string& message);
  void SetDesired(const std::string& version) { d_->set_desired = version; }

 private:
  fleet::v1::Rollout* r_;
  Decision* d_;
  absl::Time now_;
  int64_t now_ms_;
};

bool IsCatchUp(const fleet::v1::Rollout& r);
bool IsRollback(const fleet::v1::Rollout& r);
// Starts wave `w` (0-based) now.
void StartWave(Machine& m, int w);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_ROLLOUT_TRANSITIONS_H_
