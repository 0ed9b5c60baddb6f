// What agents say, handled on the engine's thread (see rollout_engine.h).
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/fs.h"
#include "common/vars.h"
#include "controller/rollout_engine.h"

namespace fleet::controller {

using fleet::v1::HostTask;
using fleet::v1::Rollout;

absl::Status RolloutEngine::OnHello(const fleet::v1::Hello& hello, const std::string& peer) {
  if (!IsSafeName(hello.host_id())) {
    return absl::InvalidArgumentError(absl::StrCat("invalid host id '", hello.host_id(), "'"));
  }
  Post([this, hello, peer] { HandleHello(hello, peer); });
  return absl::OkStatus();
}

void RolloutEngine::OnConnected(const std::string& host_id) {
  Post([this, host_id] { HandleConnected(host_id); });
}

void RolloutEngine::OnProgress(const std::string& host_id, const fleet::v1::CommandProgress& p) {
  spdlog::debug("host {}: {} {} {}", host_id, p.command_id(),
                fleet::v1::ProgressStep_Name(p.step()), p.message());
  // A host that reports progress (a long download) is not silent.
  Post([this, host_id] { progress_at_[host_id] = clock_->Now(); });
}

void RolloutEngine::OnResult(const std::string& host_id, const fleet::v1::CommandResult& result) {
  fleet::v1::CommandResult r = result;
  // The stream's host is who answered, whatever the ref says.
  r.mutable_ref()->set_host_id(host_id);
  Post([this, r = std::move(r)] { HandleResult(r); });
}

void RolloutEngine::OnDisconnected(const std::string& host_id) {
  Post([this, host_id] { HandleDisconnected(host_id); });
}

void RolloutEngine::HandleHello(const fleet::v1::Hello& hello, const std::string& peer) {
  fleet::v1::Host host;
  host.set_id(hello.host_id());
  *host.mutable_labels() = hello.labels();
  host.set_connected(true);
  host.set_last_seen_ms(absl::ToUnixMillis(clock_->Now()));
  host.set_agent_version(hello.agent_version());
  host.set_peer(peer);
  *host.mutable_apps() = hello.apps();
  absl::Status st = store_->UpsertHost(host);
  if (!st.ok()) {
    spdlog::error("cannot record host {}: {}", hello.host_id(), st.message());
    return;
  }
  spdlog::info("host {} connected from {} ({} apps)", hello.host_id(), peer, hello.apps_size());
  RecordEvent("", hello.host_id(), EventKind::kHostConnected, hello.host_id(),
              absl::StrCat("connected from ", peer));
  StartCatchUps(hello);
}

void RolloutEngine::StartCatchUps(const fleet::v1::Hello& hello) {
  // Apps and subjects a rollout is running for: that rollout decides.
  std::set<std::pair<std::string, fleet::v1::Subject>> busy;
  for (const auto& [id, running] : running_) {
    busy.insert({running.rollout.app(), running.rollout.subject()});
  }
  for (const fleet::v1::HostAppState& state : hello.apps()) {
    absl::StatusOr<fleet::v1::App> app = store_->GetApp(state.app());
    if (!app.ok()) continue;
    for (fleet::v1::Subject subject : {fleet::v1::SUBJECT_RELEASE, fleet::v1::SUBJECT_CONFIG}) {
      const std::string& desired = DesiredVersion(*app, subject);
      const std::string& current = HostCurrent(state, subject);
      if (busy.count({state.app(), subject}) || desired.empty() || current == desired) continue;
      Rollout r = PlanCatchUp(*app, subject, hello.host_id(), state, clock_->Now(),
                              options_.host_timeout);
      const std::string have = VersionLabel(subject, current);
      const std::string want = VersionLabel(subject, desired);
      const bool staged = r.tasks(0).state() == fleet::v1::TASK_STATE_STAGED;
      const MachineEvent event =
          staged ? MachineEvent{EventKind::kHostReconcile, hello.host_id(), "controller",
                                absl::StrCat("switching from ", have, " to ", want)}
                 : MachineEvent{EventKind::kHostCatchUp, hello.host_id(), "controller",
                                absl::StrCat("runs ", have, ", fleet runs ", want,
                                             ", which is not on this host: staging it")};
      spdlog::info("host {} runs {} {} but the fleet runs {}; {}", hello.host_id(), state.app(),
                   have, want, staged ? "switching it" : "staging it first");
      std::vector<Decision> none;
      absl::Status st = CreateRollout(&r, {event}, {}, &none);
      if (!st.ok()) {
        spdlog::error("cannot start the catch-up of host {}: {}", hello.host_id(), st.message());
      }
      // Its first command goes out once the host's stream is registered
      // (HandleConnected).
    }
  }
}

void RolloutEngine::HandleConnected(const std::string& host_id) {
  // Commands this host owes an answer to are sent again (the agent answers
  // completed ones from its stored results); then every rollout moves on,
  // since pending tasks of this host can start now.
  for (auto& [id, running] : running_) {
    auto it = running.task_index.find(host_id);
    if (it == running.task_index.end()) continue;
    const HostTask& t = running.rollout.tasks(it->second);
    fleet::v1::CommandRef ref;
    ref.set_rollout_id(id);
    ref.set_host_id(host_id);
    switch (t.state()) {
      case fleet::v1::TASK_STATE_STAGING:
        ref.set_phase(fleet::v1::COMMAND_PHASE_STAGE);
        break;
      case fleet::v1::TASK_STATE_ACTIVATING:
        ref.set_phase(fleet::v1::COMMAND_PHASE_ACTIVATE);
        break;
      case fleet::v1::TASK_STATE_REVERTING:
        ref.set_phase(fleet::v1::COMMAND_PHASE_REVERT);
        break;
      default:
        continue;
    }
    SendCommands(running.rollout, {ref});
  }
  // Hosts connect by the thousand after a restart: one pass over every
  // rollout for all the connects queued together.
  if (advance_all_queued_) return;
  advance_all_queued_ = true;
  Post([this] {
    advance_all_queued_ = false;
    AdvanceAll();
  });
}

void RolloutEngine::HandleResult(const fleet::v1::CommandResult& result) {
  // Results are applied in batches: one transaction and one Advance per
  // rollout for all the answers that arrived together (thousands of hosts
  // answer a rollback within milliseconds).
  pending_results_.push_back(result);
  if (results_flush_queued_) return;
  results_flush_queued_ = true;
  Post([this] { FlushResults(); });
}

void RolloutEngine::FlushResults() {
  results_flush_queued_ = false;
  std::vector<fleet::v1::CommandResult> results;
  results.swap(pending_results_);
  std::map<std::string, Decision> decisions;  // by rollout
  std::map<std::string, fleet::v1::HostAppState> states;  // by host, the last one reported
  const absl::Time now = clock_->Now();
  for (const fleet::v1::CommandResult& result : results) {
    const fleet::v1::CommandRef& ref = result.ref();
    Rollout* r = Running(ref.rollout_id());
    if (r == nullptr) {
      spdlog::debug("host {} answered {} of a rollout that is not running", ref.host_id(),
                    result.command_id());
      continue;
    }
    HostTask* task = Task(ref.rollout_id(), ref.host_id());
    if (task == nullptr || !ApplyResult(r, task, result, now, &decisions[ref.rollout_id()])) {
      continue;
    }
    // The app's state after the command, as the host reports it.
    if (result.has_state() && !result.state().app().empty()) {
      states[ref.host_id()] = result.state();
    }
  }
  for (const auto& [host_id, state] : states) {
    absl::Status st = store_->UpsertHostAppState(host_id, state);
    if (!st.ok()) spdlog::warn("cannot record state of {}: {}", host_id, st.message());
  }
  for (auto& [id, d] : decisions) {
    Rollout* r = Running(id);
    if (r != nullptr && Commit(r, d)) Advance(id);
  }
}

void RolloutEngine::HandleDisconnected(const std::string& host_id) {
  // The old stream of a host that reconnected ends after the new one began.
  if (hub_->IsConnected(host_id)) return;
  spdlog::warn("host {} disconnected", host_id);
  absl::Status st = store_->SetHostConnected(host_id, false, absl::ToUnixMillis(clock_->Now()));
  if (!st.ok()) spdlog::error("cannot record disconnect of {}: {}", host_id, st.message());
  RecordEvent("", host_id, EventKind::kHostDisconnected, host_id, "stream ended");
}

}  // namespace fleet::controller
