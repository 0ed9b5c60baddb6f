// Rollout and rollback at fleet scale with simulated hosts (one fleet-agent
// --simulate process, real filesystem work, real exec probes and reloads):
// time to stage every host, time of each wave, and time from `fleetctl
// rollback` to every host switched and reported, with the peak RSS of the
// controller and of the agent process.
//
//   build/tests/bench/rollout_bench [HOSTS...]      default: 100 1000
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fleet/v1/api.pb.h"
#include "tests/testing/cluster.h"
#include <nlohmann/json.hpp>

namespace {

using fleet::testing::Cluster;
using fleet::testing::ClusterOptions;
using fleet::testing::CommandOutput;

bool Run(Cluster& cluster, const std::vector<std::string>& args, CommandOutput* out) {
  *out = cluster.Fleetctl(args, absl::Minutes(20));
  if (out->exit_code == 0) return true;
  std::fprintf(stderr, "bench: fleetctl %s failed (%d): %s\n", args[0].c_str(), out->exit_code,
               out->err.c_str());
  return false;
}

// Switches at once inside a wave.
constexpr int kMaxParallel = 200;

bool Bench(int hosts) {
  ClusterOptions options;
  options.simulated = hosts;
  options.host_timeout = "10m";
  Cluster cluster(options);
  absl::Time start = absl::Now();
  if (!cluster.WaitForConnectedHosts(hosts, absl::Minutes(5))) {
    std::fprintf(stderr, "bench: %d hosts did not connect\n", hosts);
    return false;
  }
  double connect_s = absl::ToDoubleSeconds(absl::Now() - start);
  // Like Cluster::ApplyExecSpec, with the longest probe timeout: on a
  // 2-core machine a thousand hosts forking probes at once queue for CPU.
  std::string spec_path = cluster.dir() + "/tiny.yaml";
  fleet::testing::WriteTextFile(spec_path, R"(name: tiny
reload: "true"
health:
  - exec: "test -f ${FLEET_RELEASE_DIR}/healthy"
    timeout: 10s
    retries: 2
    interval: 500ms
)");
  CommandOutput out;
  if (!Run(cluster, {"app", "apply", "-f", spec_path}, &out)) return false;
  const std::string parallel = std::to_string(std::min(hosts, kMaxParallel));
  for (const char* v : {"v1", "v2"}) {
    std::string artifact = cluster.MakeExecArtifact(v, true);
    if (!Run(cluster, {"release", "push", "tiny", v, artifact}, &out)) return false;
  }
  if (!Run(cluster,
           {"rollout", "tiny", "v1", "--waves", "100%", "--max-parallel", parallel, "--wait"},
           &out)) {
    return false;
  }

  absl::Time rollout_start = absl::Now();
  if (!Run(cluster,
           {"--output", "json", "rollout", "tiny", "v2", "--waves", "1,10%,50%,100%",
            "--max-parallel", parallel, "--wait"},
           &out)) {
    return false;
  }
  double rollout_s = absl::ToDoubleSeconds(absl::Now() - rollout_start);
  // fleetctl's JSON (README "JSON output"): waves count from 1.
  const nlohmann::json r = nlohmann::json::parse(out.out, nullptr, false);
  if (!r.is_object() || !r.contains("plan") || r["plan"]["waves"].empty()) {
    std::fprintf(stderr, "bench: cannot parse rollout JSON\n");
    return false;
  }
  const nlohmann::json& waves = r["plan"]["waves"];

  double controller_cpu = fleet::testing::ProcCpuSeconds(cluster.ControllerPid());
  double agent_cpu = fleet::testing::ProcCpuSeconds(cluster.AgentPid(0));
  absl::Time rollback_start = absl::Now();
  if (!Run(cluster, {"rollback", "tiny", "--to", "v1", "--wait"}, &out)) return false;
  double rollback_s = absl::ToDoubleSeconds(absl::Now() - rollback_start);
  controller_cpu = fleet::testing::ProcCpuSeconds(cluster.ControllerPid()) - controller_cpu;
  agent_cpu = fleet::testing::ProcCpuSeconds(cluster.AgentPid(0)) - agent_cpu;

  std::printf("\n%d hosts (connected in %.1f s)\n", hosts, connect_s);
  std::printf(
      "  %-44s %8.2f s\n", "stage v2 on every host",
      (waves[0].value("started_at_ms", int64_t{0}) - r.value("created_at_ms", int64_t{0})) / 1000.0);
  for (const nlohmann::json& wave : waves) {
    std::printf("  wave %d %-37s %8.2f s\n", wave.value("index", 0),
                absl::StrCat("(", wave.value("target", ""), ", ", wave.value("hosts", 0),
                             " hosts in all)")
                    .c_str(),
                (wave.value("finished_at_ms", int64_t{0}) - wave.value("started_at_ms", int64_t{0})) /
                    1000.0);
  }
  std::printf("  %-44s %8.2f s\n", "whole rollout (fleetctl --wait)", rollout_s);
  std::printf("  %-44s %8.2f s\n", "rollback: every host switched and reported", rollback_s);
  std::printf("  %-44s %8.2f s\n", "  CPU used by the controller in the rollback", controller_cpu);
  std::printf("  %-44s %8.2f s\n", "  CPU used by the agent process in it", agent_cpu);
  std::printf("  %-44s %8ld MiB\n", "controller peak RSS",
              fleet::testing::ProcStatusKiB(cluster.ControllerPid(), "VmHWM") / 1024);
  std::printf("  %-44s %8ld MiB\n", "agent process peak RSS (all hosts)",
              fleet::testing::ProcStatusKiB(cluster.AgentPid(0), "VmHWM") / 1024);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes;
  for (int i = 1; i < argc; ++i) {
    int n = 0;
    if (!absl::SimpleAtoi(argv[i], &n) || n < 1) {
      std::fprintf(stderr, "usage: %s [HOSTS...]\n", argv[0]);
      return 2;
    }
    sizes.push_back(n);
  }
  if (sizes.empty()) sizes = {100, 1000};
  std::printf(
      "Fleet rollout benchmark: waves 1,10%%,50%%,100%%, max-parallel %d, bake 0s, "
      "exec probes; rollback switches every host at once\n",
      kMaxParallel);
  for (int n : sizes) {
    if (!Bench(n)) return 1;
  }
  return 0;
}
