// The write side of a gRPC callback stream (STYLE: one write in flight, a
// queue behind it), shared by the agent's and the controller's reactors.
#ifndef FLEET_COMMON_WRITE_QUEUE_H_
#define FLEET_COMMON_WRITE_QUEUE_H_

#include <deque>
#include <utility>

#include "absl/synchronization/mutex.h"

namespace fleet {

// Thread-safe. The caller starts the writes this class hands out:
//   if (const Message* m = queue.Push(msg)) StartWrite(m);
//   OnWriteDone(ok): auto next = queue.Done(ok);
//                    if (next.write) StartWrite(next.write);
//                    else if (next.idle_and_closed) <finish / release the stream>;
template <typename Message>
class WriteQueue {
 public:
  struct Next {
    const Message* write = nullptr;  // start this write now
    bool idle_and_closed = false;    // nothing in flight and Close() was called
  };

  // Queues `message`. Returns the message to write now, or nullptr when a
  // write is in flight (it goes later) or the queue is closed (dropped).
  const Message* Push(Message message) {
    absl::MutexLock lock(&mu_);
    if (closed_) return nullptr;
    queue_.push_back(std::move(message));
    if (writing_) return nullptr;
    return TakeNextLocked();
  }

  // Call from OnWriteDone. A failed write or a closed queue ends writing.
  Next Done(bool ok) {
    absl::MutexLock lock(&mu_);
    if (ok && !closed_ && !queue_.empty()) return {TakeNextLocked(), false};
    writing_ = false;
    return {nullptr, closed_};
  }

  // Stops further writes. Returns false when it was closed already; else
  // sets *idle to whether no write is in flight (if one is, Done() reports
  // idle_and_closed when it completes).
  bool Close(bool* idle) {
    absl::MutexLock lock(&mu_);
    if (closed_) return false;
    closed_ = true;
    *idle = !writing_;
    return true;
  }

 private:
  const Message* TakeNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    writing_ = true;
    current_ = std::move(queue_.front());
    queue_.pop_front();
    return &current_;
  }

  absl::Mutex mu_;
  std::deque<Message> queue_ ABSL_GUARDED_BY(mu_);
  // Read by gRPC while the write is in flight; replaced only after Done().
  Message current_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace fleet

#endif  // FLEET_COMMON_WRITE_QUEUE_H_
