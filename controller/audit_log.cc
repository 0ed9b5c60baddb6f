#include "controller/audit_log.h"

#include "common/logging.h"

namespace fleet::controller {

EngineEvent AuditLog::Make(EventKind kind, const fleet::v1::Rollout* about, const std::string& app,
                           const std::string& host, const std::string& actor,
                           const std::string& message) const {
  EngineEvent e;
  e.event_kind = kind;
  e.event.set_at_ms(absl::ToUnixMillis(clock_->Now()));
  e.event.set_app(about != nullptr ? about->app() : app);
  if (about != nullptr) {
    e.event.set_rollout_id(about->id());
    e.subject = about->subject();
    e.version = about->version();
    e.kind = about->kind();
  }
  e.event.set_host_id(host);
  e.event.set_kind(EventKindName(kind));
  e.event.set_actor(actor);
  e.event.set_message(message);
  return e;
}

absl::Status AuditLog::Write(StoreWriter* store, std::vector<EngineEvent>* events) const {
  for (EngineEvent& e : *events) {
    absl::Status st = store->AddEvent(&e.event);
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

void AuditLog::Publish(const std::vector<EngineEvent>& events) const {
  if (events.empty()) return;
  for (AuditObserver* observer : observers_) observer->OnEvents(events);
}

absl::Status AuditLog::Record(Store* store, EngineEvent event) const {
  std::vector<EngineEvent> events = {std::move(event)};
  absl::Status st = Write(store, &events);
  if (!st.ok()) {
    spdlog::error("cannot record {}: {}", events[0].event.kind(), st.message());
    return st;
  }
  Publish(events);
  return absl::OkStatus();
}

}  // namespace fleet::controller
