// Shared by the rollout state machine tests (rollout_machine_test.cc,
// rollout_machine_events_test.cc): a fake HostsView, rollouts built field by
// field, and readable views of a Decision. Times are fixed values; nothing
// reads a clock.
#ifndef FLEET_TESTS_UNIT_CONTROLLER_ROLLOUT_MACHINE_FIXTURE_H_
#define FLEET_TESTS_UNIT_CONTROLLER_ROLLOUT_MACHINE_FIXTURE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/event_kind.h"
#include "controller/rollout_machine.h"
#include "gtest/gtest.h"

namespace fleet::controller::rollout_machine_testing {

using fleet::v1::HostTask;
using fleet::v1::Rollout;
using fleet::v1::RolloutState;
using fleet::v1::TaskState;

// plan.host_timeout_ms of every rollout built here; the default passed to
// Advance differs so that a test notices which one is used.
inline constexpr absl::Duration kHostTimeout = absl::Minutes(1);
inline constexpr absl::Duration kBake = absl::Seconds(30);
inline constexpr absl::Duration kDefaultHostTimeout = absl::Minutes(5);
// When tasks were last updated, unless a test says otherwise.
inline const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

// Liveness as a test sets it; a host it never heard of is disconnected since
// the infinite past.
class FakeHosts : public HostsView {
 public:
  HostLiveness Liveness(const std::string& host_id) const override {
    auto it = hosts_.find(host_id);
    return it == hosts_.end() ? HostLiveness{} : it->second;
  }
  void Connect(const std::string& host, absl::Time since) {
    HostLiveness& h = hosts_[host];
    h.connected = true;
    h.connected_since = since;
  }
  void Disconnect(const std::string& host, absl::Time since) {
    HostLiveness& h = hosts_[host];
    h.connected = false;
    h.disconnected_since = since;
  }
  void Progress(const std::string& host, absl::Time at) { hosts_[host].last_progress = at; }

 private:
  std::map<std::string, HostLiveness> hosts_;
};

// Rollout r1: alice deploys web v2 over v1 in one wave per target, no
// failure allowed, no parallel limit, host timeout kHostTimeout, bake kBake.
inline Rollout Deploy(RolloutState state, const std::vector<std::string>& wave_targets = {"100%"}) {
  Rollout r;
  r.set_id("r1");
  r.set_app("web");
  r.set_version("v2");
  r.set_from_version("v1");
  r.set_kind(fleet::v1::ROLLOUT_KIND_DEPLOY);
  r.set_subject(fleet::v1::SUBJECT_RELEASE);
  r.set_state(state);
  r.set_created_by("alice");
  r.set_created_at_ms(absl::ToUnixMillis(kT0 - absl::Hours(1)));
  fleet::v1::RolloutPlan* plan = r.mutable_plan();
  for (size_t i = 0; i < wave_targets.size(); ++i) {
    fleet::v1::Wave* w = plan->add_waves();
    w->set_index(static_cast<int>(i));
    w->set_target(wave_targets[i]);
  }
  plan->set_max_failures(0);
  plan->set_max_failures_spec("0");
  plan->set_host_timeout_ms(absl::ToInt64Milliseconds(kHostTimeout));
  plan->set_bake_ms(absl::ToInt64Milliseconds(kBake));
  // Past STAGING the first wave has started (a PAUSED one too: a rollout
  // paused while it staged starts from STAGING in its tests).
  if (state != fleet::v1::ROLLOUT_STATE_STAGING) {
    plan->mutable_waves(0)->set_started_at_ms(absl::ToUnixMillis(kT0 - absl::Minutes(30)));
  }
  return r;
}

// Rollback r1 of web from v2 back to v1: one wave, no bake.
inline Rollout RollbackRollout(RolloutState state) {
  Rollout r = Deploy(state);
  r.set_kind(fleet::v1::ROLLOUT_KIND_ROLLBACK);
  r.set_version("v1");
  r.set_from_version("v2");
  r.mutable_plan()->set_bake_ms(0);
  return r;
}

// Catch-up r1: brings `host` (on v1) to the fleet's v2.
inline Rollout CatchUp(RolloutState state) {
  Rollout r = Deploy(state);
  r.set_kind(fleet::v1::ROLLOUT_KIND_CATCH_UP);
  r.set_created_by("controller");
  return r;
}

// Adds host `host` in `state` to wave `wave`, last updated at kT0, from the
// rollout's from_version, waiting for command "cmd-<host>".
inline HostTask* AddTask(Rollout* r, const std::string& host, TaskState state, int wave = 0) {
  HostTask* t = r->add_tasks();
  t->set_host_id(host);
  t->set_state(state);
  t->set_wave(wave);
  t->set_from_version(r->from_version());
  t->set_to_version(r->version());
  t->set_updated_at_ms(absl::ToUnixMillis(kT0));
  t->set_command_id(absl::StrCat("cmd-", host));
  return t;
}

inline HostTask& Task(Rollout& r, const std::string& host) {
  for (HostTask& t : *r.mutable_tasks()) {
    if (t.host_id() == host) return t;
  }
  ADD_FAILURE() << "no task for " << host;
  static HostTask none;
  return none;
}

inline TaskState StateOf(Rollout& r, const std::string& host) { return Task(r, host).state(); }

inline std::string PhaseName(fleet::v1::CommandPhase phase) {
  switch (phase) {
    case fleet::v1::COMMAND_PHASE_STAGE:
      return "stage";
    case fleet::v1::COMMAND_PHASE_ACTIVATE:
      return "activate";
    case fleet::v1::COMMAND_PHASE_REVERT:
      return "revert";
    default:
      return "unspecified";
  }
}

// "activate h1", one per command, in the order decided.
inline std::vector<std::string> Sent(const Decision& d) {
  std::vector<std::string> out;
  for (const fleet::v1::CommandRef& c : d.commands) {
    out.push_back(absl::StrCat(PhaseName(c.phase()), " ", c.host_id()));
  }
  return out;
}

// "wave.started", or "host.lost h1" for an event about a host.
inline std::vector<std::string> Events(const Decision& d) {
  std::vector<std::string> out;
  for (const MachineEvent& e : d.events) {
    out.push_back(e.host_id.empty() ? EventKindName(e.kind)
                                    : absl::StrCat(EventKindName(e.kind), " ", e.host_id));
  }
  return out;
}

// The first event of `kind`; an empty event (and a test failure) if none.
inline MachineEvent EventOf(const Decision& d, EventKind kind) {
  for (const MachineEvent& e : d.events) {
    if (e.kind == kind) return e;
  }
  ADD_FAILURE() << "no " << EventKindName(kind) << " event";
  return MachineEvent{kind, "", "", ""};
}

inline int64_t Ms(absl::Time t) { return absl::ToUnixMillis(t); }

// `host`'s answer to the command its task waits for, for `phase`;
// a failure says "probe /healthz failed".
inline fleet::v1::CommandResult Answer(Rollout& r, const std::string& host,
                                       fleet::v1::CommandPhase phase, bool ok,
                                       const std::string& current_version,
                                       bool switched_back = false) {
  fleet::v1::CommandResult result;
  result.set_command_id(Task(r, host).command_id());
  result.set_ok(ok);
  if (!ok) result.set_reason("probe /healthz failed");
  result.set_current_version(current_version);
  result.set_switched_back(switched_back);
  result.set_switch_us(1200);
  result.mutable_ref()->set_rollout_id(r.id());
  result.mutable_ref()->set_host_id(host);
  result.mutable_ref()->set_phase(phase);
  return result;
}

inline std::string Name(RolloutState s) { return fleet::v1::RolloutState_Name(s); }
inline std::string Name(TaskState s) { return fleet::v1::TaskState_Name(s); }

// Every value of each enum, UNSPECIFIED included.
inline std::vector<RolloutState> AllRolloutStates() {
  std::vector<RolloutState> out;
  for (int i = fleet::v1::RolloutState_MIN; i <= fleet::v1::RolloutState_MAX; ++i) {
    if (fleet::v1::RolloutState_IsValid(i)) out.push_back(static_cast<RolloutState>(i));
  }
  return out;
}

inline std::vector<TaskState> AllTaskStates() {
  std::vector<TaskState> out;
  for (int i = fleet::v1::TaskState_MIN; i <= fleet::v1::TaskState_MAX; ++i) {
    if (fleet::v1::TaskState_IsValid(i)) out.push_back(static_cast<TaskState>(i));
  }
  return out;
}

// Advance with the fake hosts and kDefaultHostTimeout; returns the decision.
class MachineTest : public ::testing::Test {
 protected:
  Decision AdvanceAt(Rollout* r, absl::Time now, const AnalysisGate& analysis = {}) {
    Decision d;
    Advance(r, hosts_, analysis, now, kDefaultHostTimeout, &d);
    return d;
  }

  // Every host in `r` connected since long before kT0.
  void ConnectAll(const Rollout& r) {
    for (const HostTask& t : r.tasks()) hosts_.Connect(t.host_id(), kT0 - absl::Hours(2));
  }

  FakeHosts hosts_;
};

// The engine finds the task of the host that answered by the result's
// ref; so does this, for the tests.
inline bool ApplyAnswer(fleet::v1::Rollout* r, const fleet::v1::CommandResult& result,
                        absl::Time now, Decision* d) {
  if (result.ref().rollout_id() != r->id()) return false;
  for (fleet::v1::HostTask& t : *r->mutable_tasks()) {
    if (t.host_id() == result.ref().host_id()) return ApplyResult(r, &t, result, now, d);
  }
  return false;
}

}  // namespace fleet::controller::rollout_machine_testing

#endif  // FLEET_TESTS_UNIT_CONTROLLER_ROLLOUT_MACHINE_FIXTURE_H_
