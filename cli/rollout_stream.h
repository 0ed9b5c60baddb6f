// Following one rollout over FleetService.WatchRollout: the rollout as its
// updates build it up, and a stream that outlives controller restarts.
#ifndef FLEET_CLI_ROLLOUT_STREAM_H_
#define FLEET_CLI_ROLLOUT_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "fleet/v1/api.grpc.pb.h"

namespace fleet::cli {

// A rollout as the updates of one or more WatchRollout calls build it up.
class FollowedRollout {
 public:
  // A snapshot replaces everything. Any other update replaces the rollout's
  // own fields and the tasks of the hosts it names (a host not seen before
  // is added at the end).
  void Apply(const fleet::v1::RolloutUpdate& update);
  // Every task, in the snapshot's order.
  const fleet::v1::Rollout& rollout() const { return rollout_; }

 private:
  fleet::v1::Rollout rollout_;
  std::map<std::string, int> index_;  // host id -> index into rollout_.tasks()
};

// Makes the context of each WatchRollout call: metadata (the API token),
// no deadline.
using ContextFactory = std::function<std::unique_ptr<grpc::ClientContext>()>;

// What a RolloutStream reports, in order.
struct StreamEvent {
  enum class Kind {
    kUpdate,        // `update` arrived
    kReconnecting,  // the call broke (`status` says how); reconnecting
    kEnded,         // nothing follows: OK after a terminal update, else why it gave up
  };
  Kind kind = Kind::kUpdate;
  fleet::v1::RolloutUpdate update;
  absl::Status status;
};

// How a RolloutStream reconnects: capped exponential backoff with jitter.
struct ReconnectPolicy {
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(5);
  // How long the controller may stay unreachable before the stream gives
  // up; at least three host timeouts of the rollout once its plan is known.
  absl::Duration give_up_after = absl::Minutes(10);
};

// Follows rollout `id` on a thread of its own until an update shows a
// terminal state. When the call breaks the way a controller restart or a
// lost connection breaks it (UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED,
// ABORTED, UNKNOWN, or an end without a terminal update), it reports
// kReconnecting once and calls again after a backoff, until a new call
// delivers its snapshot or give_up_after has passed since the break
// (kEnded with Unavailable naming the rollout and how to follow it again).
// Any other error ends it with that error (NOT_FOUND, UNAUTHENTICATED, ...).
class RolloutStream {
 public:
  // `api` must outlive this object.
  RolloutStream(fleet::v1::FleetService::StubInterface* api, ContextFactory contexts,
                std::string id, ReconnectPolicy policy = {});
  // Cancels the call in flight, interrupts a backoff and joins the thread.
  ~RolloutStream();
  RolloutStream(const RolloutStream&) = delete;
  RolloutStream& operator=(const RolloutStream&) = delete;

  // The next event, waiting up to `timeout` for it; nullopt when none came
  // in time. Nothing follows kEnded. Call from one thread.
  std::optional<StreamEvent> Next(absl::Duration timeout);

 private:
  void Run();
  // One WatchRollout call, reporting its updates. Returns how it ended;
  // sets *delivered when an update arrived, *terminal when the last one
  // showed a terminal state, and raises *give_up to the rollout's host
  // timeout scale.
  grpc::Status Call(bool* delivered, bool* terminal, absl::Duration* give_up);
  void Report(StreamEvent event);

  fleet::v1::FleetService::StubInterface* const api_;
  const ContextFactory contexts_;
  const std::string id_;
  const ReconnectPolicy policy_;

  absl::Notification stop_;
  absl::Mutex mu_;
  std::deque<StreamEvent> events_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* call_ ABSL_GUARDED_BY(mu_) = nullptr;  // the call in flight
  std::thread thread_;
};

}  // namespace fleet::cli

#endif  // FLEET_CLI_ROLLOUT_STREAM_H_
