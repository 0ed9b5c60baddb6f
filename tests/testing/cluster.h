// A real Fleet on loopback for end-to-end tests: one fleet-controller and N
// fleet-agent processes, each in its own temp dirs on free ports, and
// fleetctl to drive them. Everything started is stopped in the destructor,
// including the example services the agents started.
#ifndef FLEET_TESTS_TESTING_CLUSTER_H_
#define FLEET_TESTS_TESTING_CLUSTER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/testing/test_env.h"

namespace fleet::testing {

struct ClusterOptions {
  int agents = 3;
  std::string host_timeout = "2m";
  std::string host_prefix = "web";
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions options = {});
  ~Cluster();

  static std::string Binary(const std::string& name);  // fleet-controller, fleet-agent, fleetctl, hello

  void StartController();
  void KillController();  // SIGKILL
  void StartAgent(int i);
  void KillAgent(int i);  // SIGKILL
  bool AgentRunning(int i);
  pid_t AgentPid(int i) const { return agents_[i] ? agents_[i]->pid() : -1; }
  pid_t ControllerPid() const { return controller_ ? controller_->pid() : -1; }

  // Waits until `n` hosts are listed as connected.
  bool WaitForConnectedHosts(int n, absl::Duration timeout = absl::Seconds(15));

  // Runs fleetctl against this cluster.
  CommandOutput Fleetctl(const std::vector<std::string>& args,
                         absl::Duration timeout = absl::Seconds(120));

  // A release of the hello example; `healthz_status` other than 200 makes
  // its probes fail. Returns the artifact's path.
  std::string MakeHelloArtifact(const std::string& version, int healthz_status = 200);
  // Applies the hello example spec with `bake` (e.g. "1s") and short probe
  // intervals, for fast tests.
  void ApplyHelloSpec(const std::string& bake = "500ms");

  std::string HostId(int i) const;
  std::string AppsRoot(int i) const;
  std::string StateDir(int i) const;
  int ServicePort(int i) const { return service_ports_[i]; }
  std::string DataDir() const { return dir_.Sub("controller"); }
  std::string address() const;
  std::string dir() const { return dir_.path(); }
  int agents() const { return options_.agents; }

  // The release `current` points to on host i for `app` ("" if none).
  std::string Current(int i, const std::string& app = "hello") const;
  // GET http://127.0.0.1:<service port i><path>; "" when unreachable.
  std::string HttpGet(int i, const std::string& path) const;
  // Whole log of host i's agent / the controller.
  std::string AgentLog(int i) const;
  std::string ControllerLog() const;

 private:
  ClusterOptions options_;
  TempDir dir_;
  int grpc_port_;
  int http_port_;
  std::vector<int> service_ports_;
  std::unique_ptr<Subprocess> controller_;
  std::vector<std::unique_ptr<Subprocess>> agents_;
};

}  // namespace fleet::testing

#endif  // FLEET_TESTS_TESTING_CLUSTER_H_
