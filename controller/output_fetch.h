// `fleetctl logs`: asks agents for the output their recent activations kept
// (agent/output_log.h) and gathers the answers. The controller keeps none of
// it: each call sends one OutputRequest per host over the host's stream and
// waits for the OutputReply with the same request id, or for the timeout.
#ifndef FLEET_CONTROLLER_OUTPUT_FETCH_H_
#define FLEET_CONTROLLER_OUTPUT_FETCH_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fleet/v1/agent.pb.h"
#include "fleet/v1/api.pb.h"

namespace fleet::controller {

// Sends a request to a connected host's agent; false when it is not
// connected (AgentHub::SendOutputRequest).
using OutputSendFn =
    std::function<bool(const std::string& host_id, const fleet::v1::OutputRequest& request)>;

// Thread-safe.
class OutputFetch {
 public:
  // All hosts' answers together stay within this (the agents are told their
  // share), under the API's message limit.
  static constexpr int64_t kMaxAnswerBytes = 32 << 20;
  static constexpr int64_t kMaxHostBytes = 8 << 20;

  explicit OutputFetch(OutputSendFn send) : send_(std::move(send)) {}
  ~OutputFetch();

  // Asks every host in `hosts` (sorted, no duplicates) for `request` (app,
  // rollout_id, activations) and calls `done` once: with every host's answer,
  // or, for a host that is not connected or did not answer within
  // `timeout`, its error. `done` runs on the thread of the last answer or
  // of the timeout.
  void Ask(const std::vector<std::string>& hosts, fleet::v1::OutputRequest request,
           absl::Duration timeout, std::function<void(fleet::v1::GetOutputResponse)> done);

  // An agent's answer (from the agent hub). Unknown or late ids are dropped.
  void OnReply(const std::string& host_id, const fleet::v1::OutputReply& reply);

 private:
  struct Pending;

  // Removes the request and calls its `done` with what it has: the hosts
  // still waited for get `missing` as their error.
  void Complete(const std::string& id, const std::string& missing);

  const OutputSendFn send_;
  absl::Mutex mu_;
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, std::shared_ptr<Pending>> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_OUTPUT_FETCH_H_
