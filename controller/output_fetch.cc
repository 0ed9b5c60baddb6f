#include "controller/output_fetch.h"

#include <algorithm>
#include <set>
#include <utility>

#include <grpcpp/alarm.h>

#include "absl/strings/str_cat.h"

namespace fleet::controller {

struct OutputFetch::Pending {
  std::map<std::string, fleet::v1::HostOutput> hosts;  // sorted by host id
  std::set<std::string> waiting;
  std::function<void(fleet::v1::GetOutputResponse)> done;
  grpc::Alarm alarm;
};

OutputFetch::~OutputFetch() {
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, pending] : pending_) ids.push_back(id);
  }
  for (const std::string& id : ids) Complete(id, "the controller is shutting down");
}

void OutputFetch::Ask(const std::vector<std::string>& hosts, fleet::v1::OutputRequest request,
                      absl::Duration timeout,
                      std::function<void(fleet::v1::GetOutputResponse)> done) {
  auto pending = std::make_shared<Pending>();
  pending->done = std::move(done);
  const int64_t share = std::min<int64_t>(
      kMaxHostBytes, kMaxAnswerBytes / std::max<int64_t>(1, static_cast<int64_t>(hosts.size())));
  request.set_max_bytes(share);
  std::string id;
  {
    absl::MutexLock lock(&mu_);
    id = absl::StrCat("out-", next_id_++);
    request.set_request_id(id);
    for (const std::string& host : hosts) {
      pending->hosts[host].set_host_id(host);
      pending->waiting.insert(host);
    }
    pending_[id] = pending;
  }
  // Sent outside the lock: a reply may come back before Send returns.
  for (const std::string& host : hosts) {
    if (send_(host, request)) continue;
    absl::MutexLock lock(&mu_);
    pending->hosts[host].set_error("not connected: its output stays on the host");
    pending->waiting.erase(host);
  }
  {
    absl::MutexLock lock(&mu_);
    if (!pending->waiting.empty()) {
      pending->alarm.Set(gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                      gpr_time_from_millis(absl::ToInt64Milliseconds(timeout),
                                                           GPR_TIMESPAN)),
                         [this, id, timeout](bool fired) {
                           if (fired) {
                             Complete(id, absl::StrCat("no answer within ",
                                                       absl::FormatDuration(timeout)));
                           }
                         });
      return;
    }
  }
  Complete(id, "");
}

void OutputFetch::OnReply(const std::string& host_id, const fleet::v1::OutputReply& reply) {
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(reply.request_id());
    if (it == pending_.end() || it->second->waiting.erase(host_id) == 0) return;
    fleet::v1::HostOutput& host = it->second->hosts[host_id];
    *host.mutable_activations() = reply.activations();
    host.set_error(reply.error());
    if (!it->second->waiting.empty()) return;
    // The last answer: the alarm's callback, when it runs, finds nothing.
    it->second->alarm.Cancel();
  }
  Complete(reply.request_id(), "");
}

void OutputFetch::Complete(const std::string& id, const std::string& missing) {
  std::shared_ptr<Pending> pending;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // completed already
    pending = std::move(it->second);
    pending_.erase(it);
  }
  fleet::v1::GetOutputResponse response;
  for (auto& [host_id, host] : pending->hosts) {
    if (pending->waiting.count(host_id)) host.set_error(missing);
    *response.add_hosts() = std::move(host);
  }
  pending->done(std::move(response));
}

}  // namespace fleet::controller
