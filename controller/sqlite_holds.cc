// Holds of apps on hosts in the SQLite store (see sqlite_queries.h and the
// host_holds table in sqlite_schema.cc).
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "controller/sqlite_queries.h"
#include "controller/store_rows.h"

namespace fleet::controller {

absl::StatusOr<std::vector<HostHoldRecord>> SqliteQueries::ListHostHolds() {
  std::vector<HostHoldRecord> holds;
  SqliteStatement stmt =
      db_->Prepare("SELECT " FLEET_HOLD_COLUMNS " FROM host_holds ORDER BY host_id, app");
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return Annotate(row.status(), "cannot list host holds");
    if (!*row) break;
    holds.push_back(ReadHold(SqliteRow(stmt)));
  }
  return holds;
}

absl::Status SqliteQueries::FillHolds(std::vector<fleet::v1::Host*> hosts) {
  std::map<std::string, fleet::v1::Host*> by_id;
  for (fleet::v1::Host* host : hosts) by_id[host->id()] = host;
  // One host: its rows alone; every host: the whole (small) table.
  const bool one = hosts.size() == 1;
  SqliteStatement stmt = db_->Prepare(
      one ? "SELECT " FLEET_HOLD_COLUMNS
            " FROM host_holds WHERE held != 0 AND host_id = ? ORDER BY app"
          : "SELECT " FLEET_HOLD_COLUMNS " FROM host_holds WHERE held != 0 ORDER BY host_id, app");
  if (one) stmt.Bind(hosts[0]->id());
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return Annotate(row.status(), "cannot read host holds");
    if (!*row) break;
    auto it = by_id.find(stmt.Text(0));
    if (it != by_id.end()) *it->second->add_holds() = ReadHold(SqliteRow(stmt)).hold;
  }
  return absl::OkStatus();
}

absl::Status SqliteQueries::FillAppHolds(const std::string& app,
                                         std::vector<fleet::v1::HostAppStatus>* hosts) {
  std::map<std::string, fleet::v1::HostAppStatus*> by_id;
  for (fleet::v1::HostAppStatus& host : *hosts) by_id[host.host_id()] = &host;
  SqliteStatement stmt =
      db_->Prepare("SELECT " FLEET_HOLD_COLUMNS " FROM host_holds WHERE held != 0 AND app = ?");
  stmt.Bind(app);
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return Annotate(row.status(), "cannot read host holds");
    if (!*row) break;
    auto it = by_id.find(stmt.Text(0));
    if (it == by_id.end()) continue;
    *it->second->mutable_hold() = ReadHold(SqliteRow(stmt)).hold;
    it->second->set_held(true);
  }
  return absl::OkStatus();
}

absl::Status SqliteQueries::PutHostHold(const HostHoldRecord& record) {
  const fleet::v1::HostHold& hold = record.hold;
  if (hold.app().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write a hold on host '", record.host_id, "': it names no app"));
  }
  SqliteStatement stmt = db_->Prepare(
      "INSERT INTO host_holds (" FLEET_HOLD_COLUMNS
      ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT (host_id, app) DO UPDATE SET held = excluded.held, "
      "version = excluded.version, from_version = excluded.from_version, "
      "reason = excluded.reason, actor = excluded.actor, since_ms = excluded.since_ms, "
      "local_id = excluded.local_id");
  stmt.Bind(record.host_id)
      .Bind(hold.app())
      .Bind(record.held)
      .Bind(hold.version())
      .Bind(hold.from_version())
      .Bind(hold.reason())
      .Bind(hold.actor())
      .Bind(hold.since_ms())
      .Bind(hold.local_id());
  absl::Status st = stmt.Run();
  if (stmt.FailedOnForeignKey()) {
    return absl::NotFoundError(absl::StrCat("unknown host '", record.host_id, "'"));
  }
  return Annotate(st, absl::StrCat("cannot write the hold of app '", hold.app(), "' on host '",
                                   record.host_id, "'"));
}

}  // namespace fleet::controller
