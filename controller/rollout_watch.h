// Streamed rollout progress (FleetService.WatchRollout): the hub that fans
// the engine's committed changes out to the watchers of each rollout, the
// coalescing that keeps a slow watcher's backlog bounded, and the
// server-streaming reactor of one call.
//
// A call subscribes to the hub before it reads the rollout from the store,
// so a change committed after that read is never missed: it is either in
// the snapshot or queued behind it (or both; a task sent twice is harmless,
// the later version wins).
#ifndef FLEET_CONTROLLER_ROLLOUT_WATCH_H_
#define FLEET_CONTROLLER_ROLLOUT_WATCH_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "controller/rollout_engine.h"
#include "controller/store.h"
#include "fleet/v1/api.pb.h"

namespace fleet::controller {

// The kind of the event that stands for events a slow watcher missed.
inline constexpr char kEventsDroppedKind[] = "watch.events_dropped";

// What one watcher has yet to send, merged so that a watcher that falls
// behind costs the controller at most one copy of the rollout's own fields,
// one task per host and kMaxEvents events, however far behind it is.
// Not thread-safe.
class PendingUpdate {
 public:
  static constexpr size_t kMaxEvents = 1000;

  // Merges `change`: its rollout fields replace those held, each of its
  // tasks replaces the one held for that host, its events are appended.
  // Beyond kMaxEvents the oldest events are dropped (and counted): the
  // latest ones say how the rollout ends.
  void Add(const RolloutChange& change);
  bool empty() const { return !rollout_.has_value(); }
  // Everything added since the last Take() as one update (not a snapshot):
  // the latest rollout fields with the changed tasks (by host id), and the
  // events oldest first, led by a kEventsDroppedKind event when some were
  // dropped. Leaves this empty. Must not be called when empty().
  fleet::v1::RolloutUpdate Take();

 private:
  std::optional<fleet::v1::Rollout> rollout_;
  std::map<std::string, fleet::v1::HostTask> tasks_;  // by host id
  std::deque<fleet::v1::Event> events_;
  int64_t dropped_events_ = 0;
};

// One watcher of a rollout (RolloutWatchHub::Subscribe). Both methods are
// called with the hub's lock held, so that once Unsubscribe() returned no
// call is under way or follows: they must not block and must not call the
// hub.
class RolloutSubscriber {
 public:
  virtual ~RolloutSubscriber() = default;
  // A committed change of the rollout subscribed to, in commit order.
  virtual void OnRolloutChanged(const RolloutChange& change) = 0;
  // The controller is stopping: no change follows.
  virtual void OnHubShutdown() = 0;
};

// Fans the engine's committed rollout changes out to the subscribers of
// each rollout id. Thread-safe.
class RolloutWatchHub final : public EngineObserver {
 public:
  // Adds `subscriber` to the watchers of rollout `id`; borrowed until
  // Unsubscribe() returns. Returns false (and adds nothing) after
  // Shutdown().
  bool Subscribe(const std::string& id, RolloutSubscriber* subscriber);
  // Removes `subscriber`; a no-op when it is not subscribed. After it
  // returns the hub never calls `subscriber` again.
  void Unsubscribe(const std::string& id, RolloutSubscriber* subscriber);
  // Tells every subscriber OnHubShutdown() and refuses new ones. Idempotent.
  void Shutdown();
  // Subscribers of every rollout now.
  size_t subscribers();

  // EngineObserver.
  void OnEvents(const std::vector<EngineEvent>& /*events*/) override {}
  void OnRolloutFinished(const fleet::v1::Rollout& /*rollout*/) override {}
  void OnRolloutChanged(const RolloutChange& change) override;

 private:
  absl::Mutex mu_;
  std::map<std::string, std::set<RolloutSubscriber*>> subscribers_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

// The reactor of one WatchRollout call for rollout `id`. With `admitted`
// not OK it finishes at once with that status. Otherwise it subscribes to
// `hub`, reads the rollout from `store` and writes it as the snapshot
// (NOT_FOUND "unknown rollout 'x'" ends the call), then one update per
// write, each merging every change that arrived while the previous write
// was in flight (PendingUpdate). It finishes OK after writing an update
// that shows a terminal state; CANCELLED when the client goes away;
// UNAVAILABLE when the hub shuts down. Deletes itself in OnDone. `store`
// and `hub` must outlive every call (the gRPC server).
grpc::ServerWriteReactor<fleet::v1::RolloutUpdate>* NewRolloutWatch(Store* store,
                                                                    RolloutWatchHub* hub,
                                                                    const std::string& id,
                                                                    const absl::Status& admitted);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_ROLLOUT_WATCH_H_
