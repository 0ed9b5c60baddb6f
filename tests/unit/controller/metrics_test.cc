#include "controller/metrics.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/event_kind.h"
#include "controller/agent_hub.h"
#include "controller/blob_store.h"
#include "controller/sqlite_store.h"
#include "controller/store.h"
#include "fleet/v1/agent.grpc.pb.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::controller {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

// Accepts every agent; the hub needs a listener before streams connect.
class AcceptingListener : public AgentListener {
 public:
  absl::Status OnHello(const fleet::v1::Hello&, const std::string&) override {
    return absl::OkStatus();
  }
  void OnConnected(const std::string&) override {}
  void OnProgress(const std::string&, const fleet::v1::CommandProgress&) override {}
  void OnResult(const std::string&, const fleet::v1::CommandResult&) override {}
  void OnDisconnected(const std::string&) override {}
};

// An agent's Connect stream from this process, registered once its Hello
// has been read.
class FakeAgent {
 public:
  FakeAgent(fleet::v1::AgentService::Stub* client, const std::string& host_id)
      : stream_(client->Connect(&context_)) {
    fleet::v1::AgentMessage hello;
    hello.mutable_hello()->set_host_id(host_id);
    EXPECT_TRUE(stream_->Write(hello));
  }
  ~FakeAgent() { Disconnect(); }

  void Disconnect() {
    if (stream_ == nullptr) return;
    context_.TryCancel();
    stream_->Finish();
    stream_.reset();
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<fleet::v1::AgentMessage, fleet::v1::ControllerMessage>>
      stream_;
};

fleet::v1::App MakeApp(const std::string& name) {
  fleet::v1::App app;
  app.mutable_spec()->set_name(name);
  app.set_spec_yaml("name: " + name + "\n");
  return app;
}

fleet::v1::Rollout MakeRollout(const std::string& app, fleet::v1::RolloutState state) {
  fleet::v1::Rollout rollout;
  rollout.set_app(app);
  rollout.set_version("v2");
  rollout.set_from_version("v1");
  rollout.set_kind(fleet::v1::ROLLOUT_KIND_DEPLOY);
  rollout.set_state(state);
  rollout.set_created_by("alice");
  rollout.set_created_at_ms(7000);
  return rollout;
}

// A finished rollout or rollback as the engine hands it to observers.
fleet::v1::Rollout Finished(fleet::v1::RolloutKind kind, fleet::v1::Subject subject,
                            fleet::v1::RolloutState state, int64_t created_at_ms,
                            int64_t finished_at_ms) {
  fleet::v1::Rollout rollout = MakeRollout("web", state);
  rollout.set_kind(kind);
  rollout.set_subject(subject);
  rollout.set_created_at_ms(created_at_ms);
  rollout.set_finished_at_ms(finished_at_ms);
  return rollout;
}

EngineEvent HostEvent(const std::string& app, const std::string& host, const std::string& kind) {
  EngineEvent e;
  e.event.set_app(app);
  e.event.set_rollout_id("7");
  e.event.set_host_id(host);
  std::optional<EventKind> parsed = ParseEventKind(kind);
  EXPECT_TRUE(parsed.has_value()) << kind;
  e.event_kind = parsed.value_or(EventKind::kRolloutStarted);
  e.event.set_kind(kind);
  e.event.set_actor(host);
  e.version = "v2";
  e.kind = fleet::v1::ROLLOUT_KIND_DEPLOY;
  return e;
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(dir_.Sub("fleet.db"));
    ASSERT_OK(store);
    store_ = std::move(*store);
    ASSERT_OK(blobs_.Init());
    hub_.set_listener(&listener_);
    metrics_ = std::make_unique<Metrics>(store_.get(), &hub_);
    // Wired as the controller wires it.
    hub_.set_bytes_served_hook(
        [metrics = metrics_.get()](int64_t bytes) { metrics->AddArtifactBytesServed(bytes); });
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    hub_.CloseAll();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

  // Serves the hub on a loopback port and returns a client for it.
  fleet::v1::AgentService::Stub* StartServer() {
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&hub_);
    server_ = builder.BuildAndStart();
    EXPECT_NE(port, 0);
    stub_ = fleet::v1::AgentService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
    return stub_.get();
  }

  // The rendered exposition, one element per line.
  std::vector<std::string> Render() {
    absl::StatusOr<std::string> text = metrics_->Render();
    EXPECT_OK(text);
    if (!text.ok()) return {};
    return absl::StrSplit(*text, '\n', absl::SkipEmpty());
  }

  fleet::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  BlobStore blobs_{dir_.Sub("blobs")};
  AcceptingListener listener_;
  AgentHub hub_{&blobs_, DefaultClock()};
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<fleet::v1::AgentService::Stub> stub_;
  std::unique_ptr<grpc::Server> server_;  // last: stops before the hub goes
};

TEST_F(MetricsTest, Render_StartsEveryFixedSeriesAtZeroWithTypes) {
  std::vector<std::string> lines = Render();
  EXPECT_THAT(lines, Contains("# TYPE fleet_agents_connected gauge"));
  EXPECT_THAT(lines, Contains("fleet_agents_connected 0"));
  EXPECT_THAT(lines, Contains("# TYPE fleet_rollouts gauge"));
  EXPECT_THAT(lines, Contains("fleet_rollouts{state=\"staging\"} 0"));
  EXPECT_THAT(lines, Contains("fleet_rollouts{state=\"rolling_back\"} 0"));
  EXPECT_THAT(lines, Contains("# TYPE fleet_rollouts_finished_total counter"));
  EXPECT_THAT(lines, Contains("fleet_rollouts_finished_total{kind=\"rollout\",state=\"succeeded\","
                              "subject=\"release\"} 0"));
  EXPECT_THAT(lines, Contains("# TYPE fleet_host_deployments_total counter"));
  EXPECT_THAT(lines, Contains("fleet_host_deployments_total{result=\"stage_failed\"} 0"));
  EXPECT_THAT(lines, Contains("fleet_rollbacks_total{state=\"failed\",subject=\"config\"} 0"));
  EXPECT_THAT(lines, Contains("# TYPE fleet_rollback_duration_seconds histogram"));
  EXPECT_THAT(lines, Contains("fleet_rollback_duration_seconds_count{subject=\"release\"} 0"));
  // No app yet: the family has no series, and Prometheus text leaves it out.
  EXPECT_THAT(lines, Not(Contains(HasSubstr("fleet_probe_failures_total"))));
  EXPECT_THAT(lines, Contains("fleet_artifact_bytes_served_total 0"));
}

TEST_F(MetricsTest, HostEvents_CountResultsAndProbeFailuresPerApp) {
  metrics_->OnEvents(
      {HostEvent("web", "web-01", "host.healthy"), HostEvent("web", "web-02", "host.healthy"),
       HostEvent("web", "web-03", "host.switched_back"), HostEvent("api", "api-01", "host.failed"),
       HostEvent("web", "web-01", "host.staged"), HostEvent("web", "web-01", "host.connected"),
       HostEvent("web", "", "rollout.started")});
  metrics_->OnEvents({HostEvent("web", "web-02", "host.stage_failed"),
                      HostEvent("web", "web-02", "host.lost"),
                      HostEvent("web", "web-02", "host.reverted"),
                      HostEvent("web", "web-03", "host.revert_failed")});

  std::vector<std::string> lines = Render();
  EXPECT_THAT(lines, Contains("fleet_host_deployments_total{result=\"healthy\"} 2"));
  EXPECT_THAT(lines, Contains("fleet_host_deployments_total{result=\"switched_back\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_host_deployments_total{result=\"failed\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_host_deployments_total{result=\"stage_failed\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_host_deployments_total{result=\"lost\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_host_deployments_total{result=\"reverted\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_host_deployments_total{result=\"revert_failed\"} 1"));
  // Progress and connection events are not results.
  EXPECT_THAT(lines, Not(Contains(HasSubstr("result=\"staged\""))));
  EXPECT_THAT(lines, Not(Contains(HasSubstr("result=\"connected\""))));
  // Only failed and switched-back hosts failed their probes.
  EXPECT_THAT(lines, Contains("fleet_probe_failures_total{app=\"web\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_probe_failures_total{app=\"api\"} 1"));
}

TEST_F(MetricsTest, FinishedRollback_CountsAndObservesItsDurationInBuckets) {
  metrics_->OnRolloutFinished(Finished(fleet::v1::ROLLOUT_KIND_ROLLBACK, fleet::v1::SUBJECT_RELEASE,
                                       fleet::v1::ROLLOUT_STATE_SUCCEEDED, 10'000, 11'500));

  std::vector<std::string> lines = Render();
  EXPECT_THAT(lines, Contains("fleet_rollbacks_total{state=\"succeeded\",subject=\"release\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_rollbacks_total{state=\"failed\",subject=\"release\"} 0"));
  EXPECT_THAT(lines, Contains("fleet_rollouts_finished_total{kind=\"rollback\",state=\"succeeded\","
                              "subject=\"release\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_rollouts_finished_total{kind=\"rollout\",state=\"succeeded\","
                              "subject=\"release\"} 0"));
  // 1.5 s: above the 1 s bucket, inside the 2.5 s one (buckets are cumulative).
  EXPECT_THAT(lines,
              Contains("fleet_rollback_duration_seconds_bucket{subject=\"release\",le=\"1\"} 0"));
  EXPECT_THAT(lines,
              Contains("fleet_rollback_duration_seconds_bucket{subject=\"release\",le=\"2.5\"} 1"));
  EXPECT_THAT(lines,
              Contains("fleet_rollback_duration_seconds_bucket{subject=\"release\",le=\"120\"} 1"));
  EXPECT_THAT(
      lines, Contains("fleet_rollback_duration_seconds_bucket{subject=\"release\",le=\"+Inf\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_rollback_duration_seconds_count{subject=\"release\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_rollback_duration_seconds_sum{subject=\"release\"} 1.5"));
  EXPECT_THAT(lines, Contains("fleet_rollback_duration_seconds_count{subject=\"config\"} 0"));
}

TEST_F(MetricsTest, FinishedDeploy_CountsOnlyAsFinishedRollout) {
  metrics_->OnRolloutFinished(Finished(fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::SUBJECT_CONFIG,
                                       fleet::v1::ROLLOUT_STATE_ROLLED_BACK, 10'000, 70'000));

  std::vector<std::string> lines = Render();
  EXPECT_THAT(lines,
              Contains("fleet_rollouts_finished_total{kind=\"rollout\",state=\"rolled_back\","
                       "subject=\"config\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_rollbacks_total{state=\"rolled_back\",subject=\"config\"} 0"));
  EXPECT_THAT(lines, Contains("fleet_rollback_duration_seconds_count{subject=\"config\"} 0"));
}

TEST_F(MetricsTest, FinishedCatchUp_CountsAsCatchUpNotAsRollout) {
  metrics_->OnRolloutFinished(Finished(fleet::v1::ROLLOUT_KIND_CATCH_UP,
                                       fleet::v1::SUBJECT_RELEASE,
                                       fleet::v1::ROLLOUT_STATE_SUCCEEDED, 10'000, 12'000));

  std::vector<std::string> lines = Render();
  EXPECT_THAT(lines, Contains("fleet_rollouts_finished_total{kind=\"catch_up\",state=\"succeeded\","
                              "subject=\"release\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_rollouts_finished_total{kind=\"rollout\",state=\"succeeded\","
                              "subject=\"release\"} 0"));
  EXPECT_THAT(lines, Contains("fleet_rollbacks_total{state=\"succeeded\",subject=\"release\"} 0"));
}

TEST_F(MetricsTest, FinishedRollback_WithoutFinishTimeIsCountedButNotObserved) {
  metrics_->OnRolloutFinished(Finished(fleet::v1::ROLLOUT_KIND_ROLLBACK, fleet::v1::SUBJECT_CONFIG,
                                       fleet::v1::ROLLOUT_STATE_FAILED, 10'000, 0));

  std::vector<std::string> lines = Render();
  EXPECT_THAT(lines, Contains("fleet_rollbacks_total{state=\"failed\",subject=\"config\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_rollback_duration_seconds_count{subject=\"config\"} 0"));
}

TEST_F(MetricsTest, Render_StartsProbeFailuresOfEveryKnownAppAtZero) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->UpsertApp(MakeApp("api"), nullptr));
  metrics_->OnEvents({HostEvent("web", "web-01", "host.switched_back")});

  std::vector<std::string> lines = Render();
  EXPECT_THAT(lines, Contains("# TYPE fleet_probe_failures_total counter"));
  EXPECT_THAT(lines, Contains("fleet_probe_failures_total{app=\"web\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_probe_failures_total{app=\"api\"} 0"));
}

TEST_F(MetricsTest, Render_ReadsRunningRolloutsFromTheStoreAtScrapeTime) {
  for (const char* app : {"web", "api", "db", "cache"}) {
    ASSERT_OK(store_->UpsertApp(MakeApp(app), nullptr));
  }
  fleet::v1::Rollout staging = MakeRollout("web", fleet::v1::ROLLOUT_STATE_STAGING);
  fleet::v1::Rollout paused = MakeRollout("api", fleet::v1::ROLLOUT_STATE_PAUSED);
  fleet::v1::Rollout done = MakeRollout("db", fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  fleet::v1::Rollout back = MakeRollout("cache", fleet::v1::ROLLOUT_STATE_ROLLING_BACK);
  for (fleet::v1::Rollout* r : {&staging, &paused, &done, &back}) {
    ASSERT_OK(store_->CreateRollout(r));
  }

  std::vector<std::string> lines = Render();
  EXPECT_THAT(lines, Contains("fleet_rollouts{state=\"staging\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_rollouts{state=\"activating\"} 0"));
  EXPECT_THAT(lines, Contains("fleet_rollouts{state=\"paused\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_rollouts{state=\"rolling_back\"} 1"));
  // Finished rollouts are counted by OnRolloutFinished, not listed here.
  EXPECT_THAT(lines, Not(Contains(HasSubstr("fleet_rollouts{state=\"succeeded\""))));

  staging.set_state(fleet::v1::ROLLOUT_STATE_ACTIVATING);
  ASSERT_OK(store_->UpdateRollout(staging));
  back.set_state(fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
  ASSERT_OK(store_->UpdateRollout(back));

  lines = Render();
  EXPECT_THAT(lines, Contains("fleet_rollouts{state=\"staging\"} 0"));
  EXPECT_THAT(lines, Contains("fleet_rollouts{state=\"activating\"} 1"));
  EXPECT_THAT(lines, Contains("fleet_rollouts{state=\"rolling_back\"} 0"));
}

TEST_F(MetricsTest, Render_CountsAgentsConnectedToTheHubNow) {
  fleet::v1::AgentService::Stub* client = StartServer();
  FakeAgent web1(client, "web-01");
  FakeAgent web2(client, "web-02");
  ASSERT_TRUE(
      fleet::testing::WaitFor([&] { return hub_.ConnectedHostCount() == 2; }, absl::Seconds(10)));
  EXPECT_THAT(Render(), Contains("fleet_agents_connected 2"));

  web1.Disconnect();
  ASSERT_TRUE(
      fleet::testing::WaitFor([&] { return hub_.ConnectedHostCount() == 1; }, absl::Seconds(10)));
  EXPECT_THAT(Render(), Contains("fleet_agents_connected 1"));
}

TEST_F(MetricsTest, FetchArtifact_CountsEveryByteStreamedIncludingResumedFetches) {
  // Three chunks of the hub's 256 KiB, the last one short.
  const std::string blob(600 << 10, 'x');
  absl::StatusOr<std::unique_ptr<BlobStore::Writer>> writer = blobs_.NewWriter();
  ASSERT_OK(writer);
  ASSERT_OK((*writer)->Append(blob));
  absl::StatusOr<std::string> sha = (*writer)->Commit();
  ASSERT_OK(sha);
  fleet::v1::AgentService::Stub* client = StartServer();

  auto fetch = [&](int64_t offset) {
    grpc::ClientContext context;
    fleet::v1::FetchArtifactRequest request;
    request.set_sha256(*sha);
    request.set_offset(offset);
    auto reader = client->FetchArtifact(&context, request);
    fleet::v1::ArtifactChunk chunk;
    int64_t received = 0;
    while (reader->Read(&chunk)) received += static_cast<int64_t>(chunk.data().size());
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return received;
  };

  // The server finishes a fetch only after its last write completed, so the
  // hook has seen every chunk once the client has the status.
  ASSERT_EQ(fetch(0), 614400);
  EXPECT_THAT(Render(), Contains("fleet_artifact_bytes_served_total 614400"));
  ASSERT_EQ(fetch(400000), 214400);
  EXPECT_THAT(Render(), Contains("fleet_artifact_bytes_served_total 828800"));
}

}  // namespace
}  // namespace fleet::controller
