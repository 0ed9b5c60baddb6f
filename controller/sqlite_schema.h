// The schema of the SQLite store and its migration ladder.
#ifndef FLEET_CONTROLLER_SQLITE_SCHEMA_H_
#define FLEET_CONTROLLER_SQLITE_SCHEMA_H_

#include "absl/status/status.h"
#include "controller/sqlite_statement.h"

namespace fleet::controller {

// The schema version this code writes (PRAGMA user_version). The tables are
// documented at the top of sqlite_schema.cc.
inline constexpr int kSqliteSchemaVersion = 7;

// Prepares the database of `db` for the store: refuses a database newer than
// kSqliteSchemaVersion with FailedPrecondition ("database PATH has schema
// version N, newer than this fleet-controller (M); upgrade
// fleet-controller") before changing anything, then enables WAL (required
// for a file), synchronous=FULL and foreign keys, and migrates the schema
// one version at a time, each step in one transaction. On failure returns
// the error, naming the path and the version it could not reach; the steps
// before it stay done.
absl::Status PrepareSqliteDatabase(SqliteConnection* db);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_SQLITE_SCHEMA_H_
