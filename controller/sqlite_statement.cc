#include "controller/sqlite_statement.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace fleet::controller {
namespace {

absl::Status SqliteError(sqlite3* db, int rc) {
  // sqlite3_errmsg describes the last failed call on `db`; the caller's
  // lock guarantees that was ours.
  return absl::Status(SqliteStatusCode(rc),
                      db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

}  // namespace

absl::StatusCode SqliteStatusCode(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_FULL:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_CONSTRAINT:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

SqliteStatement::SqliteStatement(sqlite3* db, sqlite3_stmt* stmt, bool* in_use, absl::Status status)
    : db_(db), stmt_(stmt), in_use_(in_use), status_(std::move(status)) {}

SqliteStatement::SqliteStatement(SqliteStatement&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      in_use_(std::exchange(other.in_use_, nullptr)),
      next_(other.next_),
      code_(other.code_),
      status_(std::move(other.status_)) {}

SqliteStatement::~SqliteStatement() {
  if (stmt_ == nullptr) return;
  if (in_use_ == nullptr) {
    sqlite3_finalize(stmt_);
    return;
  }
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  *in_use_ = false;
}

SqliteStatement& SqliteStatement::Bind(absl::string_view text) {
  if (stmt_ == nullptr) return *this;  // the failed prepare is reported by Step
  // A null pointer would bind NULL; "" is not NULL.
  const char* data = text.data() != nullptr ? text.data() : "";
  return Check(
      sqlite3_bind_text64(stmt_, ++next_, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
}

SqliteStatement& SqliteStatement::Bind(int64_t value) {
  if (stmt_ == nullptr) return *this;
  return Check(sqlite3_bind_int64(stmt_, ++next_, value));
}

SqliteStatement& SqliteStatement::BindBlob(absl::string_view bytes) {
  if (stmt_ == nullptr) return *this;
  if (bytes.empty()) return Check(sqlite3_bind_zeroblob(stmt_, ++next_, 0));
  return Check(sqlite3_bind_blob64(stmt_, ++next_, bytes.data(), bytes.size(), SQLITE_TRANSIENT));
}

absl::StatusOr<bool> SqliteStatement::Step() {
  if (!status_.ok()) return status_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Fail(rc);
  return status_;
}

absl::Status SqliteStatement::Run() {
  absl::StatusOr<bool> row = Step();
  return row.status();
}

void SqliteStatement::Reset() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  next_ = 0;
  code_ = SQLITE_OK;
  status_ = absl::OkStatus();
}

bool SqliteStatement::FailedOnDuplicateKey() const {
  return code_ == SQLITE_CONSTRAINT_PRIMARYKEY || code_ == SQLITE_CONSTRAINT_UNIQUE;
}

bool SqliteStatement::FailedOnForeignKey() const { return code_ == SQLITE_CONSTRAINT_FOREIGNKEY; }

int64_t SqliteStatement::Int(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string SqliteStatement::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::string SqliteStatement::Blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  if (p == nullptr) return std::string();
  return std::string(static_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

SqliteStatement& SqliteStatement::Check(int rc) {
  if (rc != SQLITE_OK && status_.ok()) Fail(rc);
  return *this;
}

void SqliteStatement::Fail(int rc) {
  code_ = rc;
  status_ = SqliteError(db_, rc);
}

absl::StatusOr<std::unique_ptr<SqliteConnection>> SqliteConnection::Open(const std::string& path) {
  sqlite3* db = nullptr;
  // No SQLITE_OPEN_FULLMUTEX: the store's mutex serializes every use.
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status st(SqliteStatusCode(rc),
                    absl::StrCat("cannot open database ", path, ": ",
                                 db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close(db);
    return st;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 5000);
  return std::unique_ptr<SqliteConnection>(new SqliteConnection(db, path));
}

SqliteConnection::~SqliteConnection() {
  for (auto& [sql, cached] : cache_) sqlite3_finalize(cached.stmt);
  sqlite3_close(db_);
}

SqliteStatement SqliteConnection::Prepare(absl::string_view sql) {
  auto it = cache_.find(std::string(sql));
  if (it != cache_.end() && !it->second.in_use) {
    it->second.in_use = true;
    return SqliteStatement(db_, it->second.stmt, &it->second.in_use, absl::OkStatus());
  }
  const bool cache = it == cache_.end();
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              cache ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteStatement(db_, nullptr, nullptr, SqliteError(db_, rc));
  }
  if (!cache) return SqliteStatement(db_, stmt, nullptr, absl::OkStatus());
  CachedStatement& cached = cache_[std::string(sql)];
  cached.stmt = stmt;
  cached.in_use = true;
  return SqliteStatement(db_, stmt, &cached.in_use, absl::OkStatus());
}

absl::Status SqliteConnection::Exec(absl::string_view sql) {
  const std::string text(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return absl::OkStatus();
  absl::Status st(SqliteStatusCode(rc), err != nullptr ? err : sqlite3_errstr(rc));
  sqlite3_free(err);
  return st;
}

int64_t SqliteConnection::Changes() const { return sqlite3_changes64(db_); }

int64_t SqliteConnection::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

bool SqliteConnection::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

}  // namespace fleet::controller
