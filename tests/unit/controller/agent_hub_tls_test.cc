// The agent hub behind mutual TLS: a real gRPC server with the controller's
// credentials and clients with certificates from common/pki. Which calls
// the hub lets through, and what it records for those it refuses.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/pki.h"
#include "common/tls.h"
#include "controller/agent_hub.h"
#include "controller/blob_store.h"
#include "fleet/v1/agent.grpc.pb.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::controller {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// Accepts every Hello and remembers whose it was.
class RecordingListener : public AgentListener {
 public:
  absl::Status OnHello(const fleet::v1::Hello& hello, const std::string&) override {
    absl::MutexLock lock(&mu_);
    hellos_.push_back(hello.host_id());
    return absl::OkStatus();
  }
  void OnConnected(const std::string&) override {}
  void OnProgress(const std::string&, const fleet::v1::CommandProgress&) override {}
  void OnResult(const std::string&, const fleet::v1::CommandResult&) override {}
  void OnDisconnected(const std::string&) override {}

  std::vector<std::string> hellos() {
    absl::MutexLock lock(&mu_);
    return hellos_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> hellos_ ABSL_GUARDED_BY(mu_);
};

class AgentHubTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(InitCertificateAuthorityDir(pki(), kDefaultCaValidity));
    for (const char* host : {"web-01", "web-02"}) {
      ASSERT_OK(
          IssueCertificateToDir(pki(), host, CertificateKind::kHost, kDefaultLeafValidity, false));
    }
    ASSERT_OK(IssueCertificateToDir(pki(), "controller", CertificateKind::kController,
                                    kDefaultLeafValidity, false));
    ASSERT_OK(blobs_.Init());
    hub_.set_listener(&listener_);
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    hub_.CloseAll();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

  std::string pki() const { return dir_.Sub("pki"); }
  TlsFiles Files(const std::string& id) const {
    return {IssuedCertPath(pki(), id), IssuedKeyPath(pki(), id), CaCertPath(pki())};
  }

  // Serves the hub as the controller does: with TLS (client certificates
  // required by the hub and denials recorded) or, in development mode,
  // plaintext.
  void StartServer(bool tls) {
    hub_.set_require_client_certificate(tls);
    hub_.set_denial_hook([this](const fleet::v1::Event& event) {
      absl::MutexLock lock(&mu_);
      denials_.push_back(event);
    });
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0",
                             tls ? TlsServerCredentials(Files("controller"), absl::Seconds(1))
                                 : grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&hub_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(port_, 0);
  }

  // A client presenting `files` (plaintext when empty).
  std::unique_ptr<fleet::v1::AgentService::Stub> Client(const TlsFiles& files) {
    return fleet::v1::AgentService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port_), files.ca.empty()
                                               ? grpc::InsecureChannelCredentials()
                                               : TlsChannelCredentials(files, absl::Seconds(1))));
  }

  // Sends Hello as `host_id`; true once the hub registered the host.
  bool Registers(fleet::v1::AgentService::Stub* client, const std::string& host_id) {
    grpc::ClientContext ctx;
    auto stream = client->Connect(&ctx);
    fleet::v1::AgentMessage hello;
    hello.mutable_hello()->set_host_id(host_id);
    stream->Write(hello);
    bool registered =
        ::fleet::testing::WaitFor([&] { return hub_.IsConnected(host_id); }, absl::Seconds(5));
    ctx.TryCancel();
    stream->Finish().IgnoreError();
    return registered;
  }

  // Sends Hello as `host_id` and returns the status the hub ends the stream
  // with (DEADLINE_EXCEEDED after 10s if it keeps it open).
  grpc::Status Refusal(fleet::v1::AgentService::Stub* client, const std::string& host_id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = client->Connect(&ctx);
    fleet::v1::AgentMessage hello;
    hello.mutable_hello()->set_host_id(host_id);
    stream->Write(hello);
    stream->WritesDone();
    fleet::v1::ControllerMessage ignored;
    while (stream->Read(&ignored)) {
    }
    return stream->Finish();
  }

  grpc::Status Fetch(fleet::v1::AgentService::Stub* client, const std::string& host_id,
                     const std::string& sha256, std::string* data = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    fleet::v1::FetchArtifactRequest req;
    req.set_host_id(host_id);
    req.set_sha256(sha256);
    auto reader = client->FetchArtifact(&ctx, req);
    fleet::v1::ArtifactChunk chunk;
    while (reader->Read(&chunk)) {
      if (data != nullptr) *data += chunk.data();
    }
    return reader->Finish();
  }

  std::string StoreBlob(const std::string& content) {
    absl::StatusOr<std::unique_ptr<BlobStore::Writer>> writer = blobs_.NewWriter();
    EXPECT_OK(writer);
    EXPECT_OK((*writer)->Append(content));
    absl::StatusOr<std::string> sha = (*writer)->Commit();
    EXPECT_OK(sha);
    return sha.ok() ? *sha : "";
  }

  std::vector<fleet::v1::Event> denials() {
    absl::MutexLock lock(&mu_);
    return denials_;
  }

  ::fleet::testing::TempDir dir_;
  BlobStore blobs_{dir_.Sub("blobs")};
  RecordingListener listener_;
  AgentHub hub_{&blobs_, DefaultClock()};
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Mutex mu_;
  std::vector<fleet::v1::Event> denials_ ABSL_GUARDED_BY(mu_);
};

TEST_F(AgentHubTlsTest, Connect_AcceptsTheHostItsCertificateNames) {
  StartServer(/*tls=*/true);
  auto client = Client(Files("web-01"));
  EXPECT_TRUE(Registers(client.get(), "web-01"));
  EXPECT_THAT(listener_.hellos(), ElementsAre("web-01"));
  EXPECT_THAT(denials(), IsEmpty());
}

TEST_F(AgentHubTlsTest, Connect_RejectsAgentWhoseCertificateNamesAnotherHost) {
  StartServer(/*tls=*/true);
  auto client = Client(Files("web-01"));
  grpc::Status st = Refusal(client.get(), "web-02");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_EQ(st.error_message(), "host id 'web-02' does not match the client certificate (web-01)");
  // Refused before the listener heard of it: nothing recorded for web-02.
  EXPECT_THAT(listener_.hellos(), IsEmpty());
  EXPECT_FALSE(hub_.IsConnected("web-02"));

  std::vector<fleet::v1::Event> events = denials();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind(), "auth.denied");
  EXPECT_EQ(events[0].host_id(), "web-01");
  EXPECT_EQ(events[0].app(), "");
  EXPECT_THAT(events[0].message(), StartsWith("Connect from ipv4:127.0.0.1:"));
  EXPECT_THAT(events[0].message(),
              HasSubstr(": host id 'web-02' does not match the client certificate (web-01)"));
}

TEST_F(AgentHubTlsTest, Connect_RecordsARepeatedDenialOnce) {
  StartServer(/*tls=*/true);
  auto client = Client(Files("web-01"));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Refusal(client.get(), "web-02").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  EXPECT_EQ(denials().size(), 1u);
  // Another claimed id is another denial.
  EXPECT_EQ(Refusal(client.get(), "db-01").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(denials().size(), 2u);
}

TEST_F(AgentHubTlsTest, Connect_WithoutClientCertificateIsUnauthenticated) {
  StartServer(/*tls=*/true);
  auto client = Client({"", "", CaCertPath(pki())});
  grpc::Status st = Refusal(client.get(), "web-01");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("needs a client certificate"));
  EXPECT_THAT(listener_.hellos(), IsEmpty());
  // Logged only: an anonymous peer cannot fill the audit history.
  EXPECT_THAT(denials(), IsEmpty());
}

TEST_F(AgentHubTlsTest, FetchArtifact_ServesTheHostItsCertificateNames) {
  StartServer(/*tls=*/true);
  const std::string sha = StoreBlob("artifact bytes");
  auto client = Client(Files("web-02"));
  std::string data;
  grpc::Status st = Fetch(client.get(), "web-02", sha, &data);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(data, "artifact bytes");
}

TEST_F(AgentHubTlsTest, FetchArtifact_RejectsHostIdOtherThanTheCertificates) {
  StartServer(/*tls=*/true);
  const std::string sha = StoreBlob("artifact bytes");
  auto client = Client(Files("web-02"));
  std::string data;
  grpc::Status st = Fetch(client.get(), "web-01", sha, &data);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_EQ(st.error_message(), "host id 'web-01' does not match the client certificate (web-02)");
  EXPECT_EQ(data, "");
  std::vector<fleet::v1::Event> events = denials();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].message(), StartsWith("FetchArtifact from ipv4:127.0.0.1:"));
}

TEST_F(AgentHubTlsTest, FetchArtifact_WithoutClientCertificateIsUnauthenticated) {
  StartServer(/*tls=*/true);
  const std::string sha = StoreBlob("artifact bytes");
  auto client = Client({"", "", CaCertPath(pki())});
  std::string data;
  grpc::Status st = Fetch(client.get(), "web-01", sha, &data);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  EXPECT_EQ(data, "");
}

TEST_F(AgentHubTlsTest, DevelopmentMode_TakesAnyHostIdAtItsWord) {
  StartServer(/*tls=*/false);
  auto client = Client({});
  EXPECT_TRUE(Registers(client.get(), "web-02"));
  EXPECT_THAT(listener_.hellos(), ElementsAre("web-02"));
  const std::string sha = StoreBlob("artifact bytes");
  EXPECT_TRUE(Fetch(client.get(), "anyone", sha).ok());
}

}  // namespace
}  // namespace fleet::controller
