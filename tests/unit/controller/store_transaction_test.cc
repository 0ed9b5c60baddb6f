// StoreTransaction on both stores: all or nothing, unusable after a
// failure, one thread at a time, and no waiting for oneself.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/unit/controller/store_fixture.h"

namespace fleet::controller {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SqliteWriter : public ForeignWriter {
 public:
  explicit SqliteWriter(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  ~SqliteWriter() override {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
  }

 private:
  sqlite3* db_ = nullptr;
};

// Another controller's write transaction on the same PostgreSQL database.
class PgWriter : public ForeignWriter {
 public:
  explicit PgWriter(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    EXPECT_EQ(PQstatus(conn_), CONNECTION_OK) << PQerrorMessage(conn_);
    PGresult* r = PQexec(conn_, "BEGIN; LOCK TABLE write_lock IN EXCLUSIVE MODE");
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
  }
  ~PgWriter() override { PQfinish(conn_); }  // rolls back

 private:
  PGconn* conn_;
};

std::unique_ptr<StoreTransaction> BeginOrDie(Store* store) {
  absl::StatusOr<std::unique_ptr<StoreTransaction>> txn = store->Begin();
  EXPECT_OK(txn);
  return txn.ok() ? *std::move(txn) : nullptr;
}

TEST_P(StoreTest, Transaction_DestroyedWithoutCommitRollsBack) {
  {
    std::unique_ptr<StoreTransaction> txn = BeginOrDie(store_.get());
    ASSERT_NE(txn, nullptr);
    ASSERT_OK(txn->UpsertApp(MakeApp("web"), nullptr));
    ASSERT_OK(txn->InsertRelease(MakeRelease("web", "v1")));
    Rollout rollout = MakeRollout("web", "v1", {MakeTask("web-01", 0)});
    ASSERT_OK(txn->CreateRollout(&rollout));
    // Visible inside the transaction.
    EXPECT_OK(txn->GetApp("web"));
  }
  EXPECT_THAT(store_->GetApp("web"), StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<std::vector<Rollout>> rollouts = store_->ListRollouts("", 0, true);
  ASSERT_OK(rollouts);
  EXPECT_TRUE(rollouts->empty());
  EXPECT_EQ(QueryOne("SELECT count(*) FROM releases"), "0");
}

TEST_P(StoreTest, Transaction_CommitPersistsAndEndsIt) {
  std::unique_ptr<StoreTransaction> txn = BeginOrDie(store_.get());
  ASSERT_NE(txn, nullptr);
  ASSERT_OK(txn->UpsertApp(MakeApp("web"), nullptr));
  Rollout rollout = MakeRollout("web", "v1", {MakeTask("web-01", 0)});
  ASSERT_OK(txn->CreateRollout(&rollout));
  ASSERT_OK(txn->Commit());
  EXPECT_THAT(txn->Commit(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(txn->GetApp("web"), StatusIs(absl::StatusCode::kFailedPrecondition));
  // The store is free again on this thread.
  EXPECT_OK(store_->GetApp("web"));
  txn.reset();
  store_.reset();
  // Read through another connection: the rows are in the file.
  EXPECT_EQ(QueryOne("SELECT name FROM apps"), "web");
  EXPECT_EQ(QueryOne("SELECT count(*) FROM rollout_tasks"), "1");
}

TEST_P(StoreTest, Transaction_FailedWriteRollsBackEverythingAndCommitIsAborted) {
  std::unique_ptr<StoreTransaction> txn = BeginOrDie(store_.get());
  ASSERT_NE(txn, nullptr);
  ASSERT_OK(txn->UpsertApp(MakeApp("web"), nullptr));
  Rollout bad = MakeRollout("web", "v2", {MakeTask("web-01", 0), MakeTask("web-01", 1)});
  EXPECT_THAT(txn->CreateRollout(&bad), StatusIs(absl::StatusCode::kInvalidArgument));
  Event event = MakeEvent("web", "rollout.refused");
  absl::Status after = txn->AddEvent(&event);
  EXPECT_THAT(after, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(after.message()), HasSubstr("has two tasks"));
  absl::Status commit = txn->Commit();
  EXPECT_THAT(commit, StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(std::string(commit.message()), HasSubstr("has two tasks"));
  // Rolled back at the failure: the store is usable before the handle goes.
  EXPECT_EQ(QueryOne("SELECT count(*) FROM apps"), "0");
  EXPECT_THAT(store_->GetApp("web"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(QueryOne("SELECT count(*) FROM rollouts"), "0");
  EXPECT_EQ(QueryOne("SELECT count(*) FROM events"), "0");
}

TEST_P(StoreTest, Transaction_ReadThatFindsNothingLeavesItUsable) {
  std::unique_ptr<StoreTransaction> txn = BeginOrDie(store_.get());
  ASSERT_NE(txn, nullptr);
  EXPECT_THAT(txn->GetApp("web"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(txn->GetAlert("f00d", "2024-05-01T11:59:00.000Z", "firing"),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(txn->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(txn->Commit());
  EXPECT_OK(store_->GetApp("web"));
}

TEST_P(StoreTest, Transaction_StoreCallsFromItsOwnThreadAreRefusedInsteadOfWaiting) {
  std::unique_ptr<StoreTransaction> txn = BeginOrDie(store_.get());
  ASSERT_NE(txn, nullptr);
  ASSERT_OK(txn->UpsertApp(MakeApp("web"), nullptr));
  EXPECT_THAT(store_->Begin(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(store_->GetApp("web"), StatusIs(absl::StatusCode::kFailedPrecondition));
  Event event = MakeEvent("web", "app.created");
  EXPECT_THAT(store_->AddEvent(&event), StatusIs(absl::StatusCode::kFailedPrecondition));
  // The refusals left the transaction alone.
  EXPECT_EQ(QueryOne("SELECT count(*) FROM apps"), "0");
  ASSERT_OK(txn->Commit());
  EXPECT_EQ(QueryOne("SELECT count(*) FROM apps"), "1");
  EXPECT_EQ(QueryOne("SELECT count(*) FROM events"), "0");
}

TEST_P(StoreTest, Transaction_OtherThreadsWaitUntilItCommits) {
  std::atomic<bool> other_done{false};
  std::thread other;
  {
    std::unique_ptr<StoreTransaction> txn = BeginOrDie(store_.get());
    ASSERT_NE(txn, nullptr);
    Event mine = MakeEvent("web", "mine");
    EXPECT_OK(txn->AddEvent(&mine));
    other = std::thread([&] {
      Event theirs = MakeEvent("web", "theirs");
      EXPECT_OK(store_->AddEvent(&theirs));
      other_done = true;
    });
    absl::SleepFor(absl::Milliseconds(300));
    EXPECT_FALSE(other_done.load()) << "another thread wrote during the transaction";
    EXPECT_OK(txn->Commit());
  }
  other.join();
  EXPECT_TRUE(other_done.load());
  absl::StatusOr<std::vector<Event>> events = store_->ListEvents("", 0);
  ASSERT_OK(events);
  EXPECT_THAT(Kinds(*events), ElementsAre("theirs", "mine"));
}

TEST_P(StoreTest, Transaction_ReadsOfOtherThreadsSeeTheLastCommitWithoutWaiting) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  std::unique_ptr<StoreTransaction> txn = BeginOrDie(store_.get());
  ASSERT_NE(txn, nullptr);
  ASSERT_OK(txn->InsertRelease(MakeRelease("web", "v1")));
  ASSERT_OK(txn->UpsertApp(MakeApp("api"), nullptr));
  // Read from another thread while the transaction stays open: a read that
  // waited for it would never return, since this thread commits only after
  // the join.
  std::vector<std::string> apps;
  absl::StatusOr<std::vector<Release>> releases;
  std::thread reader([&] {
    absl::StatusOr<std::vector<App>> listed = store_->ListApps();
    EXPECT_OK(listed);
    if (listed.ok()) {
      for (const App& app : *listed) apps.push_back(app.spec().name());
    }
    releases = store_->ListReleases("web");
  });
  reader.join();
  EXPECT_THAT(apps, ElementsAre("web"));
  ASSERT_OK(releases);
  EXPECT_TRUE(releases->empty());
  ASSERT_OK(txn->Commit());
  absl::StatusOr<std::vector<Release>> after = store_->ListReleases("web");
  ASSERT_OK(after);
  EXPECT_THAT(Versions(*after), ElementsAre("v1"));
}

TEST_P(StoreTest, Transaction_BeginIsUnavailableWhileAnotherProcessHoldsTheDatabase) {
  // Another process holds the write lock longer than the 5 s the store waits.
  std::unique_ptr<ForeignWriter> other = HoldWriteLockElsewhere();
  ASSERT_NE(other, nullptr);
  absl::StatusOr<std::unique_ptr<StoreTransaction>> txn = store_->Begin();
  EXPECT_THAT(txn, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(std::string(txn.status().message()),
              HasSubstr("cannot begin transaction on " + label()));
  // No transaction is left open: reads go on, on this thread too.
  EXPECT_OK(store_->ListApps());
  other.reset();
  EXPECT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
}

TEST_P(StoreTest, Transaction_AlertInsertedAndRolledBackLeavesNoKey) {
  {
    std::unique_ptr<StoreTransaction> txn = BeginOrDie(store_.get());
    ASSERT_NE(txn, nullptr);
    ASSERT_OK(txn->InsertAlert(MakeAlertRecord("firing")));
  }
  EXPECT_THAT(store_->GetAlert("4f1c2a", "2024-05-01T11:59:00Z", "firing"),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace

std::unique_ptr<ForeignWriter> StoreTest::HoldWriteLockElsewhere() {
  if (postgres()) return std::make_unique<PgWriter>(url_);
  return std::make_unique<SqliteWriter>(path());
}

}  // namespace fleet::controller
