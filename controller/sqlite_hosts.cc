// Hosts and their app states in the SQLite store (see sqlite_queries.h).
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "common/status.h"
#include "controller/sqlite_queries.h"
#include "controller/store_json.h"

namespace fleet::controller {
namespace {

using fleet::v1::Host;
using fleet::v1::HostAppState;

// Column lists are macros so that each statement is one literal: the text
// is the key of the connection's statement cache.
#define FLEET_HOST_COLUMNS "id, labels, connected, last_seen_ms, agent_version, peer"
#define FLEET_HOST_APP_COLUMNS                                                   \
  "host_id, app, current_release, releases, last_known_good, previous_release, " \
  "current_config, configs, last_good_config, previous_config"

absl::StatusOr<Host> ReadHost(const SqliteStatement& stmt) {
  Host host;
  host.set_id(stmt.Text(0));
  absl::Status st = DecodeStringMap(stmt.Text(1), host.mutable_labels());
  if (!st.ok()) return Annotate(st, absl::StrCat("labels of host '", host.id(), "'"));
  host.set_connected(stmt.Int(2) != 0);
  host.set_last_seen_ms(stmt.Int(3));
  host.set_agent_version(stmt.Text(4));
  host.set_peer(stmt.Text(5));
  return host;
}

absl::StatusOr<HostAppState> ReadHostAppState(const SqliteStatement& stmt) {
  HostAppState state;
  state.set_app(stmt.Text(1));
  state.set_current_release(stmt.Text(2));
  absl::Status st = DecodeStringList(stmt.Text(3), state.mutable_releases());
  if (!st.ok()) {
    return Annotate(
        st, absl::StrCat("releases of app '", state.app(), "' on host '", stmt.Text(0), "'"));
  }
  state.set_last_known_good(stmt.Text(4));
  state.set_previous_release(stmt.Text(5));
  state.set_current_config(stmt.Text(6));
  st = DecodeStringList(stmt.Text(7), state.mutable_configs());
  if (!st.ok()) {
    return Annotate(
        st, absl::StrCat("configs of app '", state.app(), "' on host '", stmt.Text(0), "'"));
  }
  state.set_last_good_config(stmt.Text(8));
  state.set_previous_config(stmt.Text(9));
  return state;
}

// NotFound("unknown host 'x'") when the host is not stored.
absl::Status WriteHostAppState(SqliteConnection* db, const std::string& host_id,
                               const HostAppState& state) {
  FLEET_ASSIGN_OR_RETURN(std::string releases, EncodeStringList(state.releases()));
  FLEET_ASSIGN_OR_RETURN(std::string configs, EncodeStringList(state.configs()));
  SqliteStatement stmt =
      db->Prepare("INSERT INTO host_apps (" FLEET_HOST_APP_COLUMNS
                  ", updated_at_ms) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT (host_id, app) DO UPDATE SET "
                  "current_release = excluded.current_release, releases = excluded.releases, "
                  "last_known_good = excluded.last_known_good, "
                  "previous_release = excluded.previous_release, "
                  "current_config = excluded.current_config, configs = excluded.configs, "
                  "last_good_config = excluded.last_good_config, "
                  "previous_config = excluded.previous_config, "
                  "updated_at_ms = excluded.updated_at_ms");
  stmt.Bind(host_id)
      .Bind(state.app())
      .Bind(state.current_release())
      .Bind(releases)
      .Bind(state.last_known_good())
      .Bind(state.previous_release())
      .Bind(state.current_config())
      .Bind(configs)
      .Bind(state.last_good_config())
      .Bind(state.previous_config())
      .Bind(NowMs());
  absl::Status st = stmt.Run();
  if (stmt.FailedOnForeignKey()) {
    return absl::NotFoundError(absl::StrCat("unknown host '", host_id, "'"));
  }
  return st;
}

}  // namespace

absl::Status SqliteQueries::UpsertHost(const Host& host) {
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

  SqliteStatement upsert = db_->Prepare(
      "INSERT INTO hosts (id, labels, connected, first_seen_ms, last_seen_ms, agent_version, "
      "peer) VALUES (?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT (id) DO UPDATE SET labels = excluded.labels, "
      "connected = excluded.connected, last_seen_ms = excluded.last_seen_ms, "
      "agent_version = excluded.agent_version, peer = excluded.peer");
  upsert.Bind(host.id())
      .Bind(*labels)
      .Bind(host.connected())
      .Bind(host.last_seen_ms())
      .Bind(host.last_seen_ms())
      .Bind(host.agent_version())
      .Bind(host.peer());
  FLEET_RETURN_IF_ERROR(Annotate(upsert.Run(), what));
  SqliteStatement clear = db_->Prepare("DELETE FROM host_apps WHERE host_id = ?");
  clear.Bind(host.id());
  FLEET_RETURN_IF_ERROR(Annotate(clear.Run(), what));
  for (const HostAppState& state : host.apps()) {
    FLEET_RETURN_IF_ERROR(Annotate(WriteHostAppState(db_, host.id(), state),
                                   absl::StrCat(what, ": app '", state.app(), "'")));
  }
  return absl::OkStatus();
}

absl::Status SqliteQueries::SetHostConnected(const std::string& host_id, bool connected,
                                             int64_t at_ms) {
  SqliteStatement stmt =
      db_->Prepare("UPDATE hosts SET connected = ?, last_seen_ms = ? WHERE id = ?");
  stmt.Bind(connected).Bind(at_ms).Bind(host_id);
  FLEET_RETURN_IF_ERROR(Annotate(
      stmt.Run(),
      absl::StrCat("cannot mark host '", host_id, "' ", connected ? "connected" : "disconnected")));
  if (db_->Changes() == 0) return absl::NotFoundError(absl::StrCat("unknown host '", host_id, "'"));
  return absl::OkStatus();
}

absl::Status SqliteQueries::UpsertHostAppState(const std::string& host_id,
                                               const HostAppState& state) {
  absl::Status st = WriteHostAppState(db_, host_id, state);
  if (absl::IsNotFound(st)) return st;
  return Annotate(
      st, absl::StrCat("cannot write state of app '", state.app(), "' on host '", host_id, "'"));
}

absl::StatusOr<Host> SqliteQueries::GetHost(const std::string& host_id) {
  const std::string what = absl::StrCat("cannot read host '", host_id, "'");
  SqliteStatement stmt = db_->Prepare("SELECT " FLEET_HOST_COLUMNS " FROM hosts WHERE id = ?");
  stmt.Bind(host_id);
  absl::StatusOr<bool> row = stmt.Step();
  if (!row.ok()) return Annotate(row.status(), what);
  if (!*row) return absl::NotFoundError(absl::StrCat("unknown host '", host_id, "'"));
  absl::StatusOr<Host> host = ReadHost(stmt);
  if (!host.ok()) return Annotate(host.status(), what);

  SqliteStatement apps = db_->Prepare("SELECT " FLEET_HOST_APP_COLUMNS
                                      " FROM host_apps WHERE host_id = ? ORDER BY app");
  apps.Bind(host_id);
  while (true) {
    absl::StatusOr<bool> app_row = apps.Step();
    if (!app_row.ok()) return Annotate(app_row.status(), what);
    if (!*app_row) break;
    absl::StatusOr<HostAppState> state = ReadHostAppState(apps);
    if (!state.ok()) return Annotate(state.status(), what);
    *host->add_apps() = *std::move(state);
  }
  FLEET_RETURN_IF_ERROR(Annotate(FillHolds({&*host}), what));
  return host;
}

absl::StatusOr<std::vector<Host>> SqliteQueries::ListHosts() {
  constexpr absl::string_view kWhat = "cannot list hosts";
  std::vector<Host> hosts;
  SqliteStatement stmt = db_->Prepare("SELECT " FLEET_HOST_COLUMNS " FROM hosts ORDER BY id");
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return Annotate(row.status(), kWhat);
    if (!*row) break;
    absl::StatusOr<Host> host = ReadHost(stmt);
    if (!host.ok()) return Annotate(host.status(), kWhat);
    hosts.push_back(*std::move(host));
  }
  // Both lists are in host id order (same collation): one merging walk.
  SqliteStatement apps =
      db_->Prepare("SELECT " FLEET_HOST_APP_COLUMNS " FROM host_apps ORDER BY host_id, app");
  auto host = hosts.begin();
  while (true) {
    absl::StatusOr<bool> row = apps.Step();
    if (!row.ok()) return Annotate(row.status(), kWhat);
    if (!*row) break;
    const std::string host_id = apps.Text(0);
    while (host != hosts.end() && host->id() < host_id) ++host;
    if (host == hosts.end() || host->id() != host_id) continue;  // the foreign key forbids it
    absl::StatusOr<HostAppState> state = ReadHostAppState(apps);
    if (!state.ok()) return Annotate(state.status(), kWhat);
    *host->add_apps() = *std::move(state);
  }
  std::vector<Host*> all;
  for (Host& h : hosts) all.push_back(&h);
  if (!all.empty()) FLEET_RETURN_IF_ERROR(Annotate(FillHolds(std::move(all)), kWhat));
  return hosts;
}

absl::StatusOr<std::vector<fleet::v1::HostAppStatus>> SqliteQueries::ListAppHosts(
    const std::string& app) {
  const std::string what = absl::StrCat("cannot list hosts of app '", app, "'");
  std::vector<fleet::v1::HostAppStatus> hosts;
  SqliteStatement stmt = db_->Prepare(
      "SELECT " FLEET_HOST_APP_COLUMNS ", (SELECT connected FROM hosts WHERE id = host_id) "
      "FROM host_apps WHERE app = ? ORDER BY host_id");
  stmt.Bind(app);
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return Annotate(row.status(), what);
    if (!*row) break;
    absl::StatusOr<HostAppState> state = ReadHostAppState(stmt);
    if (!state.ok()) return Annotate(state.status(), what);
    fleet::v1::HostAppStatus& host = hosts.emplace_back();
    host.set_host_id(stmt.Text(0));
    host.set_connected(stmt.Int(10) != 0);
    *host.mutable_state() = *std::move(state);
  }
  FLEET_RETURN_IF_ERROR(Annotate(FillAppHolds(app, &hosts), what));
  return hosts;
}

absl::Status SqliteQueries::MarkAllHostsDisconnected() {
  SqliteStatement stmt = db_->Prepare("UPDATE hosts SET connected = 0 WHERE connected != 0");
  return Annotate(stmt.Run(), "cannot mark all hosts disconnected");
}

}  // namespace fleet::controller
