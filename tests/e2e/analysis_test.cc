// End-to-end: analysis during bake against Debian's real Prometheus, which
// scrapes the /metrics of the three hello instances every second while the
// test sends each of them a request every 20 ms. A release whose probes pass
// but that answers half of its requests with 500 fails its analysis and is
// rolled back; with Prometheus gone the rollout pauses instead of passing,
// and an abort ends it.
#include <httplib.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"
#include "tests/testing/test_env.h"

namespace fleet {
namespace {

using testing::Cluster;
using testing::CommandOutput;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using testing::Subprocess;
using testing::TempDir;
using json = nlohmann::json;

constexpr char kPrometheus[] = "/usr/bin/prometheus";
constexpr char kErrorRate[] =
    R"(sum(rate(hello_requests_total{code="500"}[5s])) / sum(rate(hello_requests_total[5s])))";

class E2EAnalysisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(3)) << cluster_.ControllerLog();
    StartPrometheus();
    load_ = std::thread([this] { SendLoad(); });
    // A baseline without analysis: before hello runs anywhere the query
    // has no data, which analysis would rightly call inconclusive.
    cluster_.ApplyHelloSpec();
    Push("v1");
    Deploy("v1");
    ApplyHelloSpecWithAnalysis();
    WaitForErrorRate();
  }

  void TearDown() override {
    stop_load_ = true;
    if (load_.joinable()) load_.join();
  }

  void StartPrometheus() {
    prometheus_port_ = testing::FreePort();
    std::string targets;
    for (int i = 0; i < cluster_.agents(); ++i) {
      absl::StrAppend(&targets, i > 0 ? ", " : "", "\"127.0.0.1:", cluster_.ServicePort(i), "\"");
    }
    testing::WriteTextFile(dir_.Sub("prometheus.yml"), absl::StrCat(R"(global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: hello
    metrics_path: /metrics
    static_configs:
      - targets: [)",
                                                                    targets, "]\n"));
    prometheus_ = std::make_unique<Subprocess>(
        std::vector<std::string>{kPrometheus, "--config.file=" + dir_.Sub("prometheus.yml"),
                                 "--storage.tsdb.path=" + dir_.Sub("prometheus-data"),
                                 absl::StrCat("--web.listen-address=127.0.0.1:", prometheus_port_)},
        dir_.Sub("prometheus.log"));
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          httplib::Client client("127.0.0.1", prometheus_port_);
          auto res = client.Get("/-/ready");
          return res && res->status == 200;
        },
        absl::Seconds(20)))
        << PrometheusLog();
  }

  std::string PrometheusUrl() const { return absl::StrCat("http://127.0.0.1:", prometheus_port_); }
  std::string PrometheusLog() const { return testing::ReadTextFile(dir_.Sub("prometheus.log")); }

  // GET / on every host every ~20 ms until TearDown; failures (a host that
  // is restarting) are ignored.
  void SendLoad() {
    while (!stop_load_) {
      for (int i = 0; i < cluster_.agents() && !stop_load_; ++i) {
        httplib::Client client("127.0.0.1", cluster_.ServicePort(i));
        client.set_connection_timeout(0, 200000);
        client.set_read_timeout(1, 0);
        client.Get("/");
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  // Bake 6s: six evaluations a second apart while each wave's hosts bake.
  void ApplyHelloSpecWithAnalysis() {
    cluster_.ApplyHelloSpec("6s", absl::StrCat("prometheus_url: ", PrometheusUrl(), R"(
analysis:
  - name: error rate
    query: ')",
                                               kErrorRate, R"('
    fail_if: "> 0.05"
    interval: 1s
    failure_limit: 1
)"));
  }

  // Waits until Prometheus has enough samples to answer the analysis query.
  void WaitForErrorRate() {
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          httplib::Client client("127.0.0.1", prometheus_port_);
          auto res = client.Get("/api/v1/query", httplib::Params{{"query", kErrorRate}},
                                httplib::Headers{});
          if (!res || res->status != 200) return false;
          json doc = json::parse(res->body, nullptr, false);
          return doc.is_object() && doc["data"]["result"].size() == 1;
        },
        absl::Seconds(20)))
        << PrometheusLog();
  }

  void Push(const std::string& version, double error_share = 0) {
    std::string artifact = cluster_.MakeHelloArtifact(version, 200, error_share);
    CommandOutput out = cluster_.Fleetctl({"release", "push", "hello", version, artifact});
    ASSERT_EQ(out.exit_code, 0) << out.err;
  }

  void Deploy(const std::string& version) {
    CommandOutput out = cluster_.Fleetctl({"rollout", "hello", version, "--wait"});
    ASSERT_EQ(out.exit_code, 0) << out.out << out.err << cluster_.ControllerLog();
  }

  void ExpectFleetOn(const std::string& version) {
    for (int i = 0; i < cluster_.agents(); ++i) {
      EXPECT_EQ(cluster_.Current(i), version) << cluster_.HostId(i);
      EXPECT_EQ(cluster_.HttpGet(i, "/version"), version + "\n") << cluster_.HostId(i);
    }
  }

  TempDir dir_;
  Cluster cluster_;
  int prometheus_port_ = 0;
  std::unique_ptr<Subprocess> prometheus_;
  std::atomic<bool> stop_load_{false};
  std::thread load_;
};

TEST_F(E2EAnalysisTest, ReleaseFailingItsUsersButNotItsProbes_FailsAnalysisAndRollsBack) {
  Push("v2");
  Push("v3", /*error_share=*/0.5);

  // Every wave waits for a passing evaluation; an error rate of 0 passes.
  Deploy("v2");
  ExpectFleetOn("v2");
  EXPECT_GE(cluster_.HistoryEvents("hello", "wave.finished").size(), 2u);

  // v3's /healthz answers 200, but half of its GET / answer 500: on the
  // canary that is about a sixth of all requests, above 5%.
  CommandOutput failed = cluster_.Fleetctl({"rollout", "hello", "v3", "--wait"});
  EXPECT_EQ(failed.exit_code, 2) << failed.out << failed.err;
  EXPECT_THAT(failed.out, HasSubstr("analysis 'error rate' failed: "));
  EXPECT_THAT(failed.out,
              ContainsRegex(R"(\) = 0\.[0-9]+, fail_if > 0\.05 \(2 failed evaluations\))"));
  ExpectFleetOn("v2");
  ASSERT_EQ(cluster_.HistoryEvents("hello", "analysis.failed").size(), 1u) << cluster_.ControllerLog();
  EXPECT_THAT(cluster_.HistoryEvents("hello", "analysis.failed")[0].value("message", ""),
              HasSubstr("analysis 'error rate' failed"));
  EXPECT_THAT(cluster_.ControllerLog(), HasSubstr("check 'error rate'"));
}

TEST_F(E2EAnalysisTest, PrometheusDown_PausesTheRolloutAsInconclusiveUntilAborted) {
  Push("v2");
  prometheus_->Stop();

  CommandOutput started = cluster_.Fleetctl({"rollout", "hello", "v2"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  const std::string id = Cluster::RolloutId(started.out);
  CommandOutput status;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        status = cluster_.Fleetctl({"rollout", "status", id});
        return absl::StrContains(status.out, "  paused");
      },
      absl::Seconds(30)))
      << status.out << cluster_.ControllerLog();
  EXPECT_THAT(status.out,
              HasSubstr(absl::StrCat("reason: analysis 'error rate' inconclusive: Prometheus at ",
                                     PrometheusUrl(), " did not answer: ")));
  EXPECT_EQ(cluster_.HistoryEvents("hello", "analysis.inconclusive").size(), 1u);

  ASSERT_EQ(cluster_.Fleetctl({"rollout", "abort", id}).exit_code, 0);
  CommandOutput watched = cluster_.Fleetctl({"rollout", "watch", id});
  EXPECT_EQ(watched.exit_code, 2) << watched.out << watched.err;
  ExpectFleetOn("v1");
}

}  // namespace
}  // namespace fleet
