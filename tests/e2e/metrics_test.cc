// End-to-end: the controller's /metrics after a real cluster deployed two
// releases, failed a third (its hosts switched back) and rolled back.
#include <httplib.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"

namespace fleet {
namespace {

using testing::Cluster;
using testing::CommandOutput;
using ::testing::Ge;
using ::testing::Gt;

// The value of `series` (name with its labels, as rendered) in a Prometheus
// text exposition; -1 when the series is not there.
double Sample(const std::string& exposition, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (!absl::ConsumePrefix(&line, series) || !absl::ConsumePrefix(&line, " ")) continue;
    double value = 0;
    if (absl::SimpleAtod(line, &value)) return value;
  }
  return -1;
}

class E2EMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(3)) << cluster_.ControllerLog();
  }

  // Pushes a hello release; returns the artifact's size.
  uintmax_t Push(const std::string& version, int healthz_status = 200) {
    std::string artifact = cluster_.MakeHelloArtifact(version, healthz_status);
    CommandOutput out = cluster_.Fleetctl({"release", "push", "hello", version, artifact});
    EXPECT_EQ(out.exit_code, 0) << out.err;
    return std::filesystem::file_size(artifact);
  }

  httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", cluster_.HttpPort());
    client.set_connection_timeout(2);
    client.set_read_timeout(2);
    return client.Get(path);
  }

  Cluster cluster_;
};

TEST_F(E2EMetricsTest, Metrics_CountDeploymentsSwitchBacksAndRollbackOfARealFleet) {
  cluster_.ApplyHelloSpec();
  const uintmax_t v1_size = Push("v1");
  const uintmax_t v2_size = Push("v2");
  Push("v3", 502);
  ASSERT_FALSE(HasFailure());
  for (const char* version : {"v1", "v2"}) {
    CommandOutput out = cluster_.Fleetctl({"rollout", "hello", version, "--wait"});
    ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  }
  CommandOutput failed = cluster_.Fleetctl({"rollout", "hello", "v3", "--wait"});
  ASSERT_EQ(failed.exit_code, 2) << failed.out << failed.err;
  CommandOutput rollback = cluster_.Fleetctl({"rollback", "hello", "--wait"});
  ASSERT_EQ(rollback.exit_code, 0) << rollback.out << rollback.err;

  // fleetctl may see the rollback finished in the store a moment before the
  // engine tells its observers.
  std::string text;
  std::string content_type;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        httplib::Result res = Get("/metrics");
        if (!res) {
          text = "GET /metrics: " + httplib::to_string(res.error());
          return false;
        }
        text = res->body;
        content_type = res->get_header_value("Content-Type");
        return res->status == 200 &&
               Sample(text, "fleet_rollbacks_total{state=\"succeeded\",subject=\"release\"}") == 1;
      },
      absl::Seconds(20)))
      << text << cluster_.ControllerLog();
  EXPECT_EQ(content_type, "text/plain; version=0.0.4");

  EXPECT_EQ(Sample(text, "fleet_agents_connected"), 3) << text;
  // v1, v2 and the rollback each made all three hosts healthy; v3 failed on
  // its first (canary) host, which switched back by itself.
  EXPECT_EQ(Sample(text, "fleet_host_deployments_total{result=\"healthy\"}"), 9) << text;
  EXPECT_EQ(Sample(text, "fleet_host_deployments_total{result=\"switched_back\"}"), 1) << text;
  EXPECT_THAT(Sample(text, "fleet_probe_failures_total{app=\"hello\"}"), Ge(1)) << text;
  EXPECT_EQ(Sample(text,
                   "fleet_rollouts_finished_total{kind=\"rollout\",state=\"succeeded\","
                   "subject=\"release\"}"),
            2)
      << text;
  EXPECT_EQ(Sample(text,
                   "fleet_rollouts_finished_total{kind=\"rollout\",state=\"rolled_back\","
                   "subject=\"release\"}"),
            1)
      << text;
  EXPECT_EQ(Sample(text, "fleet_rollback_duration_seconds_count{subject=\"release\"}"), 1) << text;
  EXPECT_THAT(Sample(text, "fleet_rollback_duration_seconds_sum{subject=\"release\"}"), Gt(0))
      << text;
  // Nothing runs any more.
  for (const char* state : {"staging", "activating", "paused", "rolling_back"}) {
    EXPECT_EQ(Sample(text, std::string("fleet_rollouts{state=\"") + state + "\"}"), 0) << text;
  }
  // Every host downloaded v1 and v2 whole (and v3 too when it staged it
  // before the canary failed); the rollback downloaded nothing.
  EXPECT_THAT(Sample(text, "fleet_artifact_bytes_served_total"),
              Ge(3.0 * static_cast<double>(v1_size + v2_size)))
      << text;

  httplib::Result health = Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
}

}  // namespace
}  // namespace fleet
