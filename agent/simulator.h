// Many agents in one process (`fleet-agent --simulate N`), for tests and
// benchmarks. Every simulated host runs the real agent code: its own
// Deployer (apps root, state dir, journal), its own AgentSession and thus its
// own Connect stream; reload commands and probes really run. Only the
// process, the gRPC connections (one per group of hosts), the process runner,
// the probe transport and the clock are shared.
#ifndef FLEET_AGENT_SIMULATOR_H_
#define FLEET_AGENT_SIMULATOR_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "agent/deployer.h"
#include "agent/fetch.h"
#include "agent/probe.h"
#include "agent/session.h"
#include "common/clock.h"
#include "common/process.h"

namespace fleet::agent {

class Simulator {
 public:
  static constexpr int kMaxHosts = 5000;
  // Hosts per gRPC channel (one TCP connection each): enough to keep the
  // connection count low, few enough to stay well under HTTP/2's usual limit
  // of 100 concurrent streams per connection.
  static constexpr int kHostsPerChannel = 64;

  // `base` is the agent's own options; host i (1-based) gets host id
  // "<base.host_id>-%04d", apps root "<base.apps_root>/<host id>", state dir
  // "<base.state_dir>/<host id>", base's labels and vars, and the label
  // host=<host id>. Borrows runner, probes and clock; they must outlive the
  // Simulator.
  Simulator(AgentOptions base, int hosts, std::string controller, ProcessRunner* runner,
            ProbeTransport* probes, Clock* clock);
  // Shuts down and joins whatever Start() started.
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // The options of simulated host `i` (1-based), derived from `base`.
  static AgentOptions HostOptions(const AgentOptions& base, int i);

  // Creates every host and runs its Deployer's Recover(), then starts one
  // session thread per host, a few milliseconds apart per channel group so
  // the controller is not hit by every Hello at once. On error no session
  // has started and the message names the host, e.g. "host web-0007: cannot
  // recover state: ...". Call once, before Run().
  absl::Status Start();

  // Blocks until Shutdown() and the end of every session. Call from the
  // thread that called Start(), after it returned OK.
  void Run();

  // Ends every session's stream and makes Run() return. Thread-safe, does
  // not block on the sessions; commands already running finish in their
  // workers, which the destructor joins.
  void Shutdown();

  int hosts() const { return hosts_count_; }

 private:
  struct Host {
    std::unique_ptr<GrpcArtifactSource> artifacts;
    std::unique_ptr<Deployer> deployer;
    std::unique_ptr<AgentSession> session;
    std::thread thread;  // runs session->Run()
  };

  void JoinSessions();

  const AgentOptions base_;
  const int hosts_count_;
  const std::string controller_;
  ProcessRunner* runner_;
  ProbeTransport* probes_;
  Clock* clock_;

  std::vector<std::shared_ptr<grpc::Channel>> channels_;

  absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Filled by Start() in one step, then fixed; Shutdown() reaches the
  // sessions through it. Host::thread is touched only by Start(), Run() and
  // the destructor.
  std::vector<std::unique_ptr<Host>> hosts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleet::agent

#endif  // FLEET_AGENT_SIMULATOR_H_
