// Opening a SqliteStore: WAL, the schema version, the migration ladder and
// the databases it refuses.
#include "controller/sqlite_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/unit/controller/store_fixture.h"

namespace fleet::controller {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST_F(SqliteStoreTest, Store_MigratesNewDatabaseToCurrentSchemaVersion) {
  EXPECT_EQ(QueryOne(path(), "PRAGMA user_version"), absl::StrCat(kSqliteSchemaVersion));
  EXPECT_EQ(QueryOne(path(),
                     "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master "
                     "WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name)"),
            "alerts,apps,configs,events,host_apps,host_holds,hosts,releases,rollout_tasks,"
            "rollouts,tokens");
}

TEST_F(SqliteStoreTest, Store_EnablesWriteAheadLog) {
  // journal_mode=WAL is stored in the file, so a fresh connection sees it.
  EXPECT_EQ(QueryOne(path(), "PRAGMA journal_mode"), "wal");
}

TEST_F(SqliteStoreTest, Store_ReopenKeepsDataAndSchemaVersion) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->InsertRelease(MakeRelease("web", "v1")));
  Host host;
  host.set_id("web-01");
  (*host.mutable_labels())["env"] = "prod";
  ASSERT_OK(store_->UpsertHost(host));
  Rollout rollout = MakeRollout("web", "v1", {MakeTask("web-01", 0)});
  ASSERT_OK(store_->CreateRollout(&rollout));
  Event event = MakeEvent("web", "rollout.started");
  ASSERT_OK(store_->AddEvent(&event));
  store_.reset();

  absl::StatusOr<std::unique_ptr<Store>> reopened = OpenSqliteStore(path());
  ASSERT_OK(reopened);
  Store& store = **reopened;
  EXPECT_OK(store.GetApp("web"));
  EXPECT_OK(store.GetRelease("web", "v1"));
  absl::StatusOr<Host> got_host = store.GetHost("web-01");
  ASSERT_OK(got_host);
  EXPECT_EQ(got_host->labels().at("env"), "prod");
  absl::StatusOr<Rollout> got_rollout = store.GetRollout(rollout.id());
  ASSERT_OK(got_rollout);
  EXPECT_THAT(TaskHosts(*got_rollout), ElementsAre("web-01"));
  absl::StatusOr<std::vector<Event>> events = store.ListEvents("", 0);
  ASSERT_OK(events);
  EXPECT_THAT(Kinds(*events), ElementsAre("rollout.started"));
  EXPECT_EQ(QueryOne(path(), "PRAGMA user_version"), absl::StrCat(kSqliteSchemaVersion));
}

TEST(StoreOpenTest, Store_RefusesDatabaseNewerThanCode) {
  fleet::testing::TempDir dir;
  const std::string path = dir.Sub("fleet.db");
  const int newer = kSqliteSchemaVersion + 1;
  QueryOne(path, absl::StrCat("PRAGMA user_version = ", newer));
  ASSERT_EQ(QueryOne(path, "PRAGMA user_version"), absl::StrCat(newer));

  EXPECT_THAT(OpenSqliteStore(path),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       absl::StrCat("database ", path, " has schema version ", newer,
                                    ", newer than this fleet-controller (", kSqliteSchemaVersion,
                                    "); upgrade fleet-controller")));
  // Refused before anything was written: still not in WAL mode.
  EXPECT_EQ(QueryOne(path, "PRAGMA journal_mode"), "delete");
}

TEST(StoreOpenTest, Store_RefusesFileThatIsNotADatabase) {
  fleet::testing::TempDir dir;
  const std::string path = dir.Sub("fleet.db");
  fleet::testing::WriteTextFile(path, std::string(4096, 'x'));
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path));
}

TEST(StoreOpenTest, Store_MigratesVersion2DatabaseKeepingRollouts) {
  fleet::testing::TempDir dir;
  const std::string path = dir.Sub("fleet.db");
  ExecAll(path,
          "CREATE TABLE apps (name TEXT NOT NULL PRIMARY KEY, spec BLOB NOT NULL, spec_yaml TEXT "
          "NOT NULL, desired_version TEXT NOT NULL, created_at_ms INTEGER NOT NULL, "
          "updated_at_ms INTEGER NOT NULL);"
          "CREATE TABLE releases (app TEXT NOT NULL REFERENCES apps(name), version TEXT NOT "
          "NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, created_at_ms INTEGER NOT NULL, "
          "created_by TEXT NOT NULL, metadata BLOB NOT NULL, PRIMARY KEY (app, version));"
          "CREATE TABLE hosts (id TEXT NOT NULL PRIMARY KEY, labels TEXT NOT NULL, connected "
          "INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL, "
          "agent_version TEXT NOT NULL, peer TEXT NOT NULL);"
          "CREATE TABLE host_apps (host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE "
          "CASCADE, app TEXT NOT NULL, current_release TEXT NOT NULL, releases TEXT NOT NULL, "
          "last_known_good TEXT NOT NULL, previous_release TEXT NOT NULL, updated_at_ms "
          "INTEGER NOT NULL, PRIMARY KEY (host_id, app));"
          "CREATE TABLE rollouts (id INTEGER PRIMARY KEY AUTOINCREMENT, app TEXT NOT NULL "
          "REFERENCES apps(name), version TEXT NOT NULL, from_version TEXT NOT NULL, kind "
          "INTEGER NOT NULL, state INTEGER NOT NULL, selector TEXT NOT NULL, created_by TEXT "
          "NOT NULL, created_at_ms INTEGER NOT NULL, finished_at_ms INTEGER NOT NULL, reason "
          "TEXT NOT NULL, plan BLOB NOT NULL DEFAULT x'', current_wave INTEGER NOT NULL "
          "DEFAULT 0, awaiting_promote INTEGER NOT NULL DEFAULT 0, paused_by TEXT NOT NULL "
          "DEFAULT '');"
          "CREATE TABLE rollout_tasks (rollout_id INTEGER NOT NULL REFERENCES rollouts(id) ON "
          "DELETE CASCADE, host_id TEXT NOT NULL, wave INTEGER NOT NULL, state INTEGER NOT "
          "NULL, from_release TEXT NOT NULL, to_release TEXT NOT NULL, reason TEXT NOT NULL, "
          "command_id TEXT NOT NULL, updated_at_ms INTEGER NOT NULL, PRIMARY KEY (rollout_id, "
          "host_id));"
          "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, "
          "app TEXT NOT NULL, rollout_id TEXT NOT NULL, host_id TEXT NOT NULL, kind TEXT NOT "
          "NULL, actor TEXT NOT NULL, message TEXT NOT NULL);"
          "INSERT INTO apps VALUES ('web', x'', '', 'v2', 1, 1);"
          "INSERT INTO hosts VALUES ('web-01', '{}', 0, 1, 1, '0.1.0', '');"
          "INSERT INTO host_apps VALUES ('web-01', 'web', 'v2', '[\"v1\",\"v2\"]', 'v2', "
          "'v1', 1);"
          "INSERT INTO rollouts (app, version, from_version, kind, state, selector, created_by, "
          "created_at_ms, finished_at_ms, reason) VALUES ('web', 'v2', 'v1', 1, 3, '', 'ci', 1, "
          "2, '');"
          "PRAGMA user_version = 2;");

  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
  ASSERT_OK(store);
  EXPECT_EQ(QueryOne(path, "PRAGMA user_version"), absl::StrCat(kSqliteSchemaVersion));
  absl::StatusOr<Rollout> rollout = (*store)->GetRollout("1");
  ASSERT_OK(rollout);
  EXPECT_EQ(rollout->subject(), fleet::v1::SUBJECT_RELEASE);
  EXPECT_EQ(rollout->version(), "v2");
  EXPECT_EQ(rollout->release(), "v2");
  EXPECT_EQ(rollout->config(), "");
  absl::StatusOr<App> app = (*store)->GetApp("web");
  ASSERT_OK(app);
  EXPECT_EQ(app->desired_version(), "v2");
  EXPECT_EQ(app->desired_config(), "");
  absl::StatusOr<Host> host = (*store)->GetHost("web-01");
  ASSERT_OK(host);
  ASSERT_EQ(host->apps_size(), 1);
  EXPECT_THAT(host->apps(0).releases(), ElementsAre("v1", "v2"));
  EXPECT_THAT(host->apps(0).configs(), ElementsAre());
  EXPECT_OK((*store)->ListConfigs("web"));
}

// A database of the schema v4 code (today's without tokens and
// rollouts.pause_reason): the v5 step adds the tokens table and keeps every
// row.
TEST(StoreOpenTest, Store_MigratesVersion4DatabaseAddingTokens) {
  fleet::testing::TempDir dir;
  const std::string path = dir.Sub("fleet.db");
  {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
    ASSERT_OK(store);
    ASSERT_OK((*store)->UpsertApp(MakeApp("web"), nullptr));
    ASSERT_OK((*store)->InsertRelease(MakeRelease("web", "v1")));
  }
  ExecAll(path,
          "DROP TABLE host_holds; DROP TABLE tokens; ALTER TABLE rollouts DROP COLUMN "
          "pause_reason; PRAGMA user_version = 4;");
  ASSERT_EQ(QueryOne(path, "SELECT count(*) FROM sqlite_master WHERE name = 'tokens'"), "0");

  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
  ASSERT_OK(store);
  EXPECT_EQ(QueryOne(path, "PRAGMA user_version"), absl::StrCat(kSqliteSchemaVersion));
  EXPECT_OK((*store)->GetRelease("web", "v1"));
  EXPECT_EQ((*store)->CountTokens().value_or(-1), 0);
  ASSERT_OK((*store)->InsertToken(MakeToken("3fa9c2d4e5f6", fleet::v1::ROLE_ADMIN),
                                  std::string(64, 'd')));
  EXPECT_OK((*store)->FindTokenByHash(std::string(64, 'd')));
}

// A database of the schema v5 code (today's without rollouts.pause_reason):
// the v6 step adds the column and derives it for the rollouts stored.
TEST(StoreOpenTest, Store_MigratesVersion5DatabaseDerivingPauseReasons) {
  fleet::testing::TempDir dir;
  const std::string path = dir.Sub("fleet.db");
  std::vector<std::string> ids;
  {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
    ASSERT_OK(store);
    ASSERT_OK((*store)->UpsertApp(MakeApp("web"), nullptr));
    auto add = [&](fleet::v1::RolloutState state, bool awaiting_promote,
                   const std::string& paused_by) {
      Rollout r = MakeRollout("web", "v2", {MakeTask("web-01", 0)});
      r.set_state(state);
      r.set_awaiting_promote(awaiting_promote);
      r.set_paused_by(paused_by);
      ASSERT_OK((*store)->CreateRollout(&r));
      ids.push_back(r.id());
    };
    add(fleet::v1::ROLLOUT_STATE_PAUSED, true, "");
    add(fleet::v1::ROLLOUT_STATE_PAUSED, false, "analysis");
    add(fleet::v1::ROLLOUT_STATE_PAUSED, false, "alice");
    add(fleet::v1::ROLLOUT_STATE_ACTIVATING, false, "");
    add(fleet::v1::ROLLOUT_STATE_SUCCEEDED, false, "");
  }
  ExecAll(path,
          "DROP TABLE host_holds; ALTER TABLE rollouts DROP COLUMN pause_reason; "
          "PRAGMA user_version = 5;");

  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
  ASSERT_OK(store);
  EXPECT_EQ(QueryOne(path, "PRAGMA user_version"), absl::StrCat(kSqliteSchemaVersion));
  std::vector<fleet::v1::PauseReason> reasons;
  for (const std::string& id : ids) {
    absl::StatusOr<Rollout> r = (*store)->GetRollout(id);
    ASSERT_OK(r);
    EXPECT_THAT(TaskHosts(*r), ElementsAre("web-01"));
    reasons.push_back(r->pause_reason());
  }
  EXPECT_THAT(reasons,
              ElementsAre(fleet::v1::PAUSE_REASON_PROMOTE_GATE, fleet::v1::PAUSE_REASON_ANALYSIS,
                          fleet::v1::PAUSE_REASON_MANUAL, fleet::v1::PAUSE_REASON_UNSPECIFIED,
                          fleet::v1::PAUSE_REASON_UNSPECIFIED));
}

// A database of the schema v6 code (today's without host_holds): the v7
// step adds the table and keeps every row.
TEST(StoreOpenTest, Store_MigratesVersion6DatabaseAddingHostHolds) {
  fleet::testing::TempDir dir;
  const std::string path = dir.Sub("fleet.db");
  {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
    ASSERT_OK(store);
    Host host;
    host.set_id("web-01");
    ASSERT_OK((*store)->UpsertHost(host));
  }
  ExecAll(path, "DROP TABLE host_holds; PRAGMA user_version = 6;");

  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
  ASSERT_OK(store);
  EXPECT_EQ(QueryOne(path, "PRAGMA user_version"), "7");
  EXPECT_OK((*store)->GetHost("web-01"));
  HostHoldRecord record;
  record.host_id = "web-01";
  record.held = true;
  record.hold.set_app("web");
  ASSERT_OK((*store)->PutHostHold(record));
  absl::StatusOr<Host> host = (*store)->GetHost("web-01");
  ASSERT_OK(host);
  EXPECT_EQ(host->holds_size(), 1);
}

}  // namespace
}  // namespace fleet::controller
