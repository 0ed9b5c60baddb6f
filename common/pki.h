// A small certificate authority for fleets without a PKI of their own
// (`fleetctl pki`): a self-signed CA, client certificates for agents (CN and
// DNS SAN = host id) and server certificates for the controller (its name,
// localhost and 127.0.0.1). Keys are ECDSA P-256, signatures SHA-256, serials
// 128 random bits. Everything is PEM, the format --tls-cert/--tls-key/--tls-ca
// read.
#ifndef FLEET_COMMON_PKI_H_
#define FLEET_COMMON_PKI_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fleet {

// A certificate and its private key, both PEM.
struct KeyAndCertificate {
  std::string cert_pem;
  std::string key_pem;
};

enum class CertificateKind {
  // An agent's identity: extendedKeyUsage clientAuth, CN and DNS SAN = id.
  kHost,
  // The controller's: extendedKeyUsage serverAuth, SANs id (DNS, or IP when
  // it is an IPv4 address), localhost and 127.0.0.1.
  kController,
};

inline constexpr absl::Duration kDefaultCaValidity = absl::Hours(24 * 3650);
inline constexpr absl::Duration kDefaultLeafValidity = absl::Hours(24 * 365);
// Issued certificates start this much before "now", so that a host whose
// clock is slightly behind the CA's accepts them at once.
inline constexpr absl::Duration kNotBeforeBackdate = absl::Minutes(5);

// Makes a self-signed CA (basicConstraints CA:TRUE, pathlen 0; keyUsage
// keyCertSign and cRLSign) named "Fleet CA <8 hex digits>", so that two CAs
// trusted side by side during a rotation have distinct names.
absl::StatusOr<KeyAndCertificate> CreateCertificateAuthority(absl::Time not_before,
                                                             absl::Time not_after);

// Issues a certificate of `kind` for `id` signed by `ca`, valid from
// `not_before` to `not_after` (tests pass a past window to get an expired
// one). InvalidArgument when `id` is not a safe name (IsSafeName), `ca` does
// not parse or its key does not match, or the window is empty.
absl::StatusOr<KeyAndCertificate> IssueCertificate(const KeyAndCertificate& ca,
                                                   const std::string& id, CertificateKind kind,
                                                   absl::Time not_before, absl::Time not_after);

// The CA files of a directory made by InitCertificateAuthorityDir.
std::string CaCertPath(const std::string& dir);  // DIR/ca.crt
std::string CaKeyPath(const std::string& dir);   // DIR/ca.key

// Creates `dir` (0700) if needed and writes a new CA valid for `validity` to
// DIR/ca.crt (0644) and DIR/ca.key (0600). AlreadyExists, changing nothing,
// when either file exists: replacing a CA would invalidate every
// certificate it signed.
absl::Status InitCertificateAuthorityDir(const std::string& dir, absl::Duration validity);

// Reads DIR/ca.crt and DIR/ca.key and checks that they belong together.
absl::StatusOr<KeyAndCertificate> LoadCertificateAuthority(const std::string& dir);

// Issues a certificate for `id` with the CA of `ca_dir`, valid for
// `validity` from now, and writes DIR/<id>.crt (0644) and DIR/<id>.key
// (0600). Without `replace`, AlreadyExists (changing nothing) when either
// file exists; with it both are replaced atomically one after the other.
absl::Status IssueCertificateToDir(const std::string& ca_dir, const std::string& id,
                                   CertificateKind kind, absl::Duration validity, bool replace);

// The paths IssueCertificateToDir writes.
std::string IssuedCertPath(const std::string& dir, const std::string& id);
std::string IssuedKeyPath(const std::string& dir, const std::string& id);

}  // namespace fleet

#endif  // FLEET_COMMON_PKI_H_
