// Schema of the SQLite store (PRAGMA user_version = kSqliteSchemaVersion).
// Every column is NOT NULL; "" and 0 stand for "not set", as in the protos.
//
// apps: one row per app spec applied with `fleetctl app apply`.
//   name             TEXT PRIMARY KEY, AppSpec.name
//   spec             BLOB, serialized fleet.v1.AppSpec
//   spec_yaml        TEXT, the YAML it was parsed from, as applied
//   desired_version  TEXT, release of the last successful rollout ("" = none)
//   desired_config   TEXT, config of the last successful config rollout (v3)
//   created_at_ms    INTEGER, App.updated_at_ms of the first apply
//   updated_at_ms    INTEGER, App.updated_at_ms of the last apply
//
// releases: one row per pushed release; the artifact itself is in the blob
// store under sha256. Listed in insertion (rowid) order, i.e. push order.
//   app              TEXT, REFERENCES apps(name)
//   version          TEXT, unique per app: PRIMARY KEY (app, version)
//   sha256           TEXT, lowercase hex digest of the artifact
//   size             INTEGER, artifact size in bytes
//   created_at_ms    INTEGER, when it was pushed
//   created_by       TEXT, actor who pushed it
//   metadata         BLOB, serialized fleet.v1.Release in which only
//                    `metadata` (keys and values are arbitrary bytes) and
//                    `signature` are set; rows before the signature field
//                    existed parse as unsigned
//
// configs: one row per pushed config release (v3); the bundle itself
// (fleet.v1.ConfigBundle) is in the blob store under sha256. Push order is
// rowid order.
//   app              TEXT, REFERENCES apps(name)
//   version          TEXT, unique per app: PRIMARY KEY (app, version)
//   sha256           TEXT, lowercase hex digest of the serialized bundle
//   size             INTEGER, bundle size in bytes
//   created_at_ms    INTEGER, when it was pushed
//   created_by       TEXT, actor who pushed it
//   files            BLOB, serialized fleet.v1.ConfigRelease in which only
//                    `files` (path, mode, size, secret) is set
//
// hosts: one row per agent that ever connected.
//   id               TEXT PRIMARY KEY, the agent's --host-id
//   labels           TEXT, JSON object of string values (a
//                    google.protobuf.Struct printed by protobuf's JSON util),
//                    e.g. {"env":"prod","rack":"a=1,b"}
//   connected        INTEGER, 1 while its agent session is up
//   first_seen_ms    INTEGER, last_seen_ms of the first UpsertHost
//   last_seen_ms     INTEGER, last connect, report or disconnect
//   agent_version    TEXT, version the agent reported
//   peer             TEXT, gRPC peer address of the last session
//
// host_apps: what each host's agent last reported per app (HostAppState).
//   host_id          TEXT, REFERENCES hosts(id) ON DELETE CASCADE
//   app              TEXT, not a foreign key: agents may report apps the
//                    controller does not know; PRIMARY KEY (host_id, app)
//   current_release  TEXT, target of the `current` link ("" = none)
//   releases         TEXT, JSON array of strings (google.protobuf.ListValue),
//                    complete releases on disk, oldest first
//   last_known_good  TEXT, last release that passed its probes
//   previous_release TEXT, release `current` pointed to before the last switch
//   current_config   TEXT, target of the `config` link ("" = none) (v3)
//   configs          TEXT, JSON array of strings, config releases on disk (v3)
//   last_good_config TEXT, last config that passed its probes (v3)
//   previous_config  TEXT, config the link pointed to before the last switch (v3)
//   updated_at_ms    INTEGER, wall-clock time of the write; informational,
//                    never read back
//
// rollouts: one row per deploy or rollback, never deleted.
//   id               INTEGER PRIMARY KEY AUTOINCREMENT; Rollout.id in decimal.
//                    AUTOINCREMENT so that ids are never reused.
//   app              TEXT, REFERENCES apps(name)
//   version          TEXT, target version of the subject
//   from_version     TEXT, the app's desired version of the subject when it
//                    started
//   kind             INTEGER, fleet.v1.RolloutKind
//   state            INTEGER, fleet.v1.RolloutState
//   selector         TEXT, label selector "k=v,k2=v2" ("" = all hosts)
//   created_by       TEXT, actor
//   created_at_ms    INTEGER
//   finished_at_ms   INTEGER, 0 until the rollout reaches a terminal state
//   reason           TEXT, why it failed or was rolled back
//   plan             BLOB, serialized fleet.v1.RolloutPlan: waves, failure
//                    threshold, parallelism, bake, host timeout, gates (v2)
//   current_wave     INTEGER, index of the wave being switched (v2)
//   awaiting_promote INTEGER, 1 while PAUSED at a manual-promote gate (v2)
//   paused_by        TEXT, actor who paused it ("" = not paused by a person) (v2)
//   subject          INTEGER, fleet.v1.Subject: release or config (v3)
//   fleet_release    TEXT, the release of the (release, config) pair the
//                    fleet runs once it succeeds (v3)
//   fleet_config     TEXT, the config of that pair (v3)
//   pause_reason     INTEGER, fleet.v1.PauseReason while PAUSED, 0 otherwise
//                    (v6); rows from before v6 were backfilled from
//                    awaiting_promote, state and paused_by
//
// rollout_tasks: one row per host a rollout targets (HostTask).
//   rollout_id       INTEGER, REFERENCES rollouts(id) ON DELETE CASCADE
//   host_id          TEXT; PRIMARY KEY (rollout_id, host_id)
//   wave             INTEGER, 0-based wave index
//   state            INTEGER, fleet.v1.TaskState
//   from_release     TEXT, version of the subject the host ran before
//                    (HostTask.from_version; the column keeps its old name)
//   to_release       TEXT, version of the subject the host is sent to
//                    (HostTask.to_version)
//   reason           TEXT, failure reason reported by the agent
//   command_id       TEXT, id of the last command sent for this task
//   updated_at_ms    INTEGER, HostTask.updated_at_ms
//
// events: the audit log shown by `fleetctl history`, never deleted.
//   id               INTEGER PRIMARY KEY AUTOINCREMENT (newest = largest)
//   at_ms            INTEGER
//   app              TEXT ("" = not about one app)
//   rollout_id       TEXT, decimal rollout id ("" = none)
//   host_id          TEXT ("" = none)
//   kind             TEXT, e.g. "rollout.started"
//   actor            TEXT
//   message          TEXT
//
// alerts: Alertmanager alerts the controller decided on (v4), never deleted.
// A row is written before the controller acts on its alert, so a repeated
// delivery (same fingerprint, startsAt and status) is never acted on twice.
//   fingerprint      TEXT, Alertmanager's fingerprint of the alert's labels
//   starts_at        TEXT, startsAt in UTC to the millisecond
//                    ("2024-05-01T11:59:00.000Z"), whatever its spelling
//   status           TEXT, "firing" or "resolved";
//                    PRIMARY KEY (fingerprint, starts_at, status)
//   app              TEXT, the fleet_app label; not a foreign key: alerts
//                    for unknown apps are recorded too
//   alertname        TEXT, the alertname label ("" = none)
//   received_at_ms   INTEGER, when the first delivery arrived
//   outcome          TEXT, AlertOutcomeName of an AlertOutcome: "acting"
//                    while the controller acts, then "abort", "rollback",
//                    "ignored" or "failed"; a row left "acting" means the
//                    controller stopped before it knew the result
//   rollout_id       TEXT, decimal id of the rollout aborted or the rollback
//                    started ("" = none)
//   message          TEXT, what was decided and why
//
// tokens: API tokens for the public API (v5), never deleted. Only the
// sha256 of a token is kept: a token is 32 random bytes, so a fast hash
// cannot be brute-forced and a slow password hash would add nothing.
//   id               TEXT PRIMARY KEY, public id shown in listings and audit
//                    events: the first 12 hex digits of the hash
//   hash             TEXT UNIQUE, lowercase hex sha256 of the whole token;
//                    a request's token is found through this index
//   role             INTEGER, fleet.v1.Role
//   app              TEXT, the one app a deployer may change ("" = every app)
//   description      TEXT, what it is for, as given at creation
//   created_by       TEXT, actor who created it
//   created_at_ms    INTEGER
//   revoked_at_ms    INTEGER, 0 while valid
//
// host_holds: apps held on hosts after a break-glass rollback there (v7);
// a released hold stays, so its local rollback is recorded once.
//   host_id          TEXT, REFERENCES hosts(id) ON DELETE CASCADE
//   app              TEXT; PRIMARY KEY (host_id, app)
//   held             INTEGER, 1 while held, 0 once released
//   version          TEXT, release the host was rolled back to
//   from_version     TEXT, release it ran before
//   reason           TEXT, as given on the host
//   actor            TEXT, host-local user, e.g. "root@web-03"
//   since_ms         INTEGER, when the host rolled back
//   local_id         TEXT, the agent's id of that rollback
//
// Indexes: rollouts_by_app (app, id) and events_by_app (app, id) serve the
// per-app history queries newest first; host_apps_by_app (app) serves the
// hosts of one app.
#include "controller/sqlite_schema.h"

#include <cstdint>
#include <iterator>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace fleet::controller {
namespace {

// Step i (0-based) migrates schema version i to i + 1, in one transaction.
// Never edit a step that has shipped: append one and bump kSqliteSchemaVersion.
constexpr const char* kMigrations[] = {
    // 0 -> 1: the initial schema, documented at the top of this file.
    R"sql(
CREATE TABLE apps (
  name TEXT NOT NULL PRIMARY KEY,
  spec BLOB NOT NULL,
  spec_yaml TEXT NOT NULL,
  desired_version TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
);
CREATE TABLE releases (
  app TEXT NOT NULL REFERENCES apps(name),
  version TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  metadata BLOB NOT NULL,
  PRIMARY KEY (app, version)
);
CREATE TABLE hosts (
  id TEXT NOT NULL PRIMARY KEY,
  labels TEXT NOT NULL,
  connected INTEGER NOT NULL,
  first_seen_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  agent_version TEXT NOT NULL,
  peer TEXT NOT NULL
);
CREATE TABLE host_apps (
  host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
  app TEXT NOT NULL,
  current_release TEXT NOT NULL,
  releases TEXT NOT NULL,
  last_known_good TEXT NOT NULL,
  previous_release TEXT NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (host_id, app)
);
CREATE INDEX host_apps_by_app ON host_apps (app);
CREATE TABLE rollouts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  app TEXT NOT NULL REFERENCES apps(name),
  version TEXT NOT NULL,
  from_version TEXT NOT NULL,
  kind INTEGER NOT NULL,
  state INTEGER NOT NULL,
  selector TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  finished_at_ms INTEGER NOT NULL,
  reason TEXT NOT NULL
);
CREATE INDEX rollouts_by_app ON rollouts (app, id);
CREATE TABLE rollout_tasks (
  rollout_id INTEGER NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
  host_id TEXT NOT NULL,
  wave INTEGER NOT NULL,
  state INTEGER NOT NULL,
  from_release TEXT NOT NULL,
  to_release TEXT NOT NULL,
  reason TEXT NOT NULL,
  command_id TEXT NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (rollout_id, host_id)
);
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms INTEGER NOT NULL,
  app TEXT NOT NULL,
  rollout_id TEXT NOT NULL,
  host_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  actor TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX events_by_app ON events (app, id);
)sql",
    // 1 -> 2: waves, thresholds and gates of a rollout.
    R"sql(
ALTER TABLE rollouts ADD COLUMN plan BLOB NOT NULL DEFAULT x'';
ALTER TABLE rollouts ADD COLUMN current_wave INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollouts ADD COLUMN awaiting_promote INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollouts ADD COLUMN paused_by TEXT NOT NULL DEFAULT '';
)sql",
    // 2 -> 3: config releases, and the (release, config) pair of rollouts.
    R"sql(
ALTER TABLE apps ADD COLUMN desired_config TEXT NOT NULL DEFAULT '';
CREATE TABLE configs (
  app TEXT NOT NULL REFERENCES apps(name),
  version TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  files BLOB NOT NULL,
  PRIMARY KEY (app, version)
);
ALTER TABLE host_apps ADD COLUMN current_config TEXT NOT NULL DEFAULT '';
ALTER TABLE host_apps ADD COLUMN configs TEXT NOT NULL DEFAULT '[]';
ALTER TABLE host_apps ADD COLUMN last_good_config TEXT NOT NULL DEFAULT '';
ALTER TABLE host_apps ADD COLUMN previous_config TEXT NOT NULL DEFAULT '';
ALTER TABLE rollouts ADD COLUMN subject INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollouts ADD COLUMN fleet_release TEXT NOT NULL DEFAULT '';
ALTER TABLE rollouts ADD COLUMN fleet_config TEXT NOT NULL DEFAULT '';
UPDATE rollouts SET fleet_release = version;
)sql",
    // 3 -> 4: Alertmanager alerts, so each is acted on at most once.
    R"sql(
CREATE TABLE alerts (
  fingerprint TEXT NOT NULL,
  starts_at TEXT NOT NULL,
  status TEXT NOT NULL,
  app TEXT NOT NULL,
  alertname TEXT NOT NULL,
  received_at_ms INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  rollout_id TEXT NOT NULL,
  message TEXT NOT NULL,
  PRIMARY KEY (fingerprint, starts_at, status)
);
)sql",
    // 4 -> 5: API tokens, stored hashed.
    R"sql(
CREATE TABLE tokens (
  id TEXT NOT NULL PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  role INTEGER NOT NULL,
  app TEXT NOT NULL,
  description TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  revoked_at_ms INTEGER NOT NULL
);
)sql",
    // 5 -> 6: why a paused rollout is paused, as a column instead of being
    // read from awaiting_promote and paused_by.
    R"sql(
ALTER TABLE rollouts ADD COLUMN pause_reason INTEGER NOT NULL DEFAULT 0;
UPDATE rollouts SET pause_reason = CASE
  WHEN awaiting_promote != 0 THEN 2
  WHEN state = 7 AND paused_by = 'analysis' THEN 3
  WHEN state = 7 THEN 1
  ELSE 0 END;
)sql",
    // 6 -> 7: holds left by break-glass rollbacks on hosts.
    R"sql(
CREATE TABLE host_holds (
  host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
  app TEXT NOT NULL,
  held INTEGER NOT NULL,
  version TEXT NOT NULL,
  from_version TEXT NOT NULL,
  reason TEXT NOT NULL,
  actor TEXT NOT NULL,
  since_ms INTEGER NOT NULL,
  local_id TEXT NOT NULL,
  PRIMARY KEY (host_id, app)
);
)sql",
};
static_assert(std::size(kMigrations) == static_cast<size_t>(kSqliteSchemaVersion),
              "one migration step per schema version");

absl::StatusOr<int64_t> ReadUserVersion(SqliteConnection* db) {
  SqliteStatement stmt = db->Prepare("PRAGMA user_version");
  FLEET_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::InternalError("PRAGMA user_version returned no row");
  return stmt.Int(0);
}

absl::Status Newer(const SqliteConnection& db, int64_t version) {
  return absl::FailedPreconditionError(absl::StrCat(
      "database ", db.path(), " has schema version ", version,
      ", newer than this fleet-controller (", kSqliteSchemaVersion, "); upgrade fleet-controller"));
}

absl::Status Configure(SqliteConnection* db) {
  const std::string& path = db->path();
  {
    SqliteStatement stmt = db->Prepare("PRAGMA journal_mode = WAL");
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return Annotate(row.status(), absl::StrCat("cannot enable WAL on ", path));
    std::string mode = *row ? stmt.Text(0) : "";
    // In-memory and temporary databases (":memory:", "") cannot have WAL;
    // a file must.
    const bool file = !path.empty() && path != ":memory:";
    if (file && mode != "wal") {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot enable WAL on ", path, ": journal_mode is '", mode, "'"));
    }
  }
  absl::Status st = db->Exec("PRAGMA synchronous = FULL");
  if (st.ok()) st = db->Exec("PRAGMA foreign_keys = ON");
  return Annotate(st, absl::StrCat("cannot configure database ", path));
}

// Runs migration step `step` (version step -> step + 1) in one transaction,
// unless another process has done it since.
absl::Status MigrateStep(SqliteConnection* db, int step) {
  bool newer = false;
  auto run = [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(db->Exec("BEGIN IMMEDIATE"));
    // Read again inside the transaction: another process may have migrated
    // the file since the last read.
    FLEET_ASSIGN_OR_RETURN(int64_t current, ReadUserVersion(db));
    if (current > kSqliteSchemaVersion) {
      newer = true;
      return Newer(*db, current);
    }
    if (current > step) return absl::OkStatus();
    if (current != step) return absl::DataLossError(absl::StrCat("found version ", current));
    FLEET_RETURN_IF_ERROR(db->Exec(kMigrations[step]));
    // PRAGMA takes no bound parameters; the version is our own constant.
    FLEET_RETURN_IF_ERROR(db->Exec(absl::StrCat("PRAGMA user_version = ", step + 1)));
    return db->Exec("COMMIT");
  };
  absl::Status st = run();
  // After some failures (SQLITE_FULL, I/O errors) SQLite has rolled back
  // already; otherwise nothing of the step may stay.
  if (db->InTransaction()) db->Exec("ROLLBACK").IgnoreError();
  if (st.ok() || newer) return st;
  return Annotate(
      st, absl::StrCat("cannot migrate database ", db->path(), " to schema version ", step + 1));
}

}  // namespace

absl::Status PrepareSqliteDatabase(SqliteConnection* db) {
  // Checked before the pragmas below, which would change the file.
  absl::StatusOr<int64_t> version = ReadUserVersion(db);
  if (!version.ok()) {
    return Annotate(version.status(), absl::StrCat("cannot open database ", db->path()));
  }
  if (*version > kSqliteSchemaVersion) return Newer(*db, *version);
  FLEET_RETURN_IF_ERROR(Configure(db));
  for (int step = static_cast<int>(*version); step < kSqliteSchemaVersion; ++step) {
    FLEET_RETURN_IF_ERROR(MigrateStep(db, step));
  }
  return absl::OkStatus();
}

}  // namespace fleet::controller
