#include "controller/api_token.h"

#include <openssl/rand.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/sha256.h"

namespace fleet::controller {
namespace {

constexpr size_t kTokenBytes = 32;
constexpr size_t kIdHexDigits = 12;

}  // namespace

absl::StatusOr<GeneratedApiToken> GenerateApiToken() {
  unsigned char bytes[kTokenBytes];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::InternalError("cannot create an API token: OpenSSL's random generator failed");
  }
  GeneratedApiToken generated;
  generated.token =
      absl::StrCat(kApiTokenPrefix, absl::BytesToHexString(absl::string_view(
                                        reinterpret_cast<const char*>(bytes), sizeof(bytes))));
  generated.hash = HashApiToken(generated.token);
  generated.id = ApiTokenId(generated.hash);
  return generated;
}

std::string HashApiToken(absl::string_view token) {
  Sha256 sha;
  sha.Update(token);
  return sha.HexDigest();
}

std::string ApiTokenId(absl::string_view hash) { return std::string(hash.substr(0, kIdHexDigits)); }

bool IsWellFormedApiToken(absl::string_view token) {
  if (!absl::ConsumePrefix(&token, kApiTokenPrefix)) return false;
  if (token.size() != 2 * kTokenBytes) return false;
  for (char c : token) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

std::optional<std::string> BearerToken(absl::string_view authorization) {
  constexpr absl::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;
  }
  absl::string_view token = absl::StripAsciiWhitespace(authorization.substr(kScheme.size()));
  if (token.empty()) return std::nullopt;
  return std::string(token);
}

}  // namespace fleet::controller
