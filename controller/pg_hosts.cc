// Hosts and their app states in the PostgreSQL store (see pg_queries.h).
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "common/status.h"
#include "controller/pg_queries.h"
#include "controller/store_json.h"

namespace fleet::controller {
namespace {

using fleet::v1::Host;
using fleet::v1::HostAppState;

// Column lists are macros so that each statement is one literal: the text
// is the key of the connection's prepared statements.
#define FLEET_HOST_COLUMNS "id, labels, connected, last_seen_ms, agent_version, peer"
#define FLEET_HOST_APP_COLUMNS                                                   \
  "host_id, app, current_release, releases, last_known_good, previous_release, " \
  "current_config, configs, last_good_config, previous_config"

absl::StatusOr<Host> ReadHost(const PgResult& r, int row) {
  Host host;
  host.set_id(r.Text(row, 0));
  absl::Status st = DecodeStringMap(r.Text(row, 1), host.mutable_labels());
  if (!st.ok()) return Annotate(st, absl::StrCat("labels of host '", host.id(), "'"));
  host.set_connected(r.Bool(row, 2));
  host.set_last_seen_ms(r.Int(row, 3));
  host.set_agent_version(r.Text(row, 4));
  host.set_peer(r.Text(row, 5));
  return host;
}

absl::StatusOr<HostAppState> ReadHostAppState(const PgResult& r, int row) {
  HostAppState state;
  state.set_app(r.Text(row, 1));
  state.set_current_release(r.Text(row, 2));
  absl::Status st = DecodeStringList(r.Text(row, 3), state.mutable_releases());
  if (!st.ok()) {
    return Annotate(
        st, absl::StrCat("releases of app '", state.app(), "' on host '", r.Text(row, 0), "'"));
  }
  state.set_last_known_good(r.Text(row, 4));
  state.set_previous_release(r.Text(row, 5));
  state.set_current_config(r.Text(row, 6));
  st = DecodeStringList(r.Text(row, 7), state.mutable_configs());
  if (!st.ok()) {
    return Annotate(
        st, absl::StrCat("configs of app '", state.app(), "' on host '", r.Text(row, 0), "'"));
  }
  state.set_last_good_config(r.Text(row, 8));
  state.set_previous_config(r.Text(row, 9));
  return state;
}

// NotFound("unknown host 'x'") when the host is not stored.
absl::Status WriteHostAppState(PgConnection* db, const std::string& host_id,
                               const HostAppState& state) {
  FLEET_ASSIGN_OR_RETURN(std::string releases, EncodeStringList(state.releases()));
  FLEET_ASSIGN_OR_RETURN(std::string configs, EncodeStringList(state.configs()));
  PgParams params;
  params.Add(host_id)
      .Add(state.app())
      .Add(state.current_release())
      .Add(releases)
      .Add(state.last_known_good())
      .Add(state.previous_release())
      .Add(state.current_config())
      .Add(configs)
      .Add(state.last_good_config())
      .Add(state.previous_config())
      .Add(NowMs());
  absl::Status st =
      db->Query("INSERT INTO host_apps (" FLEET_HOST_APP_COLUMNS
                ", updated_at_ms) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                "ON CONFLICT (host_id, app) DO UPDATE SET "
                "current_release = excluded.current_release, releases = excluded.releases, "
                "last_known_good = excluded.last_known_good, "
                "previous_release = excluded.previous_release, "
                "current_config = excluded.current_config, configs = excluded.configs, "
                "last_good_config = excluded.last_good_config, "
                "previous_config = excluded.previous_config, "
                "updated_at_ms = excluded.updated_at_ms",
                params)
          .status();
  if (db->FailedWith(kPgForeignKeyViolation)) {
    return absl::NotFoundError(absl::StrCat("unknown host '", host_id, "'"));
  }
  return st;
}

}  // namespace

absl::Status PgQueries::UpsertHost(const Host& host) {
  if (host.id().empty()) return absl::InvalidArgumentError("cannot write host: it has no id");
  const std::string what = absl::StrCat("cannot write host '", host.id(), "'");
  absl::StatusOr<std::string> labels = EncodeStringMap(host.labels());
  if (!labels.ok()) return Annotate(labels.status(), absl::StrCat(what, ": labels"));
  std::map<std::string, int> seen;
  for (const HostAppState& state : host.apps()) {
    if (seen[state.app()]++ > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": app '", state.app(), "' is reported twice"));
    }
  }
  PgParams upsert;
  upsert.Add(host.id())
      .Add(*labels)
      .Add(host.connected())
      .Add(host.last_seen_ms())
      .Add(host.agent_version())
      .Add(host.peer());
  FLEET_RETURN_IF_ERROR(
      Annotate(db_->Query("INSERT INTO hosts (id, labels, connected, first_seen_ms, last_seen_ms, "
                          "agent_version, peer) VALUES ($1, $2, $3, $4, $4, $5, $6) "
                          "ON CONFLICT (id) DO UPDATE SET labels = excluded.labels, "
                          "connected = excluded.connected, last_seen_ms = excluded.last_seen_ms, "
                          "agent_version = excluded.agent_version, peer = excluded.peer",
                          upsert)
                   .status(),
               what));
  PgParams clear;
  clear.Add(host.id());
  FLEET_RETURN_IF_ERROR(
      Annotate(db_->Query("DELETE FROM host_apps WHERE host_id = $1", clear).status(), what));
  for (const HostAppState& state : host.apps()) {
    FLEET_RETURN_IF_ERROR(Annotate(WriteHostAppState(db_, host.id(), state),
                                   absl::StrCat(what, ": app '", state.app(), "'")));
  }
  return absl::OkStatus();
}

absl::Status PgQueries::SetHostConnected(const std::string& host_id, bool connected,
                                         int64_t at_ms) {
  PgParams params;
  params.Add(connected).Add(at_ms).Add(host_id);
  absl::StatusOr<PgResult> r =
      db_->Query("UPDATE hosts SET connected = $1, last_seen_ms = $2 WHERE id = $3", params);
  if (!r.ok()) {
    return Annotate(r.status(), absl::StrCat("cannot mark host '", host_id, "' ",
                                             connected ? "connected" : "disconnected"));
  }
  if (r->affected() == 0) return absl::NotFoundError(absl::StrCat("unknown host '", host_id, "'"));
  return absl::OkStatus();
}

absl::Status PgQueries::UpsertHostAppState(const std::string& host_id, const HostAppState& state) {
  absl::Status st = WriteHostAppState(db_, host_id, state);
  if (absl::IsNotFound(st)) return st;
  return Annotate(
      st, absl::StrCat("cannot write state of app '", state.app(), "' on host '", host_id, "'"));
}

absl::StatusOr<Host> PgQueries::GetHost(const std::string& host_id) {
  const std::string what = absl::StrCat("cannot read host '", host_id, "'");
  PgParams params;
  params.Add(host_id);
  absl::StatusOr<PgResult> r =
      db_->Query("SELECT " FLEET_HOST_COLUMNS " FROM hosts WHERE id = $1", params);
  if (!r.ok()) return Annotate(r.status(), what);
  if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("unknown host '", host_id, "'"));
  absl::StatusOr<Host> host = ReadHost(*r, 0);
  if (!host.ok()) return Annotate(host.status(), what);
  absl::StatusOr<PgResult> apps = db_->Query("SELECT " FLEET_HOST_APP_COLUMNS
                                             " FROM host_apps WHERE host_id = $1 "
                                             "ORDER BY app COLLATE \"C\"",
                                             params);
  if (!apps.ok()) return Annotate(apps.status(), what);
  for (int row = 0; row < apps->rows(); ++row) {
    absl::StatusOr<HostAppState> state = ReadHostAppState(*apps, row);
    if (!state.ok()) return Annotate(state.status(), what);
    *host->add_apps() = *std::move(state);
  }
  FLEET_RETURN_IF_ERROR(Annotate(FillHolds({&*host}), what));
  return host;
}

absl::StatusOr<std::vector<Host>> PgQueries::ListHosts() {
  constexpr absl::string_view kWhat = "cannot list hosts";
  // COLLATE "C": byte order, as SQLite sorts, whatever the database's locale.
  absl::StatusOr<PgResult> r =
      db_->Query("SELECT " FLEET_HOST_COLUMNS " FROM hosts ORDER BY id COLLATE \"C\"");
  if (!r.ok()) return Annotate(r.status(), kWhat);
  std::vector<Host> hosts;
  std::map<std::string, size_t> index;
  for (int row = 0; row < r->rows(); ++row) {
    absl::StatusOr<Host> host = ReadHost(*r, row);
    if (!host.ok()) return Annotate(host.status(), kWhat);
    index[host->id()] = hosts.size();
    hosts.push_back(*std::move(host));
  }
  absl::StatusOr<PgResult> apps =
      db_->Query("SELECT " FLEET_HOST_APP_COLUMNS " FROM host_apps ORDER BY app COLLATE \"C\"");
  if (!apps.ok()) return Annotate(apps.status(), kWhat);
  for (int row = 0; row < apps->rows(); ++row) {
    auto it = index.find(apps->Text(row, 0));
    if (it == index.end()) continue;  // the foreign key makes this impossible
    absl::StatusOr<HostAppState> state = ReadHostAppState(*apps, row);
    if (!state.ok()) return Annotate(state.status(), kWhat);
    *hosts[it->second].add_apps() = *std::move(state);
  }
  std::vector<Host*> all;
  for (Host& h : hosts) all.push_back(&h);
  if (!all.empty()) FLEET_RETURN_IF_ERROR(Annotate(FillHolds(std::move(all)), kWhat));
  return hosts;
}

absl::StatusOr<std::vector<fleet::v1::HostAppStatus>> PgQueries::ListAppHosts(
    const std::string& app) {
  const std::string what = absl::StrCat("cannot list hosts of app '", app, "'");
  PgParams params;
  params.Add(app);
  absl::StatusOr<PgResult> r =
      db_->Query("SELECT " FLEET_HOST_APP_COLUMNS
                 ", (SELECT connected FROM hosts WHERE id = host_id) "
                 "FROM host_apps WHERE app = $1 ORDER BY host_id COLLATE \"C\"",
                 params);
  if (!r.ok()) return Annotate(r.status(), what);
  std::vector<fleet::v1::HostAppStatus> hosts;
  hosts.reserve(static_cast<size_t>(r->rows()));
  for (int row = 0; row < r->rows(); ++row) {
    absl::StatusOr<HostAppState> state = ReadHostAppState(*r, row);
    if (!state.ok()) return Annotate(state.status(), what);
    fleet::v1::HostAppStatus& host = hosts.emplace_back();
    host.set_host_id(r->Text(row, 0));
    host.set_connected(r->Bool(row, 10));
    *host.mutable_state() = *std::move(state);
  }
  FLEET_RETURN_IF_ERROR(Annotate(FillAppHolds(app, &hosts), what));
  return hosts;
}

absl::Status PgQueries::MarkAllHostsDisconnected() {
  return Annotate(db_->Query("UPDATE hosts SET connected = false WHERE connected").status(),
                  "cannot mark all hosts disconnected");
}

}  // namespace fleet::controller
