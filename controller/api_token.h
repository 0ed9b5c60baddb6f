// API tokens: what one is made of and how the controller recognizes it.
//
// A token is "fleet_" followed by 64 lowercase hex digits: 32 bytes from
// OpenSSL's CSPRNG. The controller keeps only its sha256 (hex); its public
// id is the first 12 hex digits of that hash.
#ifndef FLEET_CONTROLLER_API_TOKEN_H_
#define FLEET_CONTROLLER_API_TOKEN_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleet::controller {

inline constexpr absl::string_view kApiTokenPrefix = "fleet_";

struct GeneratedApiToken {
  std::string token;  // the secret, shown once
  std::string hash;   // HashApiToken(token)
  std::string id;     // ApiTokenId(hash)
};

// A fresh token. Fails (Internal) only when the CSPRNG cannot deliver.
absl::StatusOr<GeneratedApiToken> GenerateApiToken();

// Lowercase hex sha256 of `token`, as stored. A token carries 256 random
// bits, so one fast hash is enough: no guess list exists to try against it.
std::string HashApiToken(absl::string_view token);

// The public id of the token whose hash is `hash`.
std::string ApiTokenId(absl::string_view hash);

// Whether `token` has the form GenerateApiToken gives.
bool IsWellFormedApiToken(absl::string_view token);

// The token in an `authorization` header value "Bearer <token>" (the scheme
// in any case, spaces around the token ignored); nullopt when the value has
// another form or no token.
std::optional<std::string> BearerToken(absl::string_view authorization);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_API_TOKEN_H_
