// The SQLite connection's statement cache: one prepared statement per SQL
// text, reset and cleared after each use, and a second one while the first
// is in use.
#include "controller/sqlite_statement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::controller {
namespace {

using ::fleet::testing::StatusIs;
using ::testing::HasSubstr;

class SqliteStatementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<SqliteConnection>> db =
        SqliteConnection::Open(dir_.Sub("test.db"));
    ASSERT_OK(db);
    db_ = *std::move(db);
    ASSERT_OK(
        db_->Exec("CREATE TABLE t (x INTEGER PRIMARY KEY); "
                  "INSERT INTO t VALUES (1), (2), (3);"));
  }

  fleet::testing::TempDir dir_;
  std::unique_ptr<SqliteConnection> db_;
};

TEST_F(SqliteStatementTest, Prepare_CachedStatementIsResetAndClearedAfterUse) {
  {
    SqliteStatement stmt = db_->Prepare("SELECT count(*) FROM t WHERE x >= ?");
    stmt.Bind(2);
    absl::StatusOr<bool> row = stmt.Step();
    ASSERT_OK(row);
    ASSERT_TRUE(*row);
    EXPECT_EQ(stmt.Int(0), 2);
  }
  // Run again from the start, its bind cleared: NULL compares as nothing.
  SqliteStatement again = db_->Prepare("SELECT count(*) FROM t WHERE x >= ?");
  absl::StatusOr<bool> row = again.Step();
  ASSERT_OK(row);
  ASSERT_TRUE(*row);
  EXPECT_EQ(again.Int(0), 0);
}

TEST_F(SqliteStatementTest, Prepare_SameTextWhileInUseGivesAStatementOfItsOwn) {
  SqliteStatement first = db_->Prepare("SELECT x FROM t ORDER BY x");
  ASSERT_TRUE(first.Step().value_or(false));
  EXPECT_EQ(first.Int(0), 1);
  {
    SqliteStatement second = db_->Prepare("SELECT x FROM t ORDER BY x");
    ASSERT_TRUE(second.Step().value_or(false));
    EXPECT_EQ(second.Int(0), 1);
  }
  ASSERT_TRUE(first.Step().value_or(false));
  EXPECT_EQ(first.Int(0), 2);
}

TEST_F(SqliteStatementTest, Run_ReportsConstraintsAndChanges) {
  SqliteStatement insert = db_->Prepare("INSERT INTO t (x) VALUES (?)");
  insert.Bind(2);
  EXPECT_THAT(insert.Run(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(insert.FailedOnDuplicateKey());
  insert.Reset();
  insert.Bind(4);
  ASSERT_OK(insert.Run());
  EXPECT_FALSE(insert.FailedOnDuplicateKey());
  EXPECT_EQ(db_->Changes(), 1);
  EXPECT_EQ(db_->LastInsertRowId(), 4);
}

TEST_F(SqliteStatementTest, Prepare_FailureIsReportedByStep) {
  SqliteStatement stmt = db_->Prepare("SELEC x FROM t");
  stmt.Bind(1);
  absl::StatusOr<bool> row = stmt.Step();
  EXPECT_THAT(row, StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(std::string(row.status().message()), HasSubstr("syntax error"));
}

TEST_F(SqliteStatementTest, Exec_TracksTheOpenTransaction) {
  EXPECT_FALSE(db_->InTransaction());
  ASSERT_OK(db_->Exec("BEGIN IMMEDIATE"));
  EXPECT_TRUE(db_->InTransaction());
  ASSERT_OK(db_->Exec("ROLLBACK"));
  EXPECT_FALSE(db_->InTransaction());
}

}  // namespace
}  // namespace fleet::controller
