#include "controller/redaction.h"

#include <string>

#include "absl/status/status.h"
#include "fleet/v1/api.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fleet::controller {
namespace {

using ::fleet::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(RedactTextTest, QueryValuesAndUserinfoOfEveryUrlGo) {
  EXPECT_EQ(RedactText("https://oapi.dingtalk.com/robot/send?access_token=TOK1"),
            "https://oapi.dingtalk.com/robot/send?access_token=***");
  EXPECT_EQ(RedactText("send to https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K2&debug "
                       "failed"),
            "send to https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***&*** failed");
  EXPECT_EQ(RedactText("GET http://admin:pa55@prom:9090/api/v1/query?query=up#frag=x"),
            "GET http://***@prom:9090/api/v1/query?query=***#frag=***");
  EXPECT_EQ(RedactText("url: \"https://u:p@h.example/x?a=\""), "url: \"https://***@h.example/x?a=\"");
}

TEST(RedactTextTest, PathTokensOfKnownWebhookHostsGo) {
  EXPECT_EQ(RedactText("https://hooks.slack.com/services/T0/B0/XXXX"), "https://hooks.slack.com/***");
  EXPECT_EQ(RedactText("https://discord.com/api/webhooks/1/abc"), "https://discord.com/***");
  EXPECT_EQ(RedactText("https://acme.webhook.office.com/webhookb2/abc"),
            "https://acme.webhook.office.com/***");
  // Other hosts keep their path: it names the endpoint.
  EXPECT_EQ(RedactText("https://ci.example.net/fleet-events"), "https://ci.example.net/fleet-events");
}

TEST(RedactTextTest, SecretAndPasswordPairsGo) {
  EXPECT_EQ(RedactText("notify:\n  - { type: dingtalk, url: x, secret: SEC123 }\n"),
            "notify:\n  - { type: dingtalk, url: x, secret: *** }\n");
  EXPECT_EQ(RedactText("DB_PASSWORD=hunter2 next"), "DB_PASSWORD=*** next");
  EXPECT_EQ(RedactText("secret: \"a b\" after"), "secret: *** after");
  EXPECT_EQ(RedactText("secret: |\n  SEC\n"), "secret: ***");
  // Words that merely contain the key stay.
  EXPECT_EQ(RedactText("config c1 (1 secret), secrets.env.age"), "config c1 (1 secret), secrets.env.age");
  EXPECT_EQ(RedactText("token 3fa9c2d4e5f6 (deployer) may not"), "token 3fa9c2d4e5f6 (deployer) may not");
}

TEST(RedactMessageTest, WalksNestedRepeatedAndMapFields) {
  fleet::v1::ListAppsResponse list;
  fleet::v1::App* app = list.add_apps();
  app->mutable_spec()->set_name("web");
  fleet::v1::NotifySink* sink = app->mutable_spec()->add_notify();
  sink->set_type("dingtalk");
  sink->set_url("https://oapi.dingtalk.com/robot/send?access_token=TOK1");
  sink->set_secret("SEC1");
  app->mutable_spec()->set_prometheus_url("http://user:PW1@prom:9090");
  fleet::v1::GetHistoryResponse history;
  history.add_rollouts()->add_tasks()->set_reason("GET http://u:PW2@h/healthz failed");
  history.add_events()->set_message("delivered to https://hooks.slack.com/services/T/B/TOK3");
  fleet::v1::Host host;
  (*host.mutable_labels())["hook"] = "https://x.example/?k=TOK4";

  RedactMessage(&list);
  RedactMessage(&history);
  RedactMessage(&host);
  const std::string all = list.DebugString() + history.DebugString() + host.DebugString();
  for (const char* planted : {"TOK1", "SEC1", "PW1", "PW2", "TOK3", "TOK4"}) {
    EXPECT_THAT(all, Not(HasSubstr(planted))) << planted;
  }
  EXPECT_EQ(list.apps(0).spec().notify(0).secret(), "***");
  EXPECT_EQ(list.apps(0).spec().name(), "web");
}

TEST(RedactMessageTest, LeavesTheTokenOfCreateTokenAlone) {
  fleet::v1::CreateTokenResponse resp;
  resp.set_token("fleet_0123456789abcdef");
  RedactMessage(&resp);
  EXPECT_EQ(resp.token(), "fleet_0123456789abcdef");
}

TEST(RedactStatusTest, KeepsTheCodeAndRedactsTheMessage) {
  EXPECT_THAT(RedactStatus(absl::UnavailableError("cannot reach http://u:PW@prom/")),
              StatusIs(absl::StatusCode::kUnavailable, "cannot reach http://***@prom/"));
}

TEST(RedactStatusTest, CutsLongMessagesToOneShortLine) {
  absl::Status st = RedactStatus(absl::NotFoundError("release " + std::string(10240, 'v')));
  EXPECT_LE(st.message().size(), kMaxApiErrorBytes);
  EXPECT_THAT(std::string(st.message()), ::testing::EndsWith(" bytes cut)"));
}

}  // namespace
}  // namespace fleet::controller
