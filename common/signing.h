// Ed25519 signatures of release manifests (libsodium), so that an agent can
// tell an artifact someone holding a trusted key released from one that only
// passed through the controller.
//
// What is signed is the manifest of a release, never the artifact itself:
//
//   fleet-release-manifest-v1\n
//   app=<app>\n
//   version=<version>\n
//   sha256=<lowercase hex of the artifact>\n
//   size=<bytes>\n
//
// Because the app and the version are part of it, a signature made for
// web@v1 does not verify for web@v2 or for api@v1 (no replay, no relabelling),
// and because the sha256 and the size are, it covers the artifact's bytes
// once the download is checked against them.
//
// Text forms (what files and app specs hold):
//   public key   "ed25519:<base64 of 32 bytes>"; the bare base64 is accepted
//                too. This is what an app spec's trusted_keys lists.
//   secret key   "ed25519-secret:<base64 of libsodium's 64-byte secret key>"
//   signature    "<base64 of 64 bytes>" (Release.signature; "" = unsigned)
// Base64 is the standard alphabet with padding.
//
// Every function here is thread-safe.
#ifndef FLEET_COMMON_SIGNING_H_
#define FLEET_COMMON_SIGNING_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fleet/v1/types.pb.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace fleet {

inline constexpr char kPublicKeyPrefix[] = "ed25519:";
inline constexpr char kSecretKeyPrefix[] = "ed25519-secret:";

// Raw key bytes: 32 bytes public, 64 bytes secret (libsodium's layout: seed
// followed by the public key).
struct SigningKeyPair {
  std::string public_key;
  std::string secret_key;
};

// A fresh key pair from libsodium's random source. InternalError only when
// libsodium cannot be initialised.
absl::StatusOr<SigningKeyPair> GenerateSigningKeyPair();

// The canonical bytes that are signed (see the top of this file).
// InvalidArgument when app or version is empty or holds a newline, when
// sha256 is not 64 lowercase hex characters, or when size is negative.
absl::StatusOr<std::string> ReleaseManifest(absl::string_view app, absl::string_view version,
                                            absl::string_view sha256, int64_t size);

// "ed25519:<base64>" for a 32-byte public key.
std::string FormatPublicKey(absl::string_view public_key);
// The 32 raw bytes of "ed25519:<base64>" or of the bare base64 (surrounding
// whitespace ignored). InvalidArgument naming what is wrong otherwise.
absl::StatusOr<std::string> ParsePublicKey(absl::string_view text);

// "ed25519-secret:<base64>" for a 64-byte secret key, and back.
std::string FormatSecretKey(absl::string_view secret_key);
absl::StatusOr<std::string> ParseSecretKey(absl::string_view text);

// Writes `keys` as <prefix>.key (secret, mode 0600) and <prefix>.pub (public
// key line, mode 0644). Refuses with AlreadyExists, writing nothing, when
// either file exists: a key is never overwritten. On a later failure removes
// what it wrote.
absl::Status WriteKeyFiles(const SigningKeyPair& keys, const std::string& prefix);

// Reads a secret key file written by WriteKeyFiles. FailedPrecondition when
// the file is readable by group or others (like ssh, a key others could
// read is not secret); InvalidArgument when it does not hold a secret key.
absl::StatusOr<std::string> ReadSecretKeyFile(const std::string& path);

// The base64 signature of ReleaseManifest(app, version, sha256, size) by
// `secret_key` (64 raw bytes). InvalidArgument when the manifest or the key
// is malformed.
absl::StatusOr<std::string> SignReleaseManifest(absl::string_view secret_key,
                                                absl::string_view app, absl::string_view version,
                                                absl::string_view sha256, int64_t size);

// Whether `signature` is the base64 of a 64-byte Ed25519 signature; what a
// controller can check of a signature for an app without trusted keys.
// InvalidArgument naming `release_label` ("web@v2") otherwise.
absl::Status CheckSignatureFormat(absl::string_view signature, absl::string_view release_label);

// Whether `release` may be deployed for an app that trusts `trusted_keys`
// (public keys as ParsePublicKey reads them). OK when trusted_keys is empty
// (nothing is required) or when one of the keys signed the manifest of
// release.app(), version(), sha256() and size(). Otherwise one line:
//   FailedPrecondition "release web@v2 is not signed, and app web requires a
//     signature by one of its 2 trusted keys"
//   FailedPrecondition "signature of release web@v2 does not verify with any
//     trusted key of app web"
//   InvalidArgument for a malformed signature, trusted key or manifest.
// The caller makes release.app() the app whose keys it passes.
absl::Status VerifyReleaseSignature(
    const fleet::v1::Release& release,
    const google::protobuf::RepeatedPtrField<std::string>& trusted_keys);

}  // namespace fleet

#endif  // FLEET_COMMON_SIGNING_H_
