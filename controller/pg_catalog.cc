// Apps, releases, configs and API tokens of the PostgreSQL store (see
// pg_queries.h).
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status.h"
#include "controller/pg_queries.h"

namespace fleet::controller {
namespace {

using fleet::v1::App;
using fleet::v1::ConfigRelease;
using fleet::v1::Release;
using fleet::v1::TokenInfo;

std::string ReleaseName(absl::string_view app, absl::string_view version) {
  return absl::StrCat(app, "@", version);
}

// Column lists are macros so that each statement is one literal: the text
// is the key of the connection's prepared statements.
#define FLEET_APP_COLUMNS "name, spec, spec_yaml, desired_version, updated_at_ms, desired_config"

absl::StatusOr<App> ReadApp(const PgResult& r, int row) {
  App app;
  if (!app.mutable_spec()->ParseFromString(r.Bytes(row, 1))) {
    return absl::DataLossError(absl::StrCat("spec of app '", r.Text(row, 0), "' does not parse"));
  }
  app.set_spec_yaml(r.Text(row, 2));
  app.set_desired_version(r.Text(row, 3));
  app.set_updated_at_ms(r.Int(row, 4));
  app.set_desired_config(r.Text(row, 5));
  return app;
}

// What differs between the releases and the configs table.
template <typename T>
struct VersionTable {
  const char* insert_sql;
  const char* select_one_sql;  // binds app, version
  const char* select_all_sql;  // binds app
  const char* noun;            // "release" or "config"
  const char* blob_name;       // names the blob column's content in errors
};

#define FLEET_VERSION_COLUMNS "app, version, sha256, size, created_at_ms, created_by, "

constexpr VersionTable<Release> kReleases = {
    "INSERT INTO releases (" FLEET_VERSION_COLUMNS "metadata) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    "SELECT " FLEET_VERSION_COLUMNS "metadata FROM releases WHERE app = $1 AND version = $2",
    "SELECT " FLEET_VERSION_COLUMNS "metadata FROM releases WHERE app = $1 ORDER BY seq",
    "release",
    "metadata of release ",
};

constexpr VersionTable<ConfigRelease> kConfigs = {
    "INSERT INTO configs (" FLEET_VERSION_COLUMNS "files) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    "SELECT " FLEET_VERSION_COLUMNS "files FROM configs WHERE app = $1 AND version = $2",
    "SELECT " FLEET_VERSION_COLUMNS "files FROM configs WHERE app = $1 ORDER BY seq",
    "config",
    "file list of config ",
};

// Row `row` of a version table: the blob (a message of type T with only the
// fields the other columns do not hold), then the other columns.
template <typename T>
absl::StatusOr<std::vector<T>> ReadVersions(const PgResult& r, const VersionTable<T>& table) {
  std::vector<T> rows;
  for (int row = 0; row < r.rows(); ++row) {
    T& item = rows.emplace_back();
    if (!item.ParseFromString(r.Bytes(row, 6))) {
      return absl::DataLossError(absl::StrCat(
          table.blob_name, ReleaseName(r.Text(row, 0), r.Text(row, 1)), " does not parse"));
    }
    item.set_app(r.Text(row, 0));
    item.set_version(r.Text(row, 1));
    item.set_sha256(r.Text(row, 2));
    item.set_size(r.Int(row, 3));
    item.set_created_at_ms(r.Int(row, 4));
    item.set_created_by(r.Text(row, 5));
  }
  return rows;
}

template <typename T>
absl::Status InsertVersion(PgConnection* db, const VersionTable<T>& table, const T& row,
                           absl::string_view blob) {
  const std::string name = ReleaseName(row.app(), row.version());
  const std::string what = absl::StrCat("cannot insert ", table.noun, " ", name);
  if (row.app().empty() || row.version().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": app and version must be set"));
  }
  PgParams params;
  params.Add(row.app())
      .Add(row.version())
      .Add(row.sha256())
      .Add(row.size())
      .Add(row.created_at_ms())
      .Add(row.created_by())
      .AddBytes(blob);
  absl::Status st = db->Query(table.insert_sql, params).status();
  if (db->FailedWith(kPgUniqueViolation)) {
    return absl::AlreadyExistsError(absl::StrCat(table.noun, " ", name, " exists already"));
  }
  if (db->FailedWith(kPgForeignKeyViolation)) {
    return absl::NotFoundError(absl::StrCat(what, ": unknown app '", row.app(), "'"));
  }
  return Annotate(st, what);
}

template <typename T>
absl::StatusOr<T> GetVersion(PgConnection* db, const VersionTable<T>& table, const std::string& app,
                             const std::string& version) {
  const std::string name = ReleaseName(app, version);
  const std::string what = absl::StrCat("cannot read ", table.noun, " ", name);
  PgParams params;
  params.Add(app).Add(version);
  absl::StatusOr<PgResult> r = db->Query(table.select_one_sql, params);
  if (!r.ok()) return Annotate(r.status(), what);
  absl::StatusOr<std::vector<T>> rows = ReadVersions(*r, table);
  if (!rows.ok()) return Annotate(rows.status(), what);
  if (rows->empty()) return absl::NotFoundError(absl::StrCat("unknown ", table.noun, " ", name));
  return std::move(rows->front());
}

template <typename T>
absl::StatusOr<std::vector<T>> ListVersions(PgConnection* db, const VersionTable<T>& table,
                                            const std::string& app) {
  const std::string what = absl::StrCat("cannot list ", table.noun, "s of app '", app, "'");
  PgParams params;
  params.Add(app);
  absl::StatusOr<PgResult> r = db->Query(table.select_all_sql, params);
  if (!r.ok()) return Annotate(r.status(), what);
  absl::StatusOr<std::vector<T>> rows = ReadVersions(*r, table);
  if (!rows.ok()) return Annotate(rows.status(), what);
  return rows;
}

#define FLEET_TOKEN_COLUMNS "id, role, app, description, created_by, created_at_ms, revoked_at_ms"

TokenInfo ReadToken(const PgResult& r, int row) {
  TokenInfo token;
  token.set_id(r.Text(row, 0));
  token.set_role(static_cast<fleet::v1::Role>(r.Int(row, 1)));
  token.set_app(r.Text(row, 2));
  token.set_description(r.Text(row, 3));
  token.set_created_by(r.Text(row, 4));
  token.set_created_at_ms(r.Int(row, 5));
  token.set_revoked_at_ms(r.Int(row, 6));
  return token;
}

}  // namespace

absl::Status PgQueries::UpsertApp(const App& app, bool* created) {
  const std::string& name = app.spec().name();
  if (name.empty()) return absl::InvalidArgumentError("cannot write app: its spec has no name");
  const std::string what = absl::StrCat("cannot write app '", name, "'");
  std::string spec;
  if (!app.spec().SerializeToString(&spec)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": spec does not serialize"));
  }
  PgParams insert;
  insert.Add(name)
      .AddBytes(spec)
      .Add(app.spec_yaml())
      .Add(app.desired_version())
      .Add(app.updated_at_ms());
  absl::StatusOr<PgResult> inserted = db_->Query(
      "INSERT INTO apps (name, spec, spec_yaml, desired_version, desired_config, created_at_ms, "
      "updated_at_ms) VALUES ($1, $2, $3, $4, '', $5, $5) ON CONFLICT (name) DO NOTHING",
      insert);
  if (!inserted.ok()) return Annotate(inserted.status(), what);
  const bool is_new = inserted->affected() > 0;
  if (!is_new) {
    PgParams update;
    update.AddBytes(spec).Add(app.spec_yaml()).Add(app.updated_at_ms()).Add(name);
    FLEET_RETURN_IF_ERROR(Annotate(
        db_->Query("UPDATE apps SET spec = $1, spec_yaml = $2, updated_at_ms = $3 WHERE name = $4",
                   update)
            .status(),
        what));
  }
  if (created != nullptr) *created = is_new;
  return absl::OkStatus();
}

absl::StatusOr<App> PgQueries::GetApp(const std::string& name) {
  const std::string what = absl::StrCat("cannot read app '", name, "'");
  PgParams params;
  params.Add(name);
  absl::StatusOr<PgResult> r =
      db_->Query("SELECT " FLEET_APP_COLUMNS " FROM apps WHERE name = $1", params);
  if (!r.ok()) return Annotate(r.status(), what);
  if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("unknown app '", name, "'"));
  absl::StatusOr<App> app = ReadApp(*r, 0);
  if (!app.ok()) return Annotate(app.status(), what);
  return app;
}

absl::StatusOr<std::vector<App>> PgQueries::ListApps() {
  // COLLATE "C": byte order, as SQLite sorts, whatever the database's locale.
  absl::StatusOr<PgResult> r =
      db_->Query("SELECT " FLEET_APP_COLUMNS " FROM apps ORDER BY name COLLATE \"C\"");
  if (!r.ok()) return Annotate(r.status(), "cannot list apps");
  std::vector<App> apps;
  for (int row = 0; row < r->rows(); ++row) {
    absl::StatusOr<App> app = ReadApp(*r, row);
    if (!app.ok()) return Annotate(app.status(), "cannot list apps");
    apps.push_back(*std::move(app));
  }
  return apps;
}

absl::Status PgQueries::SetDesired(const std::string& app, fleet::v1::Subject subject,
                                   const std::string& version) {
  const bool config = subject == fleet::v1::SUBJECT_CONFIG;
  PgParams params;
  params.Add(version).Add(app);
  absl::StatusOr<PgResult> r =
      db_->Query(config ? "UPDATE apps SET desired_config = $1 WHERE name = $2"
                        : "UPDATE apps SET desired_version = $1 WHERE name = $2",
                 params);
  if (!r.ok()) {
    return Annotate(r.status(), absl::StrCat("cannot set desired ", config ? "config" : "version",
                                             " of app '", app, "' to '", version, "'"));
  }
  if (r->affected() == 0) return absl::NotFoundError(absl::StrCat("unknown app '", app, "'"));
  return absl::OkStatus();
}

absl::Status PgQueries::InsertRelease(const Release& release) {
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

absl::StatusOr<Release> PgQueries::GetRelease(const std::string& app, const std::string& version) {
  return GetVersion(db_, kReleases, app, version);
}

absl::StatusOr<std::vector<Release>> PgQueries::ListReleases(const std::string& app) {
  return ListVersions(db_, kReleases, app);
}

absl::Status PgQueries::InsertConfig(const ConfigRelease& config) {
  ConfigRelease files;
  *files.mutable_files() = config.files();
  return InsertVersion(db_, kConfigs, config, files.SerializeAsString());
}

absl::StatusOr<ConfigRelease> PgQueries::GetConfig(const std::string& app,
                                                   const std::string& version) {
  return GetVersion(db_, kConfigs, app, version);
}

absl::StatusOr<std::vector<ConfigRelease>> PgQueries::ListConfigs(const std::string& app) {
  return ListVersions(db_, kConfigs, app);
}

absl::Status PgQueries::InsertToken(const TokenInfo& token, const std::string& hash) {
  const std::string what = absl::StrCat("cannot insert API token '", token.id(), "'");
  if (token.id().empty() || hash.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": id and hash must be set"));
  }
  if (token.role() == fleet::v1::ROLE_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": it has no role"));
  }
  PgParams params;
  params.Add(token.id())
      .Add(hash)
      .Add(static_cast<int>(token.role()))
      .Add(token.app())
      .Add(token.description())
      .Add(token.created_by())
      .Add(token.created_at_ms())
      .Add(token.revoked_at_ms());
  absl::Status st = db_->Query(
                           "INSERT INTO tokens (id, hash, role, app, description, created_by, "
                           "created_at_ms, revoked_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                           params)
                        .status();
  if (db_->FailedWith(kPgUniqueViolation)) {
    return absl::AlreadyExistsError(
        absl::StrCat(what, ": a token with this id or hash exists already"));
  }
  return Annotate(st, what);
}

absl::StatusOr<TokenInfo> PgQueries::FindTokenByHash(const std::string& hash) {
  PgParams params;
  params.Add(hash);
  absl::StatusOr<PgResult> r =
      db_->Query("SELECT " FLEET_TOKEN_COLUMNS " FROM tokens WHERE hash = $1", params);
  if (!r.ok()) return Annotate(r.status(), "cannot look up API token");
  // The hash is not named: it is as good as the token for finding the row.
  if (r->rows() == 0) return absl::NotFoundError("no API token has this hash");
  return ReadToken(*r, 0);
}

absl::StatusOr<std::vector<TokenInfo>> PgQueries::ListTokens() {
  absl::StatusOr<PgResult> r =
      db_->Query("SELECT " FLEET_TOKEN_COLUMNS " FROM tokens ORDER BY seq");
  if (!r.ok()) return Annotate(r.status(), "cannot list API tokens");
  std::vector<TokenInfo> tokens;
  for (int row = 0; row < r->rows(); ++row) tokens.push_back(ReadToken(*r, row));
  return tokens;
}

absl::StatusOr<TokenInfo> PgQueries::RevokeToken(const std::string& id, int64_t at_ms) {
  const std::string what = absl::StrCat("cannot revoke API token '", id, "'");
  PgParams update;
  update.Add(at_ms).Add(id);
  FLEET_RETURN_IF_ERROR(Annotate(
      db_->Query("UPDATE tokens SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms = 0", update)
          .status(),
      what));
  PgParams select;
  select.Add(id);
  absl::StatusOr<PgResult> r =
      db_->Query("SELECT " FLEET_TOKEN_COLUMNS " FROM tokens WHERE id = $1", select);
  if (!r.ok()) return Annotate(r.status(), what);
  if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("unknown API token '", id, "'"));
  return ReadToken(*r, 0);
}

absl::StatusOr<int64_t> PgQueries::CountTokens() {
  absl::StatusOr<PgResult> r = db_->Query("SELECT count(*) FROM tokens");
  if (!r.ok()) return Annotate(r.status(), "cannot count API tokens");
  return r->rows() > 0 ? r->Int(0, 0) : 0;
}

}  // namespace fleet::controller
