#include "controller/authorizer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/text.h"

namespace fleet::controller {

fleet::v1::Role RequiredRole(ApiAction action) {
  switch (action) {
    case ApiAction::kRead:
      return fleet::v1::ROLE_VIEWER;
    case ApiAction::kPushRelease:
    case ApiAction::kPushConfig:
    case ApiAction::kRollOut:
    case ApiAction::kRollBack:
    case ApiAction::kReleaseHold:
    case ApiAction::kReadOutput:
    case ApiAction::kPauseRollout:
    case ApiAction::kResumeRollout:
    case ApiAction::kPromoteRollout:
    case ApiAction::kAbortRollout:
      return fleet::v1::ROLE_DEPLOYER;
    case ApiAction::kApplyApp:
    case ApiAction::kManageTokens:
      return fleet::v1::ROLE_ADMIN;
  }
  // An action added without a row above is for admins only.
  return fleet::v1::ROLE_ADMIN;
}

absl::string_view RoleName(fleet::v1::Role role) {
  switch (role) {
    case fleet::v1::ROLE_VIEWER:
      return "viewer";
    case fleet::v1::ROLE_DEPLOYER:
      return "deployer";
    case fleet::v1::ROLE_ADMIN:
      return "admin";
    default:
      return "no role";
  }
}

std::string ClientText(absl::string_view text) {
  size_t keep = text.size();
  if (keep > kMaxClientTextBytes) {
    keep = kMaxClientTextBytes;
    // Back off to the first byte of a UTF-8 character (continuation bytes
    // are 10xxxxxx).
    while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) --keep;
  }
  // Backslashes doubled first, so that an escape in the result always
  // comes from a control character.
  std::string out = EscapeControlCharacters(
      absl::StrReplaceAll(text.substr(0, keep), {{"\\", "\\\\"}}));
  if (keep < text.size()) out += "…";
  return out;
}

std::string DescribeAction(ApiAction action, absl::string_view app) {
  const std::string the_app = absl::StrCat("app '", ClientText(app), "'");
  const std::string of_app = app.empty() ? "" : absl::StrCat(" of ", the_app);
  switch (action) {
    case ApiAction::kRead:
      return app.empty() ? "read" : absl::StrCat("read ", the_app);
    case ApiAction::kPushRelease:
      return absl::StrCat("push releases", of_app);
    case ApiAction::kPushConfig:
      return absl::StrCat("push configs", of_app);
    case ApiAction::kRollOut:
      return app.empty() ? "start rollouts" : absl::StrCat("roll out ", the_app);
    case ApiAction::kRollBack:
      return app.empty() ? "start rollbacks" : absl::StrCat("roll back ", the_app);
    case ApiAction::kReleaseHold:
      return absl::StrCat("release holds", of_app);
    case ApiAction::kReadOutput:
      return absl::StrCat("read command output", of_app);
    case ApiAction::kPauseRollout:
      return absl::StrCat("pause rollouts", of_app);
    case ApiAction::kResumeRollout:
      return absl::StrCat("resume rollouts", of_app);
    case ApiAction::kPromoteRollout:
      return absl::StrCat("promote rollouts", of_app);
    case ApiAction::kAbortRollout:
      return absl::StrCat("abort rollouts", of_app);
    case ApiAction::kApplyApp:
      return app.empty() ? "apply app specs" : absl::StrCat("apply the spec", of_app);
    case ApiAction::kManageTokens:
      return "manage API tokens";
  }
  return "call this";
}

std::string DescribeToken(const fleet::v1::TokenInfo& token) {
  return absl::StrCat("token ", token.id(), " (", RoleName(token.role()),
                      token.app().empty() ? "" : absl::StrCat(" for app '", token.app(), "'"), ")");
}

absl::Status Authorize(const fleet::v1::TokenInfo& token, ApiAction action, absl::string_view app) {
  // Roles are ordered: each one may do everything the ones below it may. A
  // role number this code does not know (a newer controller wrote it) may
  // do nothing.
  const bool role_allows = fleet::v1::Role_IsValid(token.role()) &&
                           token.role() != fleet::v1::ROLE_UNSPECIFIED &&
                           token.role() >= RequiredRole(action);
  // A scoped token changes only its app; an action about no one app (token
  // management) is out of every scope, and reads are never limited.
  const bool scope_allows =
      token.app().empty() || action == ApiAction::kRead || (!app.empty() && app == token.app());
  if (role_allows && scope_allows) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat(DescribeToken(token), " may not ", DescribeAction(action, app)));
}

absl::Status CheckTokenScope(fleet::v1::Role role, absl::string_view app) {
  if (app.empty() || role == fleet::v1::ROLE_DEPLOYER) return absl::OkStatus();
  if (role == fleet::v1::ROLE_ADMIN) {
    return absl::InvalidArgumentError(
        absl::StrCat("an admin token cannot be limited to app '", app,
                     "'; leave out the app, or create a deployer token for it"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "a ", RoleName(role), " token cannot be limited to app '", app,
      "': every token reads every app, and only deployer tokens are limited in what they change"));
}

}  // namespace fleet::controller
