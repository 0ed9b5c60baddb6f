// Where fleet-controller keeps its state, and opening that store: SQLite in
// the data dir by default, PostgreSQL when a database URL is given on the
// command line (--database), in a file (--database-file) or in the
// environment (FLEET_DATABASE). The URL is never logged or put in an error
// with its password: DescribeStore and every error use RedactDatabaseUrl.
#ifndef FLEET_CONTROLLER_STORE_LOCATION_H_
#define FLEET_CONTROLLER_STORE_LOCATION_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "controller/store.h"

namespace fleet::controller {

// The environment variable read when neither flag is given.
inline constexpr char kDatabaseEnv[] = "FLEET_DATABASE";

// The database URL from `flag_url` (--database), the file `url_file`
// (--database-file) or `env_url` (FLEET_DATABASE; null when unset), in
// that order; "" when none is given (SQLite in the data dir).
// InvalidArgument when both flags are given, when the URL is not
// postgres:// or postgresql://, or when the file is empty;
// PermissionDenied when the file may be read by its group or others
// ("chmod 600 it"); the error of reading the file otherwise. No error
// repeats a password.
absl::StatusOr<std::string> ResolveDatabaseUrl(const std::string& flag_url,
                                               const std::string& url_file, const char* env_url);

// The store for `database_url` ("" = SQLite at DATA_DIR/fleet.db), opened
// and migrated (OpenSqliteStore, OpenPgStore).
absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& database_url,
                                                 const std::string& data_dir);

// For the start log line: "SQLite DATA_DIR/fleet.db" or "PostgreSQL
// postgresql://user@host:port/db", never the password.
std::string DescribeStore(const std::string& database_url, const std::string& data_dir);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_STORE_LOCATION_H_
