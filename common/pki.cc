#include "common/pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/fs.h"
#include "common/openssl_ptr.h"
#include "common/status.h"

namespace fleet {
namespace {

// The reason OpenSSL queued for the last failure (and clears its queue).
std::string OpenSslReason() {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

absl::Status OpenSslError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", OpenSslReason()));
}

absl::StatusOr<X509Ptr> ParseCertificate(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert)
    return absl::InvalidArgumentError(absl::StrCat("no PEM certificate: ", OpenSslReason()));
  return cert;
}

// Refuses to prompt for a passphrase: the CA key is an unencrypted file.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

absl::StatusOr<PkeyPtr> ParsePrivateKey(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key)
    return absl::InvalidArgumentError(absl::StrCat("no PEM private key: ", OpenSslReason()));
  return key;
}

absl::StatusOr<std::string> CertificatePem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return OpenSslError("cannot encode certificate");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<std::string> PrivateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return OpenSslError("cannot encode private key");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<PkeyPtr> NewP256Key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("cannot generate a P-256 key");
  return key;
}

// 128 random bits, positive (DER INTEGER with the top bit clear).
absl::Status SetRandomSerial(X509* cert, std::string* hex) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return OpenSslError("cannot draw a serial number");
  bytes[0] &= 0x7f;
  BnPtr bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return OpenSslError("cannot set the serial number");
  }
  if (hex != nullptr) {
    *hex = absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
  }
  return absl::OkStatus();
}

// Adds one extension in OpenSSL's config syntax ("critical,CA:TRUE").
absl::Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (ext == nullptr) {
    return OpenSslError(absl::StrCat("cannot make extension ", OBJ_nid2sn(nid), "=", value));
  }
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (!ok) return OpenSslError(absl::StrCat("cannot add extension ", OBJ_nid2sn(nid)));
  return absl::OkStatus();
}

// A v3 certificate for `key` with a random serial and the validity window
// set; subject, issuer and extensions are the caller's.
absl::StatusOr<X509Ptr> NewCertificate(EVP_PKEY* key, absl::Time not_before, absl::Time not_after,
                                       std::string* serial_hex) {
  if (not_after <= not_before) {
    return absl::InvalidArgumentError(
        absl::StrCat("a certificate valid from ", absl::FormatTime(not_before), " to ",
                     absl::FormatTime(not_after), " would never be valid"));
  }
  X509Ptr cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), X509_VERSION_3)) {
    return OpenSslError("cannot make a certificate");
  }
  FLEET_RETURN_IF_ERROR(SetRandomSerial(cert.get(), serial_hex));
  if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), absl::ToTimeT(not_before)) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(not_after))) {
    return OpenSslError("cannot set the validity window");
  }
  if (!X509_set_pubkey(cert.get(), key)) return OpenSslError("cannot set the public key");
  return cert;
}

absl::Status SetCommonName(X509* cert, const std::string& common_name) {
  if (!X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                  -1, 0)) {
    return OpenSslError(absl::StrCat("cannot set the common name '", common_name, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<KeyAndCertificate> Encode(X509* cert, EVP_PKEY* key) {
  KeyAndCertificate out;
  FLEET_ASSIGN_OR_RETURN(out.cert_pem, CertificatePem(cert));
  FLEET_ASSIGN_OR_RETURN(out.key_pem, PrivateKeyPem(key));
  return out;
}

bool IsIpv4(const std::string& s) {
  in_addr addr;
  return inet_pton(AF_INET, s.c_str(), &addr) == 1;
}

std::string SubjectAltNames(const std::string& id, CertificateKind kind) {
  if (kind == CertificateKind::kHost) return absl::StrCat("DNS:", id);
  std::vector<std::string> names = {absl::StrCat(IsIpv4(id) ? "IP:" : "DNS:", id)};
  for (const char* local : {"DNS:localhost", "IP:127.0.0.1"}) {
    if (names[0] != local) names.push_back(local);
  }
  return absl::StrJoin(names, ",");
}

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  int err = errno;
  std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == EEXIST) return absl::AlreadyExistsError(message);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  if (err == ENOENT) return absl::NotFoundError(message);
  return absl::InternalError(message);
}

std::string DirOf(const std::string& path) {
  auto pos = path.find_last_of('/');
  return pos == std::string::npos ? "." : (pos == 0 ? "/" : path.substr(0, pos));
}

// Writes the key (0600) and then the certificate (0644). When the
// certificate cannot be written, the new key is removed again so that a
// failure leaves no half pair behind.
absl::Status WritePair(const KeyAndCertificate& pair, const std::string& cert_path,
                       const std::string& key_path, bool replace) {
  FLEET_RETURN_IF_ERROR(WriteFileDurably(key_path, pair.key_pem, 0600, replace));
  absl::Status st = WriteFileDurably(cert_path, pair.cert_pem, 0644, replace);
  if (!st.ok()) {
    if (!replace) unlink(key_path.c_str());
    return st;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KeyAndCertificate> CreateCertificateAuthority(absl::Time not_before,
                                                             absl::Time not_after) {
  FLEET_ASSIGN_OR_RETURN(PkeyPtr key, NewP256Key());
  std::string serial;
  FLEET_ASSIGN_OR_RETURN(X509Ptr cert, NewCertificate(key.get(), not_before, not_after, &serial));
  FLEET_RETURN_IF_ERROR(SetCommonName(cert.get(), absl::StrCat("Fleet CA ", serial.substr(0, 8))));
  if (!X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()))) {
    return OpenSslError("cannot set the CA's issuer");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  FLEET_RETURN_IF_ERROR(
      AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  FLEET_RETURN_IF_ERROR(
      AddExtension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  FLEET_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  FLEET_RETURN_IF_ERROR(
      AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return OpenSslError("cannot sign the CA certificate");
  }
  return Encode(cert.get(), key.get());
}

absl::StatusOr<KeyAndCertificate> IssueCertificate(const KeyAndCertificate& ca,
                                                   const std::string& id, CertificateKind kind,
                                                   absl::Time not_before, absl::Time not_after) {
  const char* what = kind == CertificateKind::kHost ? "host id" : "controller name";
  if (!IsSafeName(id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " '", id, "' must be letters, digits, '.', '_' or '-' (not starting with '.')"));
  }
  absl::StatusOr<X509Ptr> ca_cert = ParseCertificate(ca.cert_pem);
  if (!ca_cert.ok()) return Annotate(ca_cert.status(), "CA certificate");
  absl::StatusOr<PkeyPtr> ca_key = ParsePrivateKey(ca.key_pem);
  if (!ca_key.ok()) return Annotate(ca_key.status(), "CA key");
  if (X509_check_private_key(ca_cert->get(), ca_key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the CA key does not belong to the CA certificate");
  }

  FLEET_ASSIGN_OR_RETURN(PkeyPtr key, NewP256Key());
  FLEET_ASSIGN_OR_RETURN(X509Ptr cert, NewCertificate(key.get(), not_before, not_after, nullptr));
  FLEET_RETURN_IF_ERROR(SetCommonName(cert.get(), id));
  if (!X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert->get()))) {
    return OpenSslError("cannot set the issuer");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_cert->get(), cert.get(), nullptr, nullptr, 0);
  FLEET_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  FLEET_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature"));
  FLEET_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_ext_key_usage,
                                     kind == CertificateKind::kHost ? "clientAuth" : "serverAuth"));
  FLEET_RETURN_IF_ERROR(
      AddExtension(cert.get(), &ctx, NID_subject_alt_name, SubjectAltNames(id, kind)));
  FLEET_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  FLEET_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid"));
  if (X509_sign(cert.get(), ca_key->get(), EVP_sha256()) == 0) {
    return OpenSslError(absl::StrCat("cannot sign the certificate for '", id, "'"));
  }
  return Encode(cert.get(), key.get());
}

std::string CaCertPath(const std::string& dir) { return dir + "/ca.crt"; }
std::string CaKeyPath(const std::string& dir) { return dir + "/ca.key"; }
std::string IssuedCertPath(const std::string& dir, const std::string& id) {
  return absl::StrCat(dir, "/", id, ".crt");
}
std::string IssuedKeyPath(const std::string& dir, const std::string& id) {
  return absl::StrCat(dir, "/", id, ".key");
}

absl::Status InitCertificateAuthorityDir(const std::string& dir, absl::Duration validity) {
  for (const std::string& path : {CaKeyPath(dir), CaCertPath(dir)}) {
    if (PathExists(path)) {
      return absl::AlreadyExistsError(
          absl::StrCat(path,
                       " exists: refusing to replace a CA (every certificate it signed "
                       "would stop being trusted); remove it first or use another directory"));
    }
  }
  FLEET_RETURN_IF_ERROR(MakeDirs(DirOf(dir)));
  // The directory holds the CA key: only its owner may list or enter it.
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoError("cannot create directory", dir);
  }
  absl::Time now = absl::Now();
  FLEET_ASSIGN_OR_RETURN(KeyAndCertificate ca,
                         CreateCertificateAuthority(now - kNotBeforeBackdate, now + validity));
  return WritePair(ca, CaCertPath(dir), CaKeyPath(dir), /*replace=*/false);
}

absl::StatusOr<KeyAndCertificate> LoadCertificateAuthority(const std::string& dir) {
  KeyAndCertificate ca;
  absl::StatusOr<std::string> cert = ReadFile(CaCertPath(dir));
  if (!cert.ok()) {
    return absl::Status(cert.status().code(),
                        absl::StrCat("cannot read the CA certificate ", CaCertPath(dir),
                                     " (make one with `fleetctl pki init ", dir, "`)"));
  }
  absl::StatusOr<std::string> key = ReadFile(CaKeyPath(dir));
  if (!key.ok()) {
    return absl::Status(key.status().code(),
                        absl::StrCat("cannot read the CA key ", CaKeyPath(dir)));
  }
  ca.cert_pem = *std::move(cert);
  ca.key_pem = *std::move(key);
  absl::StatusOr<X509Ptr> parsed_cert = ParseCertificate(ca.cert_pem);
  if (!parsed_cert.ok()) return Annotate(parsed_cert.status(), CaCertPath(dir));
  absl::StatusOr<PkeyPtr> parsed_key = ParsePrivateKey(ca.key_pem);
  if (!parsed_key.ok()) return Annotate(parsed_key.status(), CaKeyPath(dir));
  if (X509_check_private_key(parsed_cert->get(), parsed_key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(CaKeyPath(dir), " does not belong to the certificate ", CaCertPath(dir)));
  }
  return ca;
}

absl::Status IssueCertificateToDir(const std::string& ca_dir, const std::string& id,
                                   CertificateKind kind, absl::Duration validity, bool replace) {
  const std::string cert_path = IssuedCertPath(ca_dir, id);
  const std::string key_path = IssuedKeyPath(ca_dir, id);
  // Before the name check reaches IssueCertificate, `id` must not climb out
  // of the directory or name the CA's own files.
  if (!IsSafeName(id) || id == "ca") {
    return absl::InvalidArgumentError(
        absl::StrCat("'", id,
                     "' cannot name a certificate: use letters, digits, '.', '_' or '-' "
                     "(not starting with '.'), and not \"ca\""));
  }
  if (!replace) {
    for (const std::string& path : {key_path, cert_path}) {
      if (PathExists(path)) {
        return absl::AlreadyExistsError(absl::StrCat(
            path, " exists: pass --force to issue a new certificate and key for '", id, "'"));
      }
    }
  }
  FLEET_ASSIGN_OR_RETURN(KeyAndCertificate ca, LoadCertificateAuthority(ca_dir));
  absl::Time now = absl::Now();
  FLEET_ASSIGN_OR_RETURN(KeyAndCertificate issued,
                         IssueCertificate(ca, id, kind, now - kNotBeforeBackdate, now + validity));
  return WritePair(issued, cert_path, key_path, replace);
}

}  // namespace fleet
