#include "controller/rollout_machine.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/rollout_state.h"
#include "controller/command_builder.h"
#include "common/status.h"
#include "controller/rollout_transitions.h"

namespace fleet::controller {

using fleet::v1::CommandPhase;
using fleet::v1::CommandResult;
using fleet::v1::HostTask;
using fleet::v1::Rollout;
using fleet::v1::RolloutState;
using fleet::v1::TaskState;

namespace {

using namespace fleet::v1;  // NOLINT: the enum values read better bare here

struct Transition {
  int from;
  int to;
};

// The two tables: every allowed (from, to) pair, written once.
constexpr Transition kRolloutTransitions[] = {
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

constexpr Transition kTaskTransitions[] = {
    {TASK_STATE_PENDING, TASK_STATE_STAGING},
    {TASK_STATE_PENDING, TASK_STATE_FAILED},
    {TASK_STATE_PENDING, TASK_STATE_CANCELLED},
    {TASK_STATE_STAGING, TASK_STATE_STAGED},
    {TASK_STATE_STAGING, TASK_STATE_FAILED},
    {TASK_STATE_STAGING, TASK_STATE_CANCELLED},
    {TASK_STATE_STAGED, TASK_STATE_ACTIVATING},
    {TASK_STATE_STAGED, TASK_STATE_FAILED},
    {TASK_STATE_STAGED, TASK_STATE_CANCELLED},
    {TASK_STATE_ACTIVATING, TASK_STATE_HEALTHY},
    {TASK_STATE_ACTIVATING, TASK_STATE_FAILED},
    {TASK_STATE_ACTIVATING, TASK_STATE_LOST},
    {TASK_STATE_ACTIVATING, TASK_STATE_CANCELLED},
    {TASK_STATE_HEALTHY, TASK_STATE_REVERTING},
    {TASK_STATE_LOST, TASK_STATE_REVERTING},
    {TASK_STATE_LOST, TASK_STATE_CANCELLED},
    {TASK_STATE_REVERTING, TASK_STATE_REVERTED},
    {TASK_STATE_REVERTING, TASK_STATE_REVERT_FAILED},
    {TASK_STATE_REVERTING, TASK_STATE_CANCELLED},
};

template <size_t N>
bool Allowed(const Transition (&table)[N], int from, int to) {
  return std::any_of(std::begin(table), std::end(table),
                     [&](const Transition& t) { return t.from == from && t.to == to; });
}

bool IsConfig(const Rollout& r) { return r.subject() == SUBJECT_CONFIG; }
bool IsDeploy(const Rollout& r) { return r.kind() == ROLLOUT_KIND_DEPLOY; }

std::string NothingEarlier(const Rollout& r) {
  return absl::StrCat("no earlier ", IsConfig(r) ? "config" : "release",
                      " on this host to go back to");
}

std::string FirstFailure(const Rollout& r) {
  for (const HostTask& t : r.tasks()) {
    if (t.state() == TASK_STATE_FAILED || t.state() == TASK_STATE_LOST) {
      return absl::StrCat(t.reason(), " on ", t.host_id());
    }
  }
  return "";
}

int64_t Count(const Rollout& r, TaskState state) {
  return std::count_if(r.tasks().begin(), r.tasks().end(),
                       [state](const HostTask& t) { return t.state() == state; });
}

int64_t Failures(const Rollout& r) {
  return Count(r, TASK_STATE_FAILED) + Count(r, TASK_STATE_LOST);
}

std::string FailureReason(const Rollout& r) {
  std::string reason = FirstFailure(r);
  const int64_t failed = Failures(r);
  if (failed > 1) absl::StrAppend(&reason, " (", failed, " hosts failed)");
  return reason;
}


// What Advance needs besides the machine.
struct Context {
  const HostsView& hosts;
  const AnalysisGate& analysis;
  absl::Duration host_timeout;
  absl::Duration answer_timeout;  // host timeout, plus the bake for a deploy
};

// Why a host that owes an answer counts as failed, or "".
std::string Overdue(const HostTask& t, const Context& c, absl::Time now) {
  const HostLiveness live = c.hosts.Liveness(t.host_id());
  if (!live.connected) {
    if (now - live.disconnected_since > c.host_timeout) {
      return absl::StrCat("host disconnected for more than ", absl::FormatDuration(c.host_timeout));
    }
    return "";
  }
  // The clock starts again when the host reconnects: time the controller or
  // the network was down is not the host's fault.
  const absl::Time since =
      std::max({absl::FromUnixMillis(t.updated_at_ms()), live.connected_since, live.last_progress});
  if (now - since > c.answer_timeout) {
    return absl::StrCat("no answer from host for ", absl::FormatDuration(c.answer_timeout));
  }
  return "";
}

std::string WaveLabel(const Rollout& r, int w) {
  const int count = std::max(1, r.plan().waves_size());
  return absl::StrCat("wave ", w + 1, "/", count,
                      r.plan().waves_size() > w ? absl::StrCat(" (", r.plan().waves(w).target(), ")")
                                                : "");
}

// Staging goes on in STAGING and PAUSED: hosts that (re)connect get their
// stage command; hosts that stay away fail.
void ProgressStaging(Machine& m, const Context& c) {
  for (HostTask& t : *m.r().mutable_tasks()) {
    if (t.state() == TASK_STATE_PENDING && c.hosts.Liveness(t.host_id()).connected) {
      if (m.SetTask(&t, TASK_STATE_STAGING)) m.Send(&t, COMMAND_PHASE_STAGE);
    }
    if (t.state() != TASK_STATE_PENDING && t.state() != TASK_STATE_STAGING) continue;
    if (std::string why = Overdue(t, c, m.now()); !why.empty()) {
      m.SetTask(&t, TASK_STATE_FAILED, why);
      m.Event(EventKind::kHostFailed, t.host_id(), why);
    }
  }
}

// A host that owes the answer to an activation may have switched: it is
// LOST, not FAILED, so that going back sends it back.
void TimeOutActivations(Machine& m, const Context& c) {
  for (HostTask& t : *m.r().mutable_tasks()) {
    if (t.state() != TASK_STATE_ACTIVATING) continue;
    if (std::string why = Overdue(t, c, m.now()); !why.empty()) {
      m.SetTask(&t, TASK_STATE_LOST, why);
      m.Event(EventKind::kHostLost, t.host_id(), why);
    }
  }
}

bool ThresholdExceeded(const Rollout& r) { return Failures(r) > r.plan().max_failures(); }

void StartRollingBack(Machine& m) {
  const std::string reason = FailureReason(m.r());
  if (!m.SetRollout(ROLLOUT_STATE_ROLLING_BACK, reason)) return;
  m.Outcome(EventKind::kRolloutFailed, EventKind::kHostReconcileFailed,
            absl::StrCat(reason, "; more than ", m.r().plan().max_failures(),
                         " failed hosts allowed; rolling back"));
}

}  // namespace

void StartWave(Machine& m, int w) {
  m.r().set_current_wave(w);
  if (w < m.r().plan().waves_size()) {
    m.r().mutable_plan()->mutable_waves(w)->set_started_at_ms(m.now_ms());
  }
  m.Changed();
  m.RolloutEvent(EventKind::kWaveStarted, WaveLabel(m.r(), w));
}

namespace {

bool AdvanceStaging(Machine& m, const Context& c) {
  ProgressStaging(m, c);
  Rollout& r = m.r();
  if (ThresholdExceeded(r)) {
    for (HostTask& t : *r.mutable_tasks()) {
      if (!IsTaskTerminal(t.state())) m.SetTask(&t, TASK_STATE_CANCELLED);
    }
    const std::string reason =
        absl::StrCat("staging failed: ", FailureReason(r), "; nothing was switched");
    if (!m.SetRollout(ROLLOUT_STATE_ROLLED_BACK, reason)) return false;
    m.Outcome(EventKind::kRolloutFailed, EventKind::kHostReconcileFailed, reason);
    return true;
  }
  const bool all_staged = std::all_of(r.tasks().begin(), r.tasks().end(), [](const HostTask& t) {
    return t.state() == TASK_STATE_STAGED || t.state() == TASK_STATE_FAILED;
  });
  if (!all_staged || !m.SetRollout(ROLLOUT_STATE_ACTIVATING)) return false;
  StartWave(m, 0);
  return true;
}

// Failures past the threshold while ACTIVATING. Returns whether the
// rollout moved; *stop when nothing else may happen in this step.
bool ActivatingOverThreshold(Machine& m, bool* stop) {
  Rollout& r = m.r();
  *stop = false;
  if (!ThresholdExceeded(r)) return false;
  if (!IsRollback(r)) {
    StartRollingBack(m);
    *stop = true;
    return true;
  }
  // A rollback is not undone: once its hosts have answered, the hosts that
  // failed report why.
  if (Count(r, TASK_STATE_ACTIVATING) > 0 || Count(r, TASK_STATE_STAGED) > 0) return false;
  const std::string reason = FailureReason(r);
  if (!m.SetRollout(ROLLOUT_STATE_FAILED, reason)) return false;
  m.Event(EventKind::kRollbackFailed, "", reason);
  // No host moved: the fleet still runs what it ran before.
  if (Count(r, TASK_STATE_HEALTHY) == 0) m.SetDesired(r.from_version());
  *stop = true;
  return true;
}

// Applies a failing or pausing analysis verdict. Returns whether it did.
bool ApplyAnalysisVerdict(Machine& m, const AnalysisGate& a) {
  if (a.verdict == AnalysisGate::Verdict::kFail) {
    if (!m.SetRollout(ROLLOUT_STATE_ROLLING_BACK, a.reason)) return false;
    m.EventBy(EventKind::kAnalysisFailed, "", kAnalysisActor, a.reason);
    m.Event(EventKind::kRolloutFailed, "", absl::StrCat(a.reason, "; rolling back"));
    return true;
  }
  if (a.verdict == AnalysisGate::Verdict::kPause) {
    if (!m.SetRollout(ROLLOUT_STATE_PAUSED, a.reason)) return false;
    m.r().set_paused_by(kAnalysisActor);
    m.r().set_pause_reason(PAUSE_REASON_ANALYSIS);
    m.EventBy(EventKind::kAnalysisInconclusive, "", kAnalysisActor,
              absl::StrCat(a.reason, "; paused until: fleetctl rollout resume ", m.r().id()));
    return true;
  }
  return false;
}

// Sends the staged hosts of waves 0..w their activation, at most
// max_parallel in flight.
void SwitchHosts(Machine& m, int w) {
  Rollout& r = m.r();
  int64_t in_flight = Count(r, TASK_STATE_ACTIVATING);
  const int max_parallel = r.plan().max_parallel();
  for (HostTask& t : *r.mutable_tasks()) {
    if (t.wave() > w || t.state() != TASK_STATE_STAGED) continue;
    if (max_parallel > 0 && in_flight >= max_parallel) break;
    if (!m.SetTask(&t, TASK_STATE_ACTIVATING)) continue;
    m.Send(&t, COMMAND_PHASE_ACTIVATE);
    ++in_flight;
  }
}

// The last wave is done: the rollout ends.
void FinishLastWave(Machine& m, int64_t failed) {
  Rollout& r = m.r();
  const int64_t healthy = Count(r, TASK_STATE_HEALTHY);
  if (!IsRollback(r) && healthy == 0) {
    // Every host failed, within a generous threshold: nothing runs the
    // version, so it did not succeed. Failed hosts switched themselves back;
    // a lost one may still run it and is sent back.
    const std::string reason = absl::StrCat("no host became healthy: ", FailureReason(r));
    const bool lost = Count(r, TASK_STATE_LOST) > 0;
    if (m.SetRollout(lost ? ROLLOUT_STATE_ROLLING_BACK : ROLLOUT_STATE_ROLLED_BACK, reason)) {
      m.Outcome(EventKind::kRolloutFailed, EventKind::kHostReconcileFailed,
                lost ? absl::StrCat(reason, "; rolling back") : reason);
    }
    return;
  }
  std::string reason;
  if (failed > 0) {
    reason = absl::StrCat(failed, " hosts failed within the threshold of ", r.plan().max_failures(),
                          " and went back: ", FirstFailure(r));
  }
  if (!m.SetRollout(ROLLOUT_STATE_SUCCEEDED, reason)) return;
  if (!IsCatchUp(r)) m.SetDesired(r.version());
  const std::string live =
      absl::StrCat(VersionLabel(r.subject(), r.version()), " is live on ", healthy, " hosts");
  if (IsRollback(r)) {
    m.Event(EventKind::kRollbackSucceeded, "", live);
  } else {
    m.Outcome(EventKind::kRolloutSucceeded, EventKind::kHostReconciled,
              IsCatchUp(r) ? absl::StrCat("now on ", VersionLabel(r.subject(), r.version()))
                           : live);
  }
}

// Wave w is done (every host answered, analysis passed): next wave, gate,
// or the end.
void FinishWave(Machine& m, int w) {
  Rollout& r = m.r();
  const int wave_count = std::max(1, r.plan().waves_size());
  const int64_t failed = Failures(r);
  if (w < r.plan().waves_size()) r.mutable_plan()->mutable_waves(w)->set_finished_at_ms(m.now_ms());
  m.Changed();
  m.RolloutEvent(EventKind::kWaveFinished,
              absl::StrCat(WaveLabel(r, w), " done; ", failed, " hosts failed so far"));
  if (w + 1 >= wave_count) {
    FinishLastWave(m, failed);
  } else if (r.plan().manual_promote()) {
    if (!m.SetRollout(ROLLOUT_STATE_PAUSED)) return;
    r.set_awaiting_promote(true);
    r.set_pause_reason(PAUSE_REASON_PROMOTE_GATE);
    m.Event(EventKind::kRolloutWaiting, "",
            absl::StrCat(WaveLabel(r, w), " is healthy; waiting for: fleetctl rollout promote ",
                         r.id()));
  } else {
    StartWave(m, w + 1);
  }
}

bool AdvanceActivating(Machine& m, const Context& c) {
  TimeOutActivations(m, c);
  Rollout& r = m.r();
  const int w = std::min(r.current_wave(), std::max(1, r.plan().waves_size()) - 1);
  bool stop = false;
  if (ActivatingOverThreshold(m, &stop) || stop) return true;
  if (IsDeploy(r) && ApplyAnalysisVerdict(m, c.analysis)) return true;
  SwitchHosts(m, w);
  const bool wave_done = std::all_of(r.tasks().begin(), r.tasks().end(), [w](const HostTask& t) {
    return t.wave() > w || IsTaskTerminal(t.state());
  });
  if (!wave_done) return false;
  // Analysis holds the wave until every check passed in it. When no host
  // runs the version there is nothing to measure.
  if (IsDeploy(r) && c.analysis.has_checks && Count(r, TASK_STATE_HEALTHY) > 0 &&
      !c.analysis.all_passed) {
    return false;
  }
  FinishWave(m, w);
  return true;
}

bool AdvancePaused(Machine& m, const Context& c) {
  ProgressStaging(m, c);
  TimeOutActivations(m, c);
  // A rollback is never undone; its failures show when it is resumed.
  if (IsRollback(m.r()) || !ThresholdExceeded(m.r())) return false;
  StartRollingBack(m);
  return true;
}

// Sends a switched (or maybe switched) host back to its previous version.
void Revert(Machine& m, HostTask* t, const std::string& why_lost) {
  if (!m.SetTask(t, TASK_STATE_REVERTING)) return;
  // A host's first config goes back to no config at all; a first release
  // has nothing to go back to.
  if (t->from_version().empty() && !IsConfig(m.r())) {
    const std::string why = why_lost.empty() ? NothingEarlier(m.r())
                                             : absl::StrCat(why_lost, "; ", NothingEarlier(m.r()));
    if (m.SetTask(t, TASK_STATE_REVERT_FAILED, why)) {
      m.Event(EventKind::kHostRevertFailed, t->host_id(), why);
    }
    return;
  }
  m.Send(t, COMMAND_PHASE_REVERT);
}

// Moves one task of a rolling-back rollout towards its previous version.
void RollBackTask(Machine& m, const Context& c, HostTask* t) {
  switch (t->state()) {
    case TASK_STATE_PENDING:
    case TASK_STATE_STAGING:
    case TASK_STATE_STAGED:
      m.SetTask(t, TASK_STATE_CANCELLED);
      break;
    case TASK_STATE_HEALTHY:
    case TASK_STATE_LOST:
      Revert(m, t, "");
      break;
    case TASK_STATE_ACTIVATING:
      if (std::string why = Overdue(*t, c, m.now()); !why.empty()) {
        // It may have switched: send it back like a healthy host.
        m.SetTask(t, TASK_STATE_LOST, why);
        m.Event(EventKind::kHostLost, t->host_id(), why);
        Revert(m, t, why);
      }
      break;
    case TASK_STATE_REVERTING:
      if (std::string why = Overdue(*t, c, m.now()); !why.empty()) {
        m.SetTask(t, TASK_STATE_REVERT_FAILED, why);
        m.Event(EventKind::kHostRevertFailed, t->host_id(), why);
      }
      break;
    default:
      break;
  }
}

bool AdvanceRollingBack(Machine& m, const Context& c) {
  bool waiting = false;
  bool incomplete = false;
  for (HostTask& t : *m.r().mutable_tasks()) {
    RollBackTask(m, c, &t);
    waiting |= t.state() == TASK_STATE_ACTIVATING || t.state() == TASK_STATE_REVERTING;
    incomplete |= t.state() == TASK_STATE_REVERT_FAILED;
  }
  if (waiting) return false;
  const std::string reason = m.r().reason();
  if (incomplete) {
    if (!m.SetRollout(ROLLOUT_STATE_FAILED, absl::StrCat(reason, "; not every host could go back"))) {
      return false;
    }
    m.Outcome(EventKind::kRolloutRollbackIncomplete, EventKind::kHostReconcileFailed, reason);
    return true;
  }
  if (!m.SetRollout(ROLLOUT_STATE_ROLLED_BACK)) return false;
  // A catch-up said that it failed when it started going back.
  m.RolloutEvent(EventKind::kRolloutRolledBack,
                 absl::StrCat("every switched host is back: ", reason));
  return true;
}

// One step from the rollout's state; whether it moved.
bool Step(Machine& m, const Context& c) {
  switch (m.r().state()) {
    case ROLLOUT_STATE_STAGING:
      return AdvanceStaging(m, c);
    case ROLLOUT_STATE_ACTIVATING:
      return AdvanceActivating(m, c);
    case ROLLOUT_STATE_PAUSED:
      return AdvancePaused(m, c);
    case ROLLOUT_STATE_ROLLING_BACK:
      return AdvanceRollingBack(m, c);
    default:
      return false;
  }
}

}  // namespace

bool IsCatchUp(const Rollout& r) { return r.kind() == ROLLOUT_KIND_CATCH_UP; }
bool IsRollback(const Rollout& r) { return r.kind() == ROLLOUT_KIND_ROLLBACK; }

bool Machine::SetTask(HostTask* task, TaskState to, const std::string& reason) {
  if (!TaskTransitionAllowed(task->state(), to)) {
    OnIllegalTransition(absl::StrCat("rollout ", r_->id(), " host ", task->host_id()),
                        TaskStateName(task->state()), TaskStateName(to));
    return false;
  }
  task->set_state(to);
  if (!reason.empty()) task->set_reason(reason);
  task->set_updated_at_ms(now_ms_);
  d_->changed_tasks.insert(task->host_id());
  return true;
}

bool Machine::SetRollout(RolloutState to, const std::string& reason) {
  if (!RolloutTransitionAllowed(r_->state(), to)) {
    OnIllegalTransition(absl::StrCat("rollout ", r_->id()), RolloutStateName(r_->state()),
                        RolloutStateName(to));
    return false;
  }
  spdlog::info("rollout {} of {} {}: {} -> {}{}{}", r_->id(), r_->app(),
               VersionLabel(r_->subject(), r_->version()), RolloutStateName(r_->state()),
               RolloutStateName(to), reason.empty() ? "" : ": ", reason);
  r_->set_state(to);
  if (!reason.empty()) r_->set_reason(reason);
  if (to != ROLLOUT_STATE_PAUSED) {
    r_->set_pause_reason(PAUSE_REASON_UNSPECIFIED);
    r_->set_awaiting_promote(false);
  }
  if (IsTerminal(to)) r_->set_finished_at_ms(now_ms_);
  d_->rollout_changed = true;
  return true;
}

void Machine::Send(HostTask* task, CommandPhase phase) {
  fleet::v1::CommandRef& ref = d_->commands.emplace_back();
  ref.set_rollout_id(r_->id());
  ref.set_host_id(task->host_id());
  ref.set_phase(phase);
  // The task waits for the answer to this command, and no other.
  task->set_command_id(CommandKey(ref));
  d_->changed_tasks.insert(task->host_id());
}

void Machine::Event(EventKind kind, const std::string& host, const std::string& message) {
  EventBy(kind, host, host.empty() ? r_->created_by() : host, message);
}

void Machine::EventBy(EventKind kind, const std::string& host, const std::string& actor,
                      const std::string& message) {
  // Every decision is in the log with what it is about, not only in the store.
  spdlog::info("decision {} app={} {}={} rollout={}{}{}: {}", EventKindName(kind), r_->app(),
               IsConfig(*r_) ? "config" : "release", r_->version(), r_->id(),
               host.empty() ? "" : " host=", host, message);
  d_->events.push_back(MachineEvent{kind, host, actor, message});
}

void Machine::Outcome(EventKind rollout_kind, EventKind catch_up_kind, const std::string& message) {
  if (!IsCatchUp(*r_)) {
    Event(rollout_kind, "", message);
  } else if (r_->tasks_size() > 0) {
    EventBy(catch_up_kind, r_->tasks(0).host_id(), "controller", message);
  }
}

void Machine::RolloutEvent(EventKind kind, const std::string& message) {
  if (!IsCatchUp(*r_)) Event(kind, "", message);
}

bool RolloutTransitionAllowed(RolloutState from, RolloutState to) {
  return Allowed(kRolloutTransitions, from, to);
}

bool TaskTransitionAllowed(TaskState from, TaskState to) {
  return Allowed(kTaskTransitions, from, to);
}

bool IsTaskTerminal(TaskState s) {
  return s == TASK_STATE_HEALTHY || s == TASK_STATE_FAILED || s == TASK_STATE_REVERTED ||
         s == TASK_STATE_REVERT_FAILED || s == TASK_STATE_CANCELLED || s == TASK_STATE_LOST;
}

void OnIllegalTransition(const std::string& what, const std::string& from, const std::string& to) {
  spdlog::error("{}: illegal transition {} -> {} refused (a bug)", what, from, to);
#ifndef NDEBUG
  std::abort();
#endif
}

std::string VersionLabel(fleet::v1::Subject subject, const std::string& version) {
  const std::string shown = version.empty() ? "(none)" : version;
  return subject == SUBJECT_CONFIG ? absl::StrCat("config ", shown) : shown;
}

absl::Duration HostTimeout(const Rollout& r, absl::Duration default_host_timeout) {
  return r.plan().host_timeout_ms() > 0 ? absl::Milliseconds(r.plan().host_timeout_ms())
                                        : default_host_timeout;
}

void Advance(Rollout* r, const HostsView& hosts, const AnalysisGate& analysis, absl::Time now,
             absl::Duration default_host_timeout, Decision* d) {
  const absl::Duration host_timeout = HostTimeout(*r, default_host_timeout);
  const Context c{hosts, analysis, host_timeout,
                  host_timeout + (IsRollback(*r) ? absl::ZeroDuration()
                                                 : absl::Milliseconds(r->plan().bake_ms()))};
  Machine m(r, now, d);
  // A step that moved may enable the next (staged -> first wave -> ...);
  // the number of states bounds the loop.
  for (int i = 0; i < 16 && !IsTerminal(r->state()) && Step(m, c); ++i) {
  }
}

}  // namespace fleet::controller
