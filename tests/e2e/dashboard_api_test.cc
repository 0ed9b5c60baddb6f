// End-to-end: the dashboard's HTTP API (/api/v1/) of a real controller with
// --auth and real agents: every endpoint's answer to no token, a viewer, a
// deployer of another app and one of the app; actions recorded with their
// actor; non-simple requests only, no CORS; the event streams; the page's
// files; redaction.
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/dashboard_support.h"
#include "tests/testing/cluster.h"

namespace fleet {
namespace {

using dashboard_test::AdminToken;
using dashboard_test::CreateToken;
using dashboard_test::Http;
using dashboard_test::HttpAnswer;
using dashboard_test::PushHello;
using dashboard_test::Token;
using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;
using ::testing::HasSubstr;
using ::testing::Not;

ClusterOptions AuthOptions() {
  ClusterOptions options;
  options.agents = 2;
  options.auth = true;
  return options;
}

// Every read endpoint, for app hello and rollout `rollout`.
std::vector<std::string> ReadPaths(const std::string& rollout) {
  return {"/api/v1/whoami",
          "/api/v1/fleet",
          "/api/v1/apps",
          "/api/v1/apps/hello",
          "/api/v1/apps/hello/releases",
          "/api/v1/apps/hello/configs",
          "/api/v1/apps/hello/history",
          "/api/v1/rollouts?app=hello",
          "/api/v1/rollouts/" + rollout,
          "/api/v1/hosts",
          "/api/v1/events?app=hello&kind=rollout"};
}

// Every action endpoint on app hello and rollout `rollout`.
std::vector<std::string> ActionPaths(const std::string& rollout) {
  return {"/api/v1/apps/hello/rollback", "/api/v1/rollouts/" + rollout + "/pause",
          "/api/v1/rollouts/" + rollout + "/resume", "/api/v1/rollouts/" + rollout + "/promote",
          "/api/v1/rollouts/" + rollout + "/abort"};
}

// Reads the server-sent events of GET `path` until `until` is in them or
// `timeout` passes; returns what was read.
std::string ReadStream(Cluster& cluster, const std::string& path, const std::string& token,
                       const std::string& until, absl::Duration timeout,
                       std::function<void()> once_open = nullptr) {
  std::string text;
  // Streams send a keep-alive comment every 15 s, so the check runs.
  const absl::Time deadline = absl::Now() + timeout;
  std::thread reader([&] {
    httplib::Client client("127.0.0.1", cluster.HttpPort());
    client.set_read_timeout(absl::ToInt64Seconds(timeout), 0);
    httplib::Headers headers = {{"Authorization", "Bearer " + token}};
    client.Get(path.c_str(), headers, [&](const char* data, size_t n) {
      text.append(data, n);
      return absl::Now() < deadline && !absl::StrContains(text, until);
    });
  });
  if (once_open) {
    absl::SleepFor(absl::Milliseconds(500));
    once_open();
  }
  reader.join();
  return text;
}

class E2EDashboardApiTest : public ::testing::Test {
 protected:
  E2EDashboardApiTest() : cluster_(AuthOptions()) {}

  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(2)) << cluster_.ControllerLog();
    cluster_.ApplyHelloSpec();
    PushHello(cluster_, "v1");
    CommandOutput out = cluster_.Fleetctl({"rollout", "hello", "v1", "--wait"});
    ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
    rollout_ = "1";
  }

  int Rollouts() {
    HttpAnswer a = Http(cluster_, "GET", "/api/v1/rollouts?app=hello", AdminToken(cluster_));
    return static_cast<int>(a.json()["rollouts"].size());
  }

  Cluster cluster_;
  std::string rollout_;
};

TEST_F(E2EDashboardApiTest, EveryEndpoint_WithoutTokenIs401AsOneJsonLine) {
  std::vector<std::string> paths = ReadPaths(rollout_);
  paths.push_back("/api/v1/events/stream");
  paths.push_back("/api/v1/rollouts/" + rollout_ + "/watch");
  for (const std::string& path : paths) {
    HttpAnswer a = Http(cluster_, "GET", path, "");
    EXPECT_EQ(a.status, 401) << path;
    EXPECT_EQ(a.body, "{\"error\":\"missing API token (set FLEET_TOKEN or --token)\"}\n") << path;
  }
  for (const std::string& path : ActionPaths(rollout_)) {
    HttpAnswer a = Http(cluster_, "POST", path, "fleet_" + std::string(64, '0'));
    EXPECT_EQ(a.status, 401) << path;
    EXPECT_EQ(a.body, "{\"error\":\"invalid API token\"}\n") << path;
  }
  EXPECT_EQ(Rollouts(), 1);
}

TEST_F(E2EDashboardApiTest, Viewer_ReadsEveryEndpointButEveryActionIs403) {
  const Token viewer = CreateToken(cluster_, "viewer");
  for (const std::string& path : ReadPaths(rollout_)) {
    HttpAnswer a = Http(cluster_, "GET", path, viewer.token);
    EXPECT_EQ(a.status, 200) << path << ": " << a.body;
    EXPECT_TRUE(a.json().is_object()) << path << ": " << a.body;
  }
  nlohmann::json who = Http(cluster_, "GET", "/api/v1/whoami", viewer.token).json();
  EXPECT_EQ(who["token"]["role"], "ROLE_VIEWER");
  EXPECT_EQ(who["token"]["id"], viewer.id);
  for (const std::string& path : ActionPaths(rollout_)) {
    HttpAnswer a = Http(cluster_, "POST", path, viewer.token);
    EXPECT_EQ(a.status, 403) << path;
    EXPECT_THAT(a.body, HasSubstr("(viewer) may not")) << path;
    EXPECT_EQ(std::count(a.body.begin(), a.body.end(), '\n'), 1) << a.body;
  }
  EXPECT_EQ(Rollouts(), 1);
  // Each refusal is an audit event naming the HTTP client as the peer.
  HttpAnswer denied =
      Http(cluster_, "GET", "/api/v1/events?kind=auth.denied&limit=20", AdminToken(cluster_));
  ASSERT_EQ(denied.status, 200) << denied.body;
  ASSERT_GE(denied.json()["events"].size(), 5u) << denied.body;
  EXPECT_THAT(denied.body, HasSubstr("Rollback from http:127.0.0.1:"));
  EXPECT_EQ(denied.json()["events"][0]["actor"], viewer.id);
}

TEST_F(E2EDashboardApiTest, Deployer_RollsBackOnlyItsAppAndIsRecordedAsActor) {
  PushHello(cluster_, "v2");
  ASSERT_EQ(cluster_.Fleetctl({"rollout", "hello", "v2", "--wait"}).exit_code, 0);
  cluster_.ApplyExecSpec("other", "1s");
  const Token other = CreateToken(cluster_, "deployer", "other");
  HttpAnswer refused = Http(cluster_, "POST", "/api/v1/apps/hello/rollback", other.token);
  EXPECT_EQ(refused.status, 403);
  EXPECT_THAT(refused.body, HasSubstr("may not roll back app 'hello'"));

  const Token deployer = CreateToken(cluster_, "deployer", "hello");
  HttpAnswer plan =
      Http(cluster_, "POST", "/api/v1/apps/hello/rollback", deployer.token, R"({"dry_run": true})");
  ASSERT_EQ(plan.status, 200) << plan.body;
  EXPECT_EQ(plan.json()["version"], "v1");
  EXPECT_EQ(plan.json()["from_version"], "v2");
  EXPECT_EQ(plan.json()["progress"]["total"], 2);
  EXPECT_EQ(plan.json()["progress"]["changing"], 2);
  EXPECT_EQ(Rollouts(), 2);  // a dry run stores nothing

  HttpAnswer bad = Http(cluster_, "POST", "/api/v1/apps/hello/rollback", deployer.token,
                        R"({"subject": "code"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body,
            "{\"error\":\"body field subject must be \\\"release\\\" or \\\"config\\\"\"}\n");

  HttpAnswer done = Http(cluster_, "POST", "/api/v1/apps/hello/rollback", deployer.token,
                         R"({"actor": "alice"})");
  ASSERT_EQ(done.status, 200) << done.body;
  const std::string id = done.json()["id"];
  EXPECT_EQ(done.json()["created_by"], "alice via dashboard (token " + deployer.id + ")");
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return Http(cluster_, "GET", "/api/v1/rollouts/" + id, deployer.token).json()["state"] ==
               "ROLLOUT_STATE_SUCCEEDED";
      },
      absl::Seconds(60)));
  EXPECT_EQ(cluster_.Current(0), "v1");
  EXPECT_EQ(cluster_.Current(1), "v1");
  std::vector<nlohmann::json> started = cluster_.HistoryEvents("hello", "rollback.started");
  ASSERT_FALSE(started.empty());
  EXPECT_EQ(started[0].value("actor", ""), "alice via dashboard (token " + deployer.id + ")");

  // Rollout actions of another app's deployer are refused the same way.
  HttpAnswer abort = Http(cluster_, "POST", "/api/v1/rollouts/" + id + "/abort", other.token);
  EXPECT_EQ(abort.status, 403);
}

TEST_F(E2EDashboardApiTest, Actions_NeedAJsonBodyFromThisOrigin_AndNoCorsIsOffered) {
  const std::string admin = AdminToken(cluster_);
  HttpAnswer form = Http(cluster_, "POST", "/api/v1/apps/hello/rollback", admin, "to_version=v1",
                         "application/x-www-form-urlencoded");
  EXPECT_EQ(form.status, 415);
  EXPECT_EQ(form.body,
            "{\"error\":\"actions take a JSON body (Content-Type: application/json)\"}\n");
  HttpAnswer cross = Http(cluster_, "POST", "/api/v1/apps/hello/rollback", admin, "{}",
                          "application/json", {{"Origin", "https://evil.example"}});
  EXPECT_EQ(cross.status, 403);
  EXPECT_THAT(cross.body, HasSubstr("cross-origin requests are refused"));
  // The page's own requests carry its origin, which is this server.
  const std::string self = absl::StrCat("127.0.0.1:", cluster_.HttpPort());
  HttpAnswer same =
      Http(cluster_, "POST", "/api/v1/apps/hello/rollback", admin, R"({"dry_run": true})",
           "application/json", {{"Origin", "http://" + self}, {"Host", self}});
  EXPECT_EQ(same.status, 409) << same.body;  // no release to go back to
  HttpAnswer not_json = Http(cluster_, "POST", "/api/v1/apps/hello/rollback", admin, "[1]");
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(Rollouts(), 1);

  HttpAnswer read =
      Http(cluster_, "GET", "/api/v1/apps", admin, "", "", {{"Origin", "https://evil.example"}});
  EXPECT_EQ(read.status, 200);
  EXPECT_EQ(read.headers.count("Access-Control-Allow-Origin"), 0u);
  httplib::Client client("127.0.0.1", cluster_.HttpPort());
  httplib::Result preflight = client.Options(
      "/api/v1/apps/hello/rollback",
      {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(preflight);
  EXPECT_EQ(preflight->headers.count("Access-Control-Allow-Origin"), 0u);
  EXPECT_EQ(preflight->headers.count("Access-Control-Allow-Methods"), 0u);

  HttpAnswer bad_query = Http(cluster_, "GET", "/api/v1/hosts?limit=0", admin);
  EXPECT_EQ(bad_query.status, 400);
  EXPECT_THAT(bad_query.body, HasSubstr("limit must be a number from 1 to 1000"));
  HttpAnswer bad_kind = Http(cluster_, "GET", "/api/v1/events?kind=nonsense", admin);
  EXPECT_EQ(bad_kind.status, 400);
  EXPECT_EQ(Http(cluster_, "GET", "/api/v1/apps/nope", admin).status, 404);
  EXPECT_EQ(Http(cluster_, "GET", "/api/v1/rollouts/999", admin).status, 404);
}

TEST_F(E2EDashboardApiTest, Hosts_AreFilteredAndPagedOnTheServer) {
  const std::string admin = AdminToken(cluster_);
  nlohmann::json all = Http(cluster_, "GET", "/api/v1/hosts", admin).json();
  EXPECT_EQ(all["hosts_total"], 2);
  EXPECT_EQ(all["hosts_connected"], 2);
  EXPECT_EQ(all["hosts"].size(), 2u);
  EXPECT_GT(std::stoll(all["hosts"][0]["last_seen_ms"].get<std::string>()), 0);
  nlohmann::json page = Http(cluster_, "GET", "/api/v1/hosts?limit=1&offset=1", admin).json();
  EXPECT_EQ(page["matched"], 2);
  ASSERT_EQ(page["hosts"].size(), 1u);
  EXPECT_EQ(page["hosts"][0]["id"], cluster_.HostId(1));
  // The selector's "=" is escaped, as URLSearchParams does in the page.
  const std::string one = "/api/v1/apps/hello?label=host%3D" + cluster_.HostId(0);
  nlohmann::json app = Http(cluster_, "GET", one, admin).json();
  EXPECT_EQ(app["hosts_total"], 2);
  EXPECT_EQ(app["matched"], 1);
  ASSERT_EQ(app["hosts"].size(), 1u);
  EXPECT_EQ(app["hosts"][0]["state"]["current_release"], "v1");
  nlohmann::json fleet = Http(cluster_, "GET", "/api/v1/fleet", admin).json();
  ASSERT_EQ(fleet["apps"].size(), 1u);
  EXPECT_EQ(fleet["apps"][0]["release"], "v1");
  EXPECT_EQ(fleet["apps"][0]["hosts_connected"], 2);
}

TEST_F(E2EDashboardApiTest, Streams_FollowARolloutToItsEndAndNewEvents) {
  const Token viewer = CreateToken(cluster_, "viewer");
  PushHello(cluster_, "v2");
  std::string rollout;
  std::string events =
      ReadStream(cluster_, "/api/v1/events/stream?app=hello", viewer.token, "rollout.started",
                 absl::Seconds(60), [&] {
                   CommandOutput out = cluster_.Fleetctl({"rollout", "hello", "v2"});
                   EXPECT_EQ(out.exit_code, 0) << out.err;
                   rollout = Cluster::RolloutId(out.out);
                 });
  EXPECT_THAT(events, HasSubstr("event: event\n"));
  EXPECT_THAT(events, HasSubstr("\"kind\":\"rollout.started\""));
  ASSERT_FALSE(rollout.empty());
  std::string watch = ReadStream(cluster_, "/api/v1/rollouts/" + rollout + "/watch", viewer.token,
                                 "event: end", absl::Seconds(90));
  EXPECT_THAT(watch, HasSubstr("event: update\ndata: {"));
  EXPECT_THAT(watch, HasSubstr("\"snapshot\":true"));
  EXPECT_THAT(watch, HasSubstr("ROLLOUT_STATE_SUCCEEDED"));
  EXPECT_THAT(watch, HasSubstr("event: end\ndata: {\"error\":\"\"}"));
}

TEST_F(E2EDashboardApiTest, Page_IsServedFromTheBinaryWithItsPolicy) {
  httplib::Client client("127.0.0.1", cluster_.HttpPort());
  httplib::Result root = client.Get("/");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->status, 302);
  EXPECT_EQ(root->get_header_value("Location"), "/ui/");
  httplib::Result index = client.Get("/ui/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_THAT(index->body, HasSubstr("<script src=\"app.js\""));
  EXPECT_THAT(index->get_header_value("Content-Security-Policy"), HasSubstr("default-src 'none'"));
  EXPECT_EQ(index->get_header_value("X-Frame-Options"), "DENY");
  httplib::Result js = client.Get("/ui/app.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_THAT(js->body, Not(HasSubstr("localStorage")));
  httplib::Result missing = client.Get("/ui/nothing.js");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(E2EDashboardApiTest, Answers_AreRedactedLikeTheGrpcApi) {
  cluster_.ApplyHelloSpec(
      "500ms",
      "notify:\n  - { type: webhook, url: \"https://ci.example.net/hook?token=SEKRIT42\" }\n"
      "  - { type: dingtalk, url: \"https://oapi.dingtalk.com/robot/send?access_token=DT42\","
      " secret: SECDT42 }\n");
  const Token viewer = CreateToken(cluster_, "viewer");
  for (const char* path : {"/api/v1/apps", "/api/v1/apps/hello", "/api/v1/fleet"}) {
    HttpAnswer a = Http(cluster_, "GET", path, viewer.token);
    ASSERT_EQ(a.status, 200) << path;
    EXPECT_THAT(a.body, Not(HasSubstr("SEKRIT42"))) << path;
    EXPECT_THAT(a.body, Not(HasSubstr("DT42"))) << path;
  }
  EXPECT_THAT(Http(cluster_, "GET", "/api/v1/apps", viewer.token).body,
              HasSubstr("https://ci.example.net/hook?token=***"));
}

TEST(E2EDashboardDevModeTest, WithoutAuth_WhoAmISaysNoTokenIsNeeded) {
  ClusterOptions options;
  options.agents = 1;
  Cluster cluster(options);
  ASSERT_TRUE(cluster.WaitForConnectedHosts(1)) << cluster.ControllerLog();
  HttpAnswer who = Http(cluster, "GET", "/api/v1/whoami", "");
  ASSERT_EQ(who.status, 200) << who.body;
  EXPECT_EQ(who.json()["auth_required"], false);
  // A cross-site form still cannot act: it cannot send JSON.
  HttpAnswer form = Http(cluster, "POST", "/api/v1/apps/hello/rollback", "", "x=1", "text/plain");
  EXPECT_EQ(form.status, 415);
}

}  // namespace
}  // namespace fleet
