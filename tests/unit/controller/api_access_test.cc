#include "controller/api_access.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "controller/api_token.h"
#include "controller/sqlite_store.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::controller {
namespace {

using ::fleet::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

class ApiAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(dir_.Sub("fleet.db"));
    ASSERT_OK(store);
    store_ = std::move(*store);
    for (const char* name : {"api", "web"}) {
      fleet::v1::App app;
      app.mutable_spec()->set_name(name);
      ASSERT_OK(store_->UpsertApp(app, nullptr));
    }
    // The admin every test starts from, stored as bootstrap would.
    ASSERT_OK(EnsureFirstAdminToken(store_.get(), AdminTokenPath()));
    admin_token_ =
        std::string(absl::StripAsciiWhitespace(fleet::testing::ReadTextFile(AdminTokenPath())));
    access_ = std::make_unique<ApiAccess>(store_.get(), /*required=*/true, &clock_);
  }

  std::string AdminTokenPath() const { return dir_.Sub("admin.token"); }

  static ApiCall Call(const std::string& rpc, const std::string& token,
                      const std::string& peer = "ipv4:127.0.0.1:50412") {
    ApiCall call;
    call.rpc = rpc;
    call.peer = peer;
    if (!token.empty()) call.authorization = absl::StrCat("Bearer ", token);
    return call;
  }

  // Creates a token with the admin's rights; returns the secret.
  std::string Create(fleet::v1::Role role, const std::string& app = "") {
    fleet::v1::CreateTokenRequest req;
    req.set_role(role);
    req.set_app(app);
    req.set_actor("alice (token admin)");
    absl::StatusOr<fleet::v1::CreateTokenResponse> resp = access_->CreateToken(req);
    EXPECT_OK(resp);
    return resp.ok() ? resp->token() : "";
  }

  std::vector<fleet::v1::Event> Events(const std::string& kind) {
    std::vector<fleet::v1::Event> out;
    absl::StatusOr<std::vector<fleet::v1::Event>> events = store_->ListEvents("", 0);
    EXPECT_OK(events);
    if (!events.ok()) return out;
    for (const fleet::v1::Event& e : *events) {
      if (e.kind() == kind) out.push_back(e);
    }
    return out;
  }

  fleet::testing::TempDir dir_;
  fleet::testing::FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ApiAccess> access_;
  std::string admin_token_;
};

TEST_F(ApiAccessTest, Admit_RefusesCallWithoutTokenAndRecordsIt) {
  EXPECT_THAT(access_->Admit(Call("ListApps", ""), ApiAction::kRead, ""),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       "missing API token (set FLEET_TOKEN or --token)"));
  // From another address: one address is recorded once a minute.
  ApiCall basic = Call("ListApps", "", "ipv4:127.0.0.2:50413");
  basic.authorization = "Basic dXNlcjpwYXNz";
  EXPECT_THAT(access_->Admit(basic, ApiAction::kRead, "web"),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("missing API token")));
  std::vector<fleet::v1::Event> denied = Events("auth.denied");
  ASSERT_EQ(denied.size(), 2u);
  EXPECT_EQ(denied[0].app(), "web");  // newest first
  EXPECT_EQ(denied[0].actor(), "anonymous");
  EXPECT_EQ(denied[1].message(),
            "ListApps from ipv4:127.0.0.1:50412 denied: missing API token (set FLEET_TOKEN or "
            "--token)");
}

TEST_F(ApiAccessTest, Admit_RefusesWrongTokenAndRecordsTheDenialWithoutTheToken) {
  absl::StatusOr<GeneratedApiToken> unknown = GenerateApiToken();
  ASSERT_OK(unknown);
  EXPECT_THAT(access_->Admit(Call("StartRollout", unknown->token), ApiAction::kRollOut, "web"),
              StatusIs(absl::StatusCode::kUnauthenticated, "invalid API token"));
  EXPECT_THAT(access_->Admit(Call("ListApps", "hunter2", "ipv6:[::1]:50414"), ApiAction::kRead, ""),
              StatusIs(absl::StatusCode::kUnauthenticated, "invalid API token"));
  std::vector<fleet::v1::Event> denied = Events("auth.denied");
  ASSERT_EQ(denied.size(), 2u);
  for (const fleet::v1::Event& e : denied) {
    EXPECT_EQ(e.actor(), "anonymous");
    EXPECT_THAT(e.message(), Not(HasSubstr(unknown->token)));
    EXPECT_THAT(e.message(), Not(HasSubstr("hunter2")));
  }
  EXPECT_EQ(denied[1].app(), "web");
}

TEST_F(ApiAccessTest, Admit_RecordsOnlyAnAppTheStoreKnows) {
  EXPECT_THAT(access_->Admit(Call("ListReleases", ""), ApiAction::kRead, "no-such-app"),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("missing API token")));
  const std::string deployer = Create(fleet::v1::ROLE_DEPLOYER, "api");
  EXPECT_THAT(access_->Admit(Call("StartRollout", deployer), ApiAction::kRollOut, "ghost"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  std::vector<fleet::v1::Event> denied = Events("auth.denied");
  ASSERT_EQ(denied.size(), 2u);
  for (const fleet::v1::Event& e : denied) EXPECT_EQ(e.app(), "");
}

TEST_F(ApiAccessTest, Admit_RecordsAnonymousDenialsOncePerWindowPerAddressAndReason) {
  const auto deny_anonymous = [&](const std::string& peer) {
    EXPECT_THAT(access_->Admit(Call("ListApps", "", peer), ApiAction::kRead, ""),
                StatusIs(absl::StatusCode::kUnauthenticated,
                         "missing API token (set FLEET_TOKEN or --token)"));
  };
  // A new port is the same address.
  for (int port = 40000; port < 40005; ++port) deny_anonymous(absl::StrCat("ipv4:10.0.0.7:", port));
  EXPECT_EQ(Events("auth.denied").size(), 1u);
  // Another reason or another address is recorded on its own.
  EXPECT_THAT(
      access_->Admit(Call("ListApps", "hunter2", "ipv4:10.0.0.7:40006"), ApiAction::kRead, ""),
      StatusIs(absl::StatusCode::kUnauthenticated, "invalid API token"));
  deny_anonymous("ipv4:10.0.0.8:40000");
  EXPECT_EQ(Events("auth.denied").size(), 3u);

  clock_.Advance(ApiAccess::kAnonymousDenialWindow - absl::Seconds(1));
  deny_anonymous("ipv4:10.0.0.7:40007");
  EXPECT_EQ(Events("auth.denied").size(), 3u);
  clock_.Advance(absl::Seconds(1));
  deny_anonymous("ipv4:10.0.0.7:40008");
  std::vector<fleet::v1::Event> denied = Events("auth.denied");
  ASSERT_EQ(denied.size(), 4u);
  EXPECT_EQ(denied[0].message(),
            "ListApps from ipv4:10.0.0.7:40008 denied: missing API token (set FLEET_TOKEN or "
            "--token) (5 more since)");  // newest first

  // Callers with a valid token are recorded every time.
  const std::string viewer = Create(fleet::v1::ROLE_VIEWER);
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(access_->Admit(Call("StartRollout", viewer), ApiAction::kRollOut, "web"),
                StatusIs(absl::StatusCode::kPermissionDenied));
  }
  EXPECT_EQ(Events("auth.denied").size(), 7u);
}

TEST_F(ApiAccessTest, Admit_RecordsAnonymousDenialsOfManyAddressesInBoundedMemory) {
  const size_t addresses = ApiAccess::kMaxAnonymousDenialKeys + 20;
  for (size_t i = 0; i < addresses; ++i) {
    EXPECT_THAT(access_->Admit(Call("ListApps", "", absl::StrCat("ipv6:[fd00::", i, "]:1")),
                               ApiAction::kRead, ""),
                StatusIs(absl::StatusCode::kUnauthenticated));
  }
  // The addresses beyond the limit share one window.
  EXPECT_EQ(Events("auth.denied").size(), ApiAccess::kMaxAnonymousDenialKeys + 1);
}

TEST(ClientTextTest, ClientText_EscapesControlCharactersAndCapsLength) {
  EXPECT_EQ(ClientText("web"), "web");
  EXPECT_EQ(ClientText("a\nb\x1b[31m\\c\x7f"), "a\\x0ab\\x1b[31m\\\\c\\x7f");
  const std::string long_text(500, 'x');
  EXPECT_EQ(ClientText(long_text), std::string(kMaxClientTextBytes, 'x') + "…");
  // A cut never splits a UTF-8 character.
  const std::string accents = std::string(kMaxClientTextBytes - 1, 'x') + "é";
  EXPECT_EQ(ClientText(accents + "y"), std::string(kMaxClientTextBytes - 1, 'x') + "…");
}

TEST_F(ApiAccessTest, Admit_EscapesClientTextInDenialsAndActors) {
  const std::string deployer = Create(fleet::v1::ROLE_DEPLOYER, "api");
  const std::string app = "web\nFAKE auth.ok\x1b[0m";
  absl::StatusOr<ApiCaller> denied =
      access_->Admit(Call("StartRollout", deployer), ApiAction::kRollOut, app);
  ASSERT_THAT(denied, StatusIs(absl::StatusCode::kPermissionDenied,
                               HasSubstr("may not roll out app 'web\\x0aFAKE auth.ok\\x1b[0m'")));
  std::vector<fleet::v1::Event> events = Events("auth.denied");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].app(), "");
  EXPECT_THAT(events[0].message(), Not(HasSubstr("\n")));
  EXPECT_THAT(events[0].message(), Not(HasSubstr("\x1b")));

  absl::StatusOr<ApiCaller> caller =
      access_->Admit(Call("ListApps", deployer), ApiAction::kRead, "");
  ASSERT_OK(caller);
  EXPECT_EQ(caller->Actor("eve\r\nok"),
            absl::StrCat("eve\\x0d\\x0aok (token ", caller->token()->id(), ")"));
}

TEST_F(ApiAccessTest, Admit_LetsValidTokenInAndNamesItInTheActor) {
  absl::StatusOr<ApiCaller> caller =
      access_->Admit(Call("ApplyApp", admin_token_), ApiAction::kApplyApp, "web");
  ASSERT_OK(caller);
  ASSERT_TRUE(caller->token().has_value());
  const std::string id = caller->token()->id();
  EXPECT_EQ(id, ApiTokenId(HashApiToken(admin_token_)));
  EXPECT_EQ(caller->Actor("alice@laptop"), absl::StrCat("alice@laptop (token ", id, ")"));
  EXPECT_EQ(caller->Actor(""), absl::StrCat("token ", id));
  EXPECT_TRUE(Events("auth.denied").empty());
}

TEST_F(ApiAccessTest, Admit_ViewerReadsButCannotRollOut) {
  const std::string viewer = Create(fleet::v1::ROLE_VIEWER);
  EXPECT_OK(access_->Admit(Call("GetAppStatus", viewer), ApiAction::kRead, "web"));
  absl::StatusOr<ApiCaller> denied =
      access_->Admit(Call("StartRollout", viewer), ApiAction::kRollOut, "web");
  EXPECT_THAT(denied, StatusIs(absl::StatusCode::kPermissionDenied,
                               HasSubstr("(viewer) may not roll out app 'web'")));
  std::vector<fleet::v1::Event> events = Events("auth.denied");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].app(), "web");
  EXPECT_EQ(events[0].actor(), ApiTokenId(HashApiToken(viewer)));
  EXPECT_THAT(events[0].message(), HasSubstr("StartRollout from ipv4:127.0.0.1:50412 denied"));
  EXPECT_THAT(events[0].message(), Not(HasSubstr(viewer)));
}

TEST_F(ApiAccessTest, Admit_ScopedDeployerRollsOutItsAppOnly) {
  const std::string deployer = Create(fleet::v1::ROLE_DEPLOYER, "api");
  const std::string id = ApiTokenId(HashApiToken(deployer));
  EXPECT_OK(access_->Admit(Call("StartRollout", deployer), ApiAction::kRollOut, "api"));
  EXPECT_OK(access_->Admit(Call("ListApps", deployer), ApiAction::kRead, ""));
  EXPECT_OK(access_->Admit(Call("GetHistory", deployer), ApiAction::kRead, "web"));
  EXPECT_THAT(
      access_->Admit(Call("StartRollout", deployer), ApiAction::kRollOut, "web"),
      StatusIs(absl::StatusCode::kPermissionDenied,
               absl::StrCat("token ", id, " (deployer for app 'api') may not roll out app 'web'")));
  EXPECT_THAT(access_->Admit(Call("ApplyApp", deployer), ApiAction::kApplyApp, "api"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(Events("auth.denied").size(), 2u);
}

TEST_F(ApiAccessTest, Authenticate_RefusesRevokedTokenAndNamesItOnlyInTheRecord) {
  const std::string deployer = Create(fleet::v1::ROLE_DEPLOYER);
  const std::string id = ApiTokenId(HashApiToken(deployer));
  EXPECT_OK(access_->Authenticate(Call("ListApps", deployer), ""));
  absl::StatusOr<fleet::v1::TokenInfo> revoked = access_->RevokeToken(id, "alice");
  ASSERT_OK(revoked);
  EXPECT_NE(revoked->revoked_at_ms(), 0);
  EXPECT_THAT(access_->Authenticate(Call("ListApps", deployer), ""),
              StatusIs(absl::StatusCode::kUnauthenticated, "invalid API token"));
  std::vector<fleet::v1::Event> denied = Events("auth.denied");
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(denied[0].actor(), id);
  EXPECT_THAT(denied[0].message(), HasSubstr(absl::StrCat("token ", id, " is revoked")));
  ASSERT_EQ(Events("token.revoked").size(), 1u);
  EXPECT_EQ(Events("token.revoked")[0].actor(), "alice");
}

TEST_F(ApiAccessTest, CreateToken_RefusesScopedAdminOrViewerUnknownAppAndNoRole) {
  fleet::v1::CreateTokenRequest req;
  req.set_role(fleet::v1::ROLE_ADMIN);
  req.set_app("api");
  EXPECT_THAT(access_->CreateToken(req), StatusIs(absl::StatusCode::kInvalidArgument,
                                                  HasSubstr("admin token cannot be limited")));
  req.set_role(fleet::v1::ROLE_VIEWER);
  EXPECT_THAT(access_->CreateToken(req), StatusIs(absl::StatusCode::kInvalidArgument));
  req.set_role(fleet::v1::ROLE_DEPLOYER);
  req.set_app("nope");
  EXPECT_THAT(access_->CreateToken(req),
              StatusIs(absl::StatusCode::kNotFound,
                       "cannot create a deployer token for app 'nope': unknown app 'nope'"));
  req.set_role(fleet::v1::ROLE_UNSPECIFIED);
  req.set_app("");
  EXPECT_THAT(access_->CreateToken(req), StatusIs(absl::StatusCode::kInvalidArgument));
  req.set_role(fleet::v1::ROLE_VIEWER);
  req.set_description(std::string(257, 'x'));
  EXPECT_THAT(access_->CreateToken(req), StatusIs(absl::StatusCode::kInvalidArgument));
  // Only the bootstrap admin is stored.
  EXPECT_EQ(store_->CountTokens().value_or(-1), 1);
}

TEST_F(ApiAccessTest, CreateToken_StoresOnlyTheHashAndRecordsAnEvent) {
  fleet::v1::CreateTokenRequest req;
  req.set_role(fleet::v1::ROLE_DEPLOYER);
  req.set_app("api");
  req.set_description("CI of api");
  req.set_actor("alice (token 111111111111)");
  absl::StatusOr<fleet::v1::CreateTokenResponse> resp = access_->CreateToken(req);
  ASSERT_OK(resp);
  EXPECT_TRUE(IsWellFormedApiToken(resp->token()));
  EXPECT_EQ(resp->info().role(), fleet::v1::ROLE_DEPLOYER);
  EXPECT_EQ(resp->info().app(), "api");
  EXPECT_EQ(resp->info().created_by(), "alice (token 111111111111)");
  absl::StatusOr<fleet::v1::TokenInfo> stored =
      store_->FindTokenByHash(HashApiToken(resp->token()));
  ASSERT_OK(stored);
  EXPECT_EQ(stored->DebugString(), resp->info().DebugString());
  const std::string db = fleet::testing::ReadTextFile(dir_.Sub("fleet.db")) +
                         fleet::testing::ReadTextFile(dir_.Sub("fleet.db-wal"));
  EXPECT_EQ(db.find(resp->token()), std::string::npos);
  std::vector<fleet::v1::Event> created = Events("token.created");
  ASSERT_EQ(created.size(), 2u);  // and the bootstrap admin's
  EXPECT_EQ(created[0].app(), "api");
  EXPECT_THAT(created[0].message(), HasSubstr("(deployer for app 'api'): CI of api"));
  EXPECT_THAT(created[0].message(), Not(HasSubstr(resp->token())));
}

TEST_F(ApiAccessTest, RevokeToken_RefusesTheLastValidAdminAndUnknownIds) {
  const std::string bootstrap_id = ApiTokenId(HashApiToken(admin_token_));
  EXPECT_THAT(
      access_->RevokeToken(bootstrap_id, "alice"),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is the last valid admin token")));
  EXPECT_OK(access_->Authenticate(Call("ListApps", admin_token_), ""));
  EXPECT_THAT(access_->RevokeToken("000000000000", "alice"),
              StatusIs(absl::StatusCode::kNotFound, "unknown API token '000000000000'"));
  const std::string second = Create(fleet::v1::ROLE_ADMIN);
  EXPECT_OK(access_->RevokeToken(bootstrap_id, "alice"));
  // Again is a no-op, not a refusal, and records nothing more.
  EXPECT_OK(access_->RevokeToken(bootstrap_id, "alice"));
  EXPECT_EQ(Events("token.revoked").size(), 1u);
  EXPECT_THAT(access_->RevokeToken(ApiTokenId(HashApiToken(second)), "alice"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(ApiAccessTest, AuthOff_LetsEveryCallInWithTheClientActor) {
  ApiAccess open(store_.get(), /*required=*/false);
  absl::StatusOr<ApiCaller> caller = open.Admit(Call("ApplyApp", ""), ApiAction::kApplyApp, "web");
  ASSERT_OK(caller);
  EXPECT_FALSE(caller->token().has_value());
  EXPECT_EQ(caller->Actor("alice@laptop"), "alice@laptop");
  EXPECT_OK(open.Admit(Call("ListApps", "hunter2"), ApiAction::kManageTokens, ""));
  EXPECT_TRUE(Events("auth.denied").empty());
}

TEST_F(ApiAccessTest, FirstAdminToken_IsWrittenWithMode0600AndStoredHashed) {
  struct stat st {};
  ASSERT_EQ(stat(AdminTokenPath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(IsWellFormedApiToken(admin_token_));
  absl::StatusOr<fleet::v1::TokenInfo> stored = store_->FindTokenByHash(HashApiToken(admin_token_));
  ASSERT_OK(stored);
  EXPECT_EQ(stored->role(), fleet::v1::ROLE_ADMIN);
  EXPECT_EQ(stored->app(), "");
  EXPECT_EQ(stored->description(), "bootstrap admin");
  EXPECT_EQ(access(dir_.Sub("admin.token.tmp").c_str(), F_OK), -1);
}

TEST(FirstAdminTokenTest, FirstAdminToken_LeavesFileAloneWhenTokensExist) {
  fleet::testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(dir.Sub("fleet.db"));
  ASSERT_OK(store);
  const std::string path = dir.Sub("admin.token");
  ASSERT_OK(EnsureFirstAdminToken(store->get(), path));
  const std::string first = fleet::testing::ReadTextFile(path);
  // A second start changes nothing, and neither does one after the admin
  // removed the file.
  ASSERT_OK(EnsureFirstAdminToken(store->get(), path));
  EXPECT_EQ(fleet::testing::ReadTextFile(path), first);
  ASSERT_EQ(unlink(path.c_str()), 0);
  ASSERT_OK(EnsureFirstAdminToken(store->get(), path));
  EXPECT_EQ(access(path.c_str(), F_OK), -1);
  EXPECT_EQ((*store)->CountTokens().value_or(-1), 1);
}

// A controller killed after writing admin.token but before storing the
// token: the next start stores the token of the file instead of a new one.
TEST(FirstAdminTokenTest, FirstAdminToken_StoresTheTokenOfAFileLeftByAnEarlierStart) {
  fleet::testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(dir.Sub("fleet.db"));
  ASSERT_OK(store);
  absl::StatusOr<GeneratedApiToken> left = GenerateApiToken();
  ASSERT_OK(left);
  const std::string path = dir.Sub("admin.token");
  fleet::testing::WriteTextFile(path, left->token + "\n", 0600);
  // Killed after linking, before removing the temporary file.
  fleet::testing::WriteTextFile(path + ".tmp", left->token + "\n", 0600);
  ASSERT_OK(EnsureFirstAdminToken(store->get(), path));
  EXPECT_EQ(fleet::testing::ReadTextFile(path), left->token + "\n");
  EXPECT_EQ(access((path + ".tmp").c_str(), F_OK), -1);
  absl::StatusOr<fleet::v1::TokenInfo> stored = (*store)->FindTokenByHash(left->hash);
  ASSERT_OK(stored);
  EXPECT_EQ(stored->id(), left->id);
  EXPECT_EQ(stored->role(), fleet::v1::ROLE_ADMIN);
}

// Killed before linking the temporary file: its token was never stored nor
// given to anyone, so a new one replaces it.
TEST(FirstAdminTokenTest, FirstAdminToken_ReplacesTheTempFileOfAStartKilledBeforeLinking) {
  fleet::testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(dir.Sub("fleet.db"));
  ASSERT_OK(store);
  const std::string path = dir.Sub("admin.token");
  fleet::testing::WriteTextFile(path + ".tmp", "fleet_" + std::string(64, 'a'), 0600);
  ASSERT_OK(EnsureFirstAdminToken(store->get(), path));
  EXPECT_EQ(access((path + ".tmp").c_str(), F_OK), -1);
  const std::string token(absl::StripAsciiWhitespace(fleet::testing::ReadTextFile(path)));
  EXPECT_NE(token, "fleet_" + std::string(64, 'a'));
  EXPECT_OK((*store)->FindTokenByHash(HashApiToken(token)));
}

TEST(FirstAdminTokenTest, FirstAdminToken_RefusesAFileThatHoldsNoToken) {
  fleet::testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(dir.Sub("fleet.db"));
  ASSERT_OK(store);
  const std::string path = dir.Sub("admin.token");
  fleet::testing::WriteTextFile(path, "not a token\n", 0600);
  EXPECT_THAT(EnsureFirstAdminToken(store->get(), path),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("holds no API token")));
  EXPECT_EQ(fleet::testing::ReadTextFile(path), "not a token\n");
  EXPECT_EQ((*store)->CountTokens().value_or(-1), 0);
}

}  // namespace
}  // namespace fleet::controller
