#include "common/tls.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/address.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/openssl_ptr.h"

namespace fleet {
namespace {

// Refuses to prompt for a passphrase: Fleet's keys are unencrypted files,
// and a binary started by systemd has no terminal to ask on.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

X509Ptr ReadCertificate(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  return cert;
}

int CountCertificates(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  int n = 0;
  while (X509Ptr cert{PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)}) ++n;
  ERR_clear_error();
  return n;
}

absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path) {
  absl::StatusOr<std::string> content = ReadFile(path);
  if (!content.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", content.status().message()));
  }
  return content;
}

std::string FormatAsn1Time(const ASN1_TIME* t) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(bio.get(), t);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string ValidityProblem(X509* cert) {
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
    return absl::StrCat("expired on ", FormatAsn1Time(X509_get0_notAfter(cert)));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
    return absl::StrCat("is not valid before ", FormatAsn1Time(X509_get0_notBefore(cert)));
  }
  return "";
}

unsigned int WholeSeconds(absl::Duration d) {
  return static_cast<unsigned int>(std::max<int64_t>(1, absl::ToInt64Seconds(d)));
}

}  // namespace

absl::Status ValidateCaFile(absl::string_view flag, const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFlagFile(flag, path);
  if (!pem.ok()) return pem.status();
  if (CountCertificates(*pem) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", path, " holds no PEM certificate (BEGIN CERTIFICATE)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateTlsFiles(const TlsFiles& files) {
  if (files.empty()) return absl::OkStatus();
  std::vector<std::string> missing;
  if (files.cert.empty()) missing.push_back("--tls-cert");
  if (files.key.empty()) missing.push_back("--tls-key");
  if (files.ca.empty()) missing.push_back("--tls-ca");
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-cert, --tls-key and --tls-ca go together: ", absl::StrJoin(missing, " and "),
        missing.size() == 1 ? " is" : " are", " missing"));
  }
  absl::StatusOr<std::string> cert_pem = ReadFlagFile("--tls-cert", files.cert);
  if (!cert_pem.ok()) return cert_pem.status();
  X509Ptr cert = ReadCertificate(*cert_pem);
  if (!cert) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-cert ", files.cert, " holds no PEM certificate (BEGIN CERTIFICATE)"));
  }
  absl::StatusOr<std::string> key_pem = ReadFlagFile("--tls-key", files.key);
  if (!key_pem.ok()) return key_pem.status();
  BioPtr bio(BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size())));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  if (!key) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-key ", files.key, " holds no unencrypted PEM private key (BEGIN PRIVATE KEY)"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-key ", files.key, " is not the key of the certificate in --tls-cert ", files.cert));
  }
  if (absl::Status st = ValidateCaFile("--tls-ca", files.ca); !st.ok()) return st;

  if (std::string problem = ValidityProblem(cert.get()); !problem.empty()) {
    spdlog::warn("--tls-cert {} {}: peers refuse it until the file is replaced", files.cert,
                 problem);
  }
  return absl::OkStatus();
}

std::string CertificateValidityProblem(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) return "";
  X509Ptr cert = ReadCertificate(*pem);
  return cert ? ValidityProblem(cert.get()) : "";
}

absl::StatusOr<absl::Duration> ParseTlsReloadInterval(const std::string& text) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d < absl::Seconds(1) ||
      d != absl::Seconds(absl::ToInt64Seconds(d))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-reload-interval '", text, "' must be whole seconds of at least 1s, like 1m"));
  }
  return d;
}

std::shared_ptr<grpc::ServerCredentials> TlsServerCredentials(const TlsFiles& files,
                                                              absl::Duration reload_interval) {
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key, files.cert, files.ca, WholeSeconds(reload_interval));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // Verify a certificate that is presented, but let a client without one
  // complete the handshake: fleetctl has only the CA and authenticates with
  // an API token; the agent service refuses such peers itself.
  options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> TlsChannelCredentials(const TlsFiles& files,
                                                                absl::Duration reload_interval) {
  auto provider = files.cert.empty()
                      ? std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                            files.ca, WholeSeconds(reload_interval))
                      : std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                            files.key, files.cert, files.ca, WholeSeconds(reload_interval));
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  if (!files.cert.empty()) options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  // Chain verification alone would accept any certificate of the CA, such
  // as another host's; the controller's must also name the host dialled.
  options.set_certificate_verifier(
      std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
  return grpc::experimental::TlsCredentials(options);
}

bool CertificateNames::Names(const std::string& id) const {
  if (id.empty()) return false;
  return id == common_name || std::find(dns_names.begin(), dns_names.end(), id) != dns_names.end();
}

std::string CertificateNames::ToString() const {
  std::vector<std::string> names;
  if (!common_name.empty()) names.push_back(common_name);
  for (const std::string& dns : dns_names) {
    if (dns != common_name) names.push_back(dns);
  }
  return names.empty() ? "no names" : absl::StrJoin(names, ", ");
}

absl::StatusOr<CertificateNames> NamesOfCertificate(const std::string& pem) {
  X509Ptr cert = ReadCertificate(pem);
  if (!cert) return absl::InvalidArgumentError("no PEM certificate");
  CertificateNames names;
  X509_NAME* subject = X509_get_subject_name(cert.get());
  int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index >= 0) {
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, data);
    if (len >= 0) names.common_name.assign(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
    OPENSSL_free(utf8);
  }
  auto* sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; sans != nullptr && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
    if (name->type != GEN_DNS) continue;
    const ASN1_IA5STRING* dns = name->d.dNSName;
    names.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                 static_cast<size_t>(ASN1_STRING_length(dns)));
  }
  GENERAL_NAMES_free(sans);
  ERR_clear_error();
  return names;
}

std::optional<CertificateNames> PeerCertificateNames(const grpc::AuthContext& auth) {
  // gRPC puts the peer's certificate into the auth context only after the
  // handshake verified it (GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY).
  std::vector<grpc::string_ref> pem = auth.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) return std::nullopt;
  absl::StatusOr<CertificateNames> names =
      NamesOfCertificate(std::string(pem.front().data(), pem.front().size()));
  if (!names.ok()) return std::nullopt;
  return *std::move(names);
}

absl::Status CheckPlaintextAllowed(absl::string_view flag, const std::string& address, bool tls,
                                   bool insecure, absl::string_view plaintext_use) {
  if (tls || insecure || IsLoopbackAddress(address)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      flag, " ", address, " is not a loopback address: give --tls-cert/--tls-key/--tls-ca, or ",
      "--insecure to ", plaintext_use, " anyway"));
}

}  // namespace fleet
