#include "controller/store_migration.h"

#include <sys/stat.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "controller/pg_connection.h"
#include "controller/pg_queries.h"
#include "controller/pg_schema.h"
#include "controller/sqlite_queries.h"
#include "controller/sqlite_schema.h"
#include "controller/sqlite_statement.h"
#include "google/protobuf/util/message_differencer.h"

namespace fleet::controller {
namespace {

using google::protobuf::util::MessageDifferencer;

enum class ColumnType { kText, kInt, kBool, kBytes };

struct Column {
  const char* name;
  ColumnType type;
};

// A table of both schemas (sqlite_schema.cc, pg_schema.cc) with every
// column; rows are copied in `order`, which for releases, configs and
// tokens is their push (rowid) order, kept by the seq column.
struct Table {
  const char* name;
  std::vector<Column> columns;
  const char* order;
};

constexpr ColumnType T = ColumnType::kText;
constexpr ColumnType I = ColumnType::kInt;
constexpr ColumnType B = ColumnType::kBool;
constexpr ColumnType Y = ColumnType::kBytes;

// Parents before children, for the foreign keys.
const std::vector<Table>& Tables() {
  static const auto* tables = new std::vector<Table>{
      {"apps",
       {{"name", T},
        {"spec", Y},
        {"spec_yaml", T},
        {"desired_version", T},
        {"desired_config", T},
        {"created_at_ms", I},
        {"updated_at_ms", I}},
       "rowid"},
      {"releases",
       {{"app", T},
        {"version", T},
        {"sha256", T},
        {"size", I},
        {"created_at_ms", I},
        {"created_by", T},
        {"metadata", Y}},
       "rowid"},
      {"configs",
       {{"app", T},
        {"version", T},
        {"sha256", T},
        {"size", I},
        {"created_at_ms", I},
        {"created_by", T},
        {"files", Y}},
       "rowid"},
      {"hosts",
       {{"id", T},
        {"labels", T},
        {"connected", B},
        {"first_seen_ms", I},
        {"last_seen_ms", I},
        {"agent_version", T},
        {"peer", T}},
       "rowid"},
      {"host_apps",
       {{"host_id", T},
        {"app", T},
        {"current_release", T},
        {"releases", T},
        {"last_known_good", T},
        {"previous_release", T},
        {"current_config", T},
        {"configs", T},
        {"last_good_config", T},
        {"previous_config", T},
        {"updated_at_ms", I}},
       "rowid"},
      {"host_holds",
       {{"host_id", T},
        {"app", T},
        {"held", B},
        {"version", T},
        {"from_version", T},
        {"reason", T},
        {"actor", T},
        {"since_ms", I},
        {"local_id", T}},
       "rowid"},
      {"rollouts",
       {{"id", I},
        {"app", T},
        {"version", T},
        {"from_version", T},
        {"kind", I},
        {"state", I},
        {"selector", T},
        {"created_by", T},
        {"created_at_ms", I},
        {"finished_at_ms", I},
        {"reason", T},
        {"plan", Y},
        {"current_wave", I},
        {"awaiting_promote", B},
        {"paused_by", T},
        {"subject", I},
        {"fleet_release", T},
        {"fleet_config", T},
        {"pause_reason", I}},
       "id"},
      {"rollout_tasks",
       {{"rollout_id", I},
        {"host_id", T},
        {"wave", I},
        {"state", I},
        {"from_release", T},
        {"to_release", T},
        {"reason", T},
        {"command_id", T},
        {"updated_at_ms", I}},
       "rowid"},
      {"events",
       {{"id", I},
        {"at_ms", I},
        {"app", T},
        {"rollout_id", T},
        {"host_id", T},
        {"kind", T},
        {"actor", T},
        {"message", T}},
       "id"},
      {"alerts",
       {{"fingerprint", T},
        {"starts_at", T},
        {"status", T},
        {"app", T},
        {"alertname", T},
        {"received_at_ms", I},
        {"outcome", T},
        {"rollout_id", T},
        {"message", T}},
       "rowid"},
      {"tokens",
       {{"id", T},
        {"hash", T},
        {"role", I},
        {"app", T},
        {"description", T},
        {"created_by", T},
        {"created_at_ms", I},
        {"revoked_at_ms", I}},
       "rowid"},
  };
  return *tables;
}

std::string ColumnList(const Table& table) {
  std::vector<std::string> names;
  for (const Column& c : table.columns) names.push_back(c.name);
  return absl::StrJoin(names, ", ");
}

// Copies every row of `table`; returns how many.
absl::StatusOr<int64_t> CopyTable(SqliteConnection* from, PgConnection* to, const Table& table) {
  const std::string columns = ColumnList(table);
  std::vector<std::string> placeholders;
  for (size_t i = 1; i <= table.columns.size(); ++i) placeholders.push_back(absl::StrCat("$", i));
  const std::string insert = absl::StrCat("INSERT INTO ", table.name, " (", columns, ") VALUES (",
                                          absl::StrJoin(placeholders, ", "), ")");
  SqliteStatement select = from->Prepare(
      absl::StrCat("SELECT ", columns, " FROM ", table.name, " ORDER BY ", table.order));
  int64_t rows = 0;
  while (true) {
    FLEET_ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    PgParams params;
    for (size_t i = 0; i < table.columns.size(); ++i) {
      const int col = static_cast<int>(i);
      switch (table.columns[i].type) {
        case ColumnType::kText:
          params.Add(select.Text(col));
          break;
        case ColumnType::kInt:
          params.Add(select.Int(col));
          break;
        case ColumnType::kBool:
          params.Add(select.Int(col) != 0);
          break;
        case ColumnType::kBytes:
          params.AddBytes(select.Blob(col));
          break;
      }
    }
    absl::Status st = to->Query(insert, params).status();
    if (!st.ok())
      return Annotate(st, absl::StrCat("cannot copy row ", rows + 1, " of ", table.name));
    ++rows;
  }
  return rows;
}

absl::StatusOr<int64_t> CountSqlite(SqliteConnection* db, const std::string& table) {
  SqliteStatement stmt = db->Prepare(absl::StrCat("SELECT count(*) FROM ", table));
  FLEET_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.Int(0) : 0;
}

absl::StatusOr<int64_t> CountPg(PgConnection* db, const std::string& table) {
  FLEET_ASSIGN_OR_RETURN(PgResult r, db->Query(absl::StrCat("SELECT count(*) FROM ", table)));
  return r.Int(0, 0);
}

absl::Status CheckEmpty(PgConnection* db) {
  for (const Table& table : Tables()) {
    FLEET_ASSIGN_OR_RETURN(int64_t rows, CountPg(db, table.name));
    if (rows > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("database ", db->label(), " is not empty: ", table.name, " holds ", rows,
                       " rows; migrate-store copies into an empty database only"));
    }
  }
  return absl::OkStatus();
}

// Moves the identity of `table`.id past every id SQLite ever gave (its
// AUTOINCREMENT counter), so that no id is given twice.
absl::Status AdvanceIdentity(SqliteConnection* from, PgConnection* to, const std::string& table) {
  SqliteStatement stmt = from->Prepare(
      "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), "
      "coalesce((SELECT max(id) FROM " +
      table + "), 0))");
  stmt.Bind(table);
  FLEET_ASSIGN_OR_RETURN(bool row, stmt.Step());
  const int64_t last = row ? stmt.Int(0) : 0;
  if (last <= 0) return absl::OkStatus();
  PgParams params;
  params.Add(table).Add(last);
  return to->Query("SELECT setval(pg_get_serial_sequence($1, 'id'), $2)", params).status();
}

template <typename M>
absl::Status Same(const absl::StatusOr<M>& a, const absl::StatusOr<M>& b, const std::string& what) {
  if (!a.ok()) return Annotate(a.status(), absl::StrCat("cannot read ", what, " from SQLite"));
  if (!b.ok()) return Annotate(b.status(), absl::StrCat("cannot read ", what, " back"));
  if (MessageDifferencer::Equals(*a, *b)) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat("the copy of ", what, " reads back different"));
}

template <typename M>
absl::Status SameList(const absl::StatusOr<std::vector<M>>& a,
                      const absl::StatusOr<std::vector<M>>& b, const std::string& what) {
  if (!a.ok()) return Annotate(a.status(), absl::StrCat("cannot read ", what, " from SQLite"));
  if (!b.ok()) return Annotate(b.status(), absl::StrCat("cannot read ", what, " back"));
  if (a->size() != b->size()) {
    return absl::DataLossError(
        absl::StrCat("the copy holds ", b->size(), " ", what, " instead of ", a->size()));
  }
  for (size_t i = 0; i < a->size(); ++i) {
    if (!MessageDifferencer::Equals((*a)[i], (*b)[i])) {
      return absl::DataLossError(
          absl::StrCat("the copy of ", what, " reads back different at item ", i + 1));
    }
  }
  return absl::OkStatus();
}

absl::Status SameAlerts(SqliteConnection* from, StoreReader& a, StoreReader& b) {
  SqliteStatement keys = from->Prepare("SELECT fingerprint, starts_at, status FROM alerts");
  while (true) {
    FLEET_ASSIGN_OR_RETURN(bool row, keys.Step());
    if (!row) return absl::OkStatus();
    const std::string label = absl::StrCat("alert ", keys.Text(0), " ", keys.Text(2));
    FLEET_ASSIGN_OR_RETURN(AlertRecord x, a.GetAlert(keys.Text(0), keys.Text(1), keys.Text(2)));
    absl::StatusOr<AlertRecord> y = b.GetAlert(keys.Text(0), keys.Text(1), keys.Text(2));
    if (!y.ok()) return Annotate(y.status(), absl::StrCat("cannot read ", label, " back"));
    if (x.app != y->app || x.alertname != y->alertname || x.received_at_ms != y->received_at_ms ||
        x.outcome != y->outcome || x.rollout_id != y->rollout_id || x.message != y->message) {
      return absl::DataLossError(absl::StrCat("the copy of ", label, " reads back different"));
    }
  }
}

// Everything the controller can read, through both stores' queries.
// Released holds too: their local ids keep a local rollback recorded once.
absl::Status SameHolds(const absl::StatusOr<std::vector<HostHoldRecord>>& a,
                       const absl::StatusOr<std::vector<HostHoldRecord>>& b) {
  if (!a.ok()) return Annotate(a.status(), "cannot read host holds from SQLite");
  if (!b.ok()) return Annotate(b.status(), "cannot read host holds back");
  bool same = a->size() == b->size();
  for (size_t i = 0; same && i < a->size(); ++i) {
    same = (*a)[i].host_id == (*b)[i].host_id && (*a)[i].held == (*b)[i].held &&
           MessageDifferencer::Equals((*a)[i].hold, (*b)[i].hold);
  }
  if (same) return absl::OkStatus();
  return absl::DataLossError("the copy of host holds reads back different");
}

absl::Status Verify(SqliteConnection* from, PgConnection* to) {
  SqliteQueries a(from);
  PgQueries b(to);
  absl::StatusOr<std::vector<fleet::v1::App>> apps = a.ListApps();
  FLEET_RETURN_IF_ERROR(SameList(apps, b.ListApps(), "apps"));
  for (const fleet::v1::App& app : *apps) {
    const std::string& name = app.spec().name();
    FLEET_RETURN_IF_ERROR(
        SameList(a.ListReleases(name), b.ListReleases(name), absl::StrCat("releases of ", name)));
    FLEET_RETURN_IF_ERROR(
        SameList(a.ListConfigs(name), b.ListConfigs(name), absl::StrCat("configs of ", name)));
  }
  FLEET_RETURN_IF_ERROR(SameList(a.ListHosts(), b.ListHosts(), "hosts"));
  FLEET_RETURN_IF_ERROR(SameHolds(a.ListHostHolds(), b.ListHostHolds()));
  FLEET_RETURN_IF_ERROR(SameList(a.ListRollouts("", 0, true), b.ListRollouts("", 0, true),
                                 "rollouts with their tasks"));
  FLEET_RETURN_IF_ERROR(SameList(a.ListEvents("", 0), b.ListEvents("", 0), "events"));
  FLEET_RETURN_IF_ERROR(SameList(a.ListTokens(), b.ListTokens(), "API tokens"));
  FLEET_RETURN_IF_ERROR(SameAlerts(from, a, b));
  for (const Table& table : Tables()) {
    FLEET_ASSIGN_OR_RETURN(int64_t x, CountSqlite(from, table.name));
    FLEET_ASSIGN_OR_RETURN(int64_t y, CountPg(to, table.name));
    if (x != y) {
      return absl::DataLossError(
          absl::StrCat("the copy of ", table.name, " holds ", y, " rows instead of ", x));
    }
  }
  return absl::OkStatus();
}

absl::Status CopyAll(SqliteConnection* from, PgConnection* to, StoreCopyReport* report) {
  FLEET_RETURN_IF_ERROR(to->Exec("BEGIN ISOLATION LEVEL SERIALIZABLE"));
  FLEET_RETURN_IF_ERROR(to->Exec("SET LOCAL lock_timeout = '5s'"));
  FLEET_RETURN_IF_ERROR(to->Exec("LOCK TABLE write_lock IN EXCLUSIVE MODE"));
  FLEET_RETURN_IF_ERROR(CheckEmpty(to));
  for (const Table& table : Tables()) {
    FLEET_ASSIGN_OR_RETURN(int64_t rows, CopyTable(from, to, table));
    report->tables.emplace_back(table.name, rows);
  }
  FLEET_RETURN_IF_ERROR(AdvanceIdentity(from, to, "rollouts"));
  FLEET_RETURN_IF_ERROR(AdvanceIdentity(from, to, "events"));
  FLEET_RETURN_IF_ERROR(Verify(from, to));
  return to->Exec("COMMIT");
}

}  // namespace

absl::StatusOr<StoreCopyReport> CopySqliteStoreToPostgres(const std::string& data_dir,
                                                          const std::string& url) {
  StoreCopyReport report;
  report.source = data_dir + "/fleet.db";
  report.destination = RedactDatabaseUrl(url);
  struct stat st {};
  if (::stat(report.source.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("no store at ", report.source, ": give the --data-dir of a fleet-controller"));
  }
  FLEET_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> from,
                         SqliteConnection::Open(report.source));
  FLEET_RETURN_IF_ERROR(PrepareSqliteDatabase(from.get()));
  FLEET_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> to, PgConnection::Open(url));
  FLEET_RETURN_IF_ERROR(PreparePgDatabase(to.get()));
  // One snapshot of the source for the copy and its verification.
  FLEET_RETURN_IF_ERROR(from->Exec("BEGIN"));
  absl::Status copied = CopyAll(from.get(), to.get(), &report);
  from->Exec("ROLLBACK").IgnoreError();
  if (!copied.ok()) {
    if (to->Healthy() && to->InTransaction()) to->Exec("ROLLBACK").IgnoreError();
    return Annotate(copied, absl::StrCat("cannot copy ", report.source, " to ", report.destination,
                                         " (nothing was stored)"));
  }
  return report;
}

std::string DescribeStoreCopy(const StoreCopyReport& report) {
  std::vector<std::string> parts;
  for (const auto& [table, rows] : report.tables) parts.push_back(absl::StrCat(rows, " ", table));
  return absl::StrCat("copied ", absl::StrJoin(parts, ", "), " from ", report.source, " to ",
                      report.destination,
                      "; verified: every table's row count and every app, release, config, host, "
                      "hold, rollout, task, event, alert and token read back the same");
}

}  // namespace fleet::controller
