// Holds left by break-glass rollbacks on hosts (`fleet-agent rollback`),
// handled on the engine's thread (see rollout_engine.h): recorded once per
// local rollback, released by an operator or by the next rollout or
// rollback of the app.
#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/status.h"
#include "controller/rollout_engine.h"

namespace fleet::controller {

using fleet::v1::Rollout;

namespace {

// Agents send what a person typed on the host; the history keeps a line.
constexpr size_t kMaxReasonChars = 300;
constexpr size_t kMaxActorChars = 100;

std::string Clipped(const std::string& text, size_t max) {
  return text.size() <= max ? text : absl::StrCat(text.substr(0, max), "...");
}

}  // namespace

void RolloutEngine::OnLocalRollback(const std::string& host_id,
                                    const fleet::v1::LocalRollback& rollback) {
  Post([this, host_id, rollback] { HandleLocalRollback(host_id, rollback); });
}

void RolloutEngine::ReleaseHold(const fleet::v1::ReleaseHoldRequest& req,
                                Done<fleet::v1::Host> done) {
  if (!Post([this, req, done] { done(DoReleaseHold(req)); })) {
    done(absl::UnavailableError("the controller is shutting down"));
  }
}

HostHolds& RolloutEngine::Holds() { return Holds(store_); }

HostHolds& RolloutEngine::Holds(StoreReader* reader) {
  if (!holds_loaded_) {
    absl::StatusOr<std::vector<HostHoldRecord>> records = reader->ListHostHolds();
    if (records.ok()) {
      for (const HostHoldRecord& record : *records) holds_.Put(record);
      holds_loaded_ = true;
    } else {
      spdlog::error("cannot read host holds: {}", records.status().message());
    }
  }
  return holds_;
}

void RolloutEngine::HandleLocalRollback(const std::string& host_id,
                                        const fleet::v1::LocalRollback& lr) {
  if (!IsSafeName(lr.app()) || lr.id().empty()) return;
  const HostHoldRecord* known = Holds().Find(host_id, lr.app());
  if (known != nullptr && known->hold.local_id() == lr.id()) return;  // recorded already
  HostHoldRecord record;
  record.host_id = host_id;
  record.held = true;
  record.hold.set_app(lr.app());
  record.hold.set_version(lr.to_version());
  record.hold.set_from_version(lr.from_version());
  record.hold.set_reason(Clipped(lr.reason(), kMaxReasonChars));
  record.hold.set_actor(Clipped(lr.actor().empty() ? host_id : lr.actor(), kMaxActorChars));
  record.hold.set_since_ms(lr.at_ms());
  record.hold.set_local_id(lr.id());
  const std::string message = absl::StrCat(
      "rolled back on the host from ", lr.from_version().empty() ? "(none)" : lr.from_version(),
      " to ", lr.to_version(),
      record.hold.reason().empty() ? "" : absl::StrCat(" (", record.hold.reason(), ")"),
      lr.ok() ? "" : absl::StrCat("; it reports: ", Clipped(lr.failure(), kMaxReasonChars)),
      "; held: the controller leaves ", lr.app(),
      " on this host alone until the next rollout or rollback of it, or fleetctl host release ",
      host_id, " ", lr.app());
  std::vector<EngineEvent> events{audit_.Make(EventKind::kHostLocalRollback, nullptr, lr.app(),
                                              host_id, record.hold.actor(), message)};
  absl::Status st;
  {
    absl::StatusOr<std::unique_ptr<StoreTransaction>> txn = store_->Begin();
    st = txn.status();
    if (st.ok()) st = (*txn)->PutHostHold(record);
    if (st.ok() && lr.has_state() && lr.state().app() == lr.app()) {
      st = (*txn)->UpsertHostAppState(host_id, lr.state());
    }
    if (st.ok()) st = audit_.Write(txn->get(), &events);
    if (st.ok()) st = (*txn)->Commit();
  }
  if (!st.ok()) {
    // Not recorded: the agent reports it again in its next hello.
    spdlog::error("cannot record the local rollback {} of host {}: {}", lr.id(), host_id,
                  st.message());
    return;
  }
  holds_.Put(record);
  audit_.Publish(events);
  spdlog::warn("host {}: {} {}", host_id, lr.app(), message);
}

absl::StatusOr<fleet::v1::Host> RolloutEngine::DoReleaseHold(
    const fleet::v1::ReleaseHoldRequest& req) {
  FLEET_ASSIGN_OR_RETURN(fleet::v1::Host host, store_->GetHost(req.host_id()));
  if (!Holds().Held(req.host_id(), req.app())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "app ", req.app(), " is not held on host ", req.host_id(), "; nothing to release"));
  }
  HostHoldRecord record = *holds_.Find(req.host_id(), req.app());
  record.held = false;
  std::vector<EngineEvent> events{audit_.Make(
      EventKind::kHostHoldReleased, nullptr, req.app(), req.host_id(), req.actor(),
      absl::StrCat("hold released (it ran ", record.hold.version(),
                   " since a rollback on the host); the host follows the fleet again"))};
  {
    FLEET_ASSIGN_OR_RETURN(std::unique_ptr<StoreTransaction> txn, store_->Begin());
    FLEET_RETURN_IF_ERROR(txn->PutHostHold(record));
    FLEET_RETURN_IF_ERROR(audit_.Write(txn.get(), &events));
    FLEET_RETURN_IF_ERROR(txn->Commit());
  }
  holds_.Put(record);
  audit_.Publish(events);
  spdlog::info("host {}: hold of {} released by {}", req.host_id(), req.app(), req.actor());
  // Brought back now, not at the next periodic check.
  if (liveness_->Liveness(req.host_id()).connected) {
    ReconcileHost(host, absl::StrCat("its hold was released by ", req.actor()), nullptr);
    QueueAdvanceAll();  // sends the catch-up's first command
  }
  return store_->GetHost(req.host_id());
}

absl::Status RolloutEngine::ReleaseHoldsIn(StoreTransaction* txn, const Rollout& r,
                                           std::vector<EngineEvent>* events,
                                           std::vector<HostHoldRecord>* released) {
  if (r.kind() == fleet::v1::ROLLOUT_KIND_CATCH_UP) return absl::OkStatus();
  // Read through the transaction: this thread may not call the store now.
  for (HostHoldRecord record : Holds(txn).HeldOf(r.app())) {
    // Only hosts the rollout switches: one outside its selector stays held.
    const bool included = std::any_of(r.tasks().begin(), r.tasks().end(), [&](const auto& t) {
      return t.host_id() == record.host_id;
    });
    if (!included) continue;
    record.held = false;
    FLEET_RETURN_IF_ERROR(txn->PutHostHold(record));
    events->push_back(audit_.Make(
        EventKind::kHostHoldReleased, &r, r.app(), record.host_id, r.created_by(),
        absl::StrCat("hold ended: ",
                     r.kind() == fleet::v1::ROLLOUT_KIND_ROLLBACK ? "rollback " : "rollout ",
                     r.id(), " of ", r.version(), " includes this host")));
    released->push_back(std::move(record));
  }
  return absl::OkStatus();
}

}  // namespace fleet::controller
