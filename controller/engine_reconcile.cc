// The fleet never stays split: a connected host whose app runs another
// version than the fleet's desired one is brought to it by a catch-up,
// whether it just connected or has been connected all along (a rollback
// that one host could not follow, a revert that failed). Handled on the
// engine's thread (see rollout_engine.h).
#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/vars.h"
#include "controller/rollout_engine.h"

namespace fleet::controller {

using fleet::v1::Rollout;

namespace {

// A catch-up that keeps failing is tried again after the check's interval,
// doubled at every failure up to this.
constexpr absl::Duration kMaxRetryDelay = absl::Minutes(10);

}  // namespace

bool RolloutEngine::StartCatchUp(const fleet::v1::App& app, fleet::v1::Subject subject,
                                 const std::string& host_id, const fleet::v1::HostAppState& state,
                                 const std::string& why) {
  Rollout r = PlanCatchUp(app, subject, host_id, state, clock_->Now(), options_.host_timeout);
  const std::string have = VersionLabel(subject, HostCurrent(state, subject));
  const std::string want = VersionLabel(subject, DesiredVersion(app, subject));
  const bool staged = r.tasks(0).state() == fleet::v1::TASK_STATE_STAGED;
  const std::string because = why.empty() ? "" : absl::StrCat(" (", why, ")");
  const MachineEvent event =
      staged ? MachineEvent{EventKind::kHostReconcile, host_id, "controller",
                            absl::StrCat("switching from ", have, " to ", want, because)}
             : MachineEvent{EventKind::kHostCatchUp, host_id, "controller",
                            absl::StrCat("runs ", have, ", fleet runs ", want,
                                         ", which is not on this host: staging it", because)};
  spdlog::info("host {} runs {} {} but the fleet runs {}{}; {}", host_id, state.app(), have, want,
               because, staged ? "switching it" : "staging it first");
  std::vector<Decision> none;
  absl::Status st = CreateRollout(&r, {event}, {}, &none);
  if (!st.ok()) {
    spdlog::error("cannot start the catch-up of host {}: {}", host_id, st.message());
  }
  return st.ok();
}

const std::set<std::string>* RolloutEngine::DesiredScope(const fleet::v1::App& app,
                                                         fleet::v1::Subject subject,
                                                         ScopesOfPass* pass) {
  const std::pair<std::string, fleet::v1::Subject> key{app.spec().name(), subject};
  if (auto it = pass->find(key); it != pass->end()) return it->second;
  const std::set<std::string>*& found = (*pass)[key];
  found = nullptr;
  // The rollout that made the desired version: the newest successful
  // deploy of it, or a rollback to it (which sets it when it starts).
  const std::string& desired = DesiredVersion(app, subject);
  absl::StatusOr<std::vector<Rollout>> recent =
      store_->ListRollouts(app.spec().name(), 50, /*with_tasks=*/false);
  if (!recent.ok()) return found;
  const Rollout* maker = nullptr;
  for (const Rollout& r : *recent) {
    if (r.subject() != subject || r.kind() == fleet::v1::ROLLOUT_KIND_CATCH_UP ||
        r.version() != desired) {
      continue;
    }
    if (r.kind() == fleet::v1::ROLLOUT_KIND_ROLLBACK ||
        r.state() == fleet::v1::ROLLOUT_STATE_SUCCEEDED) {
      maker = &r;
      break;
    }
  }
  if (maker == nullptr) return found;
  RolloutScope& scope = scopes_[key];
  if (scope.rollout_id != maker->id()) {
    absl::StatusOr<Rollout> full = store_->GetRollout(maker->id());
    if (!full.ok()) return found;
    scope.rollout_id = maker->id();
    scope.hosts.clear();
    for (const fleet::v1::HostTask& t : full->tasks()) scope.hosts.insert(t.host_id());
  }
  return found = &scope.hosts;
}

void RolloutEngine::ReconcileIfDue() {
  const absl::Time now = clock_->Now();
  if (now < next_reconcile_) return;
  next_reconcile_ = now + options_.reconcile_interval;
  // Hellos still queued are stored first: their states and local rollbacks
  // are newer than what the store has.
  FlushHellos();
  absl::StatusOr<std::vector<fleet::v1::Host>> hosts = store_->ListHosts();
  if (!hosts.ok()) {
    spdlog::error("cannot list hosts to reconcile: {}", hosts.status().message());
    return;
  }
  ScopesOfPass pass;
  for (const fleet::v1::Host& host : *hosts) {
    if (!liveness_->Liveness(host.id()).connected) continue;  // caught up when it connects
    ReconcileHost(host, "", &pass);
  }
}

void RolloutEngine::ReconcileHost(const fleet::v1::Host& host, const std::string& why,
                                  ScopesOfPass* pass) {
  std::set<std::pair<std::string, fleet::v1::Subject>> busy;
  for (const auto& [id, running] : running_) {
    busy.insert({running.rollout.app(), running.rollout.subject()});
  }
  const absl::Time now = clock_->Now();
  for (const fleet::v1::HostAppState& state : host.apps()) {
    if (Holds().Held(host.id(), state.app())) continue;
    absl::StatusOr<fleet::v1::App> app = store_->GetApp(state.app());
    if (!app.ok()) continue;
    for (fleet::v1::Subject subject : {fleet::v1::SUBJECT_RELEASE, fleet::v1::SUBJECT_CONFIG}) {
      const std::string& desired = DesiredVersion(*app, subject);
      const std::string& current = HostCurrent(state, subject);
      const CatchUpKey key{host.id(), state.app(), subject};
      if (desired.empty() || current == desired) {
        catch_up_attempts_.erase(key);
        continue;
      }
      if (busy.count({state.app(), subject})) continue;
      if (pass != nullptr) {
        // A host outside the rollout that set the fleet's version (another
        // --selector) is not the fleet's to move.
        const std::set<std::string>* scope = DesiredScope(*app, subject, pass);
        if (scope == nullptr || scope->count(host.id()) == 0) continue;
      }
      auto [it, fresh] = catch_up_attempts_.try_emplace(key);
      CatchUpAttempt& attempt = it->second;
      if (fresh || attempt.version != desired) {
        // Noticed now; acted on when a later check still finds it so (a
        // result on its way is not a split).
        attempt = CatchUpAttempt{desired, 0, now + options_.reconcile_interval / 2};
        if (why.empty()) continue;
      }
      if (why.empty() && now < attempt.next) continue;  // an operator's release goes at once
      const std::string reason =
          !why.empty() ? why
                       : absl::StrCat("found by the periodic check while connected",
                                      attempt.attempts == 0
                                          ? ""
                                          : absl::StrCat(", attempt ", attempt.attempts + 1));
      if (!StartCatchUp(*app, subject, host.id(), state, reason)) continue;
      busy.insert({state.app(), subject});
      ++attempt.attempts;
      attempt.next = now + std::min(options_.reconcile_interval * (1 << std::min(attempt.attempts, 10)),
                                    kMaxRetryDelay);
    }
  }
}

}  // namespace fleet::controller
