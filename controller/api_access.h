// Who may call the public API (fleet.v1.FleetService): checks the bearer
// token of each call against the store, applies the role policy of
// authorizer.h, and records denials as audit events: those of callers
// without a valid token at most once a minute per (peer address, reason),
// so that nobody can fill the audit log anonymously. Also creates, lists
// and revokes tokens, and makes the first admin token.
//
// With `required` false (development mode: plaintext gRPC on loopback,
// without --auth) every call is let in, its metadata unread.
//
// Thread safety: every method may be called from any thread.
#ifndef FLEET_CONTROLLER_API_ACCESS_H_
#define FLEET_CONTROLLER_API_ACCESS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
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
  // claims; `client_actor` without one. `client_actor` is passed through
  // ClientText.
  std::string Actor(absl::string_view client_actor) const;

 private:
  std::optional<fleet::v1::TokenInfo> token_;
};

class ApiAccess {
 public:
  // How long after recording the denial of a caller without a valid token
  // further denials from the same peer address for the same reason are only
  // counted; the next record says how many there were.
  static constexpr absl::Duration kAnonymousDenialWindow = absl::Minutes(1);
  // Peer addresses and reasons remembered for that; beyond it, the denials
  // of new ones share a single window.
  static constexpr size_t kMaxAnonymousDenialKeys = 1024;

  // `store` and `clock` must outlive this object.
  ApiAccess(Store* store, bool required, Clock* clock = DefaultClock())
      : store_(store), required_(required), clock_(clock) {}

  bool required() const { return required_; }

  // Lets `call` in when its token is valid and may do `action` to `app`
  // ("" = the call is about no one app). Otherwise returns Unauthenticated
  // ("missing API token (set FLEET_TOKEN or --token)", "invalid API
  // token") or PermissionDenied (Authorize's line), after recording an
  // "auth.denied" event (never with the token). The event names `app` only
  // when the store knows that app; denials without a valid token are
  // recorded at most once per kAnonymousDenialWindow per (peer address,
  // reason), and the status returned is the same either way.
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
  // How the denials of one (peer address, reason) are being recorded.
  struct DenialWindow {
    absl::Time recorded_at;  // of the last recorded denial
    int64_t suppressed = 0;  // denials counted, not recorded, since
  };

  // Records the denial of `call` as an "auth.denied" event and returns
  // `denial` unchanged. `actor` is a token id or "anonymous". With
  // `rate_limited`, records it only as ShouldRecordAnonymousDenial allows.
  absl::Status Deny(const ApiCall& call, const std::string& app, const std::string& actor,
                    absl::Status denial, absl::string_view detail, bool rate_limited);
  // Whether to record a denial of `reason` for a caller at `peer` without a
  // valid token now; when so, sets *suppressed to the denials left
  // unrecorded since the last record of that peer address and reason.
  bool ShouldRecordAnonymousDenial(absl::string_view peer, absl::string_view reason,
                                   int64_t* suppressed) ABSL_LOCKS_EXCLUDED(mu_);

  Store* store_;
  const bool required_;
  Clock* const clock_;

  absl::Mutex mu_;
  // Keyed by "<peer address>\n<reason>"; at most kMaxAnonymousDenialKeys + 1
  // entries.
  absl::flat_hash_map<std::string, DenialWindow> denial_windows_ ABSL_GUARDED_BY(mu_);
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
