// The audit log: the one place that builds, stores and publishes the
// controller's audit events (fleetctl history, notifications, metrics).
//
// Contract: an event is stored first (inside the caller's transaction when
// there is one) and published to the observers only after that write is
// committed, in the order written; the event's kind is an EventKind, stored
// and sent by its name. Observers are told on the thread that publishes.
#ifndef FLEET_CONTROLLER_AUDIT_LOG_H_
#define FLEET_CONTROLLER_AUDIT_LOG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/clock.h"
#include "common/event_kind.h"
#include "controller/store.h"
#include "fleet/v1/api.pb.h"

namespace fleet::controller {

// An audit event, with what it is about.
struct EngineEvent {
  fleet::v1::Event event;  // as stored: app, rollout_id, host_id, kind, actor, message
  EventKind event_kind = EventKind::kRolloutStarted;  // event.kind() as an enum
  // The rollout's subject, target version and kind; version "" when the
  // event is not about a rollout.
  fleet::v1::Subject subject = fleet::v1::SUBJECT_RELEASE;
  std::string version;
  fleet::v1::RolloutKind kind = fleet::v1::ROLLOUT_KIND_UNSPECIFIED;
};

// Told the events after they are committed. Must not block (it queues slow
// work) and must not write audit events itself.
class AuditObserver {
 public:
  virtual ~AuditObserver() = default;
  virtual void OnEvents(const std::vector<EngineEvent>& events) = 0;
};

class AuditLog {
 public:
  // `clock` (borrowed) stamps every event.
  explicit AuditLog(Clock* clock) : clock_(clock) {}

  // Adds an observer; only before the first event. Borrowed.
  void AddObserver(AuditObserver* observer) { observers_.push_back(observer); }

  // An event of `kind` stamped now, about rollout `about` (nullptr: about
  // none; then `app` names the app, "" for none).
  EngineEvent Make(EventKind kind, const fleet::v1::Rollout* about, const std::string& app,
                   const std::string& host, const std::string& actor,
                   const std::string& message) const;

  // Stores `events` through `store` (the caller's open transaction, when it
  // holds one), assigning their ids. Publish() them once committed.
  absl::Status Write(StoreWriter* store, std::vector<EngineEvent>* events) const;
  // Tells the observers about committed events.
  void Publish(const std::vector<EngineEvent>& events) const;
  // Write() then Publish() of one event outside any transaction. Logs and
  // returns the error when the event cannot be stored (then nothing is
  // published).
  absl::Status Record(Store* store, EngineEvent event) const;

 private:
  Clock* clock_;
  std::vector<AuditObserver*> observers_;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_AUDIT_LOG_H_
