// What only the PostgreSQL store does: its schema ladder, the databases it
// refuses, reconnecting after the server dropped it, several stores (as
// several controllers) on one database, and never naming the password.
#include "controller/pg_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controller/pg_connection.h"
#include "tests/unit/controller/store_fixture.h"

namespace fleet::controller {
namespace {

using ::fleet::testing::PgExec;
using ::fleet::testing::PgQueryOne;
using ::testing::HasSubstr;
using ::testing::Not;

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    url_ = server_.CreateDatabase("fleet");
    absl::StatusOr<std::unique_ptr<Store>> store = OpenPgStore(url_);
    ASSERT_OK(store);
    store_ = std::move(*store);
  }

  fleet::testing::PostgresServer server_;
  std::string url_;
  std::unique_ptr<Store> store_;
};

TEST_F(PgStoreTest, Store_MigratesNewDatabaseToCurrentSchemaVersion) {
  EXPECT_EQ(PgQueryOne(url_, "SELECT version FROM schema_version"), absl::StrCat(kPgSchemaVersion));
  EXPECT_EQ(PgQueryOne(url_,
                       "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
                       "WHERE schemaname = 'public'"),
            "alerts,apps,configs,events,host_apps,host_holds,hosts,releases,rollout_tasks,"
            "rollouts,schema_version,tokens,write_lock");
}

// A database made by the first release of the PostgreSQL store (version 1):
// the step adds host_holds and keeps every row.
TEST_F(PgStoreTest, Store_MigratesVersion1DatabaseAddingHostHolds) {
  Host host;
  host.set_id("web-01");
  ASSERT_OK(store_->UpsertHost(host));
  store_.reset();
  PgExec(url_, "DROP TABLE host_holds; UPDATE schema_version SET version = 1");

  absl::StatusOr<std::unique_ptr<Store>> reopened = OpenPgStore(url_);
  ASSERT_OK(reopened);
  EXPECT_EQ(PgQueryOne(url_, "SELECT version FROM schema_version"), "2");
  HostHoldRecord record;
  record.host_id = "web-01";
  record.held = true;
  record.hold.set_app("web");
  ASSERT_OK((*reopened)->PutHostHold(record));
  absl::StatusOr<Host> read = (*reopened)->GetHost("web-01");
  ASSERT_OK(read);
  EXPECT_EQ(read->holds_size(), 1);
}

TEST_F(PgStoreTest, Store_ReopenKeepsDataAndDoesNotMigrateAgain) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  store_.reset();
  absl::StatusOr<std::unique_ptr<Store>> reopened = OpenPgStore(url_);
  ASSERT_OK(reopened);
  EXPECT_OK((*reopened)->GetApp("web"));
  EXPECT_EQ(PgQueryOne(url_, "SELECT count(*) FROM schema_version"), "1");
}

TEST_F(PgStoreTest, Store_RefusesDatabaseNewerThanCodeWithoutNamingThePassword) {
  store_.reset();
  PgExec(url_, "UPDATE schema_version SET version = 99");
  absl::StatusOr<std::unique_ptr<Store>> store = OpenPgStore(url_);
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kFailedPrecondition));
  const std::string message(store.status().message());
  EXPECT_THAT(message, HasSubstr("has schema version 99, newer than this fleet-controller"));
  EXPECT_THAT(message,
              HasSubstr(absl::StrCat("postgresql://fleet@127.0.0.1:", server_.port(), "/fleet")));
  EXPECT_THAT(message, Not(HasSubstr(server_.password())));
  // Nothing was changed.
  EXPECT_EQ(PgQueryOne(url_, "SELECT version FROM schema_version"), "99");
}

TEST_F(PgStoreTest, Open_UnreachableOrWrongPasswordIsUnavailableWithoutThePassword) {
  const std::string nothing =
      absl::StrCat("postgresql://fleet:s3cret-pw@127.0.0.1:", fleet::testing::FreePort(), "/fleet");
  absl::StatusOr<std::unique_ptr<Store>> store = OpenPgStore(nothing);
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(std::string(store.status().message()), Not(HasSubstr("s3cret-pw")));

  const std::string wrong =
      absl::StrCat("postgresql://fleet:s3cret-pw@127.0.0.1:", server_.port(), "/fleet");
  store = OpenPgStore(wrong);
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("password authentication failed"));
  EXPECT_THAT(std::string(store.status().message()), Not(HasSubstr("s3cret-pw")));
}

TEST_F(PgStoreTest, Store_ReadsAndWritesGoOnAfterTheServerDroppedEveryConnection) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->ListApps());
  PgExec(url_,
         "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
         "WHERE datname = 'fleet' AND pid <> pg_backend_pid()");
  // The store reconnects and runs the call again: the caller sees nothing.
  ASSERT_OK(store_->InsertRelease(MakeRelease("web", "v1")));
  absl::StatusOr<std::vector<Release>> releases = store_->ListReleases("web");
  ASSERT_OK(releases);
  EXPECT_EQ(releases->size(), 1u);
  EXPECT_OK(store_->GetApp("web"));
}

TEST_F(PgStoreTest, Store_WritesGoOnAfterTheServerRestarted) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_TRUE(server_.Restart());
  Rollout rollout = MakeRollout("web", "v2", {MakeTask("web-01", 0)});
  ASSERT_OK(store_->CreateRollout(&rollout));
  absl::StatusOr<Rollout> got = store_->GetRollout(rollout.id());
  ASSERT_OK(got);
  EXPECT_EQ(got->tasks_size(), 1);
}

TEST_F(PgStoreTest, Store_TwoStoresOnOneDatabaseWriteOneAtATimeAndNeverReuseIds) {
  // Two controllers' stores on one database, writing at once.
  absl::StatusOr<std::unique_ptr<Store>> other = OpenPgStore(url_);
  ASSERT_OK(other);
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  constexpr int kPerStore = 20;
  std::vector<std::string> ids[2];
  std::thread threads[2];
  Store* stores[2] = {store_.get(), other->get()};
  for (int s = 0; s < 2; ++s) {
    threads[s] = std::thread([&, s] {
      for (int i = 0; i < kPerStore; ++i) {
        std::unique_ptr<StoreTransaction> txn = *stores[s]->Begin();
        // Read, then write on what was read: serialized, each sees the other's commits.
        absl::StatusOr<std::vector<Rollout>> before = txn->ListRollouts("web", 0, false);
        EXPECT_OK(before);
        Rollout rollout = MakeRollout("web", absl::StrCat("v", s, "-", i));
        rollout.set_reason(absl::StrCat(before.ok() ? before->size() : 0));
        EXPECT_OK(txn->CreateRollout(&rollout));
        EXPECT_OK(txn->Commit());
        ids[s].push_back(rollout.id());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<std::string> all(ids[0].begin(), ids[0].end());
  all.insert(ids[1].begin(), ids[1].end());
  EXPECT_EQ(all.size(), 2u * kPerStore);
  // Each transaction saw every one committed before it: the counts it read
  // are 0, 1, 2, ... in id order, with no two alike.
  absl::StatusOr<std::vector<Rollout>> rollouts = store_->ListRollouts("web", 0, false);
  ASSERT_OK(rollouts);
  ASSERT_EQ(rollouts->size(), 2u * kPerStore);
  for (size_t i = 0; i < rollouts->size(); ++i) {
    const Rollout& r = (*rollouts)[rollouts->size() - 1 - i];  // oldest first
    EXPECT_EQ(r.reason(), absl::StrCat(i)) << "rollout " << r.id();
  }
}

TEST(PgUrlTest, Redact_KeepsUserHostPortAndDatabaseOnly) {
  EXPECT_EQ(RedactDatabaseUrl("postgres://fleet:pa%40ss@db1.example:5433/fleet?sslmode=require"),
            "postgresql://fleet@db1.example:5433/fleet");
  EXPECT_EQ(RedactDatabaseUrl("postgresql://db1/fleet?password=hunter2"), "postgresql://db1/fleet");
  EXPECT_EQ(RedactDatabaseUrl("postgresql://%2Frun%2Fpg/fleet"), "postgresql://[/run/pg]/fleet");
  EXPECT_EQ(RedactDatabaseUrl("postgresql://fleet:x@[bad"), "postgresql://(unparsable URL)");
  EXPECT_TRUE(DatabaseUrlHasPassword("postgres://fleet:pw@db1/fleet"));
  EXPECT_TRUE(DatabaseUrlHasPassword("postgres://db1/fleet?password=pw"));
  EXPECT_FALSE(DatabaseUrlHasPassword("postgres://fleet@db1/fleet"));
}

}  // namespace
}  // namespace fleet::controller
