// A real Fleet on loopback for end-to-end tests: one fleet-controller and N
// fleet-agent processes, each in its own temp dirs on free ports, and
// fleetctl to drive them. Everything started is stopped in the destructor,
// including the example services the agents started.
//
// With ClusterOptions::simulated > 0 the hosts come from `fleet-agent
// --simulate N` processes instead (one unless `simulators` says more): host
// ids web-0001... (web1-0001..., web2-0001... with several processes), apps
// roots <dir>/sim/apps/<host id>, state dirs <dir>/sim/state/<host id>, label
// role=web. Hosts have no --var port there, so the hello example cannot run;
// use ApplyExecSpec and MakeExecArtifact.
#ifndef FLEET_TESTS_TESTING_CLUSTER_H_
#define FLEET_TESTS_TESTING_CLUSTER_H_

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "tests/testing/test_env.h"

namespace fleet::testing {

struct ClusterOptions {
  int agents = 3;  // agent processes; ignored when simulated > 0
  // When > 0: this many hosts, from `fleet-agent --simulate` processes.
  int simulated = 0;
  // With `simulated`: split the hosts over this many simulator processes
  // (as evenly as possible, earlier processes holding one more), for more
  // hosts than one process may simulate (agent::Simulator::kMaxHosts) or to
  // connect like separate machines would. Clamped to 1..simulated.
  int simulators = 1;
  std::string host_timeout = "2m";
  std::string host_prefix = "web";
  // Appended to fleet-controller's command line, e.g. {"--alert-token-file", path}.
  std::vector<std::string> controller_args;
  // Starts the controller with --auth: API tokens even in development mode.
  // Fleetctl() then sends the bootstrap admin token.
  bool auth = false;
  // Mutual TLS: the cluster makes a CA in PkiDir() with a certificate for
  // the controller ("controller": localhost, 127.0.0.1) and one per host,
  // starts every process with them (--tls-reload-interval 1s), and runs
  // fleetctl with --tls-ca. Not with `simulated`, whose hosts cannot each
  // hold a certificate.
  bool tls = false;
};

// The rollouts table of `fleetctl history` text output: the lines before
// the events table.
std::string RolloutsTable(const std::string& history_text);

class Cluster {
 public:
  explicit Cluster(ClusterOptions options = {});
  ~Cluster();

  static std::string Binary(const std::string& name);
  // The rollout id in what `fleetctl [config] rollout|rollback` (without
  // --wait) printed: "rollout 7 of ...", "config rollout 8 of ...".
  static std::string RolloutId(
      const std::string& fleetctl_out);  // fleet-controller, fleet-agent, fleetctl, hello

  void StartController();
  void KillController();  // SIGKILL
  // Replaces ClusterOptions::controller_args for the next StartController(),
  // e.g. to restart the controller on another store.
  void SetControllerArgs(std::vector<std::string> args) {
    options_.controller_args = std::move(args);
  }
  // Host i's agent process. In simulated mode hosts share a simulator
  // process, so these start, kill (SIGKILL), check and name the process that
  // holds host i: killing "host 3" takes every host of that process down.
  void StartAgent(int i);
  void KillAgent(int i);
  bool AgentRunning(int i);
  pid_t AgentPid(int i) const;
  pid_t ControllerPid() const { return controller_ ? controller_->pid() : -1; }
  // Agent processes: one per host, or in simulated mode the simulators.
  int AgentProcesses() const { return static_cast<int>(agents_.size()); }
  // The pid of agent process `slot` (0 <= slot < AgentProcesses()), -1 when
  // it is not running.
  pid_t AgentProcessPid(int slot) const;

  // Waits until `n` hosts are listed as connected.
  bool WaitForConnectedHosts(int n, absl::Duration timeout = absl::Seconds(15));

  // Runs fleetctl against this cluster, with the bootstrap admin token
  // (FLEET_TOKEN=<AdminTokenPath()>) once the controller wrote one.
  CommandOutput Fleetctl(const std::vector<std::string>& args,
                         absl::Duration timeout = absl::Seconds(120));
  // Runs fleetctl with FLEET_TOKEN=`token`; "" sends no token at all.
  CommandOutput FleetctlWithToken(const std::string& token, const std::vector<std::string>& args,
                                  absl::Duration timeout = absl::Seconds(120));
  // Starts fleetctl as Fleetctl() runs it, without waiting for it: its
  // stdout and stderr go to `log`. The caller owns (and by destroying it,
  // kills) the process; Subprocess::Wait gives its exit code.
  std::unique_ptr<Subprocess> StartFleetctl(const std::vector<std::string>& args,
                                            const std::string& log);
  // Where an --auth controller writes the first admin token.
  std::string AdminTokenPath() const { return DataDir() + "/admin.token"; }

  // A release of the hello example; `healthz_status` other than 200 makes
  // its probes fail; `error_share` (0..1) of its GET / answers are 500
  // (hello_requests_total{code="500"} on /metrics). Returns the artifact's
  // path.
  std::string MakeHelloArtifact(const std::string& version, int healthz_status = 200,
                                double error_share = 0);
  // Applies the hello example spec with `bake` (e.g. "1s") and short probe
  // intervals, for fast tests; `extra` is YAML appended to it (e.g. a
  // config: section).
  void ApplyHelloSpec(const std::string& bake = "500ms", const std::string& extra = "");

  // The age identity file every agent decrypts secrets with
  // (--age-identity). It exists once AgeRecipient() made it.
  std::string AgeIdentity() const { return dir_.Sub("age.key"); }
  // Makes the identity with age-keygen on first use; returns its recipient
  // (public key) for `age -r`.
  std::string AgeRecipient();

  // An artifact holding VERSION and, when `healthy`, a file named healthy,
  // for the spec of ApplyExecSpec. Returns the artifact's path.
  std::string MakeExecArtifact(const std::string& version, bool healthy);
  // Applies app `name` with reload "true" and one exec health check that the
  // release dir holds the file healthy (timeout 2s, retries 0, interval
  // 200ms), baked for `bake`. It needs no --var, so simulated hosts can run it.
  void ApplyExecSpec(const std::string& name, const std::string& bake);

  std::string HostId(int i) const;
  std::string AppsRoot(int i) const;
  std::string StateDir(int i) const;
  // The hello service's port on host i; -1 in simulated mode, which has none.
  int ServicePort(int i) const { return simulated() ? -1 : service_ports_[i]; }
  std::string DataDir() const { return dir_.Sub("controller"); }
  // The controller's HTTP port (--http-listen 127.0.0.1:<port>): /healthz, /metrics.
  int HttpPort() const { return http_port_; }
  std::string address() const;
  std::string dir() const { return dir_.path(); }
  // The number of hosts, in either mode.
  int agents() const { return simulated() ? options_.simulated : options_.agents; }
  bool simulated() const { return options_.simulated > 0; }

  // The release `current` points to on host i for `app` ("" if none).
  std::string Current(int i, const std::string& app = "hello") const;
  // GET http://127.0.0.1:<service port i><path>; "" when unreachable (and
  // always in simulated mode).
  std::string HttpGet(int i, const std::string& path) const;
  // The audit events of `kind` in `fleetctl --output json history APP`,
  // newest first.
  std::vector<nlohmann::json> HistoryEvents(const std::string& app, const std::string& kind);

  // Whole log of host i's agent / the controller. In simulated mode, the
  // simulator's log, which holds every host's lines.
  std::string AgentLog(int i) const;
  std::string ControllerLog() const;

  // TLS clusters: the CA dir (`fleetctl pki` layout: ca.crt, ca.key,
  // <id>.crt, <id>.key) and the CA bundle the controller trusts for agents,
  // a copy of PkiDir()/ca.crt that tests may replace (it is re-read every
  // second).
  std::string PkiDir() const { return dir_.Sub("pki"); }
  std::string ControllerCaFile() const { return dir_.Sub("controller-ca.crt"); }
  // Starts one more agent, as `host_id` presenting `cert` and `key` and
  // trusting PkiDir()/ca.crt for the controller, with its own apps root and
  // state dir in this cluster's dir; its output goes to `log`. The caller
  // owns (and by destroying it, stops) the process.
  std::unique_ptr<Subprocess> StartExtraAgent(const std::string& host_id, const std::string& cert,
                                              const std::string& key, const std::string& log);

 private:
  // Index into agents_ of host i's process.
  size_t AgentSlot(int i) const;
  // Host i's number inside its simulator process (1-based, as the
  // simulator numbers its hosts).
  int SimulatedNumber(int i) const;
  // The simulated hosts simulator `slot` runs, and its --host-id prefix.
  int SimulatedHosts(size_t slot) const;
  std::string SimulatorPrefix(size_t slot) const;
  void StartSimulator(size_t slot);
  // The bootstrap admin token Fleetctl() sends ("" when there is none) and
  // the command line and environment of a fleetctl run.
  std::string AdminToken() const;
  std::vector<std::string> FleetctlArgv(const std::vector<std::string>& args) const;
  static std::map<std::string, std::string> FleetctlEnv(const std::string& token);
  // Makes PkiDir() and ControllerCaFile() for options_.tls.
  void MakePki();
  std::string SimulatorLog(size_t slot) const;

  ClusterOptions options_;
  TempDir dir_;
  int grpc_port_;
  int http_port_;
  std::vector<int> service_ports_;  // empty in simulated mode
  std::unique_ptr<Subprocess> controller_;
  // One per host, or in simulated mode one per simulator process.
  std::vector<std::unique_ptr<Subprocess>> agents_;
};

}  // namespace fleet::testing

#endif  // FLEET_TESTS_TESTING_CLUSTER_H_
