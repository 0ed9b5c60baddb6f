// One SQLite connection with a cache of prepared statements, and the
// statement handle the SQLite store's queries run through. Nothing here is
// thread-safe: SqliteStore serializes every use of a connection, and of the
// statements it hands out, on its mutex.
#ifndef FLEET_CONTROLLER_SQLITE_STATEMENT_H_
#define FLEET_CONTROLLER_SQLITE_STATEMENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;
struct sqlite3_stmt;

namespace fleet::controller {

// The status code for SQLite result code `rc` (primary or extended):
// Unavailable for BUSY and LOCKED, ResourceExhausted for FULL, DataLoss for
// CORRUPT and NOTADB, PermissionDenied for READONLY, PERM and AUTH,
// FailedPrecondition for CONSTRAINT, Internal for anything else.
absl::StatusCode SqliteStatusCode(int rc);

// One use of a prepared statement, handed out by SqliteConnection::Prepare.
// Binds are positional and counted: the n-th Bind fills the n-th `?`. A
// failed prepare or bind is reported by the next Step() or Run(). On
// destruction the statement is reset and its binds cleared (a cached one,
// for its next use) or finalized (one of its own).
class SqliteStatement {
 public:
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&&) = delete;
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  ~SqliteStatement();

  SqliteStatement& Bind(absl::string_view text);
  SqliteStatement& Bind(const std::string& text) { return Bind(absl::string_view(text)); }
  SqliteStatement& Bind(const char* text) { return Bind(absl::string_view(text)); }
  SqliteStatement& Bind(int64_t value);
  SqliteStatement& Bind(int value) { return Bind(static_cast<int64_t>(value)); }
  SqliteStatement& Bind(bool value) { return Bind(static_cast<int64_t>(value ? 1 : 0)); }
  SqliteStatement& BindBlob(absl::string_view bytes);

  // True when a row is ready, false when the statement is done.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no rows (or whose rows are not wanted).
  absl::Status Run();
  // Makes the statement ready to run again with new binds, as for each row
  // of a batch. A failed prepare stays failed.
  void Reset();

  // The extended result code of the failure, 0 (SQLITE_OK) when none.
  int code() const { return code_; }
  // Whether the failure was a PRIMARY KEY or UNIQUE constraint.
  bool FailedOnDuplicateKey() const;
  // Whether the failure was a FOREIGN KEY constraint.
  bool FailedOnForeignKey() const;

  // Columns of the current row, 0-based.
  int64_t Int(int col) const;
  std::string Text(int col) const;
  std::string Blob(int col) const;

 private:
  friend class SqliteConnection;
  // `in_use` is the cache's flag of a cached statement, cleared on
  // destruction; null for a statement of its own.
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt, bool* in_use, absl::Status status);
  SqliteStatement& Check(int rc);
  void Fail(int rc);

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  bool* in_use_;
  int next_ = 0;
  int code_ = 0;
  absl::Status status_;
};

class SqliteConnection {
 public:
  // Opens or creates the database file at `path` (read-write), with
  // extended result codes and a busy timeout of 5 s. On failure returns the
  // error, naming `path`, and leaves nothing open.
  static absl::StatusOr<std::unique_ptr<SqliteConnection>> Open(const std::string& path);
  // Finalizes every cached statement and closes the connection. No
  // statement handed out may outlive it.
  ~SqliteConnection();
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  const std::string& path() const { return path_; }

  // The statement for `sql`, prepared at its first use and kept for the
  // connection's lifetime under its text, so `sql` should be a constant (or
  // built from constants), never hold values. When that statement is in use
  // already, a statement of its own is prepared instead.
  SqliteStatement Prepare(absl::string_view sql);
  // Runs `sql`, one or more statements without binds; nothing is cached.
  absl::Status Exec(absl::string_view sql);

  // Rows changed by the last INSERT, UPDATE or DELETE.
  int64_t Changes() const;
  // Rowid of the last successful INSERT.
  int64_t LastInsertRowId() const;
  // Whether a transaction is open (BEGIN ran; no COMMIT or ROLLBACK yet,
  // and SQLite did not roll it back after an error).
  bool InTransaction() const;

 private:
  SqliteConnection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  struct CachedStatement {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };

  sqlite3* const db_;
  const std::string path_;
  // Keyed by SQL text. Node-based, so that a statement's `in_use` stays put
  // while others are added.
  std::unordered_map<std::string, CachedStatement> cache_;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_SQLITE_STATEMENT_H_
