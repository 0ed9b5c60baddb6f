// The dashboard in headless Chromium against a controller and simulated
// hosts (fleet-agent --simulate): time to first contentful paint and to the
// fleet page's data, time to show a rollout page of every host, how long
// after each host's transition the rollout page showed it (the controller
// stamps the transition, the page notes when it drew it; one machine, one
// clock), and the longest redraw of that page.
//
//   build/tests/bench/dashboard_bench [HOSTS...]      default: 10 1000
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/cluster.h"
#include "tests/testing/webdriver.h"

namespace {

using fleet::testing::Cluster;
using fleet::testing::ClusterOptions;
using fleet::testing::CommandOutput;
using fleet::testing::WebDriver;

bool Run(Cluster& cluster, const std::vector<std::string>& args, CommandOutput* out) {
  *out = cluster.Fleetctl(args, absl::Minutes(20));
  if (out->exit_code == 0) return true;
  std::fprintf(stderr, "bench: fleetctl %s failed (%d): %s\n", args[0].c_str(), out->exit_code,
               out->err.c_str());
  return false;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

std::vector<double> Numbers(const nlohmann::json& list) {
  std::vector<double> out;
  for (const auto& v : list) out.push_back(v.get<double>());
  return out;
}

bool Bench(int hosts) {
  ClusterOptions options;
  options.simulated = hosts;
  options.host_timeout = "10m";
  Cluster cluster(options);
  if (!cluster.WaitForConnectedHosts(hosts, absl::Minutes(5))) {
    std::fprintf(stderr, "bench: %d hosts did not connect\n", hosts);
    return false;
  }
  // Like Cluster::ApplyExecSpec, with the longest probe timeout: on a
  // 2-core machine a thousand hosts forking probes at once queue for CPU.
  const std::string spec_path = cluster.dir() + "/tiny.yaml";
  fleet::testing::WriteTextFile(spec_path, R"(name: tiny
reload: "true"
health:
  - exec: "test -f ${FLEET_RELEASE_DIR}/healthy"
    timeout: 10s
    retries: 2
    interval: 500ms
bake: 1s
)");
  CommandOutput out;
  if (!Run(cluster, {"app", "apply", "-f", spec_path}, &out)) return false;
  for (const char* v : {"r1", "r2"}) {
    const std::string artifact = cluster.MakeExecArtifact(v, /*healthy=*/true);
    if (!Run(cluster, {"release", "push", "tiny", v, artifact}, &out)) return false;
  }
  if (!Run(cluster, {"rollout", "tiny", "r1", "--max-parallel", "200", "--wait"}, &out)) {
    return false;
  }

  WebDriver browser;
  if (!browser.ok()) return false;
  // Development mode (plaintext on loopback, no --auth): no login view.
  browser.Navigate(absl::StrCat("http://127.0.0.1:", cluster.HttpPort(), "/ui/"));
  if (!browser.WaitForText("#hosts-connected", absl::StrCat(hosts, "/", hosts), absl::Minutes(2))) {
    std::fprintf(stderr, "bench: the fleet page did not show %d hosts\n", hosts);
    return false;
  }
  nlohmann::json first = browser.Execute(
      "const p = performance.getEntriesByType('paint')"
      "  .find((e) => e.name === 'first-contentful-paint');"
      "return [p ? p.startTime : -1, window.fleetMetrics.firstRenderMs];");

  if (!Run(cluster, {"rollout", "tiny", "r2", "--waves", "1,100%", "--max-parallel", "200"},
           &out)) {
    return false;
  }
  const std::string id = Cluster::RolloutId(out.out);
  const absl::Time shown = absl::Now();
  browser.Execute("location.hash = arguments[0];", {"#/rollout/" + id});
  if (!browser.WaitUntil("return document.querySelector('tr[data-host]') !== null;",
                         absl::Minutes(2))) {
    std::fprintf(stderr, "bench: the rollout page showed no host\n");
    return false;
  }
  const double page_ms = absl::ToDoubleMilliseconds(absl::Now() - shown);
  if (!browser.WaitForText("#rollout-state", "succeeded", absl::Minutes(20))) {
    std::fprintf(stderr, "bench: rollout %s did not succeed on the page\n", id.c_str());
    return false;
  }
  nlohmann::json m = browser.Execute("return window.fleetMetrics;");
  const std::vector<double> lat = Numbers(m["updateLatenciesMs"]);
  const std::vector<double> draws = Numbers(m["drawMs"]);
  std::printf(
      "dashboard %5d hosts: first contentful paint %.0f ms, fleet data shown %.0f ms; "
      "rollout page with every host %.0f ms; host transition -> page: median %.0f ms, "
      "p95 %.0f ms, max %.0f ms (%zu transitions, %d updates); longest redraw %.0f ms\n",
      hosts, first[0].get<double>(), first[1].get<double>(), page_ms, Percentile(lat, 0.5),
      Percentile(lat, 0.95), Percentile(lat, 1.0), lat.size(), m["updates"].get<int>(),
      Percentile(draws, 1.0));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes;
  for (int i = 1; i < argc; ++i) {
    int n = 0;
    if (!absl::SimpleAtoi(argv[i], &n) || n <= 0) {
      std::fprintf(stderr, "usage: %s [HOSTS...]\n", argv[0]);
      return 2;
    }
    sizes.push_back(n);
  }
  if (sizes.empty()) sizes = {10, 1000};
  for (int n : sizes) {
    if (!Bench(n)) return 1;
  }
  return 0;
}
