#include "common/pki.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet {
namespace {

using ::fleet::testing::FileMode;
using ::fleet::testing::ReadTextFile;
using ::fleet::testing::StatusIs;
using ::fleet::testing::TempDir;
using ::fleet::testing::WriteTextFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr Parse(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509Ptr cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  return cert;
}

// The X509_V_* result of verifying `leaf` against `cas` for `purpose`
// (X509_PURPOSE_SSL_CLIENT / _SERVER), as a TLS peer would.
int Verify(const std::string& leaf, const std::vector<std::string>& cas, int purpose) {
  X509_STORE* store = X509_STORE_new();
  for (const std::string& ca : cas) {
    X509Ptr ca_cert = Parse(ca);
    EXPECT_TRUE(ca_cert);
    X509_STORE_add_cert(store, ca_cert.get());
  }
  X509Ptr cert = Parse(leaf);
  EXPECT_TRUE(cert);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, cert.get(), nullptr);
  X509_STORE_CTX_set_purpose(ctx, purpose);
  int result = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return result;
}

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<KeyAndCertificate> ca =
        CreateCertificateAuthority(now_ - absl::Hours(1), now_ + absl::Hours(24));
    ASSERT_OK(ca);
    ca_ = *ca;
  }

  KeyAndCertificate Issue(const std::string& id, CertificateKind kind) {
    absl::StatusOr<KeyAndCertificate> issued =
        IssueCertificate(ca_, id, kind, now_ - absl::Minutes(5), now_ + absl::Hours(1));
    EXPECT_OK(issued);
    return issued.ok() ? *issued : KeyAndCertificate();
  }

  absl::Time now_ = absl::Now();
  KeyAndCertificate ca_;
};

TEST_F(PkiTest, CertificateAuthority_IsSelfSignedCaThatVerifiesItself) {
  X509Ptr ca = Parse(ca_.cert_pem);
  ASSERT_TRUE(ca);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(Verify(ca_.cert_pem, {ca_.cert_pem}, X509_PURPOSE_ANY), X509_V_OK);
  EXPECT_THAT(ca_.key_pem, StartsWith("-----BEGIN PRIVATE KEY-----"));
}

TEST_F(PkiTest, CertificateAuthority_TwoCasHaveDistinctNames) {
  absl::StatusOr<KeyAndCertificate> other =
      CreateCertificateAuthority(now_ - absl::Hours(1), now_ + absl::Hours(24));
  ASSERT_OK(other);
  absl::StatusOr<CertificateNames> first = NamesOfCertificate(ca_.cert_pem);
  absl::StatusOr<CertificateNames> second = NamesOfCertificate(other->cert_pem);
  ASSERT_OK(first);
  ASSERT_OK(second);
  EXPECT_THAT(first->common_name, StartsWith("Fleet CA "));
  EXPECT_NE(first->common_name, second->common_name);
}

TEST_F(PkiTest, HostCertificate_VerifiesAgainstItsCaAsTlsClient) {
  KeyAndCertificate host = Issue("web-01", CertificateKind::kHost);
  EXPECT_EQ(Verify(host.cert_pem, {ca_.cert_pem}, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
}

TEST_F(PkiTest, HostCertificate_IsNotAcceptedAsServerCertificate) {
  KeyAndCertificate host = Issue("web-01", CertificateKind::kHost);
  EXPECT_EQ(Verify(host.cert_pem, {ca_.cert_pem}, X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_INVALID_PURPOSE);
}

TEST_F(PkiTest, HostCertificate_NamesTheHostInCommonNameAndDnsSan) {
  KeyAndCertificate host = Issue("web-01", CertificateKind::kHost);
  absl::StatusOr<CertificateNames> names = NamesOfCertificate(host.cert_pem);
  ASSERT_OK(names);
  EXPECT_EQ(names->common_name, "web-01");
  EXPECT_THAT(names->dns_names, ElementsAre("web-01"));
  X509Ptr cert = Parse(host.cert_pem);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_NE(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
}

TEST_F(PkiTest, ControllerCertificate_CoversItsNameLocalhostAndLoopbackIp) {
  KeyAndCertificate controller = Issue("fleet.example.net", CertificateKind::kController);
  EXPECT_EQ(Verify(controller.cert_pem, {ca_.cert_pem}, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  X509Ptr cert = Parse(controller.cert_pem);
  EXPECT_EQ(X509_check_host(cert.get(), "fleet.example.net", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_NE(X509_check_host(cert.get(), "other.example.net", 0, 0, nullptr), 1);
}

TEST_F(PkiTest, ControllerCertificate_IsNotAcceptedAsClientCertificate) {
  KeyAndCertificate controller = Issue("fleet", CertificateKind::kController);
  EXPECT_EQ(Verify(controller.cert_pem, {ca_.cert_pem}, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_INVALID_PURPOSE);
}

TEST_F(PkiTest, ControllerCertificate_NamedByIpv4AddressGetsIpSan) {
  KeyAndCertificate controller = Issue("10.0.0.5", CertificateKind::kController);
  X509Ptr cert = Parse(controller.cert_pem);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.0.0.5", 0), 1);
  absl::StatusOr<CertificateNames> names = NamesOfCertificate(controller.cert_pem);
  ASSERT_OK(names);
  EXPECT_THAT(names->dns_names, ElementsAre("localhost"));
}

TEST_F(PkiTest, Certificate_FromAnotherCaDoesNotVerify) {
  absl::StatusOr<KeyAndCertificate> other =
      CreateCertificateAuthority(now_ - absl::Hours(1), now_ + absl::Hours(24));
  ASSERT_OK(other);
  absl::StatusOr<KeyAndCertificate> foreign = IssueCertificate(
      *other, "web-01", CertificateKind::kHost, now_ - absl::Minutes(5), now_ + absl::Hours(1));
  ASSERT_OK(foreign);
  EXPECT_EQ(Verify(foreign->cert_pem, {ca_.cert_pem}, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  // Trusting both CAs (a rotation) accepts certificates of either.
  EXPECT_EQ(Verify(foreign->cert_pem, {ca_.cert_pem, other->cert_pem}, X509_PURPOSE_SSL_CLIENT),
            X509_V_OK);
  EXPECT_EQ(Verify(Issue("web-02", CertificateKind::kHost).cert_pem,
                   {ca_.cert_pem, other->cert_pem}, X509_PURPOSE_SSL_CLIENT),
            X509_V_OK);
}

TEST_F(PkiTest, Certificate_IssuedWithPastWindowIsExpired) {
  absl::StatusOr<KeyAndCertificate> expired = IssueCertificate(
      ca_, "web-01", CertificateKind::kHost, now_ - absl::Hours(3), now_ - absl::Hours(1));
  ASSERT_OK(expired);
  EXPECT_EQ(Verify(expired->cert_pem, {ca_.cert_pem}, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST_F(PkiTest, Certificate_SerialsAreRandom128BitNumbers) {
  X509Ptr a = Parse(Issue("web-01", CertificateKind::kHost).cert_pem);
  X509Ptr b = Parse(Issue("web-01", CertificateKind::kHost).cert_pem);
  const ASN1_INTEGER* sa = X509_get0_serialNumber(a.get());
  const ASN1_INTEGER* sb = X509_get0_serialNumber(b.get());
  EXPECT_NE(ASN1_INTEGER_cmp(sa, sb), 0);
  EXPECT_GE(ASN1_STRING_length(sa), 14);  // 16 random bytes, leading zeros dropped
  EXPECT_LE(ASN1_STRING_length(sa), 16);
}

TEST_F(PkiTest, IssueCertificate_RefusesUnsafeNames) {
  for (const char* bad : {"", "../web-01", "web 01", ".hidden", "web/01", "web-01,DNS:evil"}) {
    EXPECT_THAT(IssueCertificate(ca_, bad, CertificateKind::kHost, now_, now_ + absl::Hours(1)),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("must be letters, digits, '.', '_' or '-'")))
        << bad;
  }
}

TEST_F(PkiTest, IssueCertificate_RefusesEmptyValidityWindow) {
  EXPECT_THAT(IssueCertificate(ca_, "web-01", CertificateKind::kHost, now_, now_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("would never be valid")));
}

TEST_F(PkiTest, IssueCertificate_RefusesCaKeyOfAnotherCa) {
  absl::StatusOr<KeyAndCertificate> other =
      CreateCertificateAuthority(now_ - absl::Hours(1), now_ + absl::Hours(24));
  ASSERT_OK(other);
  KeyAndCertificate mixed{ca_.cert_pem, other->key_pem};
  EXPECT_THAT(
      IssueCertificate(mixed, "web-01", CertificateKind::kHost, now_, now_ + absl::Hours(1)),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "the CA key does not belong to the CA certificate"));
}


TEST(PkiDirTest, Init_WritesCaWithPrivateKeyOnlyOwnerCanRead) {
  TempDir tmp;
  const std::string dir = tmp.Sub("pki");
  ASSERT_OK(InitCertificateAuthorityDir(dir, kDefaultCaValidity));
  EXPECT_EQ(FileMode(dir), 0700u);
  EXPECT_EQ(FileMode(CaKeyPath(dir)), 0600u);
  EXPECT_EQ(FileMode(CaCertPath(dir)), 0644u);
  absl::StatusOr<KeyAndCertificate> ca = LoadCertificateAuthority(dir);
  ASSERT_OK(ca);
  X509Ptr cert = Parse(ca->cert_pem);
  // Ten years, give or take the backdating.
  int days = 0, seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert.get()),
                           X509_get0_notAfter(cert.get())),
            1);
  EXPECT_EQ(days, 3650);
}

TEST(PkiDirTest, Init_RefusesDirectoryWithCaKeyAndChangesNothing) {
  TempDir tmp;
  const std::string dir = tmp.Sub("pki");
  ASSERT_OK(InitCertificateAuthorityDir(dir, kDefaultCaValidity));
  const std::string key = ReadTextFile(CaKeyPath(dir));
  const std::string cert = ReadTextFile(CaCertPath(dir));
  EXPECT_THAT(InitCertificateAuthorityDir(dir, kDefaultCaValidity),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       absl::StrCat(CaKeyPath(dir),
                                    " exists: refusing to replace a CA (every certificate it "
                                    "signed would stop being trusted); remove it first or use "
                                    "another directory")));
  EXPECT_EQ(ReadTextFile(CaKeyPath(dir)), key);
  EXPECT_EQ(ReadTextFile(CaCertPath(dir)), cert);
}

TEST(PkiDirTest, Init_RefusesDirectoryWithOnlyCaCertificate) {
  TempDir tmp;
  WriteTextFile(tmp.Sub("pki/ca.crt"), "someone's CA\n");
  EXPECT_THAT(InitCertificateAuthorityDir(tmp.Sub("pki"), kDefaultCaValidity),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("ca.crt exists")));
  EXPECT_FALSE(std::ifstream(tmp.Sub("pki/ca.key")).good());
  EXPECT_EQ(ReadTextFile(tmp.Sub("pki/ca.crt")), "someone's CA\n");
}

TEST(PkiDirTest, Issue_WritesHostPairSignedByTheDirectorysCa) {
  TempDir tmp;
  const std::string dir = tmp.Sub("pki");
  ASSERT_OK(InitCertificateAuthorityDir(dir, kDefaultCaValidity));
  ASSERT_OK(IssueCertificateToDir(dir, "web-01", CertificateKind::kHost, kDefaultLeafValidity,
                                  /*replace=*/false));
  EXPECT_EQ(IssuedCertPath(dir, "web-01"), dir + "/web-01.crt");
  EXPECT_EQ(FileMode(IssuedKeyPath(dir, "web-01")), 0600u);
  EXPECT_EQ(FileMode(IssuedCertPath(dir, "web-01")), 0644u);
  const std::string cert = ReadTextFile(IssuedCertPath(dir, "web-01"));
  EXPECT_EQ(Verify(cert, {ReadTextFile(CaCertPath(dir))}, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  // The pair passes the same checks the binaries run at start.
  EXPECT_OK(ValidateTlsFiles(
      {IssuedCertPath(dir, "web-01"), IssuedKeyPath(dir, "web-01"), CaCertPath(dir)}));
}

TEST(PkiDirTest, Issue_RefusesExistingPairWithoutReplaceAndKeepsIt) {
  TempDir tmp;
  const std::string dir = tmp.Sub("pki");
  ASSERT_OK(InitCertificateAuthorityDir(dir, kDefaultCaValidity));
  ASSERT_OK(
      IssueCertificateToDir(dir, "ctl", CertificateKind::kController, kDefaultLeafValidity, false));
  const std::string key = ReadTextFile(IssuedKeyPath(dir, "ctl"));
  EXPECT_THAT(
      IssueCertificateToDir(dir, "ctl", CertificateKind::kController, kDefaultLeafValidity, false),
      StatusIs(absl::StatusCode::kAlreadyExists,
               absl::StrCat(dir,
                            "/ctl.key exists: pass --force to issue a new "
                            "certificate and key for 'ctl'")));
  EXPECT_EQ(ReadTextFile(IssuedKeyPath(dir, "ctl")), key);
}

TEST(PkiDirTest, Issue_WithReplaceWritesANewPair) {
  TempDir tmp;
  const std::string dir = tmp.Sub("pki");
  ASSERT_OK(InitCertificateAuthorityDir(dir, kDefaultCaValidity));
  ASSERT_OK(
      IssueCertificateToDir(dir, "web-01", CertificateKind::kHost, kDefaultLeafValidity, false));
  const std::string key = ReadTextFile(IssuedKeyPath(dir, "web-01"));
  ASSERT_OK(IssueCertificateToDir(dir, "web-01", CertificateKind::kHost, kDefaultLeafValidity,
                                  /*replace=*/true));
  EXPECT_NE(ReadTextFile(IssuedKeyPath(dir, "web-01")), key);
  EXPECT_EQ(FileMode(IssuedKeyPath(dir, "web-01")), 0600u);
  EXPECT_OK(ValidateTlsFiles(
      {IssuedCertPath(dir, "web-01"), IssuedKeyPath(dir, "web-01"), CaCertPath(dir)}));
}

TEST(PkiDirTest, Issue_WithoutCaSaysHowToMakeOne) {
  TempDir tmp;
  EXPECT_THAT(IssueCertificateToDir(tmp.Sub("none"), "web-01", CertificateKind::kHost,
                                    kDefaultLeafValidity, false),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("(make one with `fleetctl pki init " + tmp.Sub("none") + "`)")));
}

TEST(PkiDirTest, Issue_RefusesNamesThatAreNotOneFileNameOrAreTheCas) {
  TempDir tmp;
  const std::string dir = tmp.Sub("pki");
  ASSERT_OK(InitCertificateAuthorityDir(dir, kDefaultCaValidity));
  for (const char* bad : {"ca", "../web-01", "web/01", ""}) {
    EXPECT_THAT(
        IssueCertificateToDir(dir, bad, CertificateKind::kHost, kDefaultLeafValidity,
                              /*replace=*/true),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot name a certificate")))
        << bad;
  }
  EXPECT_OK(LoadCertificateAuthority(dir));
}

TEST(PkiDirTest, LoadCertificateAuthority_RefusesKeyOfAnotherCa) {
  TempDir tmp;
  ASSERT_OK(InitCertificateAuthorityDir(tmp.Sub("a"), kDefaultCaValidity));
  ASSERT_OK(InitCertificateAuthorityDir(tmp.Sub("b"), kDefaultCaValidity));
  WriteTextFile(CaKeyPath(tmp.Sub("a")), ReadTextFile(CaKeyPath(tmp.Sub("b"))), 0600);
  EXPECT_THAT(LoadCertificateAuthority(tmp.Sub("a")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("ca.key does not belong to the certificate")));
}

}  // namespace
}  // namespace fleet
