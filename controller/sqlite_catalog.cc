// Apps, releases and configs of the SQLite store (see sqlite_queries.h).
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status.h"
#include "controller/sqlite_queries.h"

namespace fleet::controller {
namespace {

using fleet::v1::App;
using fleet::v1::ConfigRelease;
using fleet::v1::Release;

std::string ReleaseName(absl::string_view app, absl::string_view version) {
  return absl::StrCat(app, "@", version);
}

// Column lists are macros so that each statement is one literal: the text
// is the key of the connection's statement cache.
#define FLEET_APP_COLUMNS "name, spec, spec_yaml, desired_version, updated_at_ms, desired_config"

absl::StatusOr<App> ReadApp(const SqliteStatement& stmt) {
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

// What differs between the releases and the configs table.
template <typename T>
struct VersionTable {
  const char* insert_sql;
  const char* select_one_sql;  // binds app, version
  const char* select_all_sql;  // binds app
  const char* noun;            // "release" or "config"
  // Reads a row of the columns (app, version, sha256, size, created_at_ms,
  // created_by, blob).
  absl::StatusOr<T> (*read)(const SqliteStatement&);
};

// A row of a version table: the blob (a message of type T with only the
// fields the other columns do not hold), then the other columns. `blob_name`
// names the blob in errors: "metadata of release ".
template <typename T>
absl::StatusOr<T> ReadVersionRow(const SqliteStatement& stmt, absl::string_view blob_name) {
  T row;
  if (!row.ParseFromString(stmt.Blob(6))) {
    return absl::DataLossError(
        absl::StrCat(blob_name, ReleaseName(stmt.Text(0), stmt.Text(1)), " does not parse"));
  }
  row.set_app(stmt.Text(0));
  row.set_version(stmt.Text(1));
  row.set_sha256(stmt.Text(2));
  row.set_size(stmt.Int(3));
  row.set_created_at_ms(stmt.Int(4));
  row.set_created_by(stmt.Text(5));
  return row;
}

absl::StatusOr<Release> ReadRelease(const SqliteStatement& stmt) {
  return ReadVersionRow<Release>(stmt, "metadata of release ");
}

absl::StatusOr<ConfigRelease> ReadConfig(const SqliteStatement& stmt) {
  return ReadVersionRow<ConfigRelease>(stmt, "file list of config ");
}

// rowid order is insertion order: rowids only grow while the newest row
// stays, and a clock step backwards cannot reorder pushes.
#define FLEET_VERSION_COLUMNS "app, version, sha256, size, created_at_ms, created_by, "

constexpr VersionTable<Release> kReleases = {
    "INSERT INTO releases (" FLEET_VERSION_COLUMNS "metadata) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "SELECT " FLEET_VERSION_COLUMNS "metadata FROM releases WHERE app = ? AND version = ?",
    "SELECT " FLEET_VERSION_COLUMNS "metadata FROM releases WHERE app = ? ORDER BY rowid",
    "release",
    ReadRelease,
};

constexpr VersionTable<ConfigRelease> kConfigs = {
    "INSERT INTO configs (" FLEET_VERSION_COLUMNS "files) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "SELECT " FLEET_VERSION_COLUMNS "files FROM configs WHERE app = ? AND version = ?",
    "SELECT " FLEET_VERSION_COLUMNS "files FROM configs WHERE app = ? ORDER BY rowid",
    "config",
    ReadConfig,
};

// Inserts `row` with `blob` as its last column. AlreadyExists for a version
// stored before, NotFound for an unknown app.
template <typename T>
absl::Status InsertVersion(SqliteConnection* db, const VersionTable<T>& table, const T& row,
                           absl::string_view blob) {
  const std::string name = ReleaseName(row.app(), row.version());
  const std::string what = absl::StrCat("cannot insert ", table.noun, " ", name);
  if (row.app().empty() || row.version().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": app and version must be set"));
  }
  SqliteStatement stmt = db->Prepare(table.insert_sql);
  stmt.Bind(row.app())
      .Bind(row.version())
      .Bind(row.sha256())
      .Bind(row.size())
      .Bind(row.created_at_ms())
      .Bind(row.created_by())
      .BindBlob(blob);
  absl::Status st = stmt.Run();
  if (stmt.FailedOnDuplicateKey()) {
    return absl::AlreadyExistsError(absl::StrCat(table.noun, " ", name, " exists already"));
  }
  if (stmt.FailedOnForeignKey()) {
    return absl::NotFoundError(absl::StrCat(what, ": unknown app '", row.app(), "'"));
  }
  return Annotate(st, what);
}

// The rows `stmt` (bound) selects from a version table.
template <typename T>
absl::StatusOr<std::vector<T>> ReadVersions(SqliteStatement& stmt, const VersionTable<T>& table,
                                            const std::string& what) {
  std::vector<T> rows;
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return Annotate(row.status(), what);
    if (!*row) break;
    absl::StatusOr<T> item = table.read(stmt);
    if (!item.ok()) return Annotate(item.status(), what);
    rows.push_back(*std::move(item));
  }
  return rows;
}

template <typename T>
absl::StatusOr<T> GetVersion(SqliteConnection* db, const VersionTable<T>& table,
                             const std::string& app, const std::string& version) {
  const std::string name = ReleaseName(app, version);
  SqliteStatement stmt = db->Prepare(table.select_one_sql);
  stmt.Bind(app).Bind(version);
  FLEET_ASSIGN_OR_RETURN(
      std::vector<T> rows,
      ReadVersions(stmt, table, absl::StrCat("cannot read ", table.noun, " ", name)));
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("unknown ", table.noun, " ", name));
  return std::move(rows.front());
}

template <typename T>
absl::StatusOr<std::vector<T>> ListVersions(SqliteConnection* db, const VersionTable<T>& table,
                                            const std::string& app) {
  SqliteStatement stmt = db->Prepare(table.select_all_sql);
  stmt.Bind(app);
  return ReadVersions(stmt, table,
                      absl::StrCat("cannot list ", table.noun, "s of app '", app, "'"));
}

}  // namespace

absl::Status SqliteQueries::UpsertApp(const App& app, bool* created) {
  const std::string& name = app.spec().name();
  if (name.empty()) return absl::InvalidArgumentError("cannot write app: its spec has no name");
  const std::string what = absl::StrCat("cannot write app '", name, "'");
  std::string spec;
  if (!app.spec().SerializeToString(&spec)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": spec does not serialize"));
  }
  SqliteStatement insert = db_->Prepare(
      "INSERT INTO apps (name, spec, spec_yaml, desired_version, created_at_ms, updated_at_ms) "
      "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING");
  insert.Bind(name)
      .BindBlob(spec)
      .Bind(app.spec_yaml())
      .Bind(app.desired_version())
      .Bind(app.updated_at_ms())
      .Bind(app.updated_at_ms());
  FLEET_RETURN_IF_ERROR(Annotate(insert.Run(), what));
  const bool is_new = db_->Changes() > 0;
  if (!is_new) {
    SqliteStatement update =
        db_->Prepare("UPDATE apps SET spec = ?, spec_yaml = ?, updated_at_ms = ? WHERE name = ?");
    update.BindBlob(spec).Bind(app.spec_yaml()).Bind(app.updated_at_ms()).Bind(name);
    FLEET_RETURN_IF_ERROR(Annotate(update.Run(), what));
  }
  if (created != nullptr) *created = is_new;
  return absl::OkStatus();
}

absl::StatusOr<App> SqliteQueries::GetApp(const std::string& name) {
  const std::string what = absl::StrCat("cannot read app '", name, "'");
  SqliteStatement stmt = db_->Prepare("SELECT " FLEET_APP_COLUMNS " FROM apps WHERE name = ?");
  stmt.Bind(name);
  absl::StatusOr<bool> row = stmt.Step();
  if (!row.ok()) return Annotate(row.status(), what);
  if (!*row) return absl::NotFoundError(absl::StrCat("unknown app '", name, "'"));
  absl::StatusOr<App> app = ReadApp(stmt);
  if (!app.ok()) return Annotate(app.status(), what);
  return app;
}

absl::StatusOr<std::vector<App>> SqliteQueries::ListApps() {
  SqliteStatement stmt = db_->Prepare("SELECT " FLEET_APP_COLUMNS " FROM apps ORDER BY name");
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

absl::Status SqliteQueries::SetDesired(const std::string& app, fleet::v1::Subject subject,
                                       const std::string& version) {
  const bool config = subject == fleet::v1::SUBJECT_CONFIG;
  SqliteStatement stmt =
      db_->Prepare(config ? "UPDATE apps SET desired_config = ? WHERE name = ?"
                          : "UPDATE apps SET desired_version = ? WHERE name = ?");
  stmt.Bind(version).Bind(app);
  FLEET_RETURN_IF_ERROR(
      Annotate(stmt.Run(), absl::StrCat("cannot set desired ", config ? "config" : "version",
                                        " of app '", app, "' to '", version, "'")));
  if (db_->Changes() == 0) return absl::NotFoundError(absl::StrCat("unknown app '", app, "'"));
  return absl::OkStatus();
}

absl::Status SqliteQueries::InsertRelease(const Release& release) {
  // Only what the row's other columns do not hold.
  Release metadata;
  *metadata.mutable_metadata() = release.metadata();
  metadata.set_signature(release.signature());
  std::string metadata_bytes;
  if (!metadata.SerializeToString(&metadata_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot insert release ",
                                                   ReleaseName(release.app(), release.version()),
                                                   ": metadata does not serialize"));
  }
  return InsertVersion(db_, kReleases, release, metadata_bytes);
}

absl::StatusOr<Release> SqliteQueries::GetRelease(const std::string& app,
                                                  const std::string& version) {
  return GetVersion(db_, kReleases, app, version);
}

absl::StatusOr<std::vector<Release>> SqliteQueries::ListReleases(const std::string& app) {
  return ListVersions(db_, kReleases, app);
}

absl::Status SqliteQueries::InsertConfig(const ConfigRelease& config) {
  ConfigRelease files;
  *files.mutable_files() = config.files();
  return InsertVersion(db_, kConfigs, config, files.SerializeAsString());
}

absl::StatusOr<ConfigRelease> SqliteQueries::GetConfig(const std::string& app,
                                                       const std::string& version) {
  return GetVersion(db_, kConfigs, app, version);
}

absl::StatusOr<std::vector<ConfigRelease>> SqliteQueries::ListConfigs(const std::string& app) {
  return ListVersions(db_, kConfigs, app);
}

}  // namespace fleet::controller
