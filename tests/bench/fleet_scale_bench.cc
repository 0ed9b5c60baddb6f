// Rollout and rollback at fleet scale, controller-bound: an app with no
// reload and no probes on HOSTS simulated hosts, split over two `fleet-agent
// --simulate` processes (more when HOSTS needs them, Simulator::kMaxHosts
// each), all connected to one controller. Prints, per host count:
//   - time to stage every host, time of each wave, whole rollout time;
//   - `fleetctl rollback tiny --wait` from start to exit, twice: alone, then
//     (back to v2) while a second thread, every 100 ms, times `fleetctl
//     hosts`, `fleetctl status tiny` and `fleetctl rollout status ID` (a
//     GetRollout of that rollback): count, p50, p99, max, failures, and the
//     p50 of the same reads with nothing running;
//   - controller CPU seconds (whole run, rollout, each rollback; CPU per host
//     for the quiet rollback) and peak RSS (VmHWM), the same for the
//     simulators.
//
//   build/tests/bench/fleet_scale_bench [HOSTS...]     default: 10000
//   (make bench SCALE_HOSTS=200 for a quick run)
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fleet/v1/api.pb.h"
#include "tests/testing/cluster.h"
#include <nlohmann/json.hpp>

namespace {

using fleet::testing::Cluster;
using fleet::testing::ClusterOptions;
using fleet::testing::CommandOutput;
using fleet::testing::ProcCpuSeconds;
using fleet::testing::ProcStatusKiB;

// fleet-agent refuses more hosts per process (agent::Simulator::kMaxHosts).
constexpr int kMaxHostsPerSimulator = 5000;
constexpr int kMinSimulators = 2;
// Switches at once inside a wave of the rollout.
constexpr int kMaxParallel = 200;
constexpr absl::Duration kReadInterval = absl::Milliseconds(100);
// Rounds of reads with nothing running, for comparison.
constexpr int kIdleRounds = 10;
// Longer than fleetctl's own 30 s call deadline: a read that hangs fails in
// fleetctl, not here.
constexpr absl::Duration kReadTimeout = absl::Seconds(60);
constexpr absl::Duration kLongCommand = absl::Minutes(30);

bool Run(Cluster& cluster, const std::vector<std::string>& args, CommandOutput* out) {
  *out = cluster.Fleetctl(args, kLongCommand);
  if (out->exit_code == 0) return true;
  std::fprintf(stderr, "bench: fleetctl %s failed (%d): %s\n", args[0].c_str(), out->exit_code,
               out->err.c_str());
  return false;
}

// Latencies of one read command, in milliseconds.
struct ReadSamples {
  std::vector<double> ok_ms;
  int failed = 0;
};

// `fleetctl hosts`, `fleetctl status APP` and a GetRollout.
constexpr int kReads = 3;
using ReadRounds = std::array<ReadSamples, kReads>;

// Nearest-rank percentile of sorted `v`; 0 when empty.
double Percentile(const std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(q * v.size()));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

// Rounds of the three reads, one every kReadInterval (or at once, when a
// round took longer): `fleetctl hosts`, `fleetctl status APP` and `fleetctl
// rollout status ID`.
class ReadSampler {
 public:
  // Borrows `cluster`, which must outlive the sampler.
  ReadSampler(Cluster* cluster, std::string app) : cluster_(cluster), app_(std::move(app)) {}
  ~ReadSampler() { Stop(); }
  ReadSampler(const ReadSampler&) = delete;
  ReadSampler& operator=(const ReadSampler&) = delete;

  // Runs `rounds` rounds in the calling thread, reading rollout
  // `rollout_id`, into idle().
  void SampleIdle(int rounds, const std::string& rollout_id) {
    absl::Time next = absl::Now();
    for (int i = 0; i < rounds; ++i) Round(rollout_id, &next, &idle_);
  }

  // Runs rounds in a thread, into busy(), until Stop(). ID is the rollout
  // fleetctl named in the first line of `fleetctl_log`; rounds before that
  // line is there skip the GetRollout. Call once.
  void Start(std::string fleetctl_log) {
    thread_ = std::thread([this, log = std::move(fleetctl_log)] {
      absl::Time next = absl::Now();
      std::string id;
      while (!stop_) {
        if (id.empty()) id = Cluster::RolloutId(fleet::testing::ReadTextFile(log));
        Round(id, &next, &busy_);
        ++busy_rounds_;
      }
    });
  }
  // Stops the thread; a read in flight finishes, none starts. busy() is
  // final once this returns.
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  const ReadRounds& idle() const { return idle_; }
  const ReadRounds& busy() const { return busy_; }
  int busy_rounds() const { return busy_rounds_; }
  std::string Name(int read) const {
    const char* names[kReads] = {"fleetctl hosts", "fleetctl status ",
                                 "fleetctl rollout status ID"};
    return read == 1 ? names[read] + app_ : names[read];
  }

 private:
  // Waits for `*next`, sets the one after it, and times the reads.
  void Round(const std::string& rollout_id, absl::Time* next, ReadRounds* into) {
    absl::SleepFor(*next - absl::Now());
    *next = std::max(*next + kReadInterval, absl::Now());
    Time({"hosts"}, &(*into)[0]);
    Time({"status", app_}, &(*into)[1]);
    if (!rollout_id.empty()) Time({"rollout", "status", rollout_id}, &(*into)[2]);
  }

  void Time(const std::vector<std::string>& args, ReadSamples* samples) {
    if (stop_) return;
    absl::Time start = absl::Now();
    CommandOutput out = cluster_->Fleetctl(args, kReadTimeout);
    double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    if (out.exit_code == 0) {
      samples->ok_ms.push_back(ms);
      return;
    }
    if (++samples->failed == 1) {
      std::fprintf(stderr, "bench: fleetctl %s failed (%d) after %.0f ms: %s\n", args[0].c_str(),
                   out.exit_code, ms, out.err.c_str());
    }
  }

  Cluster* const cluster_;
  const std::string app_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  ReadRounds idle_;  // written by SampleIdle()'s caller
  // Written by thread_ only, read after Stop() joined it.
  ReadRounds busy_;
  int busy_rounds_ = 0;
};

struct RollbackRun {
  std::string id;  // as fleetctl printed it
  int exit_code = -1;
  double seconds = 0;
  double controller_cpu = 0;
  double simulators_cpu = 0;
};

double SimulatorsCpu(const Cluster& cluster) {
  double cpu = 0;
  for (int slot = 0; slot < cluster.AgentProcesses(); ++slot) {
    cpu += ProcCpuSeconds(cluster.AgentProcessPid(slot));
  }
  return cpu;
}

// `fleetctl rollback tiny [--to TO] --wait`, from start to exit, with
// `sampler` (when not null) reading all along.
RollbackRun Rollback(Cluster& cluster, const std::string& to, ReadSampler* sampler) {
  std::vector<std::string> args = {"rollback", "tiny", "--wait"};
  if (!to.empty()) args.insert(args.end(), {"--to", to});
  const std::string log =
      absl::StrCat(cluster.dir(), "/rollback-to-", to.empty() ? "previous" : to, ".log");
  RollbackRun run;
  double controller_cpu = ProcCpuSeconds(cluster.ControllerPid());
  double simulators_cpu = SimulatorsCpu(cluster);
  absl::Time start = absl::Now();
  std::unique_ptr<fleet::testing::Subprocess> fleetctl = cluster.StartFleetctl(args, log);
  if (sampler != nullptr) sampler->Start(log);
  run.exit_code = fleetctl->Wait(kLongCommand);
  run.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  run.controller_cpu = ProcCpuSeconds(cluster.ControllerPid()) - controller_cpu;
  run.simulators_cpu = SimulatorsCpu(cluster) - simulators_cpu;
  if (sampler != nullptr) sampler->Stop();
  const std::string output = fleet::testing::ReadTextFile(log);
  run.id = Cluster::RolloutId(output);
  if (run.exit_code != 0) {
    std::fprintf(stderr, "bench: fleetctl rollback exited %d: %s\n", run.exit_code,
                 output.substr(output.size() > 2000 ? output.size() - 2000 : 0).c_str());
  }
  return run;
}

void PrintSeconds(const std::string& what, double s) {
  std::printf("  %-58s %9.2f s\n", what.c_str(), s);
}

bool Bench(int hosts) {
  ClusterOptions options;
  options.simulated = hosts;
  options.simulators =
      std::max(kMinSimulators, (hosts + kMaxHostsPerSimulator - 1) / kMaxHostsPerSimulator);
  options.host_timeout = "10m";
  Cluster cluster(options);
  absl::Time start = absl::Now();
  if (!cluster.WaitForConnectedHosts(hosts, absl::Minutes(10))) {
    std::fprintf(stderr, "bench: %d hosts did not connect\n", hosts);
    return false;
  }
  double connect_s = absl::ToDoubleSeconds(absl::Now() - start);

  // Nothing to reload, nothing to probe, no bake: a host is done when its
  // switch is reported, so the figures are the controller's and the wire's.
  std::string spec_path = cluster.dir() + "/tiny.yaml";
  fleet::testing::WriteTextFile(spec_path, "name: tiny\nbake: 0s\n");
  CommandOutput out;
  if (!Run(cluster, {"app", "apply", "-f", spec_path}, &out)) return false;
  for (const char* v : {"v1", "v2"}) {
    std::string artifact = cluster.MakeExecArtifact(v, true);
    if (!Run(cluster, {"release", "push", "tiny", v, artifact}, &out)) return false;
  }
  const std::string parallel = std::to_string(std::min(hosts, kMaxParallel));
  // Every host downloads at once while staging; at 10,000 hosts in two
  // processes a few loopback connections are refused, and the engine is
  // what is measured here, so a few hosts may fail their staging.
  if (!Run(cluster,
           {"rollout", "tiny", "v1", "--waves", "100%", "--max-parallel", parallel,
            "--max-failures", "5%", "--wait"},
           &out)) {
    return false;
  }

  double rollout_cpu = ProcCpuSeconds(cluster.ControllerPid());
  absl::Time rollout_start = absl::Now();
  if (!Run(cluster,
           {"--output", "json", "rollout", "tiny", "v2", "--waves", "1,10%,50%,100%",
            "--max-parallel", parallel, "--max-failures", "5%", "--wait"},
           &out)) {
    return false;
  }
  double rollout_s = absl::ToDoubleSeconds(absl::Now() - rollout_start);
  rollout_cpu = ProcCpuSeconds(cluster.ControllerPid()) - rollout_cpu;
  // fleetctl's JSON (README "JSON output"): waves count from 1.
  const nlohmann::json r = nlohmann::json::parse(out.out, nullptr, false);
  if (!r.is_object() || !r.contains("plan") || r["plan"]["waves"].empty()) {
    std::fprintf(stderr, "bench: cannot parse the rollout's JSON\n");
    return false;
  }
  const nlohmann::json& waves = r["plan"]["waves"];

  RollbackRun quiet = Rollback(cluster, "", nullptr);
  ReadSampler reads(&cluster, "tiny");
  reads.SampleIdle(kIdleRounds, quiet.id);
  RollbackRun loaded = Rollback(cluster, "v2", &reads);

  std::printf("\n%d hosts in %d simulator processes (connected in %.1f s)\n", hosts,
              cluster.AgentProcesses(), connect_s);
  PrintSeconds("stage v2 on every host",
               (waves[0].value("started_at_ms", int64_t{0}) - r.value("created_at_ms", int64_t{0})) /
                   1000.0);
  for (const nlohmann::json& wave : waves) {
    PrintSeconds(absl::StrFormat("wave %d (%s, %d hosts in all)", wave.value("index", 0),
                                 wave.value("target", ""), wave.value("hosts", 0)),
                 (wave.value("finished_at_ms", int64_t{0}) -
                  wave.value("started_at_ms", int64_t{0})) /
                     1000.0);
  }
  PrintSeconds("whole rollout v1 -> v2 (fleetctl --wait)", rollout_s);
  PrintSeconds("  controller CPU in it", rollout_cpu);
  PrintSeconds(absl::StrFormat("rollback to v1, alone (fleetctl --wait, exit %d)", quiet.exit_code),
               quiet.seconds);
  PrintSeconds("  controller CPU in it", quiet.controller_cpu);
  std::printf("  %-58s %9.3f ms\n", "  controller CPU per host",
              quiet.controller_cpu * 1000 / hosts);
  PrintSeconds("  simulators' CPU in it", quiet.simulators_cpu);
  PrintSeconds(
      absl::StrFormat("rollback to v2, under reads (fleetctl --wait, exit %d)", loaded.exit_code),
      loaded.seconds);
  PrintSeconds("  controller CPU in it (reads included)", loaded.controller_cpu);
  PrintSeconds("controller CPU, whole run", ProcCpuSeconds(cluster.ControllerPid()));
  std::printf("  %-58s %9ld MiB\n", "controller peak RSS (VmHWM)",
              ProcStatusKiB(cluster.ControllerPid(), "VmHWM") / 1024);
  for (int slot = 0; slot < cluster.AgentProcesses(); ++slot) {
    std::printf("  %-58s %9ld MiB\n",
                absl::StrFormat("simulator %d peak RSS (VmHWM)", slot + 1).c_str(),
                ProcStatusKiB(cluster.AgentProcessPid(slot), "VmHWM") / 1024);
  }

  std::printf(
      "  reads during the rollback under reads, one round every %s (%d rounds), and idle "
      "before it (%d rounds):\n",
      absl::FormatDuration(kReadInterval).c_str(), reads.busy_rounds(), kIdleRounds);
  std::printf("    %-30s %6s %9s %9s %9s %7s %10s\n", "command", "count", "p50 ms", "p99 ms",
              "max ms", "failed", "idle p50");
  for (int read = 0; read < kReads; ++read) {
    std::vector<double> busy = reads.busy()[read].ok_ms;
    std::vector<double> idle = reads.idle()[read].ok_ms;
    std::sort(busy.begin(), busy.end());
    std::sort(idle.begin(), idle.end());
    std::printf("    %-30s %6zu %9.1f %9.1f %9.1f %7d %7.1f ms\n", reads.Name(read).c_str(),
                busy.size(), Percentile(busy, 0.5), Percentile(busy, 0.99),
                busy.empty() ? 0 : busy.back(), reads.busy()[read].failed, Percentile(idle, 0.5));
  }
  return quiet.exit_code == 0 && loaded.exit_code == 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes;
  for (int i = 1; i < argc; ++i) {
    int n = 0;
    if (!absl::SimpleAtoi(argv[i], &n) || n < kMinSimulators) {
      std::fprintf(stderr, "usage: %s [HOSTS...]   (HOSTS >= %d; default 10000)\n", argv[0],
                   kMinSimulators);
      return 2;
    }
    sizes.push_back(n);
  }
  if (sizes.empty()) sizes = {10000};
  std::printf(
      "Fleet scale benchmark: app without reload or probes, bake 0s; rollout waves "
      "1,10%%,50%%,100%%, max-parallel %d; rollback switches every host at once; "
      "read latencies count successful calls only, fleetctl start-up included\n",
      kMaxParallel);
  bool ok = true;
  for (int n : sizes) ok = Bench(n) && ok;
  return ok ? 0 : 1;
}
