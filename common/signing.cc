#include "common/signing.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/fs.h"
#include "common/sha256.h"

namespace fleet {
namespace {

static_assert(crypto_sign_PUBLICKEYBYTES == 32, "Ed25519 public keys are 32 bytes");
static_assert(crypto_sign_SECRETKEYBYTES == 64, "libsodium Ed25519 secret keys are 64 bytes");
static_assert(crypto_sign_BYTES == 64, "Ed25519 signatures are 64 bytes");

constexpr int kBase64 = sodium_base64_VARIANT_ORIGINAL;
constexpr char kManifestHeader[] = "fleet-release-manifest-v1\n";

// sodium_init() is safe to call again, but once is enough; a function-local
// static makes the first call the only one, whichever thread makes it.
absl::Status InitSodium() {
  static const int rc = sodium_init();
  if (rc < 0) return absl::InternalError("libsodium cannot be initialised (sodium_init failed)");
  return absl::OkStatus();
}

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string ToBase64(absl::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), kBase64), '\0');
  sodium_bin2base64(out.data(), out.size(), Bytes(bytes), bytes.size(), kBase64);
  out.resize(std::strlen(out.c_str()));  // the encoded length counts the NUL
  return out;
}

// Exactly `size` bytes from `text`, or nullopt: not base64, trailing
// characters, or another length.
std::optional<std::string> FromBase64(absl::string_view text, size_t size) {
  std::string out(size, '\0');
  size_t len = 0;
  // With b64_end == nullptr, characters after the base64 make it fail.
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), /*ignore=*/nullptr, &len, /*b64_end=*/nullptr,
                        kBase64) != 0 ||
      len != size) {
    return std::nullopt;
  }
  return out;
}

// `text` for an error message: escaped and cut, since it came from a file
// or a spec and may be anything.
std::string Quote(absl::string_view text) {
  constexpr size_t kMax = 60;
  std::string shown = absl::CHexEscape(text.substr(0, kMax));
  return absl::StrCat("'", shown, text.size() > kMax ? "…" : "", "'");
}

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// Creates `path` with exactly `mode`, durably, never over an existing file.
absl::Status WriteNewKeyFile(const std::string& path, const std::string& content, mode_t mode) {
  absl::Status st = WriteFileDurably(path, content, mode, /*replace=*/false);
  if (absl::IsAlreadyExists(st)) {
    return absl::AlreadyExistsError(
        absl::StrCat(path, " exists already; keys are never overwritten, choose another --out"));
  }
  return st;
}

}  // namespace

absl::StatusOr<SigningKeyPair> GenerateSigningKeyPair() {
  if (absl::Status st = InitSodium(); !st.ok()) return st;
  SigningKeyPair keys;
  keys.public_key.resize(crypto_sign_PUBLICKEYBYTES);
  keys.secret_key.resize(crypto_sign_SECRETKEYBYTES);
  crypto_sign_keypair(reinterpret_cast<unsigned char*>(keys.public_key.data()),
                      reinterpret_cast<unsigned char*>(keys.secret_key.data()));
  return keys;
}

absl::StatusOr<std::string> ReleaseManifest(absl::string_view app, absl::string_view version,
                                            absl::string_view sha256, int64_t size) {
  // A newline would let one manifest pass for another ("app=web\nversion=…"
  // inside the app field).
  for (auto [field, value] : {std::pair<const char*, absl::string_view>{"app", app},
                              std::pair<const char*, absl::string_view>{"version", version}}) {
    if (value.empty() || absl::StrContains(value, '\n') || absl::StrContains(value, '\r')) {
      return absl::InvalidArgumentError(absl::StrCat("cannot build the release manifest: ", field,
                                                     " ", Quote(value),
                                                     " is empty or holds a line break"));
    }
  }
  if (!IsSha256Hex(sha256)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot build the release manifest of ", app,
                                                   "@", version, ": sha256 ", Quote(sha256),
                                                   " is not 64 lowercase hex characters"));
  }
  if (size < 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot build the release manifest of ", app,
                                                   "@", version, ": size ", size,
                                                   " is negative"));
  }
  return absl::StrCat(kManifestHeader, "app=", app, "\nversion=", version, "\nsha256=", sha256,
                      "\nsize=", size, "\n");
}

std::string FormatPublicKey(absl::string_view public_key) {
  return absl::StrCat(kPublicKeyPrefix, ToBase64(public_key));
}

absl::StatusOr<std::string> ParsePublicKey(absl::string_view text) {
  absl::string_view key = absl::StripAsciiWhitespace(text);
  if (absl::StartsWith(key, kSecretKeyPrefix)) {
    // Not quoted: it is a secret.
    return absl::InvalidArgumentError(
        "this is a secret key (ed25519-secret:…), not a public key: list the line of the .pub "
        "file that fleetctl keygen wrote");
  }
  absl::ConsumePrefix(&key, kPublicKeyPrefix);
  std::optional<std::string> raw = FromBase64(key, crypto_sign_PUBLICKEYBYTES);
  if (!raw) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(text), " is not an Ed25519 public key (expected ed25519:<base64 of ",
                     crypto_sign_PUBLICKEYBYTES, " bytes>, as fleetctl keygen prints it)"));
  }
  return *raw;
}

std::string FormatSecretKey(absl::string_view secret_key) {
  return absl::StrCat(kSecretKeyPrefix, ToBase64(secret_key));
}

absl::StatusOr<std::string> ParseSecretKey(absl::string_view text) {
  absl::string_view key = absl::StripAsciiWhitespace(text);
  // Never quoted in errors: it may be a secret with a typo in it.
  if (!absl::ConsumePrefix(&key, kSecretKeyPrefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a Fleet secret key: it does not start with ", kSecretKeyPrefix,
                     " (use the .key file that fleetctl keygen wrote)"));
  }
  std::optional<std::string> raw = FromBase64(key, crypto_sign_SECRETKEYBYTES);
  if (!raw) {
    return absl::InvalidArgumentError(absl::StrCat("not a Fleet secret key: after ",
                                                   kSecretKeyPrefix, " it must be the base64 of ",
                                                   crypto_sign_SECRETKEYBYTES, " bytes"));
  }
  return *raw;
}

absl::Status WriteKeyFiles(const SigningKeyPair& keys, const std::string& prefix) {
  if (keys.public_key.size() != crypto_sign_PUBLICKEYBYTES ||
      keys.secret_key.size() != crypto_sign_SECRETKEYBYTES) {
    return absl::InvalidArgumentError("cannot write key files: the key pair has the wrong size");
  }
  const std::string secret_path = prefix + ".key";
  const std::string public_path = prefix + ".pub";
  for (const std::string& path : {secret_path, public_path}) {
    if (PathExists(path)) {
      return absl::AlreadyExistsError(
          absl::StrCat(path, " exists already; keys are never overwritten, choose another --out"));
    }
  }
  absl::Status st =
      WriteNewKeyFile(secret_path, absl::StrCat(FormatSecretKey(keys.secret_key), "\n"), 0600);
  if (!st.ok()) return st;
  st = WriteNewKeyFile(public_path, absl::StrCat(FormatPublicKey(keys.public_key), "\n"), 0644);
  if (!st.ok()) {
    unlink(secret_path.c_str());
    return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSecretKeyFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("no secret key file ", path));
    return ErrnoError("cannot read", path);
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("secret key file %s can be read by others (mode %04o); chmod 600 %s",
                        path, st.st_mode & 07777, path));
  }
  absl::StatusOr<std::string> content = ReadFile(path);
  if (!content.ok()) return content.status();
  absl::StatusOr<std::string> key = ParseSecretKey(*content);
  if (!key.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", key.status().message()));
  return key;
}

absl::StatusOr<std::string> SignReleaseManifest(absl::string_view secret_key,
                                                absl::string_view app, absl::string_view version,
                                                absl::string_view sha256, int64_t size) {
  if (absl::Status st = InitSodium(); !st.ok()) return st;
  if (secret_key.size() != crypto_sign_SECRETKEYBYTES) {
    return absl::InvalidArgumentError(absl::StrCat("cannot sign ", app, "@", version,
                                                   ": the secret key is not ",
                                                   crypto_sign_SECRETKEYBYTES, " bytes"));
  }
  absl::StatusOr<std::string> manifest = ReleaseManifest(app, version, sha256, size);
  if (!manifest.ok()) return manifest.status();
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, Bytes(*manifest), manifest->size(), Bytes(secret_key));
  return ToBase64(absl::string_view(reinterpret_cast<const char*>(sig), sizeof sig));
}

absl::Status CheckSignatureFormat(absl::string_view signature, absl::string_view release_label) {
  if (!FromBase64(signature, crypto_sign_BYTES)) {
    return absl::InvalidArgumentError(absl::StrCat("signature of release ", release_label,
                                                   " is not the base64 of a ", crypto_sign_BYTES,
                                                   "-byte Ed25519 signature"));
  }
  return absl::OkStatus();
}

absl::Status VerifyReleaseSignature(
    const fleet::v1::Release& release,
    const google::protobuf::RepeatedPtrField<std::string>& trusted_keys) {
  if (trusted_keys.empty()) return absl::OkStatus();
  if (absl::Status st = InitSodium(); !st.ok()) return st;
  const std::string label = absl::StrCat(release.app(), "@", release.version());
  if (release.signature().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "release ", label, " is not signed, and app ", release.app(), " requires a signature by ",
        trusted_keys.size() == 1 ? "its trusted key"
                                 : absl::StrCat("one of its ", trusted_keys.size(),
                                                " trusted keys")));
  }
  std::optional<std::string> sig = FromBase64(release.signature(), crypto_sign_BYTES);
  if (!sig) return CheckSignatureFormat(release.signature(), label);
  std::vector<std::string> keys;
  for (int i = 0; i < trusted_keys.size(); ++i) {
    absl::StatusOr<std::string> key = ParsePublicKey(trusted_keys[i]);
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("trusted_keys[", i, "] of app ", release.app(),
                                                     ": ", key.status().message()));
    }
    keys.push_back(*std::move(key));
  }
  absl::StatusOr<std::string> manifest =
      ReleaseManifest(release.app(), release.version(), release.sha256(), release.size());
  if (!manifest.ok()) return manifest.status();
  for (const std::string& key : keys) {
    if (crypto_sign_verify_detached(Bytes(*sig), Bytes(*manifest), manifest->size(),
                                    Bytes(key)) == 0) {
      return absl::OkStatus();
    }
  }
  return absl::FailedPreconditionError(absl::StrCat("signature of release ", label,
                                                    " does not verify with any trusted key of app ",
                                                    release.app()));
}

}  // namespace fleet
