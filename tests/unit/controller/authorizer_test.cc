#include "controller/authorizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/testing/status_matchers.h"

namespace fleet::controller {
namespace {

using ::fleet::testing::StatusIs;
using fleet::v1::Role;

fleet::v1::TokenInfo Token(Role role, const std::string& app = "") {
  fleet::v1::TokenInfo token;
  token.set_id("3fa9c2d4e5f6");
  token.set_role(role);
  token.set_app(app);
  return token;
}

struct Row {
  Role role;
  std::string scope;  // the token's app
  ApiAction action;
  std::string app;  // the app the call is about
  bool allowed;
};

// The whole policy: every role against every action, in scope and out.
TEST(AuthorizerTest, Authorize_FollowsTheRoleTable) {
  const Role kViewer = fleet::v1::ROLE_VIEWER;
  const Role kDeployer = fleet::v1::ROLE_DEPLOYER;
  const Role kAdmin = fleet::v1::ROLE_ADMIN;
  const Row rows[] = {
      // viewer: reads every app, changes nothing.
      {kViewer, "", ApiAction::kRead, "", true},
      {kViewer, "", ApiAction::kRead, "web", true},
      {kViewer, "", ApiAction::kPushRelease, "web", false},
      {kViewer, "", ApiAction::kPushConfig, "web", false},
      {kViewer, "", ApiAction::kRollOut, "web", false},
      {kViewer, "", ApiAction::kRollBack, "web", false},
      {kViewer, "", ApiAction::kReleaseHold, "web", false},
      {kViewer, "", ApiAction::kPauseRollout, "web", false},
      {kViewer, "", ApiAction::kResumeRollout, "web", false},
      {kViewer, "", ApiAction::kPromoteRollout, "web", false},
      {kViewer, "", ApiAction::kAbortRollout, "web", false},
      {kViewer, "", ApiAction::kApplyApp, "web", false},
      {kViewer, "", ApiAction::kManageTokens, "", false},
      // deployer for every app: deploys any app, manages nothing.
      {kDeployer, "", ApiAction::kRead, "web", true},
      {kDeployer, "", ApiAction::kPushRelease, "web", true},
      {kDeployer, "", ApiAction::kPushConfig, "web", true},
      {kDeployer, "", ApiAction::kRollOut, "web", true},
      {kDeployer, "", ApiAction::kRollBack, "web", true},
      {kDeployer, "", ApiAction::kReleaseHold, "web", true},
      {kDeployer, "", ApiAction::kPauseRollout, "web", true},
      {kDeployer, "", ApiAction::kResumeRollout, "web", true},
      {kDeployer, "", ApiAction::kPromoteRollout, "web", true},
      {kDeployer, "", ApiAction::kAbortRollout, "web", true},
      {kDeployer, "", ApiAction::kApplyApp, "web", false},
      {kDeployer, "", ApiAction::kManageTokens, "", false},
      // deployer for app api: deploys api only, still reads everything.
      {kDeployer, "api", ApiAction::kRead, "web", true},
      {kDeployer, "api", ApiAction::kRead, "", true},
      {kDeployer, "api", ApiAction::kPushRelease, "api", true},
      {kDeployer, "api", ApiAction::kPushRelease, "web", false},
      {kDeployer, "api", ApiAction::kPushConfig, "api", true},
      {kDeployer, "api", ApiAction::kPushConfig, "web", false},
      {kDeployer, "api", ApiAction::kRollOut, "api", true},
      {kDeployer, "api", ApiAction::kRollOut, "web", false},
      {kDeployer, "api", ApiAction::kRollOut, "", false},
      {kDeployer, "api", ApiAction::kRollBack, "api", true},
      {kDeployer, "api", ApiAction::kRollBack, "web", false},
      {kDeployer, "api", ApiAction::kReleaseHold, "api", true},
      {kDeployer, "api", ApiAction::kReleaseHold, "web", false},
      {kDeployer, "api", ApiAction::kPauseRollout, "web", false},
      {kDeployer, "api", ApiAction::kResumeRollout, "web", false},
      {kDeployer, "api", ApiAction::kPromoteRollout, "web", false},
      {kDeployer, "api", ApiAction::kAbortRollout, "api", true},
      {kDeployer, "api", ApiAction::kAbortRollout, "web", false},
      {kDeployer, "api", ApiAction::kApplyApp, "api", false},
      {kDeployer, "api", ApiAction::kManageTokens, "", false},
      // admin: everything.
      {kAdmin, "", ApiAction::kRead, "web", true},
      {kAdmin, "", ApiAction::kPushRelease, "web", true},
      {kAdmin, "", ApiAction::kPushConfig, "web", true},
      {kAdmin, "", ApiAction::kRollOut, "web", true},
      {kAdmin, "", ApiAction::kRollBack, "web", true},
      {kAdmin, "", ApiAction::kPauseRollout, "web", true},
      {kAdmin, "", ApiAction::kResumeRollout, "web", true},
      {kAdmin, "", ApiAction::kPromoteRollout, "web", true},
      {kAdmin, "", ApiAction::kAbortRollout, "web", true},
      {kAdmin, "", ApiAction::kApplyApp, "web", true},
      {kAdmin, "", ApiAction::kApplyApp, "", true},
      {kAdmin, "", ApiAction::kManageTokens, "", true},
      // no role, or one this code does not know: nothing at all.
      {fleet::v1::ROLE_UNSPECIFIED, "", ApiAction::kRead, "web", false},
      {static_cast<Role>(7), "", ApiAction::kRead, "web", false},
  };
  for (const Row& row : rows) {
    absl::Status st = Authorize(Token(row.role, row.scope), row.action, row.app);
    EXPECT_EQ(st.ok(), row.allowed) << RoleName(row.role) << " for '" << row.scope << "' "
                                    << DescribeAction(row.action, row.app) << ": " << st;
    if (!row.allowed) {
      EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
    }
  }
}

TEST(AuthorizerTest, Authorize_DenialNamesTokenRoleScopeActionAndApp) {
  EXPECT_THAT(Authorize(Token(fleet::v1::ROLE_DEPLOYER, "api"), ApiAction::kRollOut, "web"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "token 3fa9c2d4e5f6 (deployer for app 'api') may not roll out app 'web'"));
  EXPECT_THAT(Authorize(Token(fleet::v1::ROLE_VIEWER), ApiAction::kRollBack, "web"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "token 3fa9c2d4e5f6 (viewer) may not roll back app 'web'"));
  EXPECT_THAT(Authorize(Token(fleet::v1::ROLE_DEPLOYER), ApiAction::kApplyApp, "web"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "token 3fa9c2d4e5f6 (deployer) may not apply the spec of app 'web'"));
  EXPECT_THAT(Authorize(Token(fleet::v1::ROLE_DEPLOYER), ApiAction::kManageTokens, ""),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "token 3fa9c2d4e5f6 (deployer) may not manage API tokens"));
  EXPECT_THAT(Authorize(Token(fleet::v1::ROLE_VIEWER), ApiAction::kPushRelease, "web"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "token 3fa9c2d4e5f6 (viewer) may not push releases of app 'web'"));
}

TEST(AuthorizerTest, RequiredRole_OrdersViewerDeployerAdmin) {
  EXPECT_EQ(RequiredRole(ApiAction::kRead), fleet::v1::ROLE_VIEWER);
  EXPECT_EQ(RequiredRole(ApiAction::kRollOut), fleet::v1::ROLE_DEPLOYER);
  EXPECT_EQ(RequiredRole(ApiAction::kApplyApp), fleet::v1::ROLE_ADMIN);
  EXPECT_EQ(RequiredRole(ApiAction::kManageTokens), fleet::v1::ROLE_ADMIN);
}

TEST(AuthorizerTest, CheckTokenScope_OnlyDeployerTokensTakeAnApp) {
  EXPECT_OK(CheckTokenScope(fleet::v1::ROLE_DEPLOYER, "api"));
  EXPECT_OK(CheckTokenScope(fleet::v1::ROLE_DEPLOYER, ""));
  EXPECT_OK(CheckTokenScope(fleet::v1::ROLE_ADMIN, ""));
  EXPECT_OK(CheckTokenScope(fleet::v1::ROLE_VIEWER, ""));
  EXPECT_THAT(CheckTokenScope(fleet::v1::ROLE_ADMIN, "api"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("an admin token cannot be limited to app 'api'")));
  EXPECT_THAT(CheckTokenScope(fleet::v1::ROLE_VIEWER, "api"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("a viewer token cannot be limited to app 'api'")));
}

}  // namespace
}  // namespace fleet::controller
