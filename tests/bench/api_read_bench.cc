// The controller's read API at fleet scale, without agents: a controller
// whose store holds HOSTS hosts (each running app `tiny`) and a finished
// rollout of `tiny` with one task per host, written into its data dir while
// it is stopped. Then, ROUNDS times each, times `fleetctl hosts`, `fleetctl
// status tiny` and `fleetctl rollout status ID` from start to exit, and
// prints p50, p99 and max, and the controller's CPU per call (so the
// figures of the read path can be compared without the simulators' noise;
// fleet_scale_bench measures the same reads during a real rollback).
//
//   build/tests/bench/api_read_bench [HOSTS [ROUNDS]]     default: 10000 20
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "controller/sqlite_store.h"
#include "controller/store.h"
#include "fleet/v1/api.pb.h"
#include "tests/testing/cluster.h"

namespace {

using fleet::testing::Cluster;
using fleet::testing::ClusterOptions;
using fleet::testing::CommandOutput;
using fleet::testing::ProcCpuSeconds;
using fleet::testing::ProcStatusKiB;

constexpr char kApp[] = "tiny";

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

fleet::v1::Host MakeHost(int i) {
  fleet::v1::Host host;
  host.set_id(absl::StrCat("web-", i));
  (*host.mutable_labels())["role"] = "web";
  (*host.mutable_labels())["zone"] = absl::StrCat("z", i % 3);
  host.set_agent_version("bench");
  host.set_last_seen_ms(1000);
  fleet::v1::HostAppState* state = host.add_apps();
  state->set_app(kApp);
  state->set_current_release("v2");
  state->add_releases("v1");
  state->add_releases("v2");
  state->set_last_known_good("v2");
  state->set_previous_release("v1");
  return host;
}

// Writes `hosts` hosts and a succeeded rollout v1 -> v2 over all of them;
// returns the rollout's id ("" on failure, said on stderr).
std::string Populate(const std::string& db, int hosts) {
  auto store = fleet::controller::OpenSqliteStore(db);
  if (!store.ok()) {
    std::fprintf(stderr, "bench: %s\n", store.status().ToString().c_str());
    return "";
  }
  auto txn = (*store)->Begin();
  if (!txn.ok()) return "";
  fleet::v1::Rollout rollout;
  rollout.set_app(kApp);
  rollout.set_version("v2");
  rollout.set_release("v2");
  rollout.set_from_version("v1");
  rollout.set_kind(fleet::v1::ROLLOUT_KIND_DEPLOY);
  rollout.set_state(fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  rollout.set_subject(fleet::v1::SUBJECT_RELEASE);
  rollout.set_created_by("bench");
  rollout.set_created_at_ms(1000);
  rollout.set_finished_at_ms(2000);
  for (int i = 0; i < hosts; ++i) {
    fleet::v1::Host host = MakeHost(i);
    absl::Status st = (*txn)->UpsertHost(host);
    if (!st.ok()) {
      std::fprintf(stderr, "bench: %s\n", st.ToString().c_str());
      return "";
    }
    fleet::v1::HostTask* task = rollout.add_tasks();
    task->set_host_id(host.id());
    task->set_state(fleet::v1::TASK_STATE_HEALTHY);
    task->set_from_version("v1");
    task->set_to_version("v2");
    task->set_wave(1);
    task->set_updated_at_ms(1500);
  }
  absl::Status st = (*txn)->CreateRollout(&rollout);
  if (st.ok()) st = (*txn)->Commit();
  if (!st.ok()) {
    std::fprintf(stderr, "bench: %s\n", st.ToString().c_str());
    return "";
  }
  return rollout.id();
}

bool Bench(int hosts, int rounds) {
  ClusterOptions options;
  options.agents = 0;
  Cluster cluster(options);
  cluster.ApplyExecSpec(kApp, "0s");
  for (const char* version : {"v1", "v2"}) {
    CommandOutput push = cluster.Fleetctl(
        {"release", "push", kApp, version, cluster.MakeExecArtifact(version, true)});
    if (push.exit_code != 0) {
      std::fprintf(stderr, "bench: release push: %s\n", push.err.c_str());
      return false;
    }
  }
  cluster.KillController();
  std::string id = Populate(cluster.DataDir() + "/fleet.db", hosts);
  if (id.empty()) return false;
  cluster.StartController();
  if (cluster.Fleetctl({"hosts"}).exit_code != 0) return false;

  struct Read {
    std::string name;
    std::vector<std::string> args;
  };
  const std::vector<Read> reads = {{"fleetctl hosts", {"hosts"}},
                                   {"fleetctl status tiny", {"status", kApp}},
                                   {"fleetctl rollout status ID", {"rollout", "status", id}}};
  std::printf("%d hosts, %d rounds (controller RSS %ld MiB):\n", hosts, rounds,
              ProcStatusKiB(cluster.ControllerPid(), "VmRSS") / 1024);
  std::printf("  %-28s %9s %9s %9s %16s\n", "command", "p50 ms", "p99 ms", "max ms",
              "controller CPU");
  for (const Read& read : reads) {
    std::vector<double> ms;
    double cpu_before = ProcCpuSeconds(cluster.ControllerPid());
    for (int round = 0; round < rounds; ++round) {
      absl::Time start = absl::Now();
      CommandOutput out = cluster.Fleetctl(read.args);
      if (out.exit_code != 0) {
        std::fprintf(stderr, "bench: %s: %s\n", read.name.c_str(), out.err.c_str());
        return false;
      }
      ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    }
    double cpu_ms = (ProcCpuSeconds(cluster.ControllerPid()) - cpu_before) * 1000 / rounds;
    std::printf("  %-28s %9.1f %9.1f %9.1f %10.1f ms/call\n", read.name.c_str(),
                Percentile(ms, 0.5), Percentile(ms, 0.99), *std::max_element(ms.begin(), ms.end()),
                cpu_ms);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int hosts = 10000;
  int rounds = 20;
  if ((argc > 1 && (!absl::SimpleAtoi(argv[1], &hosts) || hosts < 1)) ||
      (argc > 2 && (!absl::SimpleAtoi(argv[2], &rounds) || rounds < 1)) || argc > 3) {
    std::fprintf(stderr, "usage: %s [HOSTS [ROUNDS]]   (default 10000 20)\n", argv[0]);
    return 2;
  }
  return Bench(hosts, rounds) ? 0 : 1;
}
