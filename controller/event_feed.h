// The newest audit events as they are committed, for the dashboard's live
// event stream (GET /api/v1/events/stream): observes the engine and the
// controller's audit log (what they publish after each commit) and keeps
// the last kKept events, so a reader that reconnects with the id it saw
// last misses nothing recent.
//
// Events written outside those two (token changes, denied API calls) are
// not published, so they reach the stream's readers only through a
// listing (ListEvents).
//
// Thread safety: every method may be called from any thread; OnEvents from
// the publishing thread, where it never blocks beyond a short lock.
#ifndef FLEET_CONTROLLER_EVENT_FEED_H_
#define FLEET_CONTROLLER_EVENT_FEED_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controller/rollout_engine.h"
#include "fleet/v1/api.pb.h"

namespace fleet::controller {

class EventFeed final : public EngineObserver {
 public:
  static constexpr size_t kKept = 1000;

  // What Wait() found.
  struct Batch {
    std::vector<fleet::v1::Event> events;  // oldest first, ids > the one asked for
    bool shut_down = false;                // Shutdown() was called: no event follows
  };

  // The events with an id above `after_id` (all kept ones when 0), waiting
  // up to `timeout` for one when there is none yet. Returns at once, with
  // shut_down set, after Shutdown().
  Batch Wait(int64_t after_id, absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);
  // The id of the newest event seen; 0 before the first.
  int64_t last_id() ABSL_LOCKS_EXCLUDED(mu_);
  // Wakes every Wait() and makes later ones return at once. Idempotent.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // EngineObserver (and AuditObserver).
  void OnEvents(const std::vector<EngineEvent>& events) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnRolloutFinished(const fleet::v1::Rollout& /*rollout*/) override {}

 private:
  absl::Mutex mu_;
  std::deque<fleet::v1::Event> events_ ABSL_GUARDED_BY(mu_);  // ascending ids
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_EVENT_FEED_H_
