#include "controller/agent_spec.h"

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet::controller {
namespace {

// Every AppSpec field is decided: sent to agents, or kept on the
// controller. A new field fails this test until it is put in one list (and,
// if agents need it, into SpecForAgent).
const std::set<std::string> kForAgents = {"name",      "keep_releases", "shared_dirs",
                                          "reload",    "reload_timeout_ms", "health",
                                          "bake_ms",   "hooks",         "config",
                                          "trusted_keys", "user"};
const std::set<std::string> kControllerOnly = {"rollout", "prometheus_url", "analysis",
                                               "rollback_on_alert_within_ms", "notify"};

TEST(SpecForAgentTest, EveryFieldIsDecided) {
  const auto* descriptor = fleet::v1::AppSpec::descriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const std::string& name = descriptor->field(i)->name();
    EXPECT_NE(kForAgents.count(name) + kControllerOnly.count(name), 0u)
        << "AppSpec." << name << " is neither sent to agents nor kept on the controller";
  }
}

TEST(SpecForAgentTest, KeepsWhatAgentsActOnAndDropsTheRest) {
  fleet::v1::AppSpec spec;
  spec.set_name("web");
  spec.set_keep_releases(4);
  spec.add_shared_dirs("log");
  spec.set_reload("bin/restart");
  spec.set_reload_timeout_ms(5000);
  spec.add_health()->set_tcp("127.0.0.1:1");
  spec.set_bake_ms(100);
  spec.mutable_hooks()->set_after_switch("bin/warm");
  spec.mutable_config()->set_file("app.yaml");
  spec.add_trusted_keys("KEY");
  spec.set_user("web");
  fleet::v1::AppSpec agent_view = spec;
  spec.mutable_rollout()->add_waves("1");
  spec.set_prometheus_url("http://u:p@prom");
  spec.add_analysis()->set_query("up{token=\"x\"}");
  spec.set_rollback_on_alert_within_ms(1000);
  auto* sink = spec.add_notify();
  sink->set_url("https://oapi.dingtalk.com/robot/send?access_token=TOK");
  sink->set_secret("SEC");

  fleet::v1::AppSpec sent = SpecForAgent(spec);
  EXPECT_EQ(sent.SerializeAsString(), agent_view.SerializeAsString()) << sent.DebugString();
}

}  // namespace
}  // namespace fleet::controller
