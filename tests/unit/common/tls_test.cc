#include "common/tls.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/pki.h"
#include "fleet/v1/agent.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet {
namespace {

using ::fleet::testing::ReadTextFile;
using ::fleet::testing::StatusIs;
using ::fleet::testing::TempDir;
using ::fleet::testing::WriteTextFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A CA with a controller and a host certificate written to a temp dir.
class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(InitCertificateAuthorityDir(dir(), kDefaultCaValidity));
    ASSERT_OK(IssueCertificateToDir(dir(), "ctl", CertificateKind::kController,
                                    kDefaultLeafValidity, false));
    ASSERT_OK(IssueCertificateToDir(dir(), "web-01", CertificateKind::kHost, kDefaultLeafValidity,
                                    false));
  }

  std::string dir() const { return tmp_.Sub("pki"); }
  TlsFiles Files(const std::string& id) const {
    return {IssuedCertPath(dir(), id), IssuedKeyPath(dir(), id), CaCertPath(dir())};
  }

  TempDir tmp_;
};

TEST_F(TlsFilesTest, Validate_AcceptsNoFilesAtAll) { EXPECT_OK(ValidateTlsFiles({})); }

TEST_F(TlsFilesTest, Validate_AcceptsMatchingCertificateKeyAndCa) {
  EXPECT_OK(ValidateTlsFiles(Files("ctl")));
  EXPECT_OK(ValidateTlsFiles(Files("web-01")));
}

TEST_F(TlsFilesTest, Validate_RefusesPartialSetNamingWhatIsMissing) {
  TlsFiles files = Files("ctl");
  files.key.clear();
  files.ca.clear();
  EXPECT_THAT(ValidateTlsFiles(files),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--tls-cert, --tls-key and --tls-ca go together: --tls-key and --tls-ca "
                       "are missing"));
  files = Files("ctl");
  files.cert.clear();
  EXPECT_THAT(ValidateTlsFiles(files),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(": --tls-cert is missing")));
}

TEST_F(TlsFilesTest, Validate_RefusesUnreadableFileNamingFlagAndPath) {
  TlsFiles files = Files("ctl");
  files.ca = tmp_.Sub("nope.crt");
  EXPECT_THAT(ValidateTlsFiles(files), StatusIs(absl::StatusCode::kInvalidArgument,
                                                absl::StrCat("--tls-ca: cannot read ", files.ca,
                                                             ": No such file or directory")));
}

TEST_F(TlsFilesTest, Validate_RefusesCertificateFileWithoutPem) {
  TlsFiles files = Files("ctl");
  files.cert = tmp_.Sub("garbage.crt");
  WriteTextFile(files.cert, "not a certificate\n");
  EXPECT_THAT(ValidateTlsFiles(files),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       absl::StrCat("--tls-cert ", files.cert,
                                    " holds no PEM certificate (BEGIN CERTIFICATE)")));
}

TEST_F(TlsFilesTest, Validate_RefusesKeyFileThatHoldsACertificate) {
  TlsFiles files = Files("ctl");
  files.key = files.cert;
  EXPECT_THAT(ValidateTlsFiles(files),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat("--tls-key ", files.key,
                                              " holds no unencrypted PEM private key"))));
}

TEST_F(TlsFilesTest, Validate_RefusesKeyOfAnotherCertificate) {
  TlsFiles files = Files("ctl");
  files.key = IssuedKeyPath(dir(), "web-01");
  EXPECT_THAT(
      ValidateTlsFiles(files),
      StatusIs(absl::StatusCode::kInvalidArgument,
               absl::StrCat("--tls-key ", files.key,
                            " is not the key of the certificate in --tls-cert ", files.cert)));
}

TEST_F(TlsFilesTest, Validate_RefusesCaFileWithoutCertificate) {
  TlsFiles files = Files("ctl");
  files.ca = IssuedKeyPath(dir(), "ctl");
  EXPECT_THAT(ValidateTlsFiles(files),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       absl::StrCat("--tls-ca ", files.ca,
                                    " holds no PEM certificate (BEGIN CERTIFICATE)")));
  EXPECT_THAT(ValidateCaFile("--tls-ca", files.ca),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("holds no PEM certificate")));
}

TEST(TlsReloadIntervalTest, AcceptsWholeSecondsFromOne) {
  absl::StatusOr<absl::Duration> d = ParseTlsReloadInterval("1s");
  ASSERT_OK(d);
  EXPECT_EQ(*d, absl::Seconds(1));
  d = ParseTlsReloadInterval("1m");
  ASSERT_OK(d);
  EXPECT_EQ(*d, absl::Minutes(1));
}

TEST(TlsReloadIntervalTest, RefusesFractionsZeroAndGarbage) {
  for (const char* bad : {"500ms", "1500ms", "0s", "-1s", "soon", ""}) {
    EXPECT_THAT(ParseTlsReloadInterval(bad),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("--tls-reload-interval '", bad,
                                      "' must be whole seconds of at least 1s, like 1m")))
        << bad;
  }
}

TEST(CertificateNamesTest, NamesMatchesCommonNameAndDnsSansExactly) {
  CertificateNames names{"web-01", {"web-01", "web-01.example.net"}};
  EXPECT_TRUE(names.Names("web-01"));
  EXPECT_TRUE(names.Names("web-01.example.net"));
  EXPECT_FALSE(names.Names("web-0"));
  EXPECT_FALSE(names.Names("web-02"));
  EXPECT_FALSE(names.Names(""));
  EXPECT_EQ(names.ToString(), "web-01, web-01.example.net");
  EXPECT_FALSE(CertificateNames{}.Names(""));
}

TEST(PlaintextRuleTest, LoopbackIsAllowedWithoutTls) {
  EXPECT_OK(CheckPlaintextAllowed("--listen", "127.0.0.1:7000", false, false, "serve plaintext"));
  EXPECT_OK(CheckPlaintextAllowed("--listen", "[::1]:7000", false, false, "serve plaintext"));
}

TEST(PlaintextRuleTest, OtherAddressNeedsTlsOrInsecure) {
  EXPECT_THAT(CheckPlaintextAllowed("--listen", "0.0.0.0:7000", false, false, "serve plaintext"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--listen 0.0.0.0:7000 is not a loopback address: give "
                       "--tls-cert/--tls-key/--tls-ca, or --insecure to serve plaintext anyway"));
  EXPECT_OK(CheckPlaintextAllowed("--listen", "0.0.0.0:7000", true, false, "serve plaintext"));
  EXPECT_OK(CheckPlaintextAllowed("--listen", "0.0.0.0:7000", false, true, "serve plaintext"));
}

// Answers every FetchArtifact with the names in the caller's certificate,
// as FAILED_PRECONDITION's message ("no certificate" without one).
class PeerNamesService final : public fleet::v1::AgentService::CallbackService {
 public:
  grpc::ServerWriteReactor<fleet::v1::ArtifactChunk>* FetchArtifact(
      grpc::CallbackServerContext* context, const fleet::v1::FetchArtifactRequest*) override {
    class Answer : public grpc::ServerWriteReactor<fleet::v1::ArtifactChunk> {
     public:
      explicit Answer(const std::string& text) {
        Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, text));
      }
      void OnDone() override { delete this; }
    };
    std::optional<CertificateNames> names = PeerCertificateNames(*context->auth_context());
    return new Answer(names ? names->ToString() : "no certificate");
  }
};

// A real gRPC server with TlsServerCredentials on loopback, and clients
// with TlsChannelCredentials: what the handshake lets through.
class TlsHandshakeTest : public TlsFilesTest {
 protected:
  void SetUp() override {
    TlsFilesTest::SetUp();
    // The server reads its CA from its own copy, which the rotation test
    // replaces.
    WriteTextFile(ServerCa(), ReadTextFile(CaCertPath(dir())));
    grpc::ServerBuilder builder;
    TlsFiles files = Files("ctl");
    files.ca = ServerCa();
    builder.AddListeningPort("127.0.0.1:0", TlsServerCredentials(files, absl::Seconds(1)), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_TRUE(server_ != nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  std::string ServerCa() const { return tmp_.Sub("server-ca.crt"); }

  // The status of one FetchArtifact over a channel with `files`, dialling
  // 127.0.0.1 (or `target_name` as the TLS name when set).
  grpc::Status Call(const TlsFiles& files, const std::string& target_name = "") {
    grpc::ChannelArguments args;
    if (!target_name.empty()) args.SetSslTargetNameOverride(target_name);
    auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_),
                                             TlsChannelCredentials(files, absl::Seconds(1)), args);
    auto client = fleet::v1::AgentService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    fleet::v1::FetchArtifactRequest req;
    auto reader = client->FetchArtifact(&ctx, req);
    fleet::v1::ArtifactChunk chunk;
    while (reader->Read(&chunk)) {
    }
    return reader->Finish();
  }

  // Writes a certificate of `ca` for `id` (valid from `from` to `to`) to the
  // temp dir; returns its files, trusting the cluster's CA for the server.
  TlsFiles WriteCertificate(const KeyAndCertificate& ca, const std::string& id, absl::Time from,
                            absl::Time to) {
    absl::StatusOr<KeyAndCertificate> issued =
        IssueCertificate(ca, id, CertificateKind::kHost, from, to);
    EXPECT_OK(issued);
    TlsFiles files{tmp_.Sub(id + ".crt"), tmp_.Sub(id + ".key"), CaCertPath(dir())};
    WriteTextFile(files.cert, issued.ok() ? issued->cert_pem : "");
    WriteTextFile(files.key, issued.ok() ? issued->key_pem : "", 0600);
    return files;
  }

  PeerNamesService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(TlsHandshakeTest, ServerSeesTheNamesOfAClientCertificate) {
  grpc::Status st = Call(Files("web-01"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_EQ(st.error_message(), "web-01");
}

TEST_F(TlsHandshakeTest, ClientWithOnlyTheCaIsLetInWithoutCertificate) {
  grpc::Status st = Call({"", "", CaCertPath(dir())});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_EQ(st.error_message(), "no certificate");
}

TEST_F(TlsHandshakeTest, ClientCertificateOfAnotherCaFailsTheHandshake) {
  absl::StatusOr<KeyAndCertificate> other =
      CreateCertificateAuthority(absl::Now() - absl::Hours(1), absl::Now() + absl::Hours(1));
  ASSERT_OK(other);
  TlsFiles files = WriteCertificate(*other, "web-01", absl::Now() - absl::Minutes(5),
                                    absl::Now() + absl::Hours(1));
  grpc::Status st = Call(files);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
}

TEST_F(TlsHandshakeTest, ExpiredClientCertificateFailsTheHandshake) {
  absl::StatusOr<KeyAndCertificate> ca = LoadCertificateAuthority(dir());
  ASSERT_OK(ca);
  TlsFiles files =
      WriteCertificate(*ca, "web-01", absl::Now() - absl::Hours(3), absl::Now() - absl::Hours(1));
  grpc::Status st = Call(files);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
}

TEST_F(TlsHandshakeTest, ClientRefusesServerCertificateOfAnotherCa) {
  absl::StatusOr<KeyAndCertificate> other =
      CreateCertificateAuthority(absl::Now() - absl::Hours(1), absl::Now() + absl::Hours(1));
  ASSERT_OK(other);
  WriteTextFile(tmp_.Sub("other-ca.crt"), other->cert_pem);
  grpc::Status st = Call({"", "", tmp_.Sub("other-ca.crt")});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
}

TEST_F(TlsHandshakeTest, ClientRefusesServerCertificateForAnotherName) {
  grpc::Status st = Call({"", "", CaCertPath(dir())}, "other.example.net");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  st = Call({"", "", CaCertPath(dir())}, "ctl");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
}

TEST_F(TlsHandshakeTest, ReplacedCaFileIsTrustedWithoutRestart) {
  absl::StatusOr<KeyAndCertificate> second =
      CreateCertificateAuthority(absl::Now() - absl::Hours(1), absl::Now() + absl::Hours(1));
  ASSERT_OK(second);
  TlsFiles files = WriteCertificate(*second, "web-09", absl::Now() - absl::Minutes(5),
                                    absl::Now() + absl::Hours(1));
  ASSERT_EQ(Call(files).error_code(), grpc::StatusCode::UNAVAILABLE);

  WriteTextFile(ServerCa(), ReadTextFile(CaCertPath(dir())) + second->cert_pem);
  grpc::Status st;
  EXPECT_TRUE(::fleet::testing::WaitFor(
      [&] {
        st = Call(files);
        return st.error_code() == grpc::StatusCode::FAILED_PRECONDITION;
      },
      absl::Seconds(10)))
      << st.error_message();
  EXPECT_EQ(st.error_message(), "web-09");
  // The first CA's certificates keep working.
  EXPECT_EQ(Call(Files("web-01")).error_message(), "web-01");
}

}  // namespace
}  // namespace fleet
