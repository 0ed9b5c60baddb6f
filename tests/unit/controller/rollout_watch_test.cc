#include "controller/rollout_watch.h"
#include "controller/sqlite_store.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fleet/v1/api.grpc.pb.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::controller {
namespace {

using fleet::v1::Event;
using fleet::v1::HostTask;
using fleet::v1::Rollout;
using fleet::v1::RolloutUpdate;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

HostTask Task(const std::string& host, fleet::v1::TaskState state) {
  HostTask t;
  t.set_host_id(host);
  t.set_state(state);
  t.set_from_version("v1");
  t.set_to_version("v2");
  return t;
}

Event MakeEvent(const std::string& kind) {
  Event e;
  e.set_kind(kind);
  e.set_message(kind);
  return e;
}

RolloutChange Change(const std::string& id, fleet::v1::RolloutState state,
                     std::vector<HostTask> tasks = {}, std::vector<Event> events = {}) {
  RolloutChange change;
  change.rollout.set_id(id);
  change.rollout.set_app("web");
  change.rollout.set_version("v2");
  change.rollout.set_state(state);
  change.tasks = std::move(tasks);
  change.events = std::move(events);
  return change;
}

std::vector<std::string> Hosts(const Rollout& r) {
  std::vector<std::string> out;
  for (const HostTask& t : r.tasks()) {
    out.push_back(absl::StrCat(t.host_id(), "=", fleet::v1::TaskState_Name(t.state())));
  }
  return out;
}

std::vector<std::string> Kinds(const RolloutUpdate& u) {
  std::vector<std::string> out;
  for (const Event& e : u.events()) out.push_back(e.kind());
  return out;
}

TEST(PendingUpdateTest, Merge_KeepsLatestRolloutFieldsAndLatestTaskPerHost) {
  PendingUpdate pending;
  EXPECT_TRUE(pending.empty());
  pending.Add(Change("7", fleet::v1::ROLLOUT_STATE_STAGING,
                     {Task("web-01", fleet::v1::TASK_STATE_STAGING),
                      Task("web-02", fleet::v1::TASK_STATE_STAGING)},
                     {MakeEvent("a")}));
  pending.Add(Change("7", fleet::v1::ROLLOUT_STATE_ACTIVATING,
                     {Task("web-01", fleet::v1::TASK_STATE_ACTIVATING)}, {MakeEvent("b")}));
  pending.Add(Change("7", fleet::v1::ROLLOUT_STATE_ACTIVATING,
                     {Task("web-01", fleet::v1::TASK_STATE_HEALTHY)}, {MakeEvent("c")}));
  ASSERT_FALSE(pending.empty());

  RolloutUpdate update = pending.Take();
  EXPECT_FALSE(update.snapshot());
  EXPECT_EQ(update.rollout().state(), fleet::v1::ROLLOUT_STATE_ACTIVATING);
  EXPECT_THAT(Hosts(update.rollout()),
              ElementsAre("web-01=TASK_STATE_HEALTHY", "web-02=TASK_STATE_STAGING"));
  EXPECT_THAT(Kinds(update), ElementsAre("a", "b", "c"));
  EXPECT_TRUE(pending.empty());
}

TEST(PendingUpdateTest, Merge_ChangeWithTasksInItsRolloutKeepsOnlyTheChangedTasks) {
  PendingUpdate pending;
  RolloutChange change = Change("7", fleet::v1::ROLLOUT_STATE_ACTIVATING);
  *change.rollout.add_tasks() = Task("web-09", fleet::v1::TASK_STATE_PENDING);
  pending.Add(change);
  EXPECT_EQ(pending.Take().rollout().tasks_size(), 0);
}

TEST(PendingUpdateTest, Events_BeyondTheCapDropTheOldestAndSayHowMany) {
  PendingUpdate pending;
  const size_t extra = 5;
  for (size_t i = 0; i < PendingUpdate::kMaxEvents + extra; ++i) {
    pending.Add(
        Change("7", fleet::v1::ROLLOUT_STATE_ACTIVATING, {}, {MakeEvent(absl::StrCat("e", i))}));
  }
  RolloutUpdate update = pending.Take();
  ASSERT_EQ(static_cast<size_t>(update.events_size()), PendingUpdate::kMaxEvents + 1);
  EXPECT_EQ(update.events(0).kind(), kEventsDroppedKind);
  EXPECT_THAT(update.events(0).message(), HasSubstr("5 events left out"));
  EXPECT_EQ(update.events(0).rollout_id(), "7");
  EXPECT_EQ(update.events(1).kind(), absl::StrCat("e", extra));
  EXPECT_EQ(update.events(update.events_size() - 1).kind(),
            absl::StrCat("e", PendingUpdate::kMaxEvents + extra - 1));

  // The count starts over once told.
  pending.Add(Change("7", fleet::v1::ROLLOUT_STATE_ACTIVATING, {}, {MakeEvent("next")}));
  EXPECT_THAT(Kinds(pending.Take()), ElementsAre("next"));
}

// Records what the hub tells it.
class RecordingSubscriber : public RolloutSubscriber {
 public:
  void OnRolloutChanged(const RolloutChange& change) override { changes.push_back(change); }
  void OnHubShutdown() override { ++shutdowns; }
  std::vector<RolloutChange> changes;
  int shutdowns = 0;
};

TEST(RolloutWatchHubTest, Changes_GoOnlyToTheSubscribersOfThatRollout) {
  RolloutWatchHub hub;
  RecordingSubscriber a, b, other;
  ASSERT_TRUE(hub.Subscribe("7", &a));
  ASSERT_TRUE(hub.Subscribe("7", &b));
  ASSERT_TRUE(hub.Subscribe("8", &other));
  EXPECT_EQ(hub.subscribers(), 3u);
  hub.OnRolloutChanged(Change("7", fleet::v1::ROLLOUT_STATE_ACTIVATING));
  hub.OnRolloutChanged(Change("9", fleet::v1::ROLLOUT_STATE_ACTIVATING));
  EXPECT_EQ(a.changes.size(), 1u);
  EXPECT_EQ(b.changes.size(), 1u);
  EXPECT_TRUE(other.changes.empty());
}

TEST(RolloutWatchHubTest, Unsubscribed_IsNeverCalledAgain) {
  RolloutWatchHub hub;
  RecordingSubscriber a;
  ASSERT_TRUE(hub.Subscribe("7", &a));
  hub.Unsubscribe("7", &a);
  hub.Unsubscribe("7", &a);  // a no-op
  hub.OnRolloutChanged(Change("7", fleet::v1::ROLLOUT_STATE_SUCCEEDED));
  hub.Shutdown();
  EXPECT_TRUE(a.changes.empty());
  EXPECT_EQ(a.shutdowns, 0);
  EXPECT_EQ(hub.subscribers(), 0u);
}

TEST(RolloutWatchHubTest, Shutdown_TellsEverySubscriberOnceAndRefusesNewOnes) {
  RolloutWatchHub hub;
  RecordingSubscriber a, b;
  ASSERT_TRUE(hub.Subscribe("7", &a));
  ASSERT_TRUE(hub.Subscribe("8", &b));
  hub.Shutdown();
  hub.Shutdown();
  EXPECT_EQ(a.shutdowns, 1);
  EXPECT_EQ(b.shutdowns, 1);
  RecordingSubscriber late;
  EXPECT_FALSE(hub.Subscribe("7", &late));
}

// WatchRollout alone, served in-process over a store in a temp dir.
class WatchService final : public fleet::v1::FleetService::CallbackService {
 public:
  WatchService(Store* store, RolloutWatchHub* hub, absl::Status admitted)
      : store_(store), hub_(hub), admitted_(std::move(admitted)) {}
  grpc::ServerWriteReactor<RolloutUpdate>* WatchRollout(
      grpc::CallbackServerContext*, const fleet::v1::WatchRolloutRequest* req) override {
    return NewRolloutWatch(store_, hub_, req->id(), admitted_);
  }

 private:
  Store* store_;
  RolloutWatchHub* hub_;
  absl::Status admitted_;
};

class RolloutWatchCallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(dir_.Sub("fleet.db"));
    ASSERT_OK(store);
    store_ = std::move(*store);
    fleet::v1::App app;
    app.mutable_spec()->set_name("web");
    ASSERT_OK(store_->UpsertApp(app, nullptr));
    rollout_.set_app("web");
    rollout_.set_version("v2");
    rollout_.set_kind(fleet::v1::ROLLOUT_KIND_DEPLOY);
    rollout_.set_state(fleet::v1::ROLLOUT_STATE_STAGING);
    for (const char* host : {"web-01", "web-02", "web-03"}) {
      *rollout_.add_tasks() = Task(host, fleet::v1::TASK_STATE_PENDING);
    }
    ASSERT_OK(store_->CreateRollout(&rollout_));
  }

  void TearDown() override {
    hub_.Shutdown();
    if (server_) server_->Shutdown();
  }

  void Serve(absl::Status admitted = absl::OkStatus()) {
    service_ = std::make_unique<WatchService>(store_.get(), &hub_, std::move(admitted));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = fleet::v1::FleetService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  std::unique_ptr<grpc::ClientReader<RolloutUpdate>> Watch(grpc::ClientContext* ctx,
                                                           const std::string& id) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    fleet::v1::WatchRolloutRequest req;
    req.set_id(id);
    return stub_->WatchRollout(ctx, req);
  }

  // What the engine does after a commit.
  void Publish(const RolloutChange& change) { hub_.OnRolloutChanged(change); }

  fleet::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  Rollout rollout_;
  RolloutWatchHub hub_;
  std::unique_ptr<WatchService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<fleet::v1::FleetService::Stub> stub_;
};

TEST_F(RolloutWatchCallTest, Watch_SnapshotFirstThenChangedTasksThenEndsOkAfterTerminal) {
  Serve();
  grpc::ClientContext ctx;
  auto reader = Watch(&ctx, rollout_.id());
  RolloutUpdate update;
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_TRUE(update.snapshot());
  EXPECT_EQ(update.rollout().tasks_size(), 3);
  EXPECT_EQ(hub_.subscribers(), 1u);

  Publish(Change(rollout_.id(), fleet::v1::ROLLOUT_STATE_ACTIVATING,
                 {Task("web-02", fleet::v1::TASK_STATE_HEALTHY)}, {MakeEvent("host.healthy")}));
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_FALSE(update.snapshot());
  EXPECT_EQ(update.rollout().state(), fleet::v1::ROLLOUT_STATE_ACTIVATING);
  EXPECT_THAT(Hosts(update.rollout()), ElementsAre("web-02=TASK_STATE_HEALTHY"));
  EXPECT_THAT(Kinds(update), ElementsAre("host.healthy"));

  Publish(Change(rollout_.id(), fleet::v1::ROLLOUT_STATE_SUCCEEDED, {},
                 {MakeEvent("rollout.succeeded")}));
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_EQ(update.rollout().state(), fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  EXPECT_FALSE(reader->Read(&update));
  grpc::Status st = reader->Finish();
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(fleet::testing::WaitFor([&] { return hub_.subscribers() == 0; }, absl::Seconds(5)));
}

TEST_F(RolloutWatchCallTest, Watch_OfAFinishedRolloutIsItsSnapshotAlone) {
  rollout_.set_state(fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
  ASSERT_OK(store_->UpdateRollout(rollout_));
  Serve();
  grpc::ClientContext ctx;
  auto reader = Watch(&ctx, rollout_.id());
  RolloutUpdate update;
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_TRUE(update.snapshot());
  EXPECT_EQ(update.rollout().state(), fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
  EXPECT_FALSE(reader->Read(&update));
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(RolloutWatchCallTest, Watch_UnknownRolloutIsNotFound) {
  Serve();
  grpc::ClientContext ctx;
  auto reader = Watch(&ctx, "999");
  RolloutUpdate update;
  EXPECT_FALSE(reader->Read(&update));
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), HasSubstr("999"));
  EXPECT_TRUE(fleet::testing::WaitFor([&] { return hub_.subscribers() == 0; }, absl::Seconds(5)));
}

TEST_F(RolloutWatchCallTest, Watch_RefusedCallEndsWithTheRefusal) {
  Serve(absl::UnauthenticatedError("missing API token"));
  grpc::ClientContext ctx;
  auto reader = Watch(&ctx, rollout_.id());
  RolloutUpdate update;
  EXPECT_FALSE(reader->Read(&update));
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(hub_.subscribers(), 0u);
}

TEST_F(RolloutWatchCallTest, Watch_HubShutdownEndsTheCallUnavailable) {
  Serve();
  grpc::ClientContext ctx;
  auto reader = Watch(&ctx, rollout_.id());
  RolloutUpdate update;
  ASSERT_TRUE(reader->Read(&update));
  hub_.Shutdown();
  EXPECT_FALSE(reader->Read(&update));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);

  grpc::ClientContext late_ctx;
  auto late = Watch(&late_ctx, rollout_.id());
  EXPECT_FALSE(late->Read(&update));
  EXPECT_EQ(late->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(RolloutWatchCallTest, Watch_ClientThatLeavesIsUnsubscribed) {
  Serve();
  {
    grpc::ClientContext ctx;
    auto reader = Watch(&ctx, rollout_.id());
    RolloutUpdate update;
    ASSERT_TRUE(reader->Read(&update));
    ctx.TryCancel();
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  EXPECT_TRUE(fleet::testing::WaitFor([&] { return hub_.subscribers() == 0; }, absl::Seconds(5)));
  // Changes after that reach nobody.
  Publish(Change(rollout_.id(), fleet::v1::ROLLOUT_STATE_ACTIVATING));
}

}  // namespace
}  // namespace fleet::controller
