// The agent's connection supervisor: dials the controller, keeps one Connect
// stream open, reconnects with capped exponential backoff and jitter, and
// runs the commands it receives on one worker thread per app.
#ifndef FLEET_AGENT_SESSION_H_
#define FLEET_AGENT_SESSION_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/backoff.h"
#include "agent/deployer.h"
#include "fleet/v1/agent.grpc.pb.h"

namespace fleet::agent {

// Channel arguments shared by agents: keepalive so a dead controller (or
// network) is noticed within 30 s even when no call is active.
grpc::ChannelArguments AgentChannelArguments();

class AgentSession {
 public:
  AgentSession(std::shared_ptr<grpc::Channel> channel, Deployer* deployer, Backoff backoff = {});
  ~AgentSession();

  // Explains, for the log line of a connection that ended, what only the
  // caller knows about `status` (such as the certificate files it gave the
  // channel); "" when it has nothing to add. Optional; set before Run().
  void set_failure_hint(std::function<std::string(const grpc::Status& status)> hint) {
    failure_hint_ = std::move(hint);
  }

  // Connects and serves until Shutdown(). Blocks.
  void Run();
  // Tells the controller of a break-glass rollback at once when connected;
  // otherwise the next hello carries it (Deployer::LocalRollbacks).
  // Thread-safe.
  void ReportLocalRollback(const fleet::v1::LocalRollback& rollback);

  // Ends the current stream and makes Run() return. Thread-safe. Commands
  // already running finish in their worker threads, which the destructor
  // joins; queued ones are dropped (the controller resends them).
  void Shutdown();

 private:
  class Stream;
  struct Worker {
    std::thread thread;
    std::deque<fleet::v1::Command> queue;
  };

  void OnCommand(const fleet::v1::Command& command);
  // Answers with the output the agent kept (OutputLog), on the stream.
  void OnOutputRequest(const fleet::v1::OutputRequest& request);
  void WorkerLoop(const std::string& app);
  void Send(const fleet::v1::AgentMessage& message);
  void StreamEnded(Stream* stream);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<fleet::v1::AgentService::Stub> stub_;
  Deployer* deployer_;
  Backoff backoff_;
  std::function<std::string(const grpc::Status&)> failure_hint_;  // fixed before Run()

  absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stream_done_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Worker> workers_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> in_flight_ ABSL_GUARDED_BY(mu_);
  // Apps with an activation running, and its subject: a new activation of
  // the same subject cancels its bake, one of the other subject queues.
  std::map<std::string, fleet::v1::Subject> activating_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleet::agent

#endif  // FLEET_AGENT_SESSION_H_
