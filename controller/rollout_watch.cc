#include "controller/rollout_watch.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rollout_state.h"
#include "common/status.h"
#include "controller/redaction.h"

namespace fleet::controller {

void PendingUpdate::Add(const RolloutChange& change) {
  rollout_ = change.rollout;
  rollout_->clear_tasks();
  for (const fleet::v1::HostTask& t : change.tasks) tasks_[t.host_id()] = t;
  for (const fleet::v1::Event& e : change.events) {
    events_.push_back(e);
    if (events_.size() > kMaxEvents) {
      events_.pop_front();
      ++dropped_events_;
    }
  }
}

fleet::v1::RolloutUpdate PendingUpdate::Take() {
  fleet::v1::RolloutUpdate update;
  fleet::v1::Rollout* r = update.mutable_rollout();
  *r = *std::move(rollout_);
  rollout_.reset();
  for (auto& [host, task] : tasks_) *r->add_tasks() = std::move(task);
  tasks_.clear();
  if (dropped_events_ > 0) {
    fleet::v1::Event* e = update.add_events();
    e->set_app(r->app());
    e->set_rollout_id(r->id());
    e->set_kind(kEventsDroppedKind);
    e->set_actor("controller");
    e->set_message(absl::StrCat(dropped_events_,
                                " events left out: this watcher fell behind; fleetctl history ",
                                r->app(), " lists them"));
    dropped_events_ = 0;
  }
  for (fleet::v1::Event& e : events_) *update.add_events() = std::move(e);
  events_.clear();
  return update;
}

bool RolloutWatchHub::Subscribe(const std::string& id, RolloutSubscriber* subscriber) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return false;
  subscribers_[id].insert(subscriber);
  return true;
}

void RolloutWatchHub::Unsubscribe(const std::string& id, RolloutSubscriber* subscriber) {
  absl::MutexLock lock(&mu_);
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return;
  it->second.erase(subscriber);
  if (it->second.empty()) subscribers_.erase(it);
}

void RolloutWatchHub::Shutdown() {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  shut_down_ = true;
  for (auto& [id, subscribers] : subscribers_) {
    for (RolloutSubscriber* s : subscribers) s->OnHubShutdown();
  }
}

size_t RolloutWatchHub::subscribers() {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [id, subscribers] : subscribers_) n += subscribers.size();
  return n;
}

void RolloutWatchHub::OnRolloutChanged(const RolloutChange& change) {
  absl::MutexLock lock(&mu_);
  auto it = subscribers_.find(change.rollout.id());
  if (it == subscribers_.end()) return;
  for (RolloutSubscriber* s : it->second) s->OnRolloutChanged(change);
}

namespace {

using fleet::v1::RolloutUpdate;

// One WatchRollout call. Writes go one at a time: what arrives while one is
// in flight is merged in pending_ and written next. The call finishes
// exactly once, and only when no write is in flight: after a terminal
// update (OK), or when Close() was called (client gone, hub shut down,
// unknown rollout).
//
// Locking: mu_ guards the write state. The hub calls OnRolloutChanged and
// OnHubShutdown with its own lock held, and gRPC runs this reactor's
// callbacks on its own threads (never inside StartWrite or Finish), so
// StartWrite and Finish are called after mu_ is released, from whichever
// thread decided on them.
class RolloutWatch final : public grpc::ServerWriteReactor<RolloutUpdate>,
                           public RolloutSubscriber {
 public:
  RolloutWatch(RolloutWatchHub* hub, std::string id) : hub_(hub), id_(std::move(id)) {}

  // Subscribes, then reads and writes the snapshot.
  void Start(Store* store) {
    if (!hub_->Subscribe(id_, this)) {
      Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller shutting down"));
      return;
    }
    subscribed_ = true;
    absl::StatusOr<fleet::v1::Rollout> rollout = store->GetRollout(id_);
    if (!rollout.ok()) {
      Close(ToGrpcStatus(RedactStatus(rollout.status())));
      return;
    }
    RolloutUpdate snapshot;
    snapshot.set_snapshot(true);
    *snapshot.mutable_rollout() = *std::move(rollout);
    const RolloutUpdate* write = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (closing_) return;
      started_ = true;
      write = BeginWriteLocked(std::move(snapshot));
    }
    StartWrite(write);
  }

  void OnRolloutChanged(const RolloutChange& change) override {
    const RolloutUpdate* write = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (closing_) return;
      pending_.Add(change);
      write = NextWriteLocked();
    }
    if (write != nullptr) StartWrite(write);
  }

  void OnHubShutdown() override {
    Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller shutting down"));
  }

  void OnWriteDone(bool ok) override {
    const RolloutUpdate* write = nullptr;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok && !closing_) {
        closing_ = true;
        close_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "watcher went away");
      } else if (ok && writing_terminal_ && !closing_) {
        closing_ = true;  // the update that shows the end is out: done
        close_status_ = grpc::Status::OK;
      }
      if (closing_) {
        finish = TakeFinishLocked();
      } else {
        write = NextWriteLocked();
      }
    }
    if (write != nullptr) StartWrite(write);
    if (finish) Finish(*finish);
  }

  void OnCancel() override {
    Close(grpc::Status(grpc::StatusCode::CANCELLED, "watcher went away"));
  }

  void OnDone() override {
    if (subscribed_) hub_->Unsubscribe(id_, this);
    delete this;
  }

 private:
  // Ends the call with `status` once nothing is in flight; later calls
  // (and every change from then on) are ignored.
  void Close(const grpc::Status& status) {
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      if (closing_) return;
      closing_ = true;
      close_status_ = status;
      if (!writing_) finish = TakeFinishLocked();
    }
    if (finish) Finish(*finish);
  }

  // The status to finish with, the first time it is asked for.
  std::optional<grpc::Status> TakeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return std::nullopt;
    finished_ = true;
    return close_status_;
  }

  // The merged pending changes to write now, or nullptr when a write is in
  // flight, the snapshot is not out yet, or nothing is pending.
  const RolloutUpdate* NextWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || !started_ || closing_ || pending_.empty()) return nullptr;
    return BeginWriteLocked(pending_.Take());
  }

  const RolloutUpdate* BeginWriteLocked(RolloutUpdate update) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    in_flight_ = std::move(update);
    RedactMessage(&in_flight_);  // like every answer of the API
    writing_ = true;
    writing_terminal_ = IsTerminal(in_flight_.rollout().state());
    return &in_flight_;
  }

  RolloutWatchHub* const hub_;
  const std::string id_;
  bool subscribed_ = false;  // set in Start(), read in OnDone()

  absl::Mutex mu_;
  PendingUpdate pending_ ABSL_GUARDED_BY(mu_);
  // Read by gRPC while writing_; replaced only after OnWriteDone.
  RolloutUpdate in_flight_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;  // the snapshot was written (or is in flight)
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_terminal_ ABSL_GUARDED_BY(mu_) = false;  // in_flight_ shows a terminal state
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status close_status_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// A call refused before it started.
class RefusedWatch final : public grpc::ServerWriteReactor<RolloutUpdate> {
 public:
  explicit RefusedWatch(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerWriteReactor<RolloutUpdate>* NewRolloutWatch(Store* store, RolloutWatchHub* hub,
                                                         const std::string& id,
                                                         const absl::Status& admitted) {
  if (!admitted.ok()) return new RefusedWatch(ToGrpcStatus(admitted));
  auto* watch = new RolloutWatch(hub, id);
  watch->Start(store);
  return watch;
}

}  // namespace fleet::controller
