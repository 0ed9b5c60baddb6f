// Choosing the store: --database, --database-file, FLEET_DATABASE, and the
// refusals, none of which repeats a password.
#include "controller/store_location.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::controller {
namespace {

using ::fleet::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kUrl[] = "postgres://fleet:hunter2@db1:5432/fleet";

TEST(StoreLocationTest, Resolve_NothingGivenIsSqlite) {
  absl::StatusOr<std::string> url = ResolveDatabaseUrl("", "", nullptr);
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(*url, "");
  EXPECT_EQ(*ResolveDatabaseUrl("", "", ""), "");
  EXPECT_EQ(DescribeStore("", "/var/lib/fleet"), "SQLite /var/lib/fleet/fleet.db");
}

TEST(StoreLocationTest, Resolve_FlagThenFileThenEnvironment) {
  fleet::testing::TempDir dir;
  fleet::testing::WriteTextFile(dir.Sub("db.url"), "postgres://from-file/fleet\n", 0600);
  EXPECT_EQ(*ResolveDatabaseUrl(kUrl, "", "postgres://env/fleet"), kUrl);
  EXPECT_EQ(*ResolveDatabaseUrl("", dir.Sub("db.url"), "postgres://env/fleet"),
            "postgres://from-file/fleet");
  EXPECT_EQ(*ResolveDatabaseUrl("", "", "postgres://env/fleet"), "postgres://env/fleet");
}

TEST(StoreLocationTest, Resolve_BothFlagsAreRefused) {
  EXPECT_THAT(
      ResolveDatabaseUrl(kUrl, "/etc/fleet/db.url", nullptr),
      StatusIs(absl::StatusCode::kInvalidArgument, "give --database or --database-file, not both"));
}

TEST(StoreLocationTest, Resolve_FileReadableByOthersIsRefusedWithoutReadingIt) {
  fleet::testing::TempDir dir;
  fleet::testing::WriteTextFile(dir.Sub("db.url"), kUrl, 0644);
  absl::StatusOr<std::string> url = ResolveDatabaseUrl("", dir.Sub("db.url"), nullptr);
  EXPECT_THAT(url, StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(std::string(url.status().message()),
              HasSubstr("may be read by group or others (mode 0644): chmod 600 it"));
  EXPECT_THAT(std::string(url.status().message()), Not(HasSubstr("hunter2")));
  fleet::testing::WriteTextFile(dir.Sub("group.url"), kUrl, 0640);
  EXPECT_THAT(ResolveDatabaseUrl("", dir.Sub("group.url"), nullptr),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(StoreLocationTest, Resolve_NotAPostgresUrlIsRefusedWithoutRepeatingIt) {
  fleet::testing::TempDir dir;
  fleet::testing::WriteTextFile(dir.Sub("db.url"), "host=db1 password=hunter2", 0600);
  fleet::testing::WriteTextFile(dir.Sub("empty.url"), "\n", 0600);
  for (const absl::StatusOr<std::string>& url :
       {ResolveDatabaseUrl("host=db1 password=hunter2", "", nullptr),
        ResolveDatabaseUrl("", dir.Sub("db.url"), nullptr),
        ResolveDatabaseUrl("", "", "mysql://root:hunter2@db1/fleet")}) {
    EXPECT_THAT(url, StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(std::string(url.status().message()), HasSubstr("postgres:// or postgresql://"));
    EXPECT_THAT(std::string(url.status().message()), Not(HasSubstr("hunter2")));
  }
  EXPECT_THAT(ResolveDatabaseUrl("", dir.Sub("empty.url"), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResolveDatabaseUrl("", dir.Sub("missing.url"), nullptr),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(StoreLocationTest, Describe_NamesThePostgresDatabaseWithoutThePassword) {
  EXPECT_EQ(DescribeStore(kUrl, "/var/lib/fleet"), "PostgreSQL postgresql://fleet@db1:5432/fleet");
}

}  // namespace
}  // namespace fleet::controller
