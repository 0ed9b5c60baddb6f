// The engine keeps the fleet from staying split (engine_reconcile.cc) and
// holds hosts rolled back on the host itself (engine_holds.cc). A real
// engine over a real store, driven on the test's thread; hosts "connect"
// through the AgentListener calls an agent's stream makes.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "controller/agent_hub.h"
#include "controller/blob_store.h"
#include "controller/rollout_engine.h"
#include "controller/sqlite_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::controller {
namespace {

using ::fleet::testing::StatusIs;
using ::fleet::v1::Rollout;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr absl::Duration kInterval = absl::Seconds(10);

class EngineReconcileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(dir_.Sub("fleet.db"));
    ASSERT_OK(store);
    store_ = std::move(*store);
    blobs_ = std::make_unique<BlobStore>(dir_.Sub("blobs"));
    hub_ = std::make_unique<AgentHub>(blobs_.get(), &clock_);
    EngineOptions options;
    options.reconcile_interval = kInterval;
    engine_ = std::make_unique<RolloutEngine>(store_.get(), hub_.get(), &clock_, options);
    hub_->set_listener(engine_.get());
    fleet::v1::App app;
    app.mutable_spec()->set_name("web");
    app.set_desired_version("v1");
    ASSERT_OK(store_->UpsertApp(app, nullptr));
    ASSERT_OK(store_->SetDesired("web", fleet::v1::SUBJECT_RELEASE, "v2"));
    // The deploy that made v2 the fleet's release, on web-01 and web-02.
    Rollout r;
    r.set_app("web");
    r.set_version("v2");
    r.set_from_version("v1");
    r.set_kind(fleet::v1::ROLLOUT_KIND_DEPLOY);
    r.set_state(fleet::v1::ROLLOUT_STATE_SUCCEEDED);
    r.set_created_by("ci");
    for (const char* host : {"web-01", "web-02"}) {
      fleet::v1::HostTask* t = r.add_tasks();
      t->set_host_id(host);
      t->set_state(fleet::v1::TASK_STATE_HEALTHY);
      t->set_from_version("v1");
      t->set_to_version("v2");
    }
    ASSERT_OK(store_->CreateRollout(&r));
  }

  // The host says hello running `current` with v1 and v2 on disk.
  void Hello(const std::string& host, const std::string& current,
             const std::vector<fleet::v1::LocalRollback>& local = {}) {
    fleet::v1::Hello hello;
    hello.set_host_id(host);
    *hello.add_apps() = State(current);
    for (const auto& lr : local) *hello.add_local_rollbacks() = lr;
    ASSERT_OK(engine_->OnHello(hello, "ipv4:127.0.0.1:1"));
    engine_->OnConnected(host);
  }
  static fleet::v1::HostAppState State(const std::string& current) {
    fleet::v1::HostAppState state;
    state.set_app("web");
    state.set_current_release(current);
    state.add_releases("v1");
    state.add_releases("v2");
    return state;
  }
  static fleet::v1::LocalRollback LocalRollback(const std::string& id) {
    fleet::v1::LocalRollback lr;
    lr.set_id(id);
    lr.set_app("web");
    lr.set_from_version("v2");
    lr.set_to_version("v1");
    lr.set_reason("v2 leaks memory");
    lr.set_actor("root@web-02");
    lr.set_ok(true);
    return lr;
  }

  std::vector<Rollout> CatchUps() {
    absl::StatusOr<std::vector<Rollout>> all = store_->ListRollouts("web", 0, true);
    EXPECT_OK(all);
    std::vector<Rollout> out;
    for (const Rollout& r : all.ok() ? *all : std::vector<Rollout>{}) {
      if (r.kind() == fleet::v1::ROLLOUT_KIND_CATCH_UP) out.push_back(r);
    }
    return out;
  }
  std::vector<fleet::v1::Event> Events(const std::string& kind) {
    absl::StatusOr<std::vector<fleet::v1::Event>> all = store_->ListEvents("web", 0);
    EXPECT_OK(all);
    std::vector<fleet::v1::Event> out;
    for (const auto& e : all.ok() ? *all : std::vector<fleet::v1::Event>{}) {
      if (e.kind() == kind) out.push_back(e);
    }
    return out;
  }
  void TickAfter(absl::Duration d) {
    clock_.Advance(d);
    engine_->Tick();
  }

  fleet::testing::TempDir dir_;
  fleet::testing::FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<AgentHub> hub_;
  std::unique_ptr<RolloutEngine> engine_;
};

TEST_F(EngineReconcileTest, ConnectedHostLeftOnAnotherRelease_GetsACatchUpAtTheNextCheck) {
  Hello("web-01", "v2");
  Hello("web-02", "v2");
  engine_->Tick();
  // A result leaves web-02 on v1 while it stays connected.
  ASSERT_OK(store_->UpsertHostAppState("web-02", State("v1")));

  TickAfter(kInterval);
  EXPECT_THAT(CatchUps(), IsEmpty());  // seen once: a result may be on its way
  TickAfter(kInterval);

  std::vector<Rollout> catch_ups = CatchUps();
  ASSERT_THAT(catch_ups, SizeIs(1));
  EXPECT_EQ(catch_ups[0].tasks(0).host_id(), "web-02");
  EXPECT_EQ(catch_ups[0].version(), "v2");
  std::vector<fleet::v1::Event> events = Events("host.reconcile");
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].message(),
            "switching from v1 to v2 (found by the periodic check while connected)");
}

TEST_F(EngineReconcileTest, HostOutsideTheRolloutThatSetTheRelease_IsLeftAlone) {
  Hello("web-01", "v2");
  Hello("web-03", "v2");  // not a target of the v2 deploy (another --selector)
  engine_->Tick();
  ASSERT_OK(store_->UpsertHostAppState("web-03", State("v1")));

  for (int i = 0; i < 3; ++i) TickAfter(kInterval);

  EXPECT_THAT(CatchUps(), IsEmpty());
}

TEST_F(EngineReconcileTest, LocalRollback_IsRecordedOnceAndHoldsTheHostAcrossEngines) {
  Hello("web-01", "v2");
  Hello("web-02", "v1", {LocalRollback("local-web-1")});
  for (int i = 0; i < 3; ++i) TickAfter(kInterval);
  Hello("web-02", "v1", {LocalRollback("local-web-1")});  // every hello repeats it

  EXPECT_THAT(CatchUps(), IsEmpty());
  std::vector<fleet::v1::Event> events = Events("host.local_rollback");
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].actor(), "root@web-02");
  EXPECT_EQ(events[0].host_id(), "web-02");
  EXPECT_THAT(events[0].message(),
              HasSubstr("rolled back on the host from v2 to v1 (v2 leaks memory); held"));
  absl::StatusOr<fleet::v1::Host> host = store_->GetHost("web-02");
  ASSERT_OK(host);
  ASSERT_THAT(host->holds(), SizeIs(1));
  EXPECT_EQ(host->holds(0).local_id(), "local-web-1");

  // A new engine (a controller restart) reads the hold from the store.
  EngineOptions options;
  options.reconcile_interval = kInterval;
  engine_ = std::make_unique<RolloutEngine>(store_.get(), hub_.get(), &clock_, options);
  hub_->set_listener(engine_.get());
  Hello("web-02", "v1", {LocalRollback("local-web-1")});
  for (int i = 0; i < 3; ++i) TickAfter(kInterval);
  EXPECT_THAT(CatchUps(), IsEmpty());
  EXPECT_THAT(Events("host.local_rollback"), SizeIs(1));
}

TEST_F(EngineReconcileTest, ReleaseHold_BringsTheHostBackAtOnceAndNeedsAHold) {
  Hello("web-01", "v2");
  Hello("web-02", "v1", {LocalRollback("local-web-1")});
  fleet::v1::ReleaseHoldRequest req;
  req.set_host_id("web-02");
  req.set_app("web");
  req.set_actor("alice");
  absl::StatusOr<fleet::v1::Host> released = absl::UnknownError("not called");

  engine_->ReleaseHold(req, [&](absl::StatusOr<fleet::v1::Host> h) { released = std::move(h); });

  ASSERT_OK(released);
  EXPECT_THAT(released->holds(), IsEmpty());
  std::vector<fleet::v1::Event> events = Events("host.hold_released");
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].actor(), "alice");
  std::vector<Rollout> catch_ups = CatchUps();
  ASSERT_THAT(catch_ups, SizeIs(1));
  EXPECT_EQ(catch_ups[0].tasks(0).host_id(), "web-02");
  EXPECT_THAT(Events("host.reconcile")[0].message(),
              HasSubstr("(its hold was released by alice)"));

  engine_->ReleaseHold(req, [&](absl::StatusOr<fleet::v1::Host> h) { released = std::move(h); });
  EXPECT_THAT(released.status(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                          "app web is not held on host web-02; nothing to release"));
}

TEST_F(EngineReconcileTest, RollbackAfterARestart_EndsTheHoldOfAHostItSwitches) {
  Hello("web-01", "v2");
  Hello("web-02", "v1", {LocalRollback("local-web-1")});
  for (const char* version : {"v1", "v2"}) {
    fleet::v1::Release release;
    release.set_app("web");
    release.set_version(version);
    release.set_sha256(std::string(64, 'a'));
    ASSERT_OK(store_->InsertRelease(release));
  }
  Rollout first;  // v1 was released before v2
  first.set_app("web");
  first.set_version("v1");
  first.set_kind(fleet::v1::ROLLOUT_KIND_DEPLOY);
  first.set_state(fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  ASSERT_OK(store_->CreateRollout(&first));
  // A controller restart: the new engine's first look at the holds is the
  // rollback's, inside its transaction.
  engine_ = std::make_unique<RolloutEngine>(store_.get(), hub_.get(), &clock_, EngineOptions());
  hub_->set_listener(engine_.get());
  engine_->OnConnected("web-01");
  engine_->OnConnected("web-02");
  fleet::v1::RollbackRequest req;
  req.set_app("web");
  req.set_to_version("v1");
  req.set_actor("alice");
  absl::StatusOr<Rollout> rollback = absl::UnknownError("not called");

  engine_->Rollback(req, [&](absl::StatusOr<Rollout> r) { rollback = std::move(r); });

  ASSERT_OK(rollback);
  std::vector<fleet::v1::Event> events = Events("host.hold_released");
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].host_id(), "web-02");
  EXPECT_THAT(events[0].message(), HasSubstr("hold ended: rollback"));
  absl::StatusOr<fleet::v1::Host> host = store_->GetHost("web-02");
  ASSERT_OK(host);
  EXPECT_THAT(host->holds(), IsEmpty());
}

}  // namespace
}  // namespace fleet::controller
