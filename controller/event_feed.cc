#include "controller/event_feed.h"

namespace fleet::controller {

EventFeed::Batch EventFeed::Wait(int64_t after_id, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this, after_id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return shut_down_ || (!events_.empty() && events_.back().id() > after_id);
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  Batch batch;
  batch.shut_down = shut_down_;
  for (const fleet::v1::Event& e : events_) {
    if (e.id() > after_id) batch.events.push_back(e);
  }
  return batch;
}

int64_t EventFeed::last_id() {
  absl::MutexLock lock(&mu_);
  return events_.empty() ? 0 : events_.back().id();
}

void EventFeed::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
}

void EventFeed::OnEvents(const std::vector<EngineEvent>& events) {
  absl::MutexLock lock(&mu_);
  for (const EngineEvent& e : events) {
    // Two publishers (engine, audit log) commit to one table: ids arrive
    // almost in order; an older one that comes late still goes out.
    auto it = events_.end();
    while (it != events_.begin() && std::prev(it)->id() > e.event.id()) --it;
    events_.insert(it, e.event);
    if (events_.size() > kKept) events_.pop_front();
  }
}

}  // namespace fleet::controller
