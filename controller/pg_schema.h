// The schema of the PostgreSQL store and its migration ladder.
#ifndef FLEET_CONTROLLER_PG_SCHEMA_H_
#define FLEET_CONTROLLER_PG_SCHEMA_H_

#include "absl/status/status.h"
#include "controller/pg_connection.h"

namespace fleet::controller {

// The schema version this code writes (the one row of schema_version). The
// tables are documented at the top of pg_schema.cc.
inline constexpr int kPgSchemaVersion = 2;

// Prepares the database of `db` for the store: refuses a database newer
// than kPgSchemaVersion with FailedPrecondition ("database URL has schema
// version N, newer than this fleet-controller (M); upgrade
// fleet-controller") before changing anything, then migrates the schema one
// version at a time, each step in one transaction that holds the
// schema_version table locked, so that controllers starting together
// migrate once. On failure returns the error, naming the database (without
// its password) and the version it could not reach; the steps before it
// stay done.
absl::Status PreparePgDatabase(PgConnection* db);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_PG_SCHEMA_H_
