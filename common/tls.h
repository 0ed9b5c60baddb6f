// TLS for the agent protocol and the public API, shared by fleet-controller,
// fleet-agent and fleetctl: which PEM files a binary was given, checking them
// at start, gRPC credentials that re-read them when they change (rotation
// without a restart), the identity in a peer's client certificate, and the
// rule that plaintext serves loopback addresses only.
#ifndef FLEET_COMMON_TLS_H_
#define FLEET_COMMON_TLS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fleet {

// The --tls-cert, --tls-key and --tls-ca files of a binary.
struct TlsFiles {
  std::string cert;  // PEM certificate (chain) this side presents
  std::string key;   // PEM private key of `cert`
  std::string ca;    // PEM bundle of the CAs the peer's certificate must chain to

  bool empty() const { return cert.empty() && key.empty() && ca.empty(); }
};

// How often certificate files are re-read unless --tls-reload-interval says.
inline constexpr absl::Duration kDefaultTlsReloadInterval = absl::Minutes(1);

// OK when all three files are named and usable, or none is named. Otherwise
// InvalidArgument naming the flag and file: a missing flag, an unreadable
// file, a file without PEM of its kind, or a key that does not belong to the
// certificate. Also logs a warning when the certificate has expired or is
// not valid yet (the file may be replaced while the binary runs).
absl::Status ValidateTlsFiles(const TlsFiles& files);

// What is wrong now with the validity window of the certificate in `path`:
// "expired on Nov 26 13:30:15 2025 GMT", "is not valid before ...", or ""
// when it is valid (or cannot be read, which ValidateTlsFiles reports).
std::string CertificateValidityProblem(const std::string& path);

// OK when `path` (given as `flag`) is readable and holds at least one PEM
// certificate; InvalidArgument naming both otherwise.
absl::Status ValidateCaFile(absl::string_view flag, const std::string& path);

// Parses --tls-reload-interval ("1s", "1m"): whole seconds, at least 1s.
absl::StatusOr<absl::Duration> ParseTlsReloadInterval(const std::string& text);

// Server credentials for validated `files`: presents files.cert; a client
// that presents a certificate must chain to files.ca or the handshake fails;
// a client without one (fleetctl, which authenticates with an API token) is
// let in, and services that need a certificate check PeerCertificateNames.
// The three files are re-read every `reload_interval`; new handshakes use
// what was read last, established connections keep theirs.
std::shared_ptr<grpc::ServerCredentials> TlsServerCredentials(const TlsFiles& files,
                                                              absl::Duration reload_interval);

// Channel credentials that verify the server's certificate against files.ca
// and the host of the channel's target (it must be one of the certificate's
// SANs), presenting files.cert/files.key when both are set (the agent) and
// no certificate when both are empty (fleetctl). Files are re-read every
// `reload_interval`.
std::shared_ptr<grpc::ChannelCredentials> TlsChannelCredentials(const TlsFiles& files,
                                                                absl::Duration reload_interval);

// The names a certificate vouches for: its subject CN and DNS SANs.
struct CertificateNames {
  std::string common_name;
  std::vector<std::string> dns_names;

  // Whether `id` is the CN or one of the DNS SANs (exact match; no wildcards).
  bool Names(const std::string& id) const;
  // "web-01" or "web-01, web-01.example.net": CN first, then the other SANs.
  std::string ToString() const;
};

// The CN and DNS SANs of the first certificate in `pem`; InvalidArgument
// when there is none.
absl::StatusOr<CertificateNames> NamesOfCertificate(const std::string& pem);

// The names in the client certificate the peer of a call presented over
// TLS, which the handshake verified against the server's CA. nullopt on a
// plaintext connection or when the peer presented no certificate.
std::optional<CertificateNames> PeerCertificateNames(const grpc::AuthContext& auth);

// The plaintext rule: with TLS files (`tls` true) anything goes; without
// them `address` (given as `flag`) must be loopback unless `insecure`.
// InvalidArgument otherwise, e.g. "--listen 0.0.0.0:7000 is not a loopback
// address: give --tls-cert/--tls-key/--tls-ca, or --insecure to serve
// plaintext anyway"; `plaintext_use` says what --insecure would allow ("serve
// plaintext", "connect in plaintext").
absl::Status CheckPlaintextAllowed(absl::string_view flag, const std::string& address, bool tls,
                                   bool insecure, absl::string_view plaintext_use);

}  // namespace fleet

#endif  // FLEET_COMMON_TLS_H_
