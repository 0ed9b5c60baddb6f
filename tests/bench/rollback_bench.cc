// Rollback speed with a real controller and real agents on loopback:
//   - three agents, hello example: median of RUNS `fleetctl rollback --wait`
//     runs and of RUNS `fleetctl config rollback --wait` runs (all hosts
//     switched, reloaded, probed and reported), the agent-side switch alone
//     (symlink + rename + fsync, as each agent measured it), and the agents'
//     idle RSS;
//   - per HOSTS, that many agents and an app whose reload and exec probe are
//     `true`, bake 0: median of RUNS `fleetctl rollback --wait` runs, from
//     the command's start to its exit. What Fleet itself adds to a rollback.
//
//   build/tests/bench/rollback_bench [RUNS [HOSTS...]]   default: 5 3 10
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/bench/rollback_timing.h"
#include "tests/testing/cluster.h"

namespace {

using fleet::testing::Cluster;
using fleet::testing::CommandOutput;

using fleet::bench::Check;
using fleet::bench::Median;
using fleet::bench::TrivialAppRollbacks;

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  std::vector<int> host_counts;
  for (int i = 1; i < argc; ++i) {
    int n = 0;
    if (!absl::SimpleAtoi(argv[i], &n) || n < 1) {
      std::fprintf(stderr, "usage: %s [RUNS [HOSTS...]]   (default: 5 3 10)\n", argv[0]);
      return 2;
    }
    if (i == 1) {
      runs = n;
    } else {
      host_counts.push_back(n);
    }
  }
  if (host_counts.empty()) host_counts = {3, 10};

  std::vector<std::vector<double>> trivial_ms(host_counts.size());
  for (size_t i = 0; i < host_counts.size(); ++i) {
    if (!TrivialAppRollbacks(host_counts[i], runs, {}, &trivial_ms[i])) return 1;
  }

  Cluster cluster;
  if (!cluster.WaitForConnectedHosts(3)) {
    std::fprintf(stderr, "bench: agents did not connect\n");
    return 1;
  }
  cluster.ApplyHelloSpec("0s");
  for (const char* v : {"v1", "v2"}) {
    std::string artifact = cluster.MakeHelloArtifact(v);
    if (!Check(cluster.Fleetctl({"release", "push", "hello", v, artifact}), "push")) return 1;
    if (!Check(cluster.Fleetctl({"rollout", "hello", v, "--wait"}), "rollout")) return 1;
  }

  absl::SleepFor(absl::Seconds(3));
  std::vector<long> idle_rss;
  for (int i = 0; i < cluster.agents(); ++i)
    idle_rss.push_back(fleet::testing::ProcStatusKiB(cluster.AgentPid(i), "VmRSS"));
  long controller_rss = fleet::testing::ProcStatusKiB(cluster.ControllerPid(), "VmRSS");

  std::vector<double> rollback_ms;
  for (int run = 0; run < runs; ++run) {
    const char* to = run % 2 == 0 ? "v1" : "v2";
    absl::Time start = absl::Now();
    if (!Check(cluster.Fleetctl({"rollback", "hello", "--to", to, "--wait"}), "rollback")) {
      return 1;
    }
    rollback_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
  }

  // Config: two config releases rolled out, then rolled back to each other.
  for (const char* c : {"c1", "c2"}) {
    std::string dir = absl::StrCat(cluster.dir(), "/bench-config/", c);
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/hello.properties") << "greeting=hello from " << c << "\n";
    if (!Check(cluster.Fleetctl({"config", "push", "hello", c, dir}), "config push")) return 1;
    if (!Check(cluster.Fleetctl({"config", "rollout", "hello", c, "--wait"}), "config rollout")) {
      return 1;
    }
  }
  std::vector<double> config_rollback_ms;
  for (int run = 0; run < runs; ++run) {
    const char* to = run % 2 == 0 ? "c1" : "c2";
    absl::Time start = absl::Now();
    if (!Check(cluster.Fleetctl({"config", "rollback", "hello", "--to", to, "--wait"}),
               "config rollback")) {
      return 1;
    }
    config_rollback_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
  }

  // Each agent reports its switch time in the host.healthy event: "(switch N us)".
  std::vector<double> switch_us;
  CommandOutput history = cluster.Fleetctl({"--output", "json", "history", "hello"});
  for (absl::string_view line : absl::StrSplit(history.out, '\n')) {
    auto pos = line.find("(switch ");
    if (pos == absl::string_view::npos) continue;
    absl::string_view rest = line.substr(pos + 8);
    double us = 0;
    if (absl::SimpleAtod(rest.substr(0, rest.find(' ')), &us)) switch_us.push_back(us);
  }

  std::printf("Fleet rollback benchmark: 3 agents on loopback, hello example, %d runs\n", runs);
  std::printf("%-52s %10s\n", "figure", "median");
  std::printf("%-52s %8.1f ms\n", "fleetctl rollback --wait (3 hosts switched+reported)",
              Median(rollback_ms));
  std::printf("%-52s %8.1f ms\n", "fleetctl config rollback --wait (3 hosts)",
              Median(config_rollback_ms));
  std::printf("%-52s %8.1f us\n", "one host's switch (symlink+rename+fsync)", Median(switch_us));
  std::printf(
      "%-52s %7ld KiB\n", "agent idle RSS (median of 3)",
      static_cast<long>(Median({static_cast<double>(idle_rss[0]), static_cast<double>(idle_rss[1]),
                                static_cast<double>(idle_rss[2])})));
  std::printf("%-52s %7ld KiB\n", "controller RSS after 2 rollouts", controller_rss);
  std::printf("rollback runs (ms):");
  for (double ms : rollback_ms) std::printf(" %.1f", ms);
  std::printf("\nconfig rollback runs (ms):");
  for (double ms : config_rollback_ms) std::printf(" %.1f", ms);
  std::printf("\nswitch samples (release and config links): %zu\n", switch_us.size());

  std::printf(
      "\nreload `true`, exec probe `true`, bake 0: fleetctl rollback --wait, start to exit, "
      "%d runs\n",
      runs);
  std::printf("%-52s %10s   %s\n", "hosts (one agent process each)", "median", "runs (ms)");
  for (size_t i = 0; i < host_counts.size(); ++i) {
    std::printf("%-52d %8.1f ms ", host_counts[i], Median(trivial_ms[i]));
    for (double ms : trivial_ms[i]) std::printf(" %.1f", ms);
    std::printf("\n");
  }
  return 0;
}
