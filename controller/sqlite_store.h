// The Store of store.h on an embedded SQLite database: one connection in WAL
// mode with synchronous=FULL, so that a write acknowledged is on disk. The
// schema and its migration ladder are in sqlite_schema.{h,cc}; a database
// newer than this code is refused.
//
// Writes hold one mutex; a transaction holds it from Begin() until it
// commits, fails or is destroyed, and runs in SQLite as BEGIN IMMEDIATE, so
// it never fails part way for a lock another process holds. A write on the
// store itself runs in a transaction of its own. Reads on the store (not in
// a transaction) run on two read-only connections of their own, each read
// in one read transaction: they see the last committed state and never wait
// for a transaction on the writing connection, nor for its fsync. (An
// in-memory database has one connection; its reads take the mutex.)
#ifndef FLEET_CONTROLLER_SQLITE_STORE_H_
#define FLEET_CONTROLLER_SQLITE_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "controller/sqlite_schema.h"
#include "controller/store.h"

namespace fleet::controller {

// Opens or creates the database at `path` and migrates it to
// kSqliteSchemaVersion. FailedPrecondition ("database PATH has schema
// version N, newer than this fleet-controller ...") when the database is
// newer than this code, DataLoss when the file is not a database, another
// error naming `path` when it cannot be opened or migrated. No transaction
// may outlive the store.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_SQLITE_STORE_H_
