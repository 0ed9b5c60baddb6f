// Schema (PRAGMA user_version = Store::kSchemaVersion). Every column is
// NOT NULL; "" and 0 stand for "not set", as in the protos.
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
//
// rollout_tasks: one row per host a rollout targets (HostTask).
//   rollout_id       INTEGER, REFERENCES rollouts(id) ON DELETE CASCADE
//   host_id          TEXT; PRIMARY KEY (rollout_id, host_id)
//   wave             INTEGER, 0-based wave index
//   state            INTEGER, fleet.v1.TaskState
//   from_release     TEXT, version of the subject the host ran before
//   to_release       TEXT, version of the subject the host is sent to
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
//   outcome          TEXT, "acting" while the controller acts, then "abort",
//                    "rollback", "ignored" or "failed"; a row left "acting"
//                    means the controller stopped before it knew the result
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
// Indexes: rollouts_by_app (app, id) and events_by_app (app, id) serve the
// per-app history queries newest first; host_apps_by_app (app) serves the
// hosts of one app.
//
// Atomicity: every public method that writes more than one row runs in a
// WriteScope. Outside a Transaction that is a transaction of its own (BEGIN
// IMMEDIATE); inside one it is a SAVEPOINT, so a failed call leaves no
// partial rows behind even when the caller goes on and commits. No nesting
// counter is needed: a Transaction holds mu_, so while a method holds mu_,
// an open SQLite transaction can only belong to the calling thread.
#include "controller/store.h"

#include <sqlite3.h>

#include <iterator>
#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "common/status.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace fleet::controller {
namespace {

using fleet::v1::App;
using fleet::v1::ConfigRelease;
using fleet::v1::Event;
using fleet::v1::Host;
using fleet::v1::HostAppState;
using fleet::v1::HostTask;
using fleet::v1::Release;
using fleet::v1::Rollout;

// Step i (0-based) migrates schema version i to i + 1, in one transaction.
// Never edit a step that has shipped: append one and bump kSchemaVersion.
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
};
static_assert(std::size(kMigrations) == static_cast<size_t>(Store::kSchemaVersion),
              "one migration step per schema version");

absl::StatusCode CodeFor(int rc) {
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

absl::Status SqliteError(sqlite3* db, int rc) {
  // sqlite3_errmsg describes the last failed call on `db`; mu_ guarantees
  // that is ours.
  return absl::Status(CodeFor(rc), sqlite3_errmsg(db));
}

absl::Status ExecSql(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return absl::OkStatus();
  absl::Status st(CodeFor(rc), err != nullptr ? err : sqlite3_errstr(rc));
  sqlite3_free(err);
  return st;
}

// One prepared statement. Binds are positional and counted: the n-th Bind
// fills the n-th `?`. A failed prepare or bind is reported by Step.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
    if (rc != SQLITE_OK) Fail(rc);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& Bind(absl::string_view text) {
    // A null pointer would bind NULL; "" is not NULL.
    const char* data = text.data() != nullptr ? text.data() : "";
    return Check(
        sqlite3_bind_text64(stmt_, ++next_, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  Statement& Bind(const std::string& text) { return Bind(absl::string_view(text)); }
  Statement& Bind(const char* text) { return Bind(absl::string_view(text)); }
  Statement& Bind(int64_t value) { return Check(sqlite3_bind_int64(stmt_, ++next_, value)); }
  Statement& Bind(int value) { return Bind(static_cast<int64_t>(value)); }
  Statement& Bind(bool value) { return Bind(static_cast<int64_t>(value ? 1 : 0)); }
  Statement& BindBlob(absl::string_view bytes) {
    if (bytes.empty()) return Check(sqlite3_bind_zeroblob(stmt_, ++next_, 0));
    return Check(sqlite3_bind_blob64(stmt_, ++next_, bytes.data(), bytes.size(), SQLITE_TRANSIENT));
  }

  // True when a row is ready, false when the statement is done.
  absl::StatusOr<bool> Step() {
    if (!status_.ok()) return status_;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    Fail(rc);
    return status_;
  }
  // Runs a statement that returns no rows.
  absl::Status Run() {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    return absl::OkStatus();
  }
  // Makes the statement ready to run again with new binds. A failed prepare
  // stays failed.
  void Reset() {
    if (stmt_ == nullptr) return;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    next_ = 0;
    code_ = SQLITE_OK;
    status_ = absl::OkStatus();
  }

  // The extended result code of the failure, SQLITE_OK when none.
  int code() const { return code_; }

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    if (p == nullptr) return std::string();
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  std::string Blob(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    if (p == nullptr) return std::string();
    return std::string(static_cast<const char*>(p),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }

 private:
  Statement& Check(int rc) {
    if (rc != SQLITE_OK && status_.ok()) Fail(rc);
    return *this;
  }
  void Fail(int rc) {
    code_ = rc;
    status_ = SqliteError(db_, rc);
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int next_ = 0;
  int code_ = SQLITE_OK;
  absl::Status status_;
};

// Makes a multi-row write atomic by itself; see the comment at the top.
// Rolls back on destruction unless Commit succeeded.
class WriteScope {
 public:
  explicit WriteScope(sqlite3* db) : db_(db), nested_(sqlite3_get_autocommit(db) == 0) {
    status_ = ExecSql(db_, nested_ ? "SAVEPOINT fleet_write" : "BEGIN IMMEDIATE");
    active_ = status_.ok();
  }
  ~WriteScope() {
    if (!active_) return;
    // Errors are ignored: after some failures (SQLITE_FULL, I/O errors)
    // SQLite has already rolled back, and there is nothing left to undo.
    if (nested_) {
      ExecSql(db_, "ROLLBACK TO fleet_write").IgnoreError();
      ExecSql(db_, "RELEASE fleet_write").IgnoreError();
    } else if (sqlite3_get_autocommit(db_) == 0) {
      ExecSql(db_, "ROLLBACK").IgnoreError();
    }
  }
  WriteScope(const WriteScope&) = delete;
  WriteScope& operator=(const WriteScope&) = delete;

  const absl::Status& status() const { return status_; }
  absl::Status Commit() {
    if (!status_.ok()) return status_;
    absl::Status st = ExecSql(db_, nested_ ? "RELEASE fleet_write" : "COMMIT");
    if (st.ok()) active_ = false;
    return st;
  }

 private:
  sqlite3* db_;
  bool nested_;
  bool active_ = false;
  absl::Status status_;
};

bool IsForeignKeyError(int code) { return code == SQLITE_CONSTRAINT_FOREIGNKEY; }
bool IsDuplicateKeyError(int code) {
  return code == SQLITE_CONSTRAINT_PRIMARYKEY || code == SQLITE_CONSTRAINT_UNIQUE;
}

std::string ReleaseName(absl::string_view app, absl::string_view version) {
  return absl::StrCat(app, "@", version);
}

// Maps and lists are stored as JSON through protobuf's well-known types, so
// any character (',', '=', newlines, quotes) in a key or value round-trips.
absl::StatusOr<std::string> EncodeStringMap(
    const google::protobuf::Map<std::string, std::string>& map) {
  google::protobuf::Struct s;
  for (const auto& [key, value] : map) (*s.mutable_fields())[key].set_string_value(value);
  std::string json;
  auto st = google::protobuf::util::MessageToJsonString(s, &json);
  if (!st.ok()) return absl::InvalidArgumentError(std::string(st.message()));
  return json;
}

absl::Status DecodeStringMap(const std::string& json,
                             google::protobuf::Map<std::string, std::string>* map) {
  google::protobuf::Struct s;
  auto st = google::protobuf::util::JsonStringToMessage(json, &s);
  if (!st.ok()) return absl::DataLossError(std::string(st.message()));
  for (const auto& [key, value] : s.fields()) {
    if (value.kind_case() != google::protobuf::Value::kStringValue) {
      return absl::DataLossError(absl::StrCat("value of '", key, "' is not a string"));
    }
    (*map)[key] = value.string_value();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> EncodeStringList(
    const google::protobuf::RepeatedPtrField<std::string>& list) {
  google::protobuf::ListValue l;
  for (const std::string& item : list) l.add_values()->set_string_value(item);
  std::string json;
  auto st = google::protobuf::util::MessageToJsonString(l, &json);
  if (!st.ok()) return absl::InvalidArgumentError(std::string(st.message()));
  return json;
}

absl::Status DecodeStringList(const std::string& json,
                              google::protobuf::RepeatedPtrField<std::string>* list) {
  google::protobuf::ListValue l;
  auto st = google::protobuf::util::JsonStringToMessage(json, &l);
  if (!st.ok()) return absl::DataLossError(std::string(st.message()));
  for (const google::protobuf::Value& value : l.values()) {
    if (value.kind_case() != google::protobuf::Value::kStringValue) {
      return absl::DataLossError("list item is not a string");
    }
    list->Add(std::string(value.string_value()));
  }
  return absl::OkStatus();
}

// Rollout ids are INTEGER in SQLite and decimal strings in the protos.
bool ParseRolloutId(const std::string& id, int64_t* out) {
  return absl::SimpleAtoi(id, out) && *out > 0;
}

constexpr char kAppColumns[] =
    "name, spec, spec_yaml, desired_version, updated_at_ms, desired_config";

absl::StatusOr<App> ReadApp(const Statement& stmt) {
  App app;
  if (!app.mutable_spec()->ParseFromString(stmt.Blob(1))) {
    return absl::DataLossError(absl::StrCat("spec of app '", stmt.Text(0), "' does not parse"));
  }
  app.set_spec_yaml(stmt.Text(2));
  app.set_desired_version(stmt.Text(3));
  app.set_updated_at_ms(stmt.Int(4));
  app.set_desired_config(stmt.Text(5));
  return app;
}

constexpr char kReleaseColumns[] =
    "app, version, sha256, size, created_at_ms, created_by, metadata";

absl::StatusOr<Release> ReadRelease(const Statement& stmt) {
  Release release;
  if (!release.ParseFromString(stmt.Blob(6))) {
    return absl::DataLossError(absl::StrCat(
        "metadata of release ", ReleaseName(stmt.Text(0), stmt.Text(1)), " does not parse"));
  }
  release.set_app(stmt.Text(0));
  release.set_version(stmt.Text(1));
  release.set_sha256(stmt.Text(2));
  release.set_size(stmt.Int(3));
  release.set_created_at_ms(stmt.Int(4));
  release.set_created_by(stmt.Text(5));
  return release;
}

constexpr char kConfigColumns[] = "app, version, sha256, size, created_at_ms, created_by, files";

absl::StatusOr<ConfigRelease> ReadConfig(const Statement& stmt) {
  ConfigRelease config;
  if (!config.ParseFromString(stmt.Blob(6))) {
    return absl::DataLossError(absl::StrCat(
        "file list of config ", ReleaseName(stmt.Text(0), stmt.Text(1)), " does not parse"));
  }
  config.set_app(stmt.Text(0));
  config.set_version(stmt.Text(1));
  config.set_sha256(stmt.Text(2));
  config.set_size(stmt.Int(3));
  config.set_created_at_ms(stmt.Int(4));
  config.set_created_by(stmt.Text(5));
  return config;
}

// Inserts `row` (a Release or ConfigRelease) into `table` (releases or
// configs: app, version, sha256, size, created_at_ms, created_by, then
// `blob`). AlreadyExists for a version pushed before, NotFound for an
// unknown app; `noun` names the row in messages.
template <typename T>
absl::Status InsertVersion(sqlite3* db, absl::string_view table, absl::string_view columns,
                           absl::string_view noun, const T& row, absl::string_view blob) {
  const std::string name = ReleaseName(row.app(), row.version());
  const std::string what = absl::StrCat("cannot insert ", noun, " ", name);
  if (row.app().empty() || row.version().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": app and version must be set"));
  }
  Statement stmt(
      db, absl::StrCat("INSERT INTO ", table, " (", columns, ") VALUES (?, ?, ?, ?, ?, ?, ?)")
              .c_str());
  stmt.Bind(row.app())
      .Bind(row.version())
      .Bind(row.sha256())
      .Bind(row.size())
      .Bind(row.created_at_ms())
      .Bind(row.created_by())
      .BindBlob(blob);
  absl::Status st = stmt.Run();
  if (IsDuplicateKeyError(stmt.code())) {
    return absl::AlreadyExistsError(absl::StrCat(noun, " ", name, " exists already"));
  }
  if (IsForeignKeyError(stmt.code())) {
    return absl::NotFoundError(absl::StrCat(what, ": unknown app '", row.app(), "'"));
  }
  return Annotate(st, what);
}

// Rows of `table` (releases or configs: app, version, ...) of `app` in push
// order, each read by `read`; only `*version` when given. rowid order is
// insertion order: rowids only grow while the newest row stays, and a
// clock step backwards cannot reorder pushes.
template <typename T>
absl::StatusOr<std::vector<T>> SelectVersions(sqlite3* db, absl::string_view table,
                                              absl::string_view columns, const std::string& app,
                                              const std::string* version,
                                              absl::StatusOr<T> (*read)(const Statement&),
                                              const std::string& what) {
  Statement stmt(db, absl::StrCat("SELECT ", columns, " FROM ", table, " WHERE app = ?",
                                  version != nullptr ? " AND version = ?" : "", " ORDER BY rowid")
                         .c_str());
  stmt.Bind(app);
  if (version != nullptr) stmt.Bind(*version);
  std::vector<T> rows;
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return Annotate(row.status(), what);
    if (!*row) break;
    absl::StatusOr<T> item = read(stmt);
    if (!item.ok()) return Annotate(item.status(), what);
    rows.push_back(*std::move(item));
  }
  return rows;
}

constexpr char kHostColumns[] = "id, labels, connected, last_seen_ms, agent_version, peer";

absl::StatusOr<Host> ReadHost(const Statement& stmt) {
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

constexpr char kHostAppColumns[] =
    "host_id, app, current_release, releases, last_known_good, previous_release, "
    "current_config, configs, last_good_config, previous_config";

absl::StatusOr<HostAppState> ReadHostAppState(const Statement& stmt) {
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

absl::Status InsertHostAppState(sqlite3* db, const std::string& host_id,
                                const HostAppState& state) {
  FLEET_ASSIGN_OR_RETURN(std::string releases, EncodeStringList(state.releases()));
  FLEET_ASSIGN_OR_RETURN(std::string configs, EncodeStringList(state.configs()));
  Statement stmt(db,
                 "INSERT INTO host_apps (host_id, app, current_release, releases, "
                 "last_known_good, previous_release, current_config, configs, "
                 "last_good_config, previous_config, updated_at_ms) "
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
  if (IsForeignKeyError(stmt.code())) {
    return absl::NotFoundError(absl::StrCat("unknown host '", host_id, "'"));
  }
  return st;
}

constexpr char kRolloutColumns[] =
    "id, app, version, from_version, kind, state, selector, created_by, created_at_ms, "
    "finished_at_ms, reason, plan, current_wave, awaiting_promote, paused_by, subject, "
    "fleet_release, fleet_config";

Rollout ReadRollout(const Statement& stmt) {
  Rollout rollout;
  rollout.set_id(absl::StrCat(stmt.Int(0)));
  rollout.set_app(stmt.Text(1));
  rollout.set_version(stmt.Text(2));
  rollout.set_from_version(stmt.Text(3));
  rollout.set_kind(static_cast<fleet::v1::RolloutKind>(stmt.Int(4)));
  rollout.set_state(static_cast<fleet::v1::RolloutState>(stmt.Int(5)));
  rollout.set_selector(stmt.Text(6));
  rollout.set_created_by(stmt.Text(7));
  rollout.set_created_at_ms(stmt.Int(8));
  rollout.set_finished_at_ms(stmt.Int(9));
  rollout.set_reason(stmt.Text(10));
  // A plan that does not parse leaves the defaults (one wave, no gates).
  (void)rollout.mutable_plan()->ParseFromString(stmt.Blob(11));
  rollout.set_current_wave(static_cast<int32_t>(stmt.Int(12)));
  rollout.set_awaiting_promote(stmt.Int(13) != 0);
  rollout.set_paused_by(stmt.Text(14));
  rollout.set_subject(static_cast<fleet::v1::Subject>(stmt.Int(15)));
  rollout.set_release(stmt.Text(16));
  rollout.set_config(stmt.Text(17));
  return rollout;
}

// Reads rollouts from a prepared, bound query over kRolloutColumns.
absl::StatusOr<std::vector<Rollout>> ReadRollouts(Statement& stmt) {
  std::vector<Rollout> rollouts;
  while (true) {
    FLEET_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    rollouts.push_back(ReadRollout(stmt));
  }
  return rollouts;
}

// Fills the tasks of each rollout, sorted by wave, then host.
absl::Status LoadTasks(sqlite3* db, std::vector<Rollout>* rollouts) {
  Statement stmt(db,
                 "SELECT host_id, wave, state, from_release, to_release, reason, command_id, "
                 "updated_at_ms FROM rollout_tasks WHERE rollout_id = ? "
                 "ORDER BY wave, host_id");
  for (Rollout& rollout : *rollouts) {
    int64_t id = 0;
    ParseRolloutId(rollout.id(), &id);
    stmt.Reset();
    stmt.Bind(id);
    while (true) {
      FLEET_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      HostTask* task = rollout.add_tasks();
      task->set_host_id(stmt.Text(0));
      task->set_wave(static_cast<int32_t>(stmt.Int(1)));
      task->set_state(static_cast<fleet::v1::TaskState>(stmt.Int(2)));
      task->set_from_version(stmt.Text(3));
      task->set_to_version(stmt.Text(4));
      task->set_reason(stmt.Text(5));
      task->set_command_id(stmt.Text(6));
      task->set_updated_at_ms(stmt.Int(7));
    }
  }
  return absl::OkStatus();
}

// SQLite reads LIMIT -1 as "no limit".
int64_t SqlLimit(int limit) { return limit > 0 ? limit : -1; }

constexpr char kTokenColumns[] =
    "id, role, app, description, created_by, created_at_ms, revoked_at_ms";

fleet::v1::TokenInfo ReadToken(const Statement& stmt) {
  fleet::v1::TokenInfo token;
  token.set_id(stmt.Text(0));
  token.set_role(static_cast<fleet::v1::Role>(stmt.Int(1)));
  token.set_app(stmt.Text(2));
  token.set_description(stmt.Text(3));
  token.set_created_by(stmt.Text(4));
  token.set_created_at_ms(stmt.Int(5));
  token.set_revoked_at_ms(stmt.Int(6));
  return token;
}

}  // namespace


absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  sqlite3* db = nullptr;
  // No SQLITE_OPEN_FULLMUTEX: every use of the connection holds mu_.
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status st(CodeFor(rc),
                    absl::StrCat("cannot open database ", path, ": ",
                                 db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close(db);
    return st;
  }
  sqlite3_extended_result_codes(db, 1);
  std::unique_ptr<Store> store(new Store(db, path));
  FLEET_RETURN_IF_ERROR(store->Migrate());
  return store;
}

Store::~Store() { sqlite3_close(db_); }

absl::Status Store::Exec(const std::string& sql) { return ExecSql(db_, sql.c_str()); }

absl::Status Store::Migrate() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  auto read_version = [this]() -> absl::StatusOr<int64_t> {
    Statement stmt(db_, "PRAGMA user_version");
    FLEET_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return absl::InternalError("PRAGMA user_version returned no row");
    return stmt.Int(0);
  };
  auto newer = [this](int64_t version) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database ", path_, " has schema version ", version, ", newer than this fleet-controller (",
        kSchemaVersion, "); upgrade fleet-controller"));
  };

  sqlite3_busy_timeout(db_, 5000);
  // Checked before the pragmas below, which would change the file.
  absl::StatusOr<int64_t> version = read_version();
  if (!version.ok())
    return Annotate(version.status(), absl::StrCat("cannot open database ", path_));
  if (*version > kSchemaVersion) return newer(*version);

  {
    Statement stmt(db_, "PRAGMA journal_mode = WAL");
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return Annotate(row.status(), absl::StrCat("cannot enable WAL on ", path_));
    std::string mode = *row ? stmt.Text(0) : "";
    // In-memory and temporary databases (":memory:", "") cannot have WAL;
    // a file must.
    const bool file = !path_.empty() && path_ != ":memory:";
    if (file && mode != "wal") {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot enable WAL on ", path_, ": journal_mode is '", mode, "'"));
    }
  }
  absl::Status st = Exec("PRAGMA synchronous = FULL");
  if (st.ok()) st = Exec("PRAGMA foreign_keys = ON");
  if (!st.ok()) return Annotate(st, absl::StrCat("cannot configure database ", path_));

  for (int step = 0; step < kSchemaVersion; ++step) {
    const int target = step + 1;
    auto fail = [&](const absl::Status& s) {
      return Annotate(
          s, absl::StrCat("cannot migrate database ", path_, " to schema version ", target));
    };
    WriteScope scope(db_);
    if (!scope.status().ok()) return fail(scope.status());
    // Read again inside the transaction: another process may have migrated
    // the file since the check above.
    absl::StatusOr<int64_t> current = read_version();
    if (!current.ok()) return fail(current.status());
    if (*current > kSchemaVersion) return newer(*current);
    if (*current >= target) continue;
    if (*current != step) {
      return fail(absl::DataLossError(absl::StrCat("found version ", *current)));
    }
    st = ExecSql(db_, kMigrations[step]);
    // PRAGMA takes no bound parameters; `target` is our own constant.
    if (st.ok()) st = Exec(absl::StrCat("PRAGMA user_version = ", target));
    if (st.ok()) st = scope.Commit();
    if (!st.ok()) return fail(st);
  }
  return absl::OkStatus();
}

absl::Status Store::CheckTransaction() {
  switch (transaction_state_) {
    case TransactionState::kNone:
      return absl::OkStatus();
    case TransactionState::kBeginFailed:
      return Annotate(transaction_begin_status_, "store transaction did not begin");
    case TransactionState::kOpen:
      if (sqlite3_get_autocommit(db_) != 0) {
        return absl::AbortedError(
            absl::StrCat("store transaction on ", path_,
                         " was rolled back by SQLite after an earlier error; start a new one"));
      }
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

Store::Transaction::Transaction(Store* store) : store_(store), lock_(store->mu_) {
  if (store_->transaction_state_ != TransactionState::kNone) {
    begin_status_ = absl::FailedPreconditionError(
        "a store transaction is open on this thread already; transactions do not nest");
    done_ = true;  // the open one is not ours to end
    return;
  }
  begin_status_ = store_->Exec("BEGIN IMMEDIATE");
  if (!begin_status_.ok()) {
    begin_status_ =
        Annotate(begin_status_, absl::StrCat("cannot begin transaction on ", store_->path_));
    store_->transaction_state_ = TransactionState::kBeginFailed;
    store_->transaction_begin_status_ = begin_status_;
    return;
  }
  store_->transaction_state_ = TransactionState::kOpen;
}

Store::Transaction::~Transaction() {
  if (done_) return;
  if (store_->transaction_state_ == TransactionState::kOpen &&
      sqlite3_get_autocommit(store_->db_) == 0) {
    store_->Exec("ROLLBACK").IgnoreError();
  }
  store_->transaction_state_ = TransactionState::kNone;
  store_->transaction_begin_status_ = absl::OkStatus();
}

absl::Status Store::Transaction::Commit() {
  if (!begin_status_.ok()) return begin_status_;
  if (done_) return absl::FailedPreconditionError("store transaction was committed already");
  FLEET_RETURN_IF_ERROR(store_->CheckTransaction());
  // On failure (e.g. SQLITE_BUSY) the transaction stays open: the caller may
  // retry Commit, and the destructor rolls it back otherwise.
  absl::Status st = store_->Exec("COMMIT");
  if (!st.ok()) return Annotate(st, absl::StrCat("cannot commit transaction on ", store_->path_));
  done_ = true;
  store_->transaction_state_ = TransactionState::kNone;
  return absl::OkStatus();
}

absl::Status Store::UpsertApp(const App& app, bool* created) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  const std::string& name = app.spec().name();
  if (name.empty()) return absl::InvalidArgumentError("cannot write app: its spec has no name");
  const std::string what = absl::StrCat("cannot write app '", name, "'");
  std::string spec;
  if (!app.spec().SerializeToString(&spec)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": spec does not serialize"));
  }

  WriteScope scope(db_);
  if (!scope.status().ok()) return Annotate(scope.status(), what);
  Statement insert(db_,
                   "INSERT INTO apps (name, spec, spec_yaml, desired_version, created_at_ms, "
                   "updated_at_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING");
  insert.Bind(name)
      .BindBlob(spec)
      .Bind(app.spec_yaml())
      .Bind(app.desired_version())
      .Bind(app.updated_at_ms())
      .Bind(app.updated_at_ms());
  FLEET_RETURN_IF_ERROR(Annotate(insert.Run(), what));
  const bool is_new = sqlite3_changes(db_) > 0;
  if (!is_new) {
    Statement update(db_,
                     "UPDATE apps SET spec = ?, spec_yaml = ?, updated_at_ms = ? WHERE name = ?");
    update.BindBlob(spec).Bind(app.spec_yaml()).Bind(app.updated_at_ms()).Bind(name);
    FLEET_RETURN_IF_ERROR(Annotate(update.Run(), what));
  }
  FLEET_RETURN_IF_ERROR(Annotate(scope.Commit(), what));
  if (created != nullptr) *created = is_new;
  return absl::OkStatus();
}

absl::StatusOr<App> Store::GetApp(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  const std::string what = absl::StrCat("cannot read app '", name, "'");
  Statement stmt(db_, absl::StrCat("SELECT ", kAppColumns, " FROM apps WHERE name = ?").c_str());
  stmt.Bind(name);
  absl::StatusOr<bool> row = stmt.Step();
  if (!row.ok()) return Annotate(row.status(), what);
  if (!*row) return absl::NotFoundError(absl::StrCat("unknown app '", name, "'"));
  absl::StatusOr<App> app = ReadApp(stmt);
  if (!app.ok()) return Annotate(app.status(), what);
  return app;
}

absl::StatusOr<std::vector<App>> Store::ListApps() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  Statement stmt(db_, absl::StrCat("SELECT ", kAppColumns, " FROM apps ORDER BY name").c_str());
  std::vector<App> apps;
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return Annotate(row.status(), "cannot list apps");
    if (!*row) break;
    absl::StatusOr<App> app = ReadApp(stmt);
    if (!app.ok()) return Annotate(app.status(), "cannot list apps");
    apps.push_back(*std::move(app));
  }
  return apps;
}

absl::Status Store::SetDesiredVersion(const std::string& app, const std::string& version) {
  return SetDesired(app, fleet::v1::SUBJECT_RELEASE, version);
}

absl::Status Store::SetDesired(const std::string& app, fleet::v1::Subject subject,
                               const std::string& version) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  const bool config = subject == fleet::v1::SUBJECT_CONFIG;
  Statement stmt(db_, config ? "UPDATE apps SET desired_config = ? WHERE name = ?"
                             : "UPDATE apps SET desired_version = ? WHERE name = ?");
  stmt.Bind(version).Bind(app);
  FLEET_RETURN_IF_ERROR(
      Annotate(stmt.Run(), absl::StrCat("cannot set desired ", config ? "config" : "version",
                                        " of app '", app, "' to '", version, "'")));
  if (sqlite3_changes(db_) == 0)
    return absl::NotFoundError(absl::StrCat("unknown app '", app, "'"));
  return absl::OkStatus();
}

absl::Status Store::InsertRelease(const Release& release) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  Release metadata;
  *metadata.mutable_metadata() = release.metadata();
  metadata.set_signature(release.signature());
  std::string metadata_bytes;
  if (!metadata.SerializeToString(&metadata_bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot insert release ", ReleaseName(release.app(), release.version()),
                     ": metadata does not serialize"));
  }
  return InsertVersion(db_, "releases", kReleaseColumns, "release", release, metadata_bytes);
}

absl::StatusOr<Release> Store::GetRelease(const std::string& app, const std::string& version) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  const std::string name = ReleaseName(app, version);
  FLEET_ASSIGN_OR_RETURN(std::vector<Release> rows,
                         SelectVersions(db_, "releases", kReleaseColumns, app, &version,
                                        ReadRelease, absl::StrCat("cannot read release ", name)));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("unknown release ", name));
  return std::move(rows.front());
}

absl::StatusOr<std::vector<Release>> Store::ListReleases(const std::string& app) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  return SelectVersions(db_, "releases", kReleaseColumns, app, nullptr, ReadRelease,
                        absl::StrCat("cannot list releases of app '", app, "'"));
}

absl::Status Store::InsertConfig(const ConfigRelease& config) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  ConfigRelease files;
  *files.mutable_files() = config.files();
  return InsertVersion(db_, "configs", kConfigColumns, "config", config,
                       files.SerializeAsString());
}

absl::StatusOr<ConfigRelease> Store::GetConfig(const std::string& app, const std::string& version) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  const std::string name = ReleaseName(app, version);
  FLEET_ASSIGN_OR_RETURN(std::vector<ConfigRelease> rows,
                         SelectVersions(db_, "configs", kConfigColumns, app, &version, ReadConfig,
                                        absl::StrCat("cannot read config ", name)));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("unknown config ", name));
  return std::move(rows.front());
}

absl::StatusOr<std::vector<ConfigRelease>> Store::ListConfigs(const std::string& app) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  return SelectVersions(db_, "configs", kConfigColumns, app, nullptr, ReadConfig,
                        absl::StrCat("cannot list configs of app '", app, "'"));
}

absl::Status Store::UpsertHost(const Host& host) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  if (host.id().empty()) return absl::InvalidArgumentError("cannot write host: it has no id");
  const std::string what = absl::StrCat("cannot write host '", host.id(), "'");
  absl::StatusOr<std::string> labels = EncodeStringMap(host.labels());
  if (!labels.ok()) return Annotate(labels.status(), absl::StrCat(what, ": labels"));

  WriteScope scope(db_);
  if (!scope.status().ok()) return Annotate(scope.status(), what);
  Statement upsert(db_,
                   "INSERT INTO hosts (id, labels, connected, first_seen_ms, last_seen_ms, "
                   "agent_version, peer) VALUES (?, ?, ?, ?, ?, ?, ?) "
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
  Statement clear(db_, "DELETE FROM host_apps WHERE host_id = ?");
  clear.Bind(host.id());
  FLEET_RETURN_IF_ERROR(Annotate(clear.Run(), what));
  std::map<std::string, int> seen;
  for (const HostAppState& state : host.apps()) {
    if (seen[state.app()]++ > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": app '", state.app(), "' is reported twice"));
    }
    FLEET_RETURN_IF_ERROR(Annotate(InsertHostAppState(db_, host.id(), state),
                                   absl::StrCat(what, ": app '", state.app(), "'")));
  }
  return Annotate(scope.Commit(), what);
}

absl::Status Store::SetHostConnected(const std::string& host_id, bool connected, int64_t at_ms) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  Statement stmt(db_, "UPDATE hosts SET connected = ?, last_seen_ms = ? WHERE id = ?");
  stmt.Bind(connected).Bind(at_ms).Bind(host_id);
  FLEET_RETURN_IF_ERROR(Annotate(
      stmt.Run(),
      absl::StrCat("cannot mark host '", host_id, "' ", connected ? "connected" : "disconnected")));
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat("unknown host '", host_id, "'"));
  }
  return absl::OkStatus();
}

absl::Status Store::UpsertHostAppState(const std::string& host_id, const HostAppState& state) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  absl::Status st = InsertHostAppState(db_, host_id, state);
  if (st.code() == absl::StatusCode::kNotFound) return st;
  return Annotate(
      st, absl::StrCat("cannot write state of app '", state.app(), "' on host '", host_id, "'"));
}

absl::StatusOr<Host> Store::GetHost(const std::string& host_id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  const std::string what = absl::StrCat("cannot read host '", host_id, "'");
  Statement stmt(db_, absl::StrCat("SELECT ", kHostColumns, " FROM hosts WHERE id = ?").c_str());
  stmt.Bind(host_id);
  absl::StatusOr<bool> row = stmt.Step();
  if (!row.ok()) return Annotate(row.status(), what);
  if (!*row) return absl::NotFoundError(absl::StrCat("unknown host '", host_id, "'"));
  absl::StatusOr<Host> host = ReadHost(stmt);
  if (!host.ok()) return Annotate(host.status(), what);

  Statement apps(db_, absl::StrCat("SELECT ", kHostAppColumns,
                                   " FROM host_apps WHERE host_id = ? ORDER BY app")
                          .c_str());
  apps.Bind(host_id);
  while (true) {
    absl::StatusOr<bool> app_row = apps.Step();
    if (!app_row.ok()) return Annotate(app_row.status(), what);
    if (!*app_row) break;
    absl::StatusOr<HostAppState> state = ReadHostAppState(apps);
    if (!state.ok()) return Annotate(state.status(), what);
    *host->add_apps() = *std::move(state);
  }
  return host;
}

absl::StatusOr<std::vector<Host>> Store::ListHosts() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  constexpr absl::string_view kWhat = "cannot list hosts";
  std::vector<Host> hosts;
  std::map<std::string, size_t> index;
  Statement stmt(db_, absl::StrCat("SELECT ", kHostColumns, " FROM hosts ORDER BY id").c_str());
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return Annotate(row.status(), kWhat);
    if (!*row) break;
    absl::StatusOr<Host> host = ReadHost(stmt);
    if (!host.ok()) return Annotate(host.status(), kWhat);
    index[host->id()] = hosts.size();
    hosts.push_back(*std::move(host));
  }
  Statement apps(
      db_,
      absl::StrCat("SELECT ", kHostAppColumns, " FROM host_apps ORDER BY host_id, app").c_str());
  while (true) {
    absl::StatusOr<bool> row = apps.Step();
    if (!row.ok()) return Annotate(row.status(), kWhat);
    if (!*row) break;
    auto it = index.find(apps.Text(0));
    if (it == index.end()) continue;  // the foreign key makes this impossible
    absl::StatusOr<HostAppState> state = ReadHostAppState(apps);
    if (!state.ok()) return Annotate(state.status(), kWhat);
    *hosts[it->second].add_apps() = *std::move(state);
  }
  return hosts;
}

absl::Status Store::MarkAllHostsDisconnected() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  Statement stmt(db_, "UPDATE hosts SET connected = 0 WHERE connected != 0");
  return Annotate(stmt.Run(), "cannot mark all hosts disconnected");
}

absl::Status Store::CreateRollout(Rollout* rollout) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  const std::string what =
      absl::StrCat("cannot create rollout of ", ReleaseName(rollout->app(), rollout->version()));
  WriteScope scope(db_);
  if (!scope.status().ok()) return Annotate(scope.status(), what);
  Statement insert(db_,
                   "INSERT INTO rollouts (app, version, from_version, kind, state, selector, "
                   "created_by, created_at_ms, finished_at_ms, reason, plan, current_wave, "
                   "awaiting_promote, paused_by, subject, fleet_release, fleet_config) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  insert.Bind(rollout->app())
      .Bind(rollout->version())
      .Bind(rollout->from_version())
      .Bind(static_cast<int>(rollout->kind()))
      .Bind(static_cast<int>(rollout->state()))
      .Bind(rollout->selector())
      .Bind(rollout->created_by())
      .Bind(rollout->created_at_ms())
      .Bind(rollout->finished_at_ms())
      .Bind(rollout->reason())
      .BindBlob(rollout->plan().SerializeAsString())
      .Bind(rollout->current_wave())
      .Bind(rollout->awaiting_promote())
      .Bind(rollout->paused_by())
      .Bind(static_cast<int>(rollout->subject()))
      .Bind(rollout->release())
      .Bind(rollout->config());
  absl::Status st = insert.Run();
  if (IsForeignKeyError(insert.code())) {
    return absl::NotFoundError(absl::StrCat(what, ": unknown app '", rollout->app(), "'"));
  }
  FLEET_RETURN_IF_ERROR(Annotate(st, what));
  const int64_t id = sqlite3_last_insert_rowid(db_);

  Statement task_insert(db_,
                        "INSERT INTO rollout_tasks (rollout_id, host_id, wave, state, "
                        "from_release, to_release, reason, command_id, updated_at_ms) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const HostTask& task : rollout->tasks()) {
    task_insert.Reset();
    task_insert.Bind(id)
        .Bind(task.host_id())
        .Bind(task.wave())
        .Bind(static_cast<int>(task.state()))
        .Bind(task.from_version())
        .Bind(task.to_version())
        .Bind(task.reason())
        .Bind(task.command_id())
        .Bind(task.updated_at_ms());
    st = task_insert.Run();
    if (IsDuplicateKeyError(task_insert.code())) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": host '", task.host_id(), "' has two tasks"));
    }
    FLEET_RETURN_IF_ERROR(
        Annotate(st, absl::StrCat(what, ": task of host '", task.host_id(), "'")));
  }
  FLEET_RETURN_IF_ERROR(Annotate(scope.Commit(), what));
  rollout->set_id(absl::StrCat(id));
  return absl::OkStatus();
}

absl::Status Store::UpdateRollout(const Rollout& rollout) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  const absl::Status unknown =
      absl::NotFoundError(absl::StrCat("unknown rollout '", rollout.id(), "'"));
  int64_t id = 0;
  if (!ParseRolloutId(rollout.id(), &id)) return unknown;
  Statement stmt(db_,
                 "UPDATE rollouts SET state = ?, reason = ?, finished_at_ms = ?, "
                 "from_version = ?, plan = ?, current_wave = ?, awaiting_promote = ?, "
                 "paused_by = ? WHERE id = ?");
  stmt.Bind(static_cast<int>(rollout.state()))
      .Bind(rollout.reason())
      .Bind(rollout.finished_at_ms())
      .Bind(rollout.from_version())
      .BindBlob(rollout.plan().SerializeAsString())
      .Bind(rollout.current_wave())
      .Bind(rollout.awaiting_promote())
      .Bind(rollout.paused_by())
      .Bind(id);
  FLEET_RETURN_IF_ERROR(
      Annotate(stmt.Run(), absl::StrCat("cannot update rollout '", rollout.id(), "'")));
  if (sqlite3_changes(db_) == 0) return unknown;
  return absl::OkStatus();
}

absl::Status Store::UpdateTask(const std::string& rollout_id, const HostTask& task) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  const absl::Status unknown = absl::NotFoundError(
      absl::StrCat("unknown task of host '", task.host_id(), "' in rollout '", rollout_id, "'"));
  int64_t id = 0;
  if (!ParseRolloutId(rollout_id, &id)) return unknown;
  Statement stmt(db_,
                 "UPDATE rollout_tasks SET wave = ?, state = ?, from_release = ?, "
                 "to_release = ?, reason = ?, command_id = ?, updated_at_ms = ? "
                 "WHERE rollout_id = ? AND host_id = ?");
  stmt.Bind(task.wave())
      .Bind(static_cast<int>(task.state()))
      .Bind(task.from_version())
      .Bind(task.to_version())
      .Bind(task.reason())
      .Bind(task.command_id())
      .Bind(task.updated_at_ms())
      .Bind(id)
      .Bind(task.host_id());
  FLEET_RETURN_IF_ERROR(
      Annotate(stmt.Run(), absl::StrCat("cannot update task of host '", task.host_id(),
                                        "' in rollout '", rollout_id, "'")));
  if (sqlite3_changes(db_) == 0) return unknown;
  return absl::OkStatus();
}

absl::StatusOr<Rollout> Store::GetRollout(const std::string& id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  const absl::Status unknown = absl::NotFoundError(absl::StrCat("unknown rollout '", id, "'"));
  int64_t numeric_id = 0;
  if (!ParseRolloutId(id, &numeric_id)) return unknown;
  const std::string what = absl::StrCat("cannot read rollout '", id, "'");
  Statement stmt(db_,
                 absl::StrCat("SELECT ", kRolloutColumns, " FROM rollouts WHERE id = ?").c_str());
  stmt.Bind(numeric_id);
  absl::StatusOr<std::vector<Rollout>> rollouts = ReadRollouts(stmt);
  if (!rollouts.ok()) return Annotate(rollouts.status(), what);
  if (rollouts->empty()) return unknown;
  FLEET_RETURN_IF_ERROR(Annotate(LoadTasks(db_, &*rollouts), what));
  return std::move(rollouts->front());
}

absl::StatusOr<std::vector<Rollout>> Store::ListRollouts(const std::string& app, int limit,
                                                         bool with_tasks) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  const std::string what = app.empty() ? "cannot list rollouts"
                                       : absl::StrCat("cannot list rollouts of app '", app, "'");
  // Two statements rather than "(? = '' OR app = ?)", which would keep
  // SQLite from using rollouts_by_app.
  const std::string sql =
      app.empty()
          ? absl::StrCat("SELECT ", kRolloutColumns, " FROM rollouts ORDER BY id DESC LIMIT ?")
          : absl::StrCat("SELECT ", kRolloutColumns,
                         " FROM rollouts WHERE app = ? ORDER BY id DESC LIMIT ?");
  Statement stmt(db_, sql.c_str());
  if (!app.empty()) stmt.Bind(app);
  stmt.Bind(SqlLimit(limit));
  absl::StatusOr<std::vector<Rollout>> rollouts = ReadRollouts(stmt);
  if (!rollouts.ok()) return Annotate(rollouts.status(), what);
  if (with_tasks) FLEET_RETURN_IF_ERROR(Annotate(LoadTasks(db_, &*rollouts), what));
  return rollouts;
}

absl::StatusOr<std::vector<Rollout>> Store::ListActiveRollouts() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  constexpr absl::string_view kWhat = "cannot list active rollouts";
  // The terminal states, as IsTerminal defines them.
  Statement stmt(db_, absl::StrCat("SELECT ", kRolloutColumns,
                                   " FROM rollouts WHERE state NOT IN (?, ?, ?) ORDER BY id")
                          .c_str());
  stmt.Bind(static_cast<int>(fleet::v1::ROLLOUT_STATE_SUCCEEDED))
      .Bind(static_cast<int>(fleet::v1::ROLLOUT_STATE_ROLLED_BACK))
      .Bind(static_cast<int>(fleet::v1::ROLLOUT_STATE_FAILED));
  absl::StatusOr<std::vector<Rollout>> rollouts = ReadRollouts(stmt);
  if (!rollouts.ok()) return Annotate(rollouts.status(), kWhat);
  FLEET_RETURN_IF_ERROR(Annotate(LoadTasks(db_, &*rollouts), kWhat));
  return rollouts;
}

absl::Status Store::AddEvent(Event* event) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  Statement stmt(db_,
                 "INSERT INTO events (at_ms, app, rollout_id, host_id, kind, actor, message) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)");
  stmt.Bind(event->at_ms())
      .Bind(event->app())
      .Bind(event->rollout_id())
      .Bind(event->host_id())
      .Bind(event->kind())
      .Bind(event->actor())
      .Bind(event->message());
  FLEET_RETURN_IF_ERROR(Annotate(stmt.Run(), absl::StrCat("cannot add event '", event->kind(),
                                                          "' of app '", event->app(), "'")));
  event->set_id(sqlite3_last_insert_rowid(db_));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Event>> Store::ListEvents(const std::string& app, int limit) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  const std::string what =
      app.empty() ? "cannot list events" : absl::StrCat("cannot list events of app '", app, "'");
  constexpr char kColumns[] = "id, at_ms, app, rollout_id, host_id, kind, actor, message";
  const std::string sql =
      app.empty() ? absl::StrCat("SELECT ", kColumns, " FROM events ORDER BY id DESC LIMIT ?")
                  : absl::StrCat("SELECT ", kColumns,
                                 " FROM events WHERE app = ? ORDER BY id DESC LIMIT ?");
  Statement stmt(db_, sql.c_str());
  if (!app.empty()) stmt.Bind(app);
  stmt.Bind(SqlLimit(limit));
  std::vector<Event> events;
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return Annotate(row.status(), what);
    if (!*row) break;
    Event& event = events.emplace_back();
    event.set_id(stmt.Int(0));
    event.set_at_ms(stmt.Int(1));
    event.set_app(stmt.Text(2));
    event.set_rollout_id(stmt.Text(3));
    event.set_host_id(stmt.Text(4));
    event.set_kind(stmt.Text(5));
    event.set_actor(stmt.Text(6));
    event.set_message(stmt.Text(7));
  }
  return events;
}

absl::Status Store::InsertAlert(const AlertRecord& alert) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  Statement stmt(
      db_,
      "INSERT INTO alerts (fingerprint, starts_at, status, app, alertname, "
      "received_at_ms, outcome, rollout_id, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  stmt.Bind(alert.fingerprint)
      .Bind(alert.starts_at)
      .Bind(alert.status)
      .Bind(alert.app)
      .Bind(alert.alertname)
      .Bind(alert.received_at_ms)
      .Bind(alert.outcome)
      .Bind(alert.rollout_id)
      .Bind(alert.message);
  absl::Status st = stmt.Run();
  if (IsDuplicateKeyError(stmt.code())) {
    return absl::AlreadyExistsError(absl::StrCat("alert ", alert.fingerprint, " ", alert.status,
                                                 " since ", alert.starts_at,
                                                 " is recorded already"));
  }
  return Annotate(
      st, absl::StrCat("cannot record alert ", alert.fingerprint, " of app '", alert.app, "'"));
}

absl::StatusOr<Store::AlertRecord> Store::GetAlert(const std::string& fingerprint,
                                                   const std::string& starts_at,
                                                   const std::string& status) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  Statement stmt(db_,
                 "SELECT app, alertname, received_at_ms, outcome, rollout_id, message FROM alerts "
                 "WHERE fingerprint = ? AND starts_at = ? AND status = ?");
  stmt.Bind(fingerprint).Bind(starts_at).Bind(status);
  absl::StatusOr<bool> row = stmt.Step();
  if (!row.ok()) return Annotate(row.status(), absl::StrCat("cannot read alert ", fingerprint));
  if (!*row) {
    return absl::NotFoundError(
        absl::StrCat("unknown alert ", fingerprint, " ", status, " since ", starts_at));
  }
  AlertRecord alert;
  alert.fingerprint = fingerprint;
  alert.starts_at = starts_at;
  alert.status = status;
  alert.app = stmt.Text(0);
  alert.alertname = stmt.Text(1);
  alert.received_at_ms = stmt.Int(2);
  alert.outcome = stmt.Text(3);
  alert.rollout_id = stmt.Text(4);
  alert.message = stmt.Text(5);
  return alert;
}

absl::Status Store::UpdateAlert(const AlertRecord& alert) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  Statement stmt(db_,
                 "UPDATE alerts SET outcome = ?, rollout_id = ?, message = ? "
                 "WHERE fingerprint = ? AND starts_at = ? AND status = ?");
  stmt.Bind(alert.outcome)
      .Bind(alert.rollout_id)
      .Bind(alert.message)
      .Bind(alert.fingerprint)
      .Bind(alert.starts_at)
      .Bind(alert.status);
  FLEET_RETURN_IF_ERROR(
      Annotate(stmt.Run(), absl::StrCat("cannot update alert ", alert.fingerprint)));
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat("unknown alert ", alert.fingerprint, " ", alert.status,
                                            " since ", alert.starts_at));
  }
  return absl::OkStatus();
}

absl::Status Store::InsertToken(const fleet::v1::TokenInfo& token, const std::string& hash) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  const std::string what = absl::StrCat("cannot insert API token '", token.id(), "'");
  if (token.id().empty() || hash.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": id and hash must be set"));
  }
  if (token.role() == fleet::v1::ROLE_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": it has no role"));
  }
  Statement stmt(db_,
                 "INSERT INTO tokens (id, hash, role, app, description, created_by, "
                 "created_at_ms, revoked_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  stmt.Bind(token.id())
      .Bind(hash)
      .Bind(static_cast<int>(token.role()))
      .Bind(token.app())
      .Bind(token.description())
      .Bind(token.created_by())
      .Bind(token.created_at_ms())
      .Bind(token.revoked_at_ms());
  absl::Status st = stmt.Run();
  if (IsDuplicateKeyError(stmt.code())) {
    return absl::AlreadyExistsError(
        absl::StrCat(what, ": a token with this id or hash exists already"));
  }
  return Annotate(st, what);
}

absl::StatusOr<fleet::v1::TokenInfo> Store::FindTokenByHash(const std::string& hash) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  Statement stmt(db_,
                 absl::StrCat("SELECT ", kTokenColumns, " FROM tokens WHERE hash = ?").c_str());
  stmt.Bind(hash);
  absl::StatusOr<bool> row = stmt.Step();
  if (!row.ok()) return Annotate(row.status(), "cannot look up API token");
  // The hash is not named: it is as good as the token for finding the row.
  if (!*row) return absl::NotFoundError("no API token has this hash");
  return ReadToken(stmt);
}

absl::StatusOr<std::vector<fleet::v1::TokenInfo>> Store::ListTokens() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  Statement stmt(db_,
                 absl::StrCat("SELECT ", kTokenColumns, " FROM tokens ORDER BY rowid").c_str());
  std::vector<fleet::v1::TokenInfo> tokens;
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return Annotate(row.status(), "cannot list API tokens");
    if (!*row) break;
    tokens.push_back(ReadToken(stmt));
  }
  return tokens;
}

absl::StatusOr<fleet::v1::TokenInfo> Store::RevokeToken(const std::string& id, int64_t at_ms) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  const std::string what = absl::StrCat("cannot revoke API token '", id, "'");
  Statement update(db_, "UPDATE tokens SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms = 0");
  update.Bind(at_ms).Bind(id);
  FLEET_RETURN_IF_ERROR(Annotate(update.Run(), what));
  Statement select(db_,
                   absl::StrCat("SELECT ", kTokenColumns, " FROM tokens WHERE id = ?").c_str());
  select.Bind(id);
  absl::StatusOr<bool> row = select.Step();
  if (!row.ok()) return Annotate(row.status(), what);
  if (!*row) return absl::NotFoundError(absl::StrCat("unknown API token '", id, "'"));
  return ReadToken(select);
}

absl::StatusOr<int64_t> Store::CountTokens() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  FLEET_RETURN_IF_ERROR(CheckTransaction());
  Statement stmt(db_, "SELECT count(*) FROM tokens");
  absl::StatusOr<bool> row = stmt.Step();
  if (!row.ok()) return Annotate(row.status(), "cannot count API tokens");
  return *row ? stmt.Int(0) : 0;
}

}  // namespace fleet::controller
