#include "controller/store_location.h"

#include <sys/stat.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/fs.h"
#include "common/status.h"
#include "controller/pg_connection.h"
#include "controller/pg_store.h"
#include "controller/sqlite_store.h"

namespace fleet::controller {
namespace {

absl::Status CheckPostgresUrl(const std::string& url, absl::string_view where) {
  if (IsPostgresUrl(url)) return absl::OkStatus();
  // The text may be a connection string with a password: name only where
  // it came from.
  return absl::InvalidArgumentError(
      absl::StrCat(where, " must hold a postgres:// or postgresql:// URL"));
}

absl::StatusOr<std::string> ReadUrlFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("--database-file ", path));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "--database-file %s may be read by group or others (mode %04o): chmod 600 it", path,
        st.st_mode & 07777));
  }
  FLEET_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::string url(absl::StripAsciiWhitespace(text));
  if (url.empty())
    return absl::InvalidArgumentError(absl::StrCat("--database-file ", path, " is empty"));
  FLEET_RETURN_IF_ERROR(CheckPostgresUrl(url, absl::StrCat("--database-file ", path)));
  return url;
}

}  // namespace

absl::StatusOr<std::string> ResolveDatabaseUrl(const std::string& flag_url,
                                               const std::string& url_file, const char* env_url) {
  if (!flag_url.empty() && !url_file.empty()) {
    return absl::InvalidArgumentError("give --database or --database-file, not both");
  }
  if (!flag_url.empty()) {
    FLEET_RETURN_IF_ERROR(CheckPostgresUrl(flag_url, "--database"));
    return flag_url;
  }
  if (!url_file.empty()) return ReadUrlFile(url_file);
  if (env_url != nullptr && env_url[0] != '\0') {
    std::string url(absl::StripAsciiWhitespace(env_url));
    FLEET_RETURN_IF_ERROR(CheckPostgresUrl(url, kDatabaseEnv));
    return url;
  }
  return std::string();
}

absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& database_url,
                                                 const std::string& data_dir) {
  if (database_url.empty()) return OpenSqliteStore(data_dir + "/fleet.db");
  return OpenPgStore(database_url);
}

std::string DescribeStore(const std::string& database_url, const std::string& data_dir) {
  if (database_url.empty()) return absl::StrCat("SQLite ", data_dir, "/fleet.db");
  return absl::StrCat("PostgreSQL ", RedactDatabaseUrl(database_url));
}

}  // namespace fleet::controller
