// What agents say, handled on the engine's thread (see rollout_engine.h).
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/fs.h"
#include "common/status.h"
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
  Post([this, host_id] { liveness_->Progressed(host_id, clock_->Now()); });
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
  // Hellos are stored in batches, like results: hosts connect by the
  // thousand after a controller restart or a network cut.
  pending_hellos_.push_back({hello, peer});
  if (hellos_flush_queued_) return;
  hellos_flush_queued_ = true;
  Post([this] { FlushHellos(); });
}

void RolloutEngine::FlushHellos() {
  hellos_flush_queued_ = false;
  std::vector<PendingHello> hellos;
  hellos.swap(pending_hellos_);
  if (hellos.empty()) return;
  std::vector<const PendingHello*> stored;
  std::vector<EngineEvent> events;
  std::vector<const PendingHello*> all;
  for (const PendingHello& p : hellos) all.push_back(&p);
  if (StoreHellos(all, &events).ok()) {
    stored = all;
  } else {
    // One bad hello (an app reported twice) must not lose the others.
    events.clear();
    for (const PendingHello* p : all) {
      absl::Status st = StoreHellos({p}, &events);
      if (st.ok()) {
        stored.push_back(p);
      } else {
        spdlog::error("cannot record host {}: {}", p->hello.host_id(), st.message());
      }
    }
  }
  audit_.Publish(events);
  for (const PendingHello* p : stored) {
    spdlog::info("host {} connected from {} ({} apps)", p->hello.host_id(), p->peer,
                 p->hello.apps_size());
    StartCatchUps(p->hello);
  }
  // A catch-up's first command goes out at the next AdvanceAll, which the
  // host's connect may have queued before this flush.
  QueueAdvanceAll();
}

absl::Status RolloutEngine::StoreHellos(const std::vector<const PendingHello*>& hellos,
                                        std::vector<EngineEvent>* events) {
  std::vector<EngineEvent> mine;
  FLEET_ASSIGN_OR_RETURN(std::unique_ptr<StoreTransaction> txn, store_->Begin());
  for (const PendingHello* p : hellos) {
    fleet::v1::Host host;
    host.set_id(p->hello.host_id());
    *host.mutable_labels() = p->hello.labels();
    host.set_connected(true);
    host.set_last_seen_ms(absl::ToUnixMillis(clock_->Now()));
    host.set_agent_version(p->hello.agent_version());
    host.set_peer(p->peer);
    *host.mutable_apps() = p->hello.apps();
    FLEET_RETURN_IF_ERROR(txn->UpsertHost(host));
    mine.push_back(audit_.Make(EventKind::kHostConnected, nullptr, "", host.id(), host.id(),
                               absl::StrCat("connected from ", p->peer)));
  }
  FLEET_RETURN_IF_ERROR(audit_.Write(txn.get(), &mine));
  FLEET_RETURN_IF_ERROR(txn->Commit());
  for (EngineEvent& e : mine) events->push_back(std::move(e));
  return absl::OkStatus();
}

void RolloutEngine::StartCatchUps(const fleet::v1::Hello& hello) {
  // Break-glass rollbacks first: a host held by one is left alone.
  for (const fleet::v1::LocalRollback& lr : hello.local_rollbacks()) {
    HandleLocalRollback(hello.host_id(), lr);
  }
  // Apps and subjects a rollout is running for: that rollout decides.
  std::set<std::pair<std::string, fleet::v1::Subject>> busy;
  for (const auto& [id, running] : running_) {
    busy.insert({running.rollout.app(), running.rollout.subject()});
  }
  for (const fleet::v1::HostAppState& state : hello.apps()) {
    if (Holds().Held(hello.host_id(), state.app())) continue;
    absl::StatusOr<fleet::v1::App> app = store_->GetApp(state.app());
    if (!app.ok()) continue;
    for (fleet::v1::Subject subject : {fleet::v1::SUBJECT_RELEASE, fleet::v1::SUBJECT_CONFIG}) {
      const std::string& desired = DesiredVersion(*app, subject);
      const std::string& current = HostCurrent(state, subject);
      if (busy.count({state.app(), subject}) || desired.empty() || current == desired) continue;
      // Its first command goes out once the host's stream is registered
      // (HandleConnected).
      StartCatchUp(*app, subject, hello.host_id(), state, "");
    }
  }
}

void RolloutEngine::HandleConnected(const std::string& host_id) {
  // The clock of every task this host owes an answer to starts again.
  liveness_->Connected(host_id, clock_->Now());
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
  QueueAdvanceAll();
}

void RolloutEngine::QueueAdvanceAll() {
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
  StoreHostStates(states);
  for (auto& [id, d] : decisions) {
    Rollout* r = Running(id);
    if (r != nullptr && Commit(r, d)) Advance(id);
  }
}

void RolloutEngine::StoreHostStates(
    const std::map<std::string, fleet::v1::HostAppState>& states) {
  if (states.empty()) return;
  absl::StatusOr<std::unique_ptr<StoreTransaction>> txn = store_->Begin();
  absl::Status st = txn.status();
  for (auto it = states.begin(); st.ok() && it != states.end(); ++it) {
    st = (*txn)->UpsertHostAppState(it->first, it->second);
  }
  if (st.ok()) st = (*txn)->Commit();
  if (st.ok()) return;
  if (txn.ok()) txn->reset();  // rolled back; frees the store for the retry
  for (const auto& [host_id, state] : states) {
    st = store_->UpsertHostAppState(host_id, state);
    if (!st.ok()) spdlog::warn("cannot record state of {}: {}", host_id, st.message());
  }
}

void RolloutEngine::HandleDisconnected(const std::string& host_id) {
  // The old stream of a host that reconnected ends after the new one began.
  if (hub_->IsConnected(host_id)) return;
  // Its hello, when still queued, is stored first: connected, then not.
  FlushHellos();
  liveness_->Disconnected(host_id, clock_->Now());
  spdlog::warn("host {} disconnected", host_id);
  absl::Status st = store_->SetHostConnected(host_id, false, absl::ToUnixMillis(clock_->Now()));
  if (!st.ok()) spdlog::error("cannot record disconnect of {}: {}", host_id, st.message());
  RecordEvent("", host_id, EventKind::kHostDisconnected, host_id, "stream ended");
}

}  // namespace fleet::controller
