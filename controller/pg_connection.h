// One PostgreSQL connection (libpq) with a cache of prepared statements,
// and the result and parameter types the PostgreSQL store's queries use.
// Nothing here is thread-safe: PgStore serializes every use of a connection
// on a mutex of its own.
//
// The database URL carries a password more often than not; it is never
// logged, printed or put in an error: RedactDatabaseUrl gives the text to
// show instead, and every error of this file names that text.
#ifndef FLEET_CONTROLLER_PG_CONNECTION_H_
#define FLEET_CONTROLLER_PG_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct pg_conn;
struct pg_result;

namespace fleet::controller {

// SQLSTATE codes the store tells apart.
inline constexpr absl::string_view kPgUniqueViolation = "23505";
inline constexpr absl::string_view kPgForeignKeyViolation = "23503";
inline constexpr absl::string_view kPgSerializationFailure = "40001";
inline constexpr absl::string_view kPgDeadlockDetected = "40P01";
inline constexpr absl::string_view kPgLockNotAvailable = "55P03";
inline constexpr absl::string_view kPgUndefinedTable = "42P01";

// Whether `url` names a PostgreSQL database: it starts with postgres:// or
// postgresql://.
bool IsPostgresUrl(absl::string_view url);

// `url` without its password, for logs and errors:
// "postgresql://fleet@db1:5432/fleet". Parameters other than user, host,
// port and dbname are left out, since any of them may hold a secret.
// "postgresql://(unparsable URL)" when libpq cannot parse it.
std::string RedactDatabaseUrl(const std::string& url);

// Whether `url` carries a password (in its user info or a password
// parameter).
bool DatabaseUrlHasPassword(const std::string& url);

// The status code for SQLSTATE `sqlstate`: Unavailable for connection
// failures (class 08), lock timeouts, shutdowns and too many connections;
// Aborted for serialization failures and deadlocks (PgStore tries those
// again); ResourceExhausted for a full disk or memory; FailedPrecondition
// for constraint violations (class 23); InvalidArgument for data exceptions
// (class 22: text that is not UTF-8, ...); PermissionDenied for missing
// privileges; DataLoss for corruption (class XX001/XX002); Internal else.
absl::StatusCode PgStatusCode(absl::string_view sqlstate);

// The values of a statement's $1, $2, ...: text, except bytes, which are
// sent as binary (bytea).
class PgParams {
 public:
  PgParams& Add(absl::string_view text);
  PgParams& Add(const std::string& text) { return Add(absl::string_view(text)); }
  PgParams& Add(const char* text) { return Add(absl::string_view(text)); }
  PgParams& Add(int64_t value);
  PgParams& Add(int value) { return Add(static_cast<int64_t>(value)); }
  PgParams& Add(bool value);
  PgParams& AddBytes(absl::string_view bytes);

  int size() const { return static_cast<int>(values_.size()); }
  // Arrays for PQexecPrepared, valid until the next Add.
  std::vector<const char*> Values() const;
  const int* Lengths() const { return lengths_.data(); }
  const int* Formats() const { return formats_.data(); }

 private:
  std::vector<std::string> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

// The rows of a finished statement, in text format. Owns its PGresult.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(pg_result* result) : result_(result) {}
  PgResult(PgResult&& other) noexcept;
  PgResult& operator=(PgResult&& other) noexcept;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ~PgResult();

  int rows() const;
  // Rows changed by an INSERT, UPDATE or DELETE.
  int64_t affected() const;
  // Column `col` of row `row`, 0-based. NULL reads as "" / 0 / false.
  std::string Text(int row, int col) const;
  int64_t Int(int row, int col) const;
  bool Bool(int row, int col) const;
  // A bytea column, decoded.
  std::string Bytes(int row, int col) const;

 private:
  pg_result* result_ = nullptr;
};

class PgConnection {
 public:
  // Connects to `url` (postgres://...). On failure returns Unavailable
  // naming RedactDatabaseUrl(url) and libpq's reason, and leaves nothing
  // open.
  static absl::StatusOr<std::unique_ptr<PgConnection>> Open(const std::string& url);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // RedactDatabaseUrl of the URL it was opened with.
  const std::string& label() const { return label_; }

  // Runs `sql` with `params` as a prepared statement: prepared at its first
  // use on this connection and kept under its text, so `sql` should be a
  // constant (or built from constants), never hold values. On failure the
  // status has PgStatusCode of the SQLSTATE (last_sqlstate()) and the
  // server's message.
  absl::StatusOr<PgResult> Query(absl::string_view sql, const PgParams& params = PgParams());
  // Runs `sql` (one or more statements, no parameters) unprepared.
  absl::Status Exec(absl::string_view sql);

  // SQLSTATE of the last failure, "" after a success. A lost connection
  // reads as "08006".
  const std::string& last_sqlstate() const { return last_sqlstate_; }
  bool FailedWith(absl::string_view sqlstate) const { return last_sqlstate_ == sqlstate; }

  // Whether the connection is up, and whether a transaction is open on it
  // (also one that failed and waits for ROLLBACK).
  bool Healthy() const;
  bool InTransaction() const;
  // Whether the open transaction had a statement fail: PostgreSQL then
  // answers COMMIT by rolling back.
  bool TransactionFailed() const;
  // Connects again after the server or the network dropped the
  // connection; prepared statements are prepared again at their next use.
  absl::Status Reconnect();

 private:
  PgConnection(pg_conn* conn, std::string label) : conn_(conn), label_(std::move(label)) {}
  // The error of a failed call: from `result` when it has one, else from
  // the connection.
  absl::Status Failure(pg_result* result);

  pg_conn* conn_;
  const std::string label_;
  std::string last_sqlstate_;
  // SQL text -> server-side statement name.
  std::unordered_map<std::string, std::string> prepared_;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_PG_CONNECTION_H_
