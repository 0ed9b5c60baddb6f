// End-to-end: Debian's real Alertmanager delivers a firing alert through its
// webhook receiver (bearer token from a credentials file) to a real
// controller, which rolls the hello app back from v2 to v1 once, however
// often the alert is delivered.
#include <httplib.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"
#include "tests/testing/test_env.h"

namespace fleet {
namespace {

using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;
using ::testing::HasSubstr;
using testing::Subprocess;
using testing::TempDir;
using json = nlohmann::json;

constexpr char kAlertmanager[] = "/usr/bin/prometheus-alertmanager";
constexpr char kToken[] = "e2e-alert-token";
constexpr char kWebhookPath[] = "/api/v1/alerts/alertmanager";
constexpr char kAlert[] = R"([{"labels":{"alertname":"HighErrorRate","fleet_app":"hello"},)"
                          R"("annotations":{"summary":"5xx above 5%"}}])";

// Writes the token file the controller and Alertmanager share.
ClusterOptions WithAlertToken(const TempDir& dir) {
  testing::WriteTextFile(dir.Sub("alert-token"), absl::StrCat(kToken, "\n"), 0600);
  ClusterOptions options;
  options.controller_args = {"--alert-token-file", dir.Sub("alert-token")};
  return options;
}

class E2EAlertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(3)) << cluster_.ControllerLog();
  }

  void Push(const std::string& version) {
    std::string artifact = cluster_.MakeHelloArtifact(version);
    CommandOutput out = cluster_.Fleetctl({"release", "push", "hello", version, artifact});
    ASSERT_EQ(out.exit_code, 0) << out.err;
  }

  void Deploy(const std::string& version) {
    CommandOutput out = cluster_.Fleetctl({"rollout", "hello", version, "--wait"});
    ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  }

  bool FleetOn(const std::string& version) {
    for (int i = 0; i < cluster_.agents(); ++i) {
      if (cluster_.Current(i) != version || cluster_.HttpGet(i, "/version") != version + "\n") {
        return false;
      }
    }
    return true;
  }

  // Starts Alertmanager on a free loopback port with one webhook receiver:
  // the controller, authenticated with the token file, resolved alerts
  // included, notifications at once and repeated every 2s, so that the
  // controller sees repeated deliveries of one alert.
  void StartAlertmanager() {
    am_port_ = testing::FreePort();
    testing::WriteTextFile(dir_.Sub("alertmanager.yml"),
                           absl::StrCat(R"(route:
  receiver: fleet
  group_by: [alertname, fleet_app]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: fleet
    webhook_configs:
      - url: "http://127.0.0.1:)",
                                        cluster_.HttpPort(), kWebhookPath, R"("
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: ")",
                                        dir_.Sub("alert-token"), "\"\n"));
    am_ = std::make_unique<Subprocess>(
        std::vector<std::string>{kAlertmanager, "--config.file=" + dir_.Sub("alertmanager.yml"),
                                 "--storage.path=" + dir_.Sub("alertmanager-data"),
                                 absl::StrCat("--web.listen-address=127.0.0.1:", am_port_),
                                 "--cluster.listen-address=", "--log.level=debug"},
        dir_.Sub("alertmanager.log"));
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          httplib::Client client("127.0.0.1", am_port_);
          auto res = client.Get("/-/ready");
          return res && res->status == 200;
        },
        absl::Seconds(20)))
        << AlertmanagerLog();
  }

  std::string AlertmanagerLog() const {
    return testing::ReadTextFile(dir_.Sub("alertmanager.log"));
  }

  void PostToAlertmanager(const std::string& alerts) {
    httplib::Client client("127.0.0.1", am_port_);
    auto res = client.Post("/api/v2/alerts", alerts, "application/json");
    ASSERT_TRUE(res) << AlertmanagerLog();
    ASSERT_EQ(res->status, 200) << res->body;
  }

  // Webhook notifications Alertmanager sent successfully so far, from its
  // own metrics.
  int WebhookNotificationsSent() {
    httplib::Client client("127.0.0.1", am_port_);
    auto res = client.Get("/metrics");
    if (!res || res->status != 200) return -1;
    int total = -1, failed = 0;
    for (absl::string_view line : absl::StrSplit(res->body, '\n')) {
      std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
      if (parts.size() != 2) continue;
      double value = 0;
      if (!absl::SimpleAtod(parts[1], &value)) continue;
      if (parts[0] == R"(alertmanager_notifications_total{integration="webhook"})") {
        total = static_cast<int>(value);
      } else if (parts[0] == R"(alertmanager_notifications_failed_total{integration="webhook"})") {
        failed = static_cast<int>(value);
      }
    }
    return total < 0 ? -1 : total - failed;
  }

  httplib::Result PostToController(const std::string& body, const std::string& authorization) {
    httplib::Client client("127.0.0.1", cluster_.HttpPort());
    httplib::Headers headers;
    if (!authorization.empty()) headers.emplace("Authorization", authorization);
    return client.Post(kWebhookPath, headers, body, "application/json");
  }

  // Rows of `fleetctl history hello` that are rollbacks by alertmanager.
  std::vector<std::string> AlertRollbacks() {
    CommandOutput history = cluster_.Fleetctl({"history", "hello"});
    EXPECT_EQ(history.exit_code, 0) << history.err;
    std::vector<std::string> rows;
    for (absl::string_view line : absl::StrSplit(testing::RolloutsTable(history.out), '\n')) {
      if (absl::StrContains(line, " rollback ") && absl::StrContains(line, " alertmanager ")) {
        rows.emplace_back(line);
      }
    }
    return rows;
  }

  TempDir dir_;
  Cluster cluster_{WithAlertToken(dir_)};
  int am_port_ = 0;
  std::unique_ptr<Subprocess> am_;  // declared last: killed first
};

TEST_F(E2EAlertTest, FiringAlertFromAlertmanager_RollsBackRecentDeployOnce) {
  cluster_.ApplyHelloSpec("500ms", "rollback_on_alert: { within: 30m }\n");
  Push("v1");
  Push("v2");
  Deploy("v1");
  Deploy("v2");
  ASSERT_TRUE(FleetOn("v2"));

  StartAlertmanager();
  PostToAlertmanager(kAlert);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        std::vector<std::string> rows = AlertRollbacks();
        return rows.size() == 1 && absl::StrContains(rows[0], "succeeded") && FleetOn("v1");
      },
      absl::Seconds(60)))
      << cluster_.ControllerLog() << AlertmanagerLog();
  EXPECT_TRUE(FleetOn("v1"));
  std::vector<std::string> rows = AlertRollbacks();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_THAT(rows[0], ::testing::ContainsRegex("rollback +v1 +v2 "));
  std::vector<json> recorded = cluster_.HistoryEvents("hello", "alert.rollback");
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].value("actor", ""), "alertmanager");
  EXPECT_THAT(recorded[0].value("message", ""),
              HasSubstr("alert HighErrorRate (5xx above 5%) firing: rolling back release v2"));

  // The same alert again, and Alertmanager's own repeats (every 2s): each
  // delivery reaches the controller and none rolls back again.
  const int sent = WebhookNotificationsSent();
  ASSERT_GE(sent, 1) << AlertmanagerLog();
  PostToAlertmanager(kAlert);
  ASSERT_TRUE(
      testing::WaitFor([&] { return WebhookNotificationsSent() >= sent + 2; }, absl::Seconds(30)))
      << AlertmanagerLog();
  EXPECT_EQ(AlertRollbacks().size(), 1u);
  EXPECT_EQ(cluster_.HistoryEvents("hello", "alert.rollback").size(), 1u);
  EXPECT_TRUE(FleetOn("v1"));

  // Delivered directly with Alertmanager's own fingerprint and startsAt, the
  // controller names it a duplicate.
  httplib::Client am("127.0.0.1", am_port_);
  auto listed = am.Get("/api/v2/alerts");
  ASSERT_TRUE(listed);
  json alerts = json::parse(listed->body, nullptr, false);
  ASSERT_TRUE(alerts.is_array() && alerts.size() == 1u) << listed->body;
  json alert = {{"status", "firing"},
                {"labels", alerts[0]["labels"]},
                {"annotations", alerts[0]["annotations"]},
                {"startsAt", alerts[0]["startsAt"]},
                {"fingerprint", alerts[0]["fingerprint"]}};
  json payload = {{"version", "4"}, {"status", "firing"}, {"alerts", {alert}}};
  auto res = PostToController(payload.dump(), absl::StrCat("Bearer ", kToken));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json answer = json::parse(res->body, nullptr, false);
  ASSERT_TRUE(answer.is_object()) << res->body;
  EXPECT_EQ(answer["alerts"][0]["outcome"], "duplicate") << res->body;
  EXPECT_EQ(AlertRollbacks().size(), 1u);

  // Resolved (endsAt = startsAt, in the past): recorded, nothing changes.
  json resolved = json::array({{{"labels", alerts[0]["labels"]},
                                {"annotations", alerts[0]["annotations"]},
                                {"startsAt", alerts[0]["startsAt"]},
                                {"endsAt", alerts[0]["startsAt"]}}});
  PostToAlertmanager(resolved.dump());
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        for (const json& e : cluster_.HistoryEvents("hello", "alert.ignored")) {
          if (absl::StrContains(e.value("message", ""), "resolved")) return true;
        }
        return false;
      },
      absl::Seconds(30)))
      << cluster_.ControllerLog() << AlertmanagerLog();
  EXPECT_EQ(AlertRollbacks().size(), 1u);
  EXPECT_TRUE(FleetOn("v1"));
}

TEST_F(E2EAlertTest, WebhookWithoutTheRightToken_Is401AndChangesNothing) {
  cluster_.ApplyHelloSpec("500ms", "rollback_on_alert: { within: 30m }\n");
  Push("v1");
  Push("v2");
  Deploy("v1");
  Deploy("v2");

  json payload = {{"version", "4"},
                  {"status", "firing"},
                  {"alerts",
                   {{{"status", "firing"},
                     {"labels", {{"alertname", "HighErrorRate"}, {"fleet_app", "hello"}}},
                     {"startsAt", "2024-05-01T11:59:00Z"},
                     {"fingerprint", "0123abcd"}}}}};
  for (const std::string& auth : {std::string("Bearer wrong-token"), std::string()}) {
    auto res = PostToController(payload.dump(), auth);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401) << auth;
  }
  auto bad = PostToController("{\"version\":\"3\"}", absl::StrCat("Bearer ", kToken));
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, HasSubstr("expected \"4\""));

  EXPECT_TRUE(AlertRollbacks().empty());
  EXPECT_TRUE(cluster_.HistoryEvents("hello", "alert.rollback").empty());
  EXPECT_TRUE(FleetOn("v2"));
}

}  // namespace
}  // namespace fleet
