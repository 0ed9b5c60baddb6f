// End-to-end: credentials stay on the controller. Every RPC of the public
// API (walked from its service descriptor) is called against a real
// controller and agent, and no answer, in protobuf text or JSON, nor any
// fleetctl output, holds a planted secret; the agent never receives the
// notification secrets or the Prometheus credentials.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fleet/v1/api.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"

namespace fleet {
namespace {

using fleet::v1::FleetService;
using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;
using ::testing::HasSubstr;
using ::testing::Not;

// Secrets planted in the app spec (and a token description); agents need
// none of the first four, and the health check's password they do need.
constexpr char kQueryToken[] = "TOKq7Zx3";
constexpr char kDingTalkSecret[] = "SECd9Kw2";
constexpr char kUserinfoPassword[] = "PWu4Rt8";
constexpr char kSlackToken[] = "SLKt5Hn1";
constexpr char kPrometheusPassword[] = "PWp6Jm0";
constexpr char kHealthPassword[] = "PWh2Gs5";
constexpr char kDescriptionPassword[] = "PWd8Fb7";

std::string SpecYaml() {
  return absl::StrCat(R"(name: hello
keep_releases: 3
reload: "${FLEET_RELEASE_DIR}/bin/restart"
health:
  - http: "http://probe:)", kHealthPassword, R"(@127.0.0.1:${port}/healthz"
    timeout: 2s
    retries: 0
    interval: 200ms
bake: 500ms
prometheus_url: "http://promuser:)", kPrometheusPassword, R"(@127.0.0.1:1"
notify:
  - { type: dingtalk, url: "https://oapi.dingtalk.com/robot/send?access_token=)", kQueryToken,
                      R"(", secret: )", kDingTalkSecret, R"( }
  - { type: webhook, url: "https://hookuser:)", kUserinfoPassword, R"(@127.0.0.1:1/events" }
  - { type: slack, url: "https://hooks.slack.com/services/T1/B1/)", kSlackToken, R"(" }
)");
}

class E2ERedactionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(1)) << cluster_.ControllerLog();
    token_ = std::string(
        absl::StripAsciiWhitespace(testing::ReadTextFile(cluster_.AdminTokenPath())));
    stub_ = FleetService::NewStub(
        grpc::CreateChannel(cluster_.address(), grpc::InsecureChannelCredentials()));
  }

  std::unique_ptr<grpc::ClientContext> Context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + token_);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return ctx;
  }

  // Keeps what the API answered: the error, or the message as text and JSON.
  void Record(const std::string& rpc, const grpc::Status& st,
              const google::protobuf::Message& resp) {
    answers_.push_back(absl::StrCat(rpc, ": ", st.error_message()));
    if (!st.ok()) return;
    std::string json;
    if (!google::protobuf::util::MessageToJsonString(resp, &json).ok()) json = "(no JSON)";
    answers_.push_back(absl::StrCat(rpc, ": ", resp.DebugString(), json));
  }

  template <typename Req, typename Resp>
  Resp Call(const std::string& rpc,
            grpc::Status (FleetService::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
            const Req& req) {
    Resp resp;
    Record(rpc, ((*stub_).*method)(Context().get(), req, &resp), resp);
    return resp;
  }

  void Push(const std::string& version, int healthz_status) {
    std::ifstream in(cluster_.MakeHelloArtifact(version, healthz_status), std::ios::binary);
    std::stringstream data;
    data << in.rdbuf();
    fleet::v1::Release release;
    auto ctx = Context();
    auto writer = stub_->PushRelease(ctx.get(), &release);
    fleet::v1::PushReleaseRequest header;
    header.mutable_header()->set_app("hello");
    header.mutable_header()->set_version(version);
    header.mutable_header()->set_size(static_cast<int64_t>(data.str().size()));
    writer->Write(header);
    fleet::v1::PushReleaseRequest chunk;
    chunk.set_data(data.str());
    writer->Write(chunk);
    writer->WritesDone();
    grpc::Status st = writer->Finish();
    EXPECT_TRUE(st.ok()) << st.error_message();
    Record("PushRelease", st, release);
  }

  // Follows rollout `id` to its end; returns its last state.
  fleet::v1::Rollout Watch(const std::string& id) {
    fleet::v1::WatchRolloutRequest req;
    req.set_id(id);
    auto ctx = Context();
    auto reader = stub_->WatchRollout(ctx.get(), req);
    fleet::v1::RolloutUpdate update;
    fleet::v1::Rollout last;
    while (reader->Read(&update)) {
      Record("WatchRollout", grpc::Status::OK, update);
      last = update.rollout();
    }
    Record("WatchRollout", reader->Finish(), update);
    return last;
  }

  fleet::v1::Rollout StartRollout(const std::string& version) {
    fleet::v1::StartRolloutRequest req;
    req.set_app("hello");
    req.set_version(version);
    fleet::v1::Rollout r = Call("StartRollout", &FleetService::Stub::StartRollout, req);
    return Watch(r.id());
  }

  static ClusterOptions OneAgentWithTokens() {
    ClusterOptions options;
    options.agents = 1;
    options.auth = true;
    return options;
  }

  Cluster cluster_{OneAgentWithTokens()};
  std::string token_;
  std::unique_ptr<FleetService::Stub> stub_;
  std::vector<std::string> answers_;
};

TEST_F(E2ERedactionTest, EveryRpcAnswer_HoldsNoPlantedSecret) {
  std::string rollout_id;
  std::string token_id;
  fleet::v1::RolloutActionRequest action;
  // In the order they run: an app, releases, a rollout that succeeds and
  // one whose probe fails (its reason quotes the probe's URL), then the
  // rest against that state.
  const std::vector<std::pair<std::string, std::function<void()>>> calls = {
      {"ApplyApp",
       [&] {
         fleet::v1::ApplyAppRequest req;
         req.set_spec_yaml(SpecYaml());
         Call("ApplyApp", &FleetService::Stub::ApplyApp, req);
       }},
      {"ListApps", [&] { Call("ListApps", &FleetService::Stub::ListApps, {}); }},
      {"PushRelease",
       [&] {
         Push("v1", 200);
         Push("v2", 502);
       }},
      {"ListReleases",
       [&] {
         fleet::v1::ListReleasesRequest req;
         req.set_app("hello");
         Call("ListReleases", &FleetService::Stub::ListReleases, req);
       }},
      {"StartRollout",
       [&] {
         EXPECT_EQ(StartRollout("v1").state(), fleet::v1::ROLLOUT_STATE_SUCCEEDED);
         fleet::v1::Rollout failed = StartRollout("v2");
         EXPECT_EQ(failed.state(), fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
         rollout_id = failed.id();
         action.set_id(rollout_id);
       }},
      {"WatchRollout", [&] { Watch(rollout_id); }},
      {"GetRollout",
       [&] {
         fleet::v1::GetRolloutRequest req;
         req.set_id(rollout_id);
         fleet::v1::Rollout r = Call("GetRollout", &FleetService::Stub::GetRollout, req);
         EXPECT_THAT(r.DebugString(), HasSubstr("GET http://***@127.0.0.1:"));
       }},
      {"ListRollouts", [&] { Call("ListRollouts", &FleetService::Stub::ListRollouts, {}); }},
      {"PauseRollout", [&] { Call("PauseRollout", &FleetService::Stub::PauseRollout, action); }},
      {"ResumeRollout", [&] { Call("ResumeRollout", &FleetService::Stub::ResumeRollout, action); }},
      {"PromoteRollout",
       [&] { Call("PromoteRollout", &FleetService::Stub::PromoteRollout, action); }},
      {"AbortRollout", [&] { Call("AbortRollout", &FleetService::Stub::AbortRollout, action); }},
      {"Rollback",
       [&] {
         fleet::v1::RollbackRequest req;
         req.set_app("hello");
         Call("Rollback", &FleetService::Stub::Rollback, req);
       }},
      {"GetAppStatus",
       [&] {
         fleet::v1::GetAppStatusRequest req;
         req.set_app("hello");
         Call("GetAppStatus", &FleetService::Stub::GetAppStatus, req);
       }},
      {"ListHosts", [&] { Call("ListHosts", &FleetService::Stub::ListHosts, {}); }},
      // The failed probe's attempts, as the agent recorded them (the URL
      // with its credentials among them).
      {"GetOutput",
       [&] {
         fleet::v1::GetOutputRequest req;
         req.set_app("hello");
         req.set_activations(5);
         fleet::v1::GetOutputResponse resp = Call("GetOutput", &FleetService::Stub::GetOutput, req);
         EXPECT_THAT(resp.DebugString(), HasSubstr("probe http"));
       }},
      {"ReleaseHold",
       [&] {
         // Not held: answered with an error, which is checked like any answer.
         fleet::v1::ReleaseHoldRequest req;
         req.set_host_id(cluster_.HostId(0));
         req.set_app("hello");
         Call("ReleaseHold", &FleetService::Stub::ReleaseHold, req);
       }},
      {"GetVersion", [&] { Call("GetVersion", &FleetService::Stub::GetVersion, {}); }},
      {"GetHistory",
       [&] {
         fleet::v1::GetHistoryRequest req;
         req.set_app("hello");
         Call("GetHistory", &FleetService::Stub::GetHistory, req);
       }},
      {"PushConfig",
       [&] {
         fleet::v1::PushConfigRequest req;
         req.set_app("hello");
         req.set_version("c1");
         auto* file = req.add_files();
         file->set_path("app.env");
         file->set_mode(0644);
         file->set_content("A=1\n");
         Call("PushConfig", &FleetService::Stub::PushConfig, req);
       }},
      {"ListConfigs",
       [&] {
         fleet::v1::ListConfigsRequest req;
         req.set_app("hello");
         Call("ListConfigs", &FleetService::Stub::ListConfigs, req);
       }},
      {"CreateToken",
       [&] {
         fleet::v1::CreateTokenRequest req;
         req.set_role(fleet::v1::ROLE_VIEWER);
         req.set_description(absl::StrCat("ci https://ci:", kDescriptionPassword, "@ci.example/"));
         fleet::v1::CreateTokenResponse resp =
             Call("CreateToken", &FleetService::Stub::CreateToken, req);
         EXPECT_THAT(resp.token(), ::testing::StartsWith("fleet_"));  // its own secret stays
         token_id = resp.info().id();
       }},
      {"ListTokens", [&] { Call("ListTokens", &FleetService::Stub::ListTokens, {}); }},
      {"RevokeToken",
       [&] {
         fleet::v1::RevokeTokenRequest req;
         req.set_id(token_id);
         Call("RevokeToken", &FleetService::Stub::RevokeToken, req);
       }},
      // Every app's events, token.created (whose description has a
      // password) among them.
      {"ListEvents",
       [&] {
         fleet::v1::ListEventsRequest req;
         req.set_limit(1000);
         fleet::v1::ListEventsResponse resp =
             Call("ListEvents", &FleetService::Stub::ListEvents, req);
         EXPECT_THAT(resp.DebugString(), HasSubstr("token.created"));
       }},
      {"WhoAmI", [&] { Call("WhoAmI", &FleetService::Stub::WhoAmI, {}); }},
  };
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          "fleet.v1.FleetService");
  ASSERT_NE(service, nullptr);
  std::set<std::string> covered;
  for (const auto& [name, call] : calls) covered.insert(name);
  for (int i = 0; i < service->method_count(); ++i) {
    EXPECT_EQ(covered.count(service->method(i)->name()), 1u)
        << "RPC " << service->method(i)->name() << " is not checked for secrets";
  }
  for (const auto& [name, call] : calls) {
    call();
    ASSERT_FALSE(HasFatalFailure()) << name;
  }

  std::string all;
  for (const std::string& answer : answers_) absl::StrAppend(&all, answer, "\n");
  for (const char* secret : {kQueryToken, kDingTalkSecret, kUserinfoPassword, kSlackToken,
                             kPrometheusPassword, kHealthPassword, kDescriptionPassword}) {
    EXPECT_THAT(all, Not(HasSubstr(secret))) << secret;
  }
  // The sinks are there, redacted: the test saw what it checks.
  EXPECT_THAT(all, HasSubstr("access_token=***"));
  EXPECT_THAT(all, HasSubstr("https://***@127.0.0.1:1/events"));
  EXPECT_THAT(all, HasSubstr("https://hooks.slack.com/***"));

  // fleetctl's text and JSON output of the same.
  for (const std::string& output : {std::string("text"), std::string("json")}) {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"app", "list"}, std::vector<std::string>{"status", "hello"},
          std::vector<std::string>{"history", "hello"},
          std::vector<std::string>{"rollout", "status", rollout_id},
          std::vector<std::string>{"token", "list"}}) {
      std::vector<std::string> argv = {"--output", output};
      argv.insert(argv.end(), args.begin(), args.end());
      CommandOutput out = cluster_.Fleetctl(argv);
      // 2: `rollout status` of the rollout that was rolled back.
      EXPECT_THAT(out.exit_code, ::testing::AnyOf(0, 2)) << args[0] << ": " << out.err;
      for (const char* secret : {kQueryToken, kDingTalkSecret, kUserinfoPassword, kSlackToken,
                                 kPrometheusPassword, kHealthPassword, kDescriptionPassword}) {
        EXPECT_THAT(out.out + out.err, Not(HasSubstr(secret))) << output << " " << args[0];
      }
    }
  }
  std::string spec = cluster_.dir() + "/hello.yaml";
  testing::WriteTextFile(spec, SpecYaml());
  CommandOutput applied = cluster_.Fleetctl({"--output", "json", "app", "apply", "-f", spec});
  EXPECT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_THAT(applied.out, Not(HasSubstr(kQueryToken)));
  EXPECT_THAT(applied.out, Not(HasSubstr(kDingTalkSecret)));

  // The agent was sent what it acts on (the probe's URL) and nothing else.
  std::string on_host = cluster_.AgentLog(0);
  for (const std::string& dir : {cluster_.StateDir(0), cluster_.AppsRoot(0)}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
      if (entry.is_regular_file()) on_host += testing::ReadTextFile(entry.path().string());
    }
  }
  EXPECT_THAT(on_host, HasSubstr(kHealthPassword));
  for (const char* secret :
       {kQueryToken, kDingTalkSecret, kUserinfoPassword, kSlackToken, kPrometheusPassword}) {
    EXPECT_THAT(on_host, Not(HasSubstr(secret))) << secret;
  }
}

TEST_F(E2ERedactionTest, ConfigPathsOfVcsDirsAndBackups_AreRefusedFromAnyClient) {
  fleet::v1::ApplyAppRequest apply;
  apply.set_spec_yaml(SpecYaml());
  Call("ApplyApp", &FleetService::Stub::ApplyApp, apply);
  for (const char* path : {".git/config", "conf/.svn/entries", "app.env~", ".app.env.swp"}) {
    fleet::v1::PushConfigRequest req;
    req.set_app("hello");
    req.set_version("c1");
    auto* file = req.add_files();
    file->set_path(path);
    file->set_content("A=1\n");
    fleet::v1::PushConfigResponse resp;
    grpc::Status st = stub_->PushConfig(Context().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << path;
    EXPECT_THAT(st.error_message(), HasSubstr(absl::StrCat("config path '", path, "'")));
  }
  CommandOutput list = cluster_.Fleetctl({"config", "list", "hello"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, Not(HasSubstr("c1")));
}

TEST_F(E2ERedactionTest, MultiDocumentSpec_IsRefusedInOneLine) {
  std::string spec = cluster_.dir() + "/two.yaml";
  testing::WriteTextFile(spec, SpecYaml() + "---\nname: other\n");
  CommandOutput out = cluster_.Fleetctl({"app", "apply", "-f", spec});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.err, HasSubstr("holds 2 YAML documents; an app spec is one document"));
  EXPECT_EQ(std::count(out.err.begin(), out.err.end(), '\n'), 1) << out.err;
  CommandOutput list = cluster_.Fleetctl({"app", "list"});
  EXPECT_THAT(list.out, Not(HasSubstr("hello")));
}

}  // namespace
}  // namespace fleet
