// API tokens in the SQLite store (see sqlite_queries.h).
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "controller/sqlite_queries.h"

namespace fleet::controller {
namespace {

// A column list as a macro so that each statement is one literal: the text
// is the key of the connection's statement cache.
#define FLEET_TOKEN_COLUMNS "id, role, app, description, created_by, created_at_ms, revoked_at_ms"

fleet::v1::TokenInfo ReadToken(const SqliteStatement& stmt) {
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

absl::Status SqliteQueries::InsertToken(const fleet::v1::TokenInfo& token,
                                        const std::string& hash) {
  const std::string what = absl::StrCat("cannot insert API token '", token.id(), "'");
  if (token.id().empty() || hash.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": id and hash must be set"));
  }
  if (token.role() == fleet::v1::ROLE_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": it has no role"));
  }
  SqliteStatement stmt = db_->Prepare(
      "INSERT INTO tokens (id, hash, role, app, description, created_by, created_at_ms, "
      "revoked_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  stmt.Bind(token.id())
      .Bind(hash)
      .Bind(static_cast<int>(token.role()))
      .Bind(token.app())
      .Bind(token.description())
      .Bind(token.created_by())
      .Bind(token.created_at_ms())
      .Bind(token.revoked_at_ms());
  absl::Status st = stmt.Run();
  if (stmt.FailedOnDuplicateKey()) {
    return absl::AlreadyExistsError(
        absl::StrCat(what, ": a token with this id or hash exists already"));
  }
  return Annotate(st, what);
}

absl::StatusOr<fleet::v1::TokenInfo> SqliteQueries::FindTokenByHash(const std::string& hash) {
  SqliteStatement stmt = db_->Prepare("SELECT " FLEET_TOKEN_COLUMNS " FROM tokens WHERE hash = ?");
  stmt.Bind(hash);
  absl::StatusOr<bool> row = stmt.Step();
  if (!row.ok()) return Annotate(row.status(), "cannot look up API token");
  // The hash is not named: it is as good as the token for finding the row.
  if (!*row) return absl::NotFoundError("no API token has this hash");
  return ReadToken(stmt);
}

absl::StatusOr<std::vector<fleet::v1::TokenInfo>> SqliteQueries::ListTokens() {
  SqliteStatement stmt = db_->Prepare("SELECT " FLEET_TOKEN_COLUMNS " FROM tokens ORDER BY rowid");
  std::vector<fleet::v1::TokenInfo> tokens;
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return Annotate(row.status(), "cannot list API tokens");
    if (!*row) break;
    tokens.push_back(ReadToken(stmt));
  }
  return tokens;
}

absl::StatusOr<fleet::v1::TokenInfo> SqliteQueries::RevokeToken(const std::string& id,
                                                                int64_t at_ms) {
  const std::string what = absl::StrCat("cannot revoke API token '", id, "'");
  SqliteStatement update =
      db_->Prepare("UPDATE tokens SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms = 0");
  update.Bind(at_ms).Bind(id);
  FLEET_RETURN_IF_ERROR(Annotate(update.Run(), what));
  SqliteStatement select = db_->Prepare("SELECT " FLEET_TOKEN_COLUMNS " FROM tokens WHERE id = ?");
  select.Bind(id);
  absl::StatusOr<bool> row = select.Step();
  if (!row.ok()) return Annotate(row.status(), what);
  if (!*row) return absl::NotFoundError(absl::StrCat("unknown API token '", id, "'"));
  return ReadToken(select);
}

absl::StatusOr<int64_t> SqliteQueries::CountTokens() {
  SqliteStatement stmt = db_->Prepare("SELECT count(*) FROM tokens");
  absl::StatusOr<bool> row = stmt.Step();
  if (!row.ok()) return Annotate(row.status(), "cannot count API tokens");
  return *row ? stmt.Int(0) : 0;
}

}  // namespace fleet::controller
