// The policy of API token roles: which role may do what to which app. Pure
// (no I/O), so one table test covers it; ApiAccess applies it to calls.
//
//   viewer    reads everything: apps, releases, configs, rollouts, hosts,
//             status and history.
//   deployer  also pushes releases and configs, starts rollouts and
//             rollbacks, and pauses, resumes, promotes and aborts rollouts.
//             A deployer token with an app may change only that app.
//   admin     also applies app specs and creates, lists and revokes tokens.
//             Never limited to an app.
//
// The scope limits what a token may change, not what it may read: every
// valid token reads every app, so a scoped deployer still sees the whole
// fleet (hosts are shared by apps, and rollouts wait on each other).
#ifndef FLEET_CONTROLLER_AUTHORIZER_H_
#define FLEET_CONTROLLER_AUTHORIZER_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "fleet/v1/api.pb.h"

namespace fleet::controller {

// What a call of the public API does. Each FleetService RPC maps to one.
enum class ApiAction {
  kRead,            // every List*/Get* RPC
  kPushRelease,     // PushRelease
  kPushConfig,      // PushConfig
  kRollOut,         // StartRollout, of a release or a config
  kRollBack,        // Rollback
  kReleaseHold,     // ReleaseHold
  kReadOutput,      // GetOutput: what commands printed on hosts
  kPauseRollout,    // PauseRollout
  kResumeRollout,   // ResumeRollout
  kPromoteRollout,  // PromoteRollout
  kAbortRollout,    // AbortRollout
  kApplyApp,        // ApplyApp
  kManageTokens,    // CreateToken, ListTokens, RevokeToken
};

// The least role that may do `action`.
fleet::v1::Role RequiredRole(ApiAction action);

// "viewer", "deployer" or "admin"; "no role" for ROLE_UNSPECIFIED.
absl::string_view RoleName(fleet::v1::Role role);

// What `action` does to `app`, for messages: "roll out app 'web'",
// "manage API tokens". `app` may be "" when the call names no app.
std::string DescribeAction(ApiAction action, absl::string_view app);

// "token 3fa9c2d4e5f6 (deployer for app 'api')", "token 1b2c3d4e5f60 (admin)".
std::string DescribeToken(const fleet::v1::TokenInfo& token);

// The longest piece of client text ClientText keeps, in bytes.
inline constexpr size_t kMaxClientTextBytes = 128;

// `text` from an unchecked client (an app name, an actor, a peer) made safe
// for one-line messages, logs and audit events: backslashes and control
// characters are escaped (ESC becomes \x1b), and only the first kMaxClientTextBytes
// bytes are kept (never cutting a UTF-8 character), "…" marking the cut.
std::string ClientText(absl::string_view text);

// OK when `token` may do `action` to `app` ("" = the call is about no one
// app). Otherwise PermissionDenied with one line, e.g.
// "token 3fa9c2d4e5f6 (deployer for app 'api') may not roll out app 'web'".
// The caller has checked that the token is valid (known, not revoked).
absl::Status Authorize(const fleet::v1::TokenInfo& token, ApiAction action, absl::string_view app);

// Why a token with `role` cannot be limited to `app`, or OK when it can:
// only deployer tokens take an app.
absl::Status CheckTokenScope(fleet::v1::Role role, absl::string_view app);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_AUTHORIZER_H_
