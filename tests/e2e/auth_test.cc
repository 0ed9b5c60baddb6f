// End-to-end: a real controller started with --auth and a real agent. API
// tokens are required: the bootstrap admin token, roles, app scopes,
// revocation, and the audit trail of every denial.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "fleet/v1/api.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"

namespace fleet {
namespace {

using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;
using ::testing::HasSubstr;
using ::testing::Not;

ClusterOptions AuthOptions() {
  ClusterOptions options;
  options.agents = 1;
  options.auth = true;
  return options;
}

// The secret and public id of a token made by `token create`.
struct NewToken {
  std::string token;
  std::string id;
};

class E2EAuthTest : public ::testing::Test {
 protected:
  E2EAuthTest() : cluster_(AuthOptions()) {}

  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(1)) << cluster_.ControllerLog();
    cluster_.ApplyHelloSpec();
  }

  std::string AdminToken() const {
    return std::string(
        absl::StripAsciiWhitespace(testing::ReadTextFile(cluster_.AdminTokenPath())));
  }

  // Creates a token as the bootstrap admin.
  NewToken Create(const std::string& role, const std::string& app = "") {
    std::vector<std::string> args = {"--output", "json", "token", "create", "--role", role};
    if (!app.empty()) args.insert(args.end(), {"--app", app});
    CommandOutput out = cluster_.Fleetctl(args);
    EXPECT_EQ(out.exit_code, 0) << out.err;
    nlohmann::json doc = nlohmann::json::parse(out.out, nullptr, false);
    if (!doc.is_object()) {
      ADD_FAILURE() << "not JSON: " << out.out;
      return {};
    }
    return {doc.value("token", ""), doc["info"].value("id", "")};
  }

  void PushHello(const std::string& version, const std::string& token) {
    std::string artifact = cluster_.MakeHelloArtifact(version);
    CommandOutput out =
        cluster_.FleetctlWithToken(token, {"release", "push", "hello", version, artifact});
    ASSERT_EQ(out.exit_code, 0) << out.err;
  }

  // Rollouts of `app` in `rollout list`: its rows after the header.
  int RolloutCount(const std::string& app) {
    CommandOutput out = cluster_.Fleetctl({"--output", "json", "rollout", "list", app});
    EXPECT_EQ(out.exit_code, 0) << out.err;
    nlohmann::json doc = nlohmann::json::parse(out.out, nullptr, false);
    if (!doc.is_object() || !doc.contains("rollouts")) return 0;
    return static_cast<int>(doc["rollouts"].size());
  }

  Cluster cluster_;
};

TEST_F(E2EAuthTest, BootstrapAdminToken_IsWrittenWithMode0600AndNeverLogged) {
  struct stat st {};
  ASSERT_EQ(stat(cluster_.AdminTokenPath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string token = AdminToken();
  EXPECT_TRUE(absl::StartsWith(token, "fleet_")) << token;
  EXPECT_EQ(token.size(), 70u);
  const std::string log = cluster_.ControllerLog();
  EXPECT_THAT(log, HasSubstr("created the first admin token in " + cluster_.AdminTokenPath()));
  EXPECT_THAT(log, Not(HasSubstr(token)));
  EXPECT_THAT(log, Not(HasSubstr(token.substr(6))));
}

TEST_F(E2EAuthTest, RequestWithoutTokenOrWithWrongToken_IsRejectedAndRecorded) {
  CommandOutput none = cluster_.FleetctlWithToken("", {"app", "list"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_EQ(none.err, "fleetctl: missing API token (set FLEET_TOKEN or --token)\n");

  // The rollout first: later denials for the same reason from this address
  // are only counted for a minute.
  const std::string wrong = "fleet_" + std::string(64, '0');
  PushHello("v1", AdminToken());
  CommandOutput rollout = cluster_.FleetctlWithToken(wrong, {"rollout", "hello", "v1"});
  EXPECT_EQ(rollout.exit_code, 1);
  EXPECT_THAT(rollout.err, HasSubstr("invalid API token"));
  EXPECT_EQ(RolloutCount("hello"), 0);

  CommandOutput bad = cluster_.FleetctlWithToken(wrong, {"app", "list"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.err, "fleetctl: invalid API token\n");

  std::vector<nlohmann::json> denied = cluster_.HistoryEvents("hello", "auth.denied");
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(denied[0].value("actor", ""), "anonymous");
  EXPECT_THAT(denied[0].value("message", ""), HasSubstr("StartRollout from "));
  EXPECT_THAT(denied[0].value("message", ""), Not(HasSubstr(wrong)));
}

TEST_F(E2EAuthTest, Viewer_ReadsEveryAppButCannotRollOut) {
  PushHello("v1", AdminToken());
  NewToken viewer = Create("viewer");
  ASSERT_FALSE(viewer.token.empty());

  for (std::vector<std::string> read :
       std::vector<std::vector<std::string>>{{"app", "list"},
                                             {"status", "hello"},
                                             {"history", "hello"},
                                             {"hosts"},
                                             {"release", "list", "hello"}}) {
    CommandOutput out = cluster_.FleetctlWithToken(viewer.token, read);
    EXPECT_EQ(out.exit_code, 0) << read[0] << ": " << out.err;
  }

  CommandOutput rollout = cluster_.FleetctlWithToken(viewer.token, {"rollout", "hello", "v1"});
  EXPECT_EQ(rollout.exit_code, 1);
  EXPECT_EQ(rollout.err, absl::StrCat("fleetctl: token ", viewer.id,
                                      " (viewer) may not roll out app 'hello'\n"));
  EXPECT_EQ(RolloutCount("hello"), 0);
  EXPECT_EQ(cluster_.Current(0), "");

  std::vector<nlohmann::json> denied = cluster_.HistoryEvents("hello", "auth.denied");
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(denied[0].value("actor", ""), viewer.id);
  EXPECT_THAT(denied[0].value("message", ""), HasSubstr("(viewer) may not roll out app 'hello'"));
  EXPECT_THAT(denied[0].value("message", ""), Not(HasSubstr(viewer.token)));
}

TEST_F(E2EAuthTest, ScopedDeployer_RollsOutItsAppButNotAnotherAndCannotApplyApps) {
  cluster_.ApplyExecSpec("other", "200ms");
  CommandOutput pushed_other = cluster_.Fleetctl(
      {"release", "push", "other", "o1", cluster_.MakeExecArtifact("o1", /*healthy=*/true)});
  ASSERT_EQ(pushed_other.exit_code, 0) << pushed_other.err;
  NewToken deployer = Create("deployer", "hello");
  ASSERT_FALSE(deployer.token.empty());

  PushHello("v1", deployer.token);
  CommandOutput deployed =
      cluster_.FleetctlWithToken(deployer.token, {"rollout", "hello", "v1", "--wait"});
  EXPECT_EQ(deployed.exit_code, 0) << deployed.out << deployed.err;
  EXPECT_EQ(cluster_.Current(0), "v1");
  CommandOutput history = cluster_.Fleetctl({"history", "hello"});
  EXPECT_THAT(history.out, HasSubstr(absl::StrCat("tester@ci (token ", deployer.id, ")")));

  CommandOutput other = cluster_.FleetctlWithToken(deployer.token, {"rollout", "other", "o1"});
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_EQ(other.err, absl::StrCat("fleetctl: token ", deployer.id,
                                    " (deployer for app 'hello') may not roll out app 'other'\n"));
  EXPECT_EQ(RolloutCount("other"), 0);
  CommandOutput rollback = cluster_.FleetctlWithToken(deployer.token, {"rollback", "other"});
  EXPECT_EQ(rollback.exit_code, 1);
  EXPECT_THAT(rollback.err, HasSubstr("may not roll back app 'other'"));
  CommandOutput push = cluster_.FleetctlWithToken(
      deployer.token,
      {"release", "push", "other", "o2", cluster_.MakeExecArtifact("o2", /*healthy=*/true)});
  EXPECT_EQ(push.exit_code, 1);
  EXPECT_THAT(push.err, HasSubstr("may not push releases of app 'other'"));

  CommandOutput apply = cluster_.FleetctlWithToken(
      deployer.token, {"app", "apply", "-f", cluster_.dir() + "/hello.yaml"});
  EXPECT_EQ(apply.exit_code, 1);
  // Decided before the spec is read, so about no one app.
  EXPECT_THAT(apply.err, HasSubstr("(deployer for app 'hello') may not apply app specs"));
  EXPECT_EQ(cluster_.HistoryEvents("other", "auth.denied").size(), 3u);
  EXPECT_EQ(cluster_.HistoryEvents("hello", "auth.denied").size(), 0u);
}

TEST_F(E2EAuthTest, ScopedDeployer_CannotSteerRolloutsOrPushConfigsOfAnotherApp) {
  cluster_.ApplyExecSpec("other", "200ms");
  CommandOutput pushed = cluster_.Fleetctl(
      {"release", "push", "other", "o1", cluster_.MakeExecArtifact("o1", /*healthy=*/true)});
  ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
  CommandOutput started = cluster_.Fleetctl({"rollout", "other", "o1", "--manual-promote"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  CommandOutput listed = cluster_.Fleetctl({"--output", "json", "rollout", "list", "other"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  nlohmann::json doc = nlohmann::json::parse(listed.out, nullptr, false);
  ASSERT_TRUE(doc.is_object() && doc.contains("rollouts") && !doc["rollouts"].empty())
      << listed.out;
  const std::string id = doc["rollouts"][0].value("id", "");
  ASSERT_FALSE(id.empty()) << listed.out;
  NewToken deployer = Create("deployer", "hello");
  ASSERT_FALSE(deployer.token.empty());

  for (const char* action : {"pause", "resume", "promote", "abort"}) {
    CommandOutput out = cluster_.FleetctlWithToken(deployer.token, {"rollout", action, id});
    EXPECT_EQ(out.exit_code, 1) << action << ": " << out.out;
    EXPECT_THAT(out.err, HasSubstr(absl::StrCat(action, " rollouts of app 'other'"))) << action;
  }
  const std::string config_dir = cluster_.dir() + "/other-config";
  ASSERT_EQ(mkdir(config_dir.c_str(), 0755), 0);
  testing::WriteTextFile(config_dir + "/app.conf", "port = 8080\n");
  CommandOutput config =
      cluster_.FleetctlWithToken(deployer.token, {"config", "push", "other", "c1", config_dir});
  EXPECT_EQ(config.exit_code, 1);
  EXPECT_THAT(config.err, HasSubstr("may not push configs of app 'other'"));
  EXPECT_EQ(cluster_.HistoryEvents("other", "auth.denied").size(), 5u);
}

TEST_F(E2EAuthTest, AnonymousApplyApp_WithInvalidYamlIsUnauthenticatedNotParsed) {
  const std::string spec = cluster_.dir() + "/broken.yaml";
  testing::WriteTextFile(spec, "name: [unclosed\n\t- {\n");
  CommandOutput out = cluster_.FleetctlWithToken("", {"app", "apply", "-f", spec});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_EQ(out.err, "fleetctl: missing API token (set FLEET_TOKEN or --token)\n");
}

TEST_F(E2EAuthTest, EveryFleetServiceMethod_WithoutTokenIsUnauthenticated) {
  grpc::GenericStub client(
      grpc::CreateChannel(cluster_.address(), grpc::InsecureChannelCredentials()));
  // Every method the proto declares, so that a new RPC is covered too.
  const google::protobuf::ServiceDescriptor* service =
      fleet::v1::ApplyAppRequest::descriptor()->file()->FindServiceByName("FleetService");
  ASSERT_NE(service, nullptr);
  ASSERT_GT(service->method_count(), 0);
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string method =
        absl::StrCat("/", service->full_name(), "/", service->method(i)->name());
    // An empty message is a valid encoding of every request type; a
    // streaming method sees one message and the end of the stream.
    grpc::ByteBuffer request(nullptr, 0);
    grpc::ByteBuffer response;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    std::promise<grpc::Status> done;
    client.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                   [&done](grpc::Status status) { done.set_value(std::move(status)); });
    grpc::Status status = done.get_future().get();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << method << ": " << status.error_message();
  }
}

TEST_F(E2EAuthTest, Admin_ManagesTokensAndListingNeverShowsOne) {
  NewToken viewer = Create("viewer");
  NewToken deployer = Create("deployer", "hello");
  CommandOutput created_text = cluster_.Fleetctl(
      {"token", "create", "--role", "deployer", "--description", "CI of every app"});
  ASSERT_EQ(created_text.exit_code, 0) << created_text.err;
  const std::string printed(absl::StripAsciiWhitespace(created_text.out));
  EXPECT_TRUE(absl::StartsWith(printed, "fleet_")) << created_text.out;
  EXPECT_THAT(created_text.err, HasSubstr("shown only this once"));

  for (const char* output : {"text", "json"}) {
    CommandOutput list = cluster_.Fleetctl({"--output", output, "token", "list"});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    EXPECT_THAT(list.out, HasSubstr(viewer.id));
    EXPECT_THAT(list.out, HasSubstr(deployer.id));
    EXPECT_THAT(list.out, HasSubstr("CI of every app"));
    EXPECT_THAT(list.out, HasSubstr("bootstrap admin"));
    for (const std::string& secret : {viewer.token, deployer.token, printed, AdminToken()}) {
      EXPECT_THAT(list.out, Not(HasSubstr(secret.substr(6)))) << output;
    }
  }

  CommandOutput by_deployer = cluster_.FleetctlWithToken(deployer.token, {"token", "list"});
  EXPECT_EQ(by_deployer.exit_code, 1);
  EXPECT_THAT(by_deployer.err, HasSubstr("may not manage API tokens"));
  CommandOutput scoped_admin =
      cluster_.Fleetctl({"token", "create", "--role", "admin", "--app", "hello"});
  EXPECT_EQ(scoped_admin.exit_code, 1);
  EXPECT_THAT(scoped_admin.err, HasSubstr("an admin token cannot be limited to app 'hello'"));

  CommandOutput revoke = cluster_.Fleetctl({"token", "revoke", viewer.id});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  EXPECT_THAT(revoke.out, HasSubstr("revoked viewer token " + viewer.id));
  CommandOutput revoked = cluster_.FleetctlWithToken(viewer.token, {"app", "list"});
  EXPECT_EQ(revoked.exit_code, 1);
  EXPECT_EQ(revoked.err, "fleetctl: invalid API token\n");
  CommandOutput unknown = cluster_.Fleetctl({"token", "revoke", "000000000000"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("unknown API token '000000000000'"));
  CommandOutput still = cluster_.FleetctlWithToken(deployer.token, {"app", "list"});
  EXPECT_EQ(still.exit_code, 0) << still.err;
}

TEST_F(E2EAuthTest, Tokens_SurviveControllerRestart) {
  NewToken viewer = Create("viewer");
  const std::string admin = AdminToken();
  cluster_.KillController();
  cluster_.StartController();
  ASSERT_TRUE(cluster_.WaitForConnectedHosts(1)) << cluster_.ControllerLog();
  EXPECT_EQ(AdminToken(), admin);
  CommandOutput list = cluster_.FleetctlWithToken(viewer.token, {"app", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("hello"));
  CommandOutput none = cluster_.FleetctlWithToken("", {"app", "list"});
  EXPECT_EQ(none.exit_code, 1);
}

// Development mode (plaintext on loopback, no --auth): no token needed, and
// none is written.
TEST(E2EAuthOffTest, DevelopmentModeWithoutAuth_NeedsNoTokenAndWritesNone) {
  ClusterOptions options;
  options.agents = 0;
  Cluster cluster(options);
  CommandOutput list = cluster.FleetctlWithToken("", {"app", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  struct stat st {};
  EXPECT_NE(stat(cluster.AdminTokenPath().c_str(), &st), 0);
  EXPECT_THAT(cluster.ControllerLog(), HasSubstr("is unauthenticated (development mode"));
}

}  // namespace
}  // namespace fleet
