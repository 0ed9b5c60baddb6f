// Holds of apps on hosts (break-glass rollbacks) in the store.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/controller/store_fixture.h"

namespace fleet::controller {
namespace {

using ::testing::IsEmpty;
using ::testing::SizeIs;

HostHoldRecord MakeHold(const std::string& host, const std::string& app, bool held) {
  HostHoldRecord record;
  record.host_id = host;
  record.held = held;
  record.hold.set_app(app);
  record.hold.set_version("v1");
  record.hold.set_from_version("v2");
  record.hold.set_reason("v2 leaks memory");
  record.hold.set_actor("root@web-01");
  record.hold.set_since_ms(1234);
  record.hold.set_local_id("local-web-1234");
  return record;
}

class StoreHoldsTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    for (const char* id : {"web-01", "web-02"}) {
      Host host;
      host.set_id(id);
      ASSERT_OK(store_->UpsertHost(host));
    }
  }
};

TEST_P(StoreHoldsTest, PutHostHold_HeldShowsOnTheHostAndInTheList) {
  ASSERT_OK(store_->PutHostHold(MakeHold("web-01", "web", true)));
  ASSERT_OK(store_->PutHostHold(MakeHold("web-02", "api", false)));

  absl::StatusOr<Host> host = store_->GetHost("web-01");
  ASSERT_OK(host);
  ASSERT_THAT(host->holds(), SizeIs(1));
  EXPECT_EQ(host->holds(0).app(), "web");
  EXPECT_EQ(host->holds(0).version(), "v1");
  EXPECT_EQ(host->holds(0).from_version(), "v2");
  EXPECT_EQ(host->holds(0).reason(), "v2 leaks memory");
  EXPECT_EQ(host->holds(0).actor(), "root@web-01");
  EXPECT_EQ(host->holds(0).since_ms(), 1234);
  EXPECT_EQ(host->holds(0).local_id(), "local-web-1234");
  absl::StatusOr<std::vector<Host>> hosts = store_->ListHosts();
  ASSERT_OK(hosts);
  ASSERT_THAT(*hosts, SizeIs(2));
  EXPECT_THAT((*hosts)[0].holds(), SizeIs(1));
  EXPECT_THAT((*hosts)[1].holds(), IsEmpty());  // released holds are not shown

  absl::StatusOr<std::vector<HostHoldRecord>> all = store_->ListHostHolds();
  ASSERT_OK(all);
  ASSERT_THAT(*all, SizeIs(2));
  EXPECT_EQ((*all)[0].host_id, "web-01");
  EXPECT_TRUE((*all)[0].held);
  EXPECT_EQ((*all)[1].host_id, "web-02");
  EXPECT_FALSE((*all)[1].held);
  EXPECT_EQ((*all)[1].hold.local_id(), "local-web-1234");
}

TEST_P(StoreHoldsTest, ListAppHosts_MarksTheHostsWhereTheAppIsHeld) {
  for (const char* id : {"web-01", "web-02"}) {
    HostAppState state;
    state.set_app("web");
    state.set_current_release("v1");
    ASSERT_OK(store_->UpsertHostAppState(id, state));
  }
  ASSERT_OK(store_->PutHostHold(MakeHold("web-02", "web", true)));
  ASSERT_OK(store_->PutHostHold(MakeHold("web-01", "api", true)));  // another app

  absl::StatusOr<std::vector<fleet::v1::HostAppStatus>> hosts = store_->ListAppHosts("web");

  ASSERT_OK(hosts);
  ASSERT_THAT(*hosts, SizeIs(2));
  EXPECT_FALSE((*hosts)[0].held());
  EXPECT_FALSE((*hosts)[0].has_hold());
  EXPECT_TRUE((*hosts)[1].held());
  EXPECT_EQ((*hosts)[1].hold().actor(), "root@web-01");
  EXPECT_EQ((*hosts)[1].hold().version(), "v1");
}

TEST_P(StoreHoldsTest, PutHostHold_ReleasingKeepsTheRowAndItsLocalId) {
  ASSERT_OK(store_->PutHostHold(MakeHold("web-01", "web", true)));
  ASSERT_OK(store_->PutHostHold(MakeHold("web-01", "web", false)));

  absl::StatusOr<Host> host = store_->GetHost("web-01");
  ASSERT_OK(host);
  EXPECT_THAT(host->holds(), IsEmpty());
  absl::StatusOr<std::vector<HostHoldRecord>> all = store_->ListHostHolds();
  ASSERT_OK(all);
  ASSERT_THAT(*all, SizeIs(1));
  EXPECT_FALSE((*all)[0].held);
  EXPECT_EQ((*all)[0].hold.local_id(), "local-web-1234");
}

TEST_P(StoreHoldsTest, PutHostHold_UnknownHostIsNotFoundAndNoAppInvalid) {
  EXPECT_THAT(store_->PutHostHold(MakeHold("nope", "web", true)),
              StatusIs(absl::StatusCode::kNotFound, "unknown host 'nope'"));
  EXPECT_THAT(store_->PutHostHold(MakeHold("web-01", "", true)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<std::vector<HostHoldRecord>> all = store_->ListHostHolds();
  ASSERT_OK(all);
  EXPECT_THAT(*all, IsEmpty());
}

TEST_P(StoreHoldsTest, PutHostHold_InATransactionIsStoredOnlyAtCommit) {
  {
    absl::StatusOr<std::unique_ptr<StoreTransaction>> txn = store_->Begin();
    ASSERT_OK(txn);
    ASSERT_OK((*txn)->PutHostHold(MakeHold("web-01", "web", true)));
    // Rolled back: never committed.
  }
  absl::StatusOr<std::vector<HostHoldRecord>> all = store_->ListHostHolds();
  ASSERT_OK(all);
  EXPECT_THAT(*all, IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreHoldsTest,
                         ::testing::Values(StoreBackend::kSqlite, StoreBackend::kPostgres),
                         StoreBackendName);

}  // namespace
}  // namespace fleet::controller
