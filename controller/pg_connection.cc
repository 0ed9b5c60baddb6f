#include "controller/pg_connection.h"

#include <libpq-fe.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace fleet::controller {
namespace {

// Connection failures libpq reports without a SQLSTATE.
constexpr absl::string_view kConnectionFailure = "08006";

// libpq's messages end in a newline and may span lines; errors here are one
// line.
std::string OneLine(absl::string_view message) {
  std::string text(absl::StripAsciiWhitespace(message));
  for (char& c : text) {
    if (c == '\n') c = ' ';
  }
  return text;
}

}  // namespace

bool IsPostgresUrl(absl::string_view url) {
  return absl::StartsWith(url, "postgres://") || absl::StartsWith(url, "postgresql://");
}

std::string RedactDatabaseUrl(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (options == nullptr) {
    PQfreemem(error);
    return "postgresql://(unparsable URL)";
  }
  std::string user, host, port, dbname;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const absl::string_view key = o->keyword;
    if (key == "user") user = o->val;
    if (key == "host" || (key == "hostaddr" && host.empty())) host = o->val;
    if (key == "port") port = o->val;
    if (key == "dbname") dbname = o->val;
  }
  PQconninfoFree(options);
  // A unix socket dir reads as a path; keep it recognizable.
  if (absl::StartsWith(host, "/")) host = absl::StrCat("[", host, "]");
  return absl::StrCat("postgresql://", user, user.empty() ? "" : "@", host, port.empty() ? "" : ":",
                      port, "/", dbname);
}

bool DatabaseUrlHasPassword(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (options == nullptr) {
    PQfreemem(error);
    return false;
  }
  bool found = false;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (absl::string_view(o->keyword) == "password" && o->val != nullptr && o->val[0] != '\0') {
      found = true;
    }
  }
  PQconninfoFree(options);
  return found;
}

absl::StatusCode PgStatusCode(absl::string_view sqlstate) {
  if (sqlstate.size() != 5) return absl::StatusCode::kInternal;
  const absl::string_view cls = sqlstate.substr(0, 2);
  if (cls == "08" || sqlstate == kPgLockNotAvailable || sqlstate == "53300" || cls == "57") {
    return absl::StatusCode::kUnavailable;
  }
  if (sqlstate == kPgSerializationFailure || sqlstate == kPgDeadlockDetected) {
    return absl::StatusCode::kAborted;
  }
  if (cls == "53") return absl::StatusCode::kResourceExhausted;
  if (cls == "23") return absl::StatusCode::kFailedPrecondition;
  if (cls == "22") return absl::StatusCode::kInvalidArgument;
  if (sqlstate == "42501" || cls == "28") return absl::StatusCode::kPermissionDenied;
  if (sqlstate == "XX001" || sqlstate == "XX002") return absl::StatusCode::kDataLoss;
  return absl::StatusCode::kInternal;
}

PgParams& PgParams::Add(absl::string_view text) {
  values_.emplace_back(text);
  lengths_.push_back(static_cast<int>(text.size()));
  formats_.push_back(0);
  return *this;
}

PgParams& PgParams::Add(int64_t value) { return Add(absl::StrCat(value)); }

PgParams& PgParams::Add(bool value) { return Add(value ? "true" : "false"); }

PgParams& PgParams::AddBytes(absl::string_view bytes) {
  values_.emplace_back(bytes);
  lengths_.push_back(static_cast<int>(bytes.size()));
  formats_.push_back(1);  // binary: the raw bytes of a bytea
  return *this;
}

std::vector<const char*> PgParams::Values() const {
  std::vector<const char*> values;
  values.reserve(values_.size());
  for (const std::string& v : values_) values.push_back(v.data());
  return values;
}

PgResult::PgResult(PgResult&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}

PgResult& PgResult::operator=(PgResult&& other) noexcept {
  if (this != &other) {
    if (result_ != nullptr) PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

PgResult::~PgResult() {
  if (result_ != nullptr) PQclear(result_);
}

int PgResult::rows() const { return result_ == nullptr ? 0 : PQntuples(result_); }

int64_t PgResult::affected() const {
  int64_t n = 0;
  if (result_ != nullptr && !absl::SimpleAtoi(PQcmdTuples(result_), &n)) n = 0;
  return n;
}

std::string PgResult::Text(int row, int col) const {
  if (result_ == nullptr || PQgetisnull(result_, row, col)) return "";
  return std::string(PQgetvalue(result_, row, col), PQgetlength(result_, row, col));
}

int64_t PgResult::Int(int row, int col) const {
  int64_t n = 0;
  if (!absl::SimpleAtoi(Text(row, col), &n)) n = 0;
  return n;
}

bool PgResult::Bool(int row, int col) const { return Text(row, col) == "t"; }

std::string PgResult::Bytes(int row, int col) const {
  if (result_ == nullptr || PQgetisnull(result_, row, col)) return "";
  size_t length = 0;
  unsigned char* bytes = PQunescapeBytea(
      reinterpret_cast<const unsigned char*>(PQgetvalue(result_, row, col)), &length);
  if (bytes == nullptr) return "";
  std::string out(reinterpret_cast<const char*>(bytes), length);
  PQfreemem(bytes);
  return out;
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgConnection::Open(const std::string& url) {
  std::string label = RedactDatabaseUrl(url);
  PGconn* conn = PQconnectdb(url.c_str());
  if (conn == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot connect to ", label, ": no memory"));
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string reason = OneLine(PQerrorMessage(conn));
    PQfinish(conn);
    return absl::UnavailableError(absl::StrCat("cannot connect to ", label, ": ", reason));
  }
  // Only messages that matter in the controller's log.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  auto connection = std::unique_ptr<PgConnection>(new PgConnection(conn, std::move(label)));
  // Every text in the schema is UTF-8, as SQLite's; times are integers.
  absl::Status st = connection->Exec("SET client_encoding = 'UTF8'");
  if (!st.ok()) return st;
  return connection;
}

PgConnection::~PgConnection() { PQfinish(conn_); }

absl::Status PgConnection::Failure(PGresult* result) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = result != nullptr ? PQresultErrorMessage(result) : "";
  if (message.empty()) message = PQerrorMessage(conn_);
  last_sqlstate_ = state != nullptr ? state : std::string(kConnectionFailure);
  if (result != nullptr) PQclear(result);
  if (PQstatus(conn_) != CONNECTION_OK) last_sqlstate_ = std::string(kConnectionFailure);
  return absl::Status(PgStatusCode(last_sqlstate_), OneLine(message));
}

absl::StatusOr<PgResult> PgConnection::Query(absl::string_view sql, const PgParams& params) {
  std::string key(sql);
  auto it = prepared_.find(key);
  if (it == prepared_.end()) {
    std::string name = absl::StrCat("fleet_", prepared_.size() + 1);
    PGresult* prepared = PQprepare(conn_, name.c_str(), key.c_str(), 0, nullptr);
    if (prepared == nullptr || PQresultStatus(prepared) != PGRES_COMMAND_OK) {
      return Failure(prepared);
    }
    PQclear(prepared);
    it = prepared_.emplace(std::move(key), std::move(name)).first;
  }
  std::vector<const char*> values = params.Values();
  PGresult* result = PQexecPrepared(conn_, it->second.c_str(), params.size(), values.data(),
                                    params.Lengths(), params.Formats(), /*resultFormat=*/0);
  const ExecStatusType status = result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) return Failure(result);
  last_sqlstate_.clear();
  return PgResult(result);
}

absl::Status PgConnection::Exec(absl::string_view sql) {
  PGresult* result = PQexec(conn_, std::string(sql).c_str());
  const ExecStatusType status = result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) return Failure(result);
  PQclear(result);
  last_sqlstate_.clear();
  return absl::OkStatus();
}

bool PgConnection::Healthy() const { return PQstatus(conn_) == CONNECTION_OK; }

bool PgConnection::InTransaction() const {
  const PGTransactionStatusType status = PQtransactionStatus(conn_);
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

bool PgConnection::TransactionFailed() const {
  return PQtransactionStatus(conn_) == PQTRANS_INERROR;
}

absl::Status PgConnection::Reconnect() {
  prepared_.clear();
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", label_, ": ", OneLine(PQerrorMessage(conn_))));
  }
  return Exec("SET client_encoding = 'UTF8'");
}

}  // namespace fleet::controller
