// Holds of apps on hosts in the PostgreSQL store (see pg_queries.h and the
// host_holds table in pg_schema.cc).
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "controller/pg_queries.h"
#include "controller/store_rows.h"

namespace fleet::controller {

absl::StatusOr<std::vector<HostHoldRecord>> PgQueries::ListHostHolds() {
  absl::StatusOr<PgResult> r =
      db_->Query("SELECT " FLEET_HOLD_COLUMNS
                 " FROM host_holds ORDER BY host_id COLLATE \"C\", app COLLATE \"C\"");
  if (!r.ok()) return Annotate(r.status(), "cannot list host holds");
  std::vector<HostHoldRecord> holds;
  holds.reserve(static_cast<size_t>(r->rows()));
  for (int row = 0; row < r->rows(); ++row) holds.push_back(ReadHold(PgRow(*r, row)));
  return holds;
}

absl::Status PgQueries::FillHolds(std::vector<fleet::v1::Host*> hosts) {
  std::map<std::string, fleet::v1::Host*> by_id;
  for (fleet::v1::Host* host : hosts) by_id[host->id()] = host;
  // One host: its rows alone; every host: the whole (small) table.
  const bool one = hosts.size() == 1;
  PgParams params;
  if (one) params.Add(hosts[0]->id());
  absl::StatusOr<PgResult> r =
      one ? db_->Query("SELECT " FLEET_HOLD_COLUMNS
                       " FROM host_holds WHERE held AND host_id = $1 ORDER BY app COLLATE \"C\"",
                       params)
          : db_->Query("SELECT " FLEET_HOLD_COLUMNS
                       " FROM host_holds WHERE held "
                       "ORDER BY host_id COLLATE \"C\", app COLLATE \"C\"");
  if (!r.ok()) return Annotate(r.status(), "cannot read host holds");
  for (int row = 0; row < r->rows(); ++row) {
    auto it = by_id.find(r->Text(row, 0));
    if (it != by_id.end()) *it->second->add_holds() = ReadHold(PgRow(*r, row)).hold;
  }
  return absl::OkStatus();
}

absl::Status PgQueries::FillAppHolds(const std::string& app,
                                     std::vector<fleet::v1::HostAppStatus>* hosts) {
  std::map<std::string, fleet::v1::HostAppStatus*> by_id;
  for (fleet::v1::HostAppStatus& host : *hosts) by_id[host.host_id()] = &host;
  PgParams params;
  params.Add(app);
  absl::StatusOr<PgResult> r =
      db_->Query("SELECT " FLEET_HOLD_COLUMNS " FROM host_holds WHERE held AND app = $1", params);
  if (!r.ok()) return Annotate(r.status(), "cannot read host holds");
  for (int row = 0; row < r->rows(); ++row) {
    auto it = by_id.find(r->Text(row, 0));
    if (it == by_id.end()) continue;
    *it->second->mutable_hold() = ReadHold(PgRow(*r, row)).hold;
    it->second->set_held(true);
  }
  return absl::OkStatus();
}

absl::Status PgQueries::PutHostHold(const HostHoldRecord& record) {
  const fleet::v1::HostHold& hold = record.hold;
  if (hold.app().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write a hold on host '", record.host_id, "': it names no app"));
  }
  PgParams params;
  params.Add(record.host_id)
      .Add(hold.app())
      .Add(record.held)
      .Add(hold.version())
      .Add(hold.from_version())
      .Add(hold.reason())
      .Add(hold.actor())
      .Add(hold.since_ms())
      .Add(hold.local_id());
  absl::Status st = db_->Query("INSERT INTO host_holds (" FLEET_HOLD_COLUMNS
                               ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
                               "ON CONFLICT (host_id, app) DO UPDATE SET held = excluded.held, "
                               "version = excluded.version, from_version = excluded.from_version, "
                               "reason = excluded.reason, actor = excluded.actor, "
                               "since_ms = excluded.since_ms, local_id = excluded.local_id",
                               params)
                        .status();
  if (db_->FailedWith(kPgForeignKeyViolation)) {
    return absl::NotFoundError(absl::StrCat("unknown host '", record.host_id, "'"));
  }
  return Annotate(st, absl::StrCat("cannot write the hold of app '", hold.app(), "' on host '",
                                   record.host_id, "'"));
}

}  // namespace fleet::controller
