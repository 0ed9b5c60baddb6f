// The Store of store.h on a PostgreSQL database (libpq), for controllers
// that share one database. The schema and its migration ladder are in
// pg_schema.{h,cc}; a database newer than this code is refused.
//
// Writes hold one mutex on one connection; a transaction holds it from
// Begin() until it commits, fails or is destroyed, and runs as SERIALIZABLE
// after taking write_lock in EXCLUSIVE mode as its first statement, so
// writes run one at a time across every process on the database, like
// SQLite's one writer, and a transaction sees every write committed before
// it began. Begin() waits up to 5 s for another process's transaction, then
// is Unavailable. A write on the store itself runs in a transaction of its
// own and is run again (up to 5 times) when PostgreSQL reports a
// serialization failure or deadlock, or the connection dropped before the
// commit: callers never see those. A commit whose answer was lost with the
// connection is not run again (it may have been stored): Unavailable.
// A transaction from Begin() is never failed by a serialization conflict,
// so its caller has nothing to retry for one: writers run one at a time
// with their snapshot taken after write_lock, and readers are REPEATABLE
// READ READ ONLY, outside SERIALIZABLE's conflict tracking. When its
// connection drops it fails (Unavailable) like any store error, and the
// next Begin() reconnects. Every statement is prepared once per connection.
//
// Reads on the store (not in a transaction) run on two connections of
// their own, each read in one REPEATABLE READ READ ONLY transaction: they
// see one committed state and never wait for a writer. A read whose
// connection dropped reconnects and is run once more.
#ifndef FLEET_CONTROLLER_PG_STORE_H_
#define FLEET_CONTROLLER_PG_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "controller/pg_schema.h"
#include "controller/store.h"

namespace fleet::controller {

// Connects to the database at `url` (postgres://...) and migrates it to
// kPgSchemaVersion. FailedPrecondition ("database URL has schema version N,
// newer than this fleet-controller ...") when the database is newer than
// this code; Unavailable when it cannot be reached; another error when it
// cannot be migrated. Every error names the database without its password.
// No transaction may outlive the store.
absl::StatusOr<std::unique_ptr<Store>> OpenPgStore(const std::string& url);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_PG_STORE_H_
