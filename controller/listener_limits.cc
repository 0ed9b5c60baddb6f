#include "controller/listener_limits.h"

#include <httplib.h>

#include <deque>
#include <functional>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace fleet::controller {
namespace {

// httplib's task queue, where each task serves one connection from its
// first byte to its close: a thread per task, at most `max_threads` at once
// (tasks past that wait in order). A thread idle for kIdleExit exits, so a
// burst of connections does not keep its threads.
class ConnectionThreads : public httplib::TaskQueue {
 public:
  explicit ConnectionThreads(int max_threads) : max_threads_(max_threads) {}
  ~ConnectionThreads() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    absl::MutexLock lock(&mu_);
    JoinExitedLocked();
    pending_.push_back(std::move(fn));
    if (pending_.size() > static_cast<size_t>(idle_) && live_ < max_threads_) {
      ++live_;
      std::thread thread([this] { Run(); });
      const std::thread::id id = thread.get_id();
      threads_.emplace(id, std::move(thread));
    }
  }

  // Called by httplib once it accepts no more: waits for every task.
  void shutdown() override {
    std::map<std::thread::id, std::thread> threads;
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      threads.swap(threads_);
      exited_.clear();
    }
    for (auto& [id, thread] : threads) thread.join();
  }

 private:
  static constexpr absl::Duration kIdleExit = absl::Seconds(30);

  void Run() {
    absl::MutexLock lock(&mu_);
    auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !pending_.empty() || stopping_;
    };
    for (;;) {
      ++idle_;
      const bool woken = mu_.AwaitWithTimeout(absl::Condition(&has_work), kIdleExit);
      --idle_;
      if (pending_.empty()) {
        if (stopping_ || !woken) break;
        continue;
      }
      std::function<void()> task = std::move(pending_.front());
      pending_.pop_front();
      mu_.Unlock();
      task();
      task = nullptr;
      mu_.Lock();
    }
    --live_;
    if (!stopping_) exited_.push_back(std::this_thread::get_id());
  }

  // Joins the threads that left Run(): each has released mu_ for good.
  void JoinExitedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (std::thread::id id : exited_) {
      auto it = threads_.find(id);
      if (it == threads_.end()) continue;
      it->second.join();
      threads_.erase(it);
    }
    exited_.clear();
  }

  const int max_threads_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> pending_ ABSL_GUARDED_BY(mu_);
  std::map<std::thread::id, std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread::id> exited_ ABSL_GUARDED_BY(mu_);
  int live_ ABSL_GUARDED_BY(mu_) = 0;
  int idle_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

void ApplyHttpLimits(httplib::Server* server) {
  server->new_task_queue = [] { return new ConnectionThreads(kHttpMaxConnections); };
  server->set_read_timeout(absl::ToChronoSeconds(kHttpReadTimeout));
  server->set_write_timeout(absl::ToChronoSeconds(kHttpWriteTimeout));
  server->set_keep_alive_timeout(absl::ToInt64Seconds(kHttpKeepAliveTimeout));
  server->set_keep_alive_max_count(kHttpKeepAliveRequests);
  server->set_payload_max_length(kHttpMaxBodyBytes);
}

void ApplyGrpcLimits(grpc::ServerBuilder* builder) {
  builder->AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, kGrpcMaxStreamsPerConnection);
  builder->AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                              static_cast<int>(absl::ToInt64Milliseconds(kGrpcHandshakeTimeout)));
  grpc::ResourceQuota quota("fleet-controller");
  quota.Resize(kGrpcMemoryQuotaBytes);
  builder->SetResourceQuota(quota);
}

}  // namespace fleet::controller
