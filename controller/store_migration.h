// `fleet-controller migrate-store`: copies a SQLite store (DATA_DIR/fleet.db)
// into an empty PostgreSQL database, every row of every table with its ids
// and order, and verifies the copy before committing it.
#ifndef FLEET_CONTROLLER_STORE_MIGRATION_H_
#define FLEET_CONTROLLER_STORE_MIGRATION_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace fleet::controller {

struct StoreCopyReport {
  // (table, rows copied), in copy order: apps, releases, configs, hosts,
  // host_apps, rollouts, rollout_tasks, events, alerts, tokens.
  std::vector<std::pair<std::string, int64_t>> tables;
  std::string source;       // DATA_DIR/fleet.db
  std::string destination;  // the database URL without its password
};

// Copies the store at `data_dir`/fleet.db into the PostgreSQL database at
// `url`, creating its schema. Reads the SQLite store in one read
// transaction (a controller may keep running on it, though its later
// writes are not copied) and writes everything in one PostgreSQL
// transaction that holds write_lock; before committing it reads back, through
// the same queries the stores answer with, every app, release, config,
// host, rollout with its tasks, event, alert and token from both sides and
// compares them, and compares the row count of every table. So on any
// failure, and on a kill at any point, the database is left as it was.
//
// NotFound when there is no DATA_DIR/fleet.db; FailedPrecondition when the
// database holds rows already ("database URL is not empty: TABLE holds N
// rows; migrate-store copies into an empty database only") or either schema
// is newer than this code; DataLoss when the copy reads back different (the
// first difference named); the error of either database otherwise. The
// SQLite store is migrated to this code's schema version if older, and
// otherwise not changed. Artifacts (DATA_DIR/blobs) are not copied.
absl::StatusOr<StoreCopyReport> CopySqliteStoreToPostgres(const std::string& data_dir,
                                                          const std::string& url);

// "copied 2 apps, 5 releases, ... from A to B and verified the copy".
std::string DescribeStoreCopy(const StoreCopyReport& report);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_STORE_MIGRATION_H_
