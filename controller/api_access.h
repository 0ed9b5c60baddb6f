// Who may call the public API (fleet.v1.FleetService): checks the bearer
// token of each call against the store, applies the role policy of
// authorizer.h, and records every denial as an audit event. Also creates,
// lists and revokes tokens, and makes the first admin token.
//
// With `required` false (development mode: plaintext gRPC on loopback,
// without --auth) every call is let in, its metadata unread.
//
// Thread safety: every method may be called from any thread.
#ifndef FLEET_CONTROLLER_API_ACCESS_H_
#define FLEET_CONTROLLER_API_ACCESS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "controller/authorizer.h"
#include "controller/store.h"
#include "fleet/v1/api.pb.h"

namespace fleet::controller {

// One call of the public API as the access check sees it.
struct ApiCall {
  std::string rpc;   // "StartRollout"
  std::string peer;  // gRPC peer, e.g. "ipv4:127.0.0.1:50412"
  // The `authorization` metadata value; nullopt when the call has none.
  std::optional<std::string> authorization;
};

// Whoever made a call that was let in.
class ApiCaller {
 public:
  // A caller let in without a token (auth is off).
  ApiCaller() = default;
  explicit ApiCaller(fleet::v1::TokenInfo token) : token_(std::move(token)) {}

  // The valid token of the call; nullopt when auth is off.
  const std::optional<fleet::v1::TokenInfo>& token() const { return token_; }
  // Who to record as having acted: "<client actor> (token <id>)" with a
  // token, so that history shows which token acted whatever the client
  // claims; `client_actor` unchanged without one.
  std::string Actor(absl::string_view client_actor) const;

 private:
  std::optional<fleet::v1::TokenInfo> token_;
};

class ApiAccess {
 public:
  // `store` must outlive this object.
  ApiAccess(Store* store, bool required) : store_(store), required_(required) {}

  bool required() const { return required_; }

  // Lets `call` in when its token is valid and may do `action` to `app`
  // ("" = the call is about no one app). Otherwise returns Unauthenticated
  // ("missing API token (set FLEET_TOKEN or --token)", "invalid API
  // token") or PermissionDenied (Authorize's line), after recording an
  // "auth.denied" event of `app` (never with the token).
  absl::StatusOr<ApiCaller> Admit(const ApiCall& call, ApiAction action, const std::string& app);
  // Admit in two steps, for calls whose app is known only from a lookup
  // that must not happen for unknown callers (rollout actions name a
  // rollout id): Authenticate checks the token, Authorize the role and
  // scope. Both record their denials like Admit.
  absl::StatusOr<ApiCaller> Authenticate(const ApiCall& call, const std::string& app);
  absl::Status Authorize(const ApiCaller& caller, const ApiCall& call, ApiAction action,
                         const std::string& app);

  // Token management; callers admit the call with kManageTokens first.
  //
  // Creates a token with the role, app and description of `req`, recorded as
  // created by req.actor(), and returns it with the secret (the only time it
  // is shown). InvalidArgument for no role, an app on a viewer or admin
  // token, or an over-long description; NotFound for an unknown app.
  absl::StatusOr<fleet::v1::CreateTokenResponse> CreateToken(
      const fleet::v1::CreateTokenRequest& req);
  // Every token, revoked ones included, in creation order.
  absl::StatusOr<std::vector<fleet::v1::TokenInfo>> ListTokens();
  // Revokes token `id` (a no-op when it is revoked already) and returns it.
  // NotFound for an unknown id; FailedPrecondition when it is the last valid
  // admin token, which nobody could replace afterwards.
  absl::StatusOr<fleet::v1::TokenInfo> RevokeToken(const std::string& id, const std::string& actor);

 private:
  // Records the denial of `call` as an "auth.denied" event and returns
  // `denial` unchanged. `actor` is a token id or "anonymous".
  absl::Status Deny(const ApiCall& call, const std::string& app, const std::string& actor,
                    absl::Status denial, absl::string_view detail = "");

  Store* store_;
  const bool required_;
};

// Makes sure an admin can get in when the API requires tokens: when `store`
// holds no token, creates an admin token ("bootstrap admin") and writes it
// to `path` (mode 0600, never replacing an existing file). The file is
// written before the row is inserted: a controller killed between the two
// finds the file at its next start and stores that token rather than a new
// one, so the file always holds a token that works. When tokens exist the
// file is left alone, present or not. Logs the path, never the token.
absl::Status EnsureFirstAdminToken(Store* store, const std::string& path);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_API_ACCESS_H_
