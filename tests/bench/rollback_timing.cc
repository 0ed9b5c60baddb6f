#include "tests/bench/rollback_timing.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/testing/cluster.h"

namespace fleet::bench {

bool Check(const testing::CommandOutput& out, const std::string& what) {
  if (out.exit_code == 0) return true;
  std::fprintf(stderr, "bench: %s failed (%d): %s%s\n", what.c_str(), out.exit_code,
               out.out.c_str(), out.err.c_str());
  return false;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

bool TrivialAppRollbacks(int hosts, int runs, std::vector<std::string> controller_args,
                         std::vector<double>* ms) {
  testing::ClusterOptions options;
  options.agents = hosts;
  options.controller_args = std::move(controller_args);
  testing::Cluster cluster(options);
  if (!cluster.WaitForConnectedHosts(hosts, absl::Seconds(60))) {
    std::fprintf(stderr, "bench: %d agents did not connect\n%s", hosts,
                 cluster.ControllerLog().c_str());
    return false;
  }
  const std::string spec = cluster.dir() + "/quick.yaml";
  testing::WriteTextFile(spec, R"(name: quick
reload: "true"
health:
  - exec: "true"
bake: 0s
)");
  if (!Check(cluster.Fleetctl({"app", "apply", "-f", spec}), "app apply")) return false;
  for (const char* v : {"v1", "v2"}) {
    std::string artifact = cluster.MakeExecArtifact(v, true);
    if (!Check(cluster.Fleetctl({"release", "push", "quick", v, artifact}), "push")) return false;
    if (!Check(cluster.Fleetctl({"rollout", "quick", v, "--wait"}), "rollout")) return false;
  }
  for (int run = 0; run < runs; ++run) {
    const char* to = run % 2 == 0 ? "v1" : "v2";
    absl::Time start = absl::Now();
    if (!Check(cluster.Fleetctl({"rollback", "quick", "--to", to, "--wait"}), "rollback")) {
      return false;
    }
    ms->push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
  }
  return true;
}

}  // namespace fleet::bench
