#include "controller/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::controller {
namespace {

using ::fleet::testing::StatusIs;
using ::fleet::testing::ToStatus;

using fleet::v1::App;
using fleet::v1::Event;
using fleet::v1::Host;
using fleet::v1::HostAppState;
using fleet::v1::HostTask;
using fleet::v1::Release;
using fleet::v1::Rollout;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Runs `sql` on a connection of its own, as another process would, and
// returns the first column of the first row ("" when there is none).
std::string QueryOne(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  std::string result;
  if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
    result = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return result;
}

// Runs every statement of `sql` on a connection of its own.
void ExecAll(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
      << (err != nullptr ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

App MakeApp(const std::string& name, int64_t at_ms = 1000) {
  App app;
  app.mutable_spec()->set_name(name);
  app.mutable_spec()->set_keep_releases(5);
  app.mutable_spec()->add_shared_dirs("log");
  app.mutable_spec()->add_health()->set_http("http://127.0.0.1:8080/healthz");
  app.set_spec_yaml(absl::StrCat("name: ", name, "\nkeep_releases: 5\n"));
  app.set_updated_at_ms(at_ms);
  return app;
}

Release MakeRelease(const std::string& app, const std::string& version) {
  Release release;
  release.set_app(app);
  release.set_version(version);
  release.set_sha256(std::string(64, 'a'));
  release.set_size(1234);
  release.set_created_at_ms(5000);
  release.set_created_by("ci");
  return release;
}

HostTask MakeTask(const std::string& host, int wave) {
  HostTask task;
  task.set_host_id(host);
  task.set_wave(wave);
  task.set_state(fleet::v1::TASK_STATE_PENDING);
  task.set_from_version("v1");
  task.set_to_version("v2");
  return task;
}

Rollout MakeRollout(const std::string& app, const std::string& version,
                    std::vector<HostTask> tasks = {}) {
  Rollout rollout;
  rollout.set_app(app);
  rollout.set_version(version);
  rollout.set_from_version("v1");
  rollout.set_kind(fleet::v1::ROLLOUT_KIND_DEPLOY);
  rollout.set_state(fleet::v1::ROLLOUT_STATE_STAGING);
  rollout.set_selector("env=prod");
  rollout.set_created_by("alice");
  rollout.set_created_at_ms(7000);
  for (HostTask& task : tasks) *rollout.add_tasks() = std::move(task);
  return rollout;
}

Event MakeEvent(const std::string& app, const std::string& kind) {
  Event event;
  event.set_at_ms(9000);
  event.set_app(app);
  event.set_kind(kind);
  event.set_actor("alice");
  event.set_message(absl::StrCat(kind, " of ", app));
  return event;
}

std::vector<std::string> Versions(const std::vector<Release>& releases) {
  std::vector<std::string> out;
  for (const Release& r : releases) out.push_back(r.version());
  return out;
}
std::vector<std::string> Ids(const std::vector<Rollout>& rollouts) {
  std::vector<std::string> out;
  for (const Rollout& r : rollouts) out.push_back(r.id());
  return out;
}
std::vector<std::string> Kinds(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const Event& e : events) out.push_back(e.kind());
  return out;
}
std::vector<std::string> TaskHosts(const Rollout& rollout) {
  std::vector<std::string> out;
  for (const HostTask& t : rollout.tasks()) out.push_back(t.host_id());
  return out;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path());
    ASSERT_OK(store);
    store_ = std::move(*store);
  }
  std::string path() const { return dir_.Sub("fleet.db"); }

  fleet::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, Store_MigratesNewDatabaseToCurrentSchemaVersion) {
  EXPECT_EQ(QueryOne(path(), "PRAGMA user_version"), absl::StrCat(Store::kSchemaVersion));
  EXPECT_EQ(QueryOne(path(),
                     "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master "
                     "WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name)"),
            "alerts,apps,configs,events,host_apps,hosts,releases,rollout_tasks,rollouts,tokens");
}

TEST_F(StoreTest, Store_EnablesWriteAheadLog) {
  // journal_mode=WAL is stored in the file, so a fresh connection sees it.
  EXPECT_EQ(QueryOne(path(), "PRAGMA journal_mode"), "wal");
}

TEST_F(StoreTest, Store_ReopenKeepsDataAndSchemaVersion) {
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

  absl::StatusOr<std::unique_ptr<Store>> reopened = Store::Open(path());
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
  EXPECT_EQ(QueryOne(path(), "PRAGMA user_version"), absl::StrCat(Store::kSchemaVersion));
}

TEST(StoreOpenTest, Store_RefusesDatabaseNewerThanCode) {
  fleet::testing::TempDir dir;
  const std::string path = dir.Sub("fleet.db");
  const int newer = Store::kSchemaVersion + 1;
  QueryOne(path, absl::StrCat("PRAGMA user_version = ", newer));
  ASSERT_EQ(QueryOne(path, "PRAGMA user_version"), absl::StrCat(newer));

  EXPECT_THAT(Store::Open(path),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       absl::StrCat("database ", path, " has schema version ", newer,
                                    ", newer than this fleet-controller (", Store::kSchemaVersion,
                                    "); upgrade fleet-controller")));
  // Refused before anything was written: still not in WAL mode.
  EXPECT_EQ(QueryOne(path, "PRAGMA journal_mode"), "delete");
}

TEST(StoreOpenTest, Store_RefusesFileThatIsNotADatabase) {
  fleet::testing::TempDir dir;
  const std::string path = dir.Sub("fleet.db");
  fleet::testing::WriteTextFile(path, std::string(4096, 'x'));
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path);
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path));
}

TEST_F(StoreTest, App_UpsertSetsCreatedOnlyWhenNew) {
  bool created = false;
  ASSERT_OK(store_->UpsertApp(MakeApp("web", 1000), &created));
  EXPECT_TRUE(created);

  App changed = MakeApp("web", 2000);
  changed.mutable_spec()->set_keep_releases(7);
  changed.set_spec_yaml("name: web\nkeep_releases: 7\n");
  ASSERT_OK(store_->UpsertApp(changed, &created));
  EXPECT_FALSE(created);

  absl::StatusOr<App> app = store_->GetApp("web");
  ASSERT_OK(app);
  EXPECT_EQ(app->spec().keep_releases(), 7);
  EXPECT_EQ(app->spec().health(0).http(), "http://127.0.0.1:8080/healthz");
  EXPECT_EQ(app->spec_yaml(), "name: web\nkeep_releases: 7\n");
  EXPECT_EQ(app->updated_at_ms(), 2000);
}

TEST_F(StoreTest, App_UpsertKeepsDesiredVersionSetByRollouts) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->SetDesiredVersion("web", "v2"));
  // A re-applied spec carries no desired version; it must not erase it.
  ASSERT_OK(store_->UpsertApp(MakeApp("web", 3000), nullptr));
  absl::StatusOr<App> app = store_->GetApp("web");
  ASSERT_OK(app);
  EXPECT_EQ(app->desired_version(), "v2");
}

TEST_F(StoreTest, App_UnknownIsNotFound) {
  EXPECT_THAT(store_->GetApp("nope"), StatusIs(absl::StatusCode::kNotFound, "unknown app 'nope'"));
  EXPECT_THAT(store_->SetDesiredVersion("nope", "v1"),
              StatusIs(absl::StatusCode::kNotFound, "unknown app 'nope'"));
}

TEST_F(StoreTest, App_UpsertWithoutNameIsInvalidArgument) {
  EXPECT_THAT(store_->UpsertApp(MakeApp(""), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(StoreTest, App_ListIsSortedByName) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->UpsertApp(MakeApp("api"), nullptr));
  ASSERT_OK(store_->UpsertApp(MakeApp("db"), nullptr));
  absl::StatusOr<std::vector<App>> apps = store_->ListApps();
  ASSERT_OK(apps);
  std::vector<std::string> names;
  for (const App& app : *apps) names.push_back(app.spec().name());
  EXPECT_THAT(names, ElementsAre("api", "db", "web"));
}

TEST_F(StoreTest, Release_InsertRoundTripsEveryField) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  Release release = MakeRelease("web", "v1");
  (*release.mutable_metadata())["git"] = "3fa9c1";
  (*release.mutable_metadata())["note, with=odd\nchars"] = "line 1\nline \"2\"";
  // What agents verify against the app's trusted_keys (common/signing.h).
  release.set_signature(std::string(86, 'A') + "==");
  ASSERT_OK(store_->InsertRelease(release));

  absl::StatusOr<Release> got = store_->GetRelease("web", "v1");
  ASSERT_OK(got);
  // Map order in the wire format is unspecified: compare field by field.
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*got, release))
      << got->DebugString();
  EXPECT_EQ(got->metadata().at("note, with=odd\nchars"), "line 1\nline \"2\"");
}

TEST_F(StoreTest, Release_InsertTwiceIsAlreadyExists) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->InsertRelease(MakeRelease("web", "v1")));
  Release again = MakeRelease("web", "v1");
  again.set_sha256(std::string(64, 'b'));
  EXPECT_THAT(store_->InsertRelease(again),
              StatusIs(absl::StatusCode::kAlreadyExists, "release web@v1 exists already"));
  absl::StatusOr<Release> got = store_->GetRelease("web", "v1");
  ASSERT_OK(got);
  EXPECT_EQ(got->sha256(), std::string(64, 'a'));
}

TEST_F(StoreTest, Release_OfUnknownAppIsNotFound) {
  absl::Status status = store_->InsertRelease(MakeRelease("ghost", "v1"));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(std::string(status.message()), HasSubstr("unknown app 'ghost'"));
}

TEST_F(StoreTest, Release_UnknownIsNotFound) {
  EXPECT_THAT(store_->GetRelease("web", "v9"),
              StatusIs(absl::StatusCode::kNotFound, "unknown release web@v9"));
}

TEST_F(StoreTest, Release_ListIsOldestFirstAndPerApp) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->UpsertApp(MakeApp("api"), nullptr));
  // Same created_at_ms and versions that sort differently as text: the order
  // is the order of the pushes.
  for (const char* version : {"v2", "v10", "v1"}) {
    ASSERT_OK(store_->InsertRelease(MakeRelease("web", version)));
  }
  ASSERT_OK(store_->InsertRelease(MakeRelease("api", "v5")));
  absl::StatusOr<std::vector<Release>> releases = store_->ListReleases("web");
  ASSERT_OK(releases);
  EXPECT_THAT(Versions(*releases), ElementsAre("v2", "v10", "v1"));
  absl::StatusOr<std::vector<Release>> none = store_->ListReleases("nope");
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(StoreTest, Host_LabelsWithSeparatorsRoundTrip) {
  Host host;
  host.set_id("web-01");
  host.set_connected(true);
  host.set_last_seen_ms(4242);
  host.set_agent_version("0.1.0");
  host.set_peer("ipv4:10.0.0.5:51234");
  auto& labels = *host.mutable_labels();
  labels["env"] = "prod";
  labels["list"] = "a,b,c";
  labels["pair"] = "k=v";
  labels["multi,line=key"] = "first\nsecond\r\nthird";
  labels["quotes"] = "\"{[\\]}\" '";
  labels["unicode"] = "zürich ☃";
  labels["empty"] = "";
  ASSERT_OK(store_->UpsertHost(host));

  absl::StatusOr<Host> got = store_->GetHost("web-01");
  ASSERT_OK(got);
  EXPECT_EQ(got->labels().size(), labels.size());
  for (const auto& [key, value] : labels) {
    ASSERT_EQ(got->labels().count(key), 1u) << key;
    EXPECT_EQ(got->labels().at(key), value) << key;
  }
  EXPECT_TRUE(got->connected());
  EXPECT_EQ(got->last_seen_ms(), 4242);
  EXPECT_EQ(got->agent_version(), "0.1.0");
  EXPECT_EQ(got->peer(), "ipv4:10.0.0.5:51234");
}

TEST_F(StoreTest, Host_UpsertReplacesAppStates) {
  Host host;
  host.set_id("web-01");
  HostAppState* web = host.add_apps();
  web->set_app("web");
  web->set_current_release("v2");
  web->add_releases("v1");
  web->add_releases("v2, with \"quotes\"\nand newline");
  web->set_last_known_good("v1");
  web->set_previous_release("v1");
  host.add_apps()->set_app("worker");
  ASSERT_OK(store_->UpsertHost(host));

  absl::StatusOr<Host> got = store_->GetHost("web-01");
  ASSERT_OK(got);
  ASSERT_EQ(got->apps_size(), 2);
  EXPECT_EQ(got->apps(0).SerializeAsString(), web->SerializeAsString())
      << got->apps(0).DebugString();
  EXPECT_EQ(got->apps(1).app(), "worker");

  Host replaced;
  replaced.set_id("web-01");
  replaced.add_apps()->set_app("api");
  ASSERT_OK(store_->UpsertHost(replaced));
  got = store_->GetHost("web-01");
  ASSERT_OK(got);
  ASSERT_EQ(got->apps_size(), 1);
  EXPECT_EQ(got->apps(0).app(), "api");
}

TEST_F(StoreTest, Host_UpsertWithAppReportedTwiceChangesNothing) {
  Host host;
  host.set_id("web-01");
  host.set_agent_version("0.1.0");
  host.add_apps()->set_app("web");
  ASSERT_OK(store_->UpsertHost(host));

  Host bad;
  bad.set_id("web-01");
  bad.set_agent_version("0.2.0");
  bad.add_apps()->set_app("api");
  bad.add_apps()->set_app("api");
  EXPECT_THAT(store_->UpsertHost(bad), StatusIs(absl::StatusCode::kInvalidArgument));

  absl::StatusOr<Host> got = store_->GetHost("web-01");
  ASSERT_OK(got);
  EXPECT_EQ(got->agent_version(), "0.1.0");
  ASSERT_EQ(got->apps_size(), 1);
  EXPECT_EQ(got->apps(0).app(), "web");
}

TEST_F(StoreTest, Host_UpsertAppStateReplacesOneApp) {
  Host host;
  host.set_id("web-01");
  host.add_apps()->set_app("web");
  host.add_apps()->set_app("worker");
  ASSERT_OK(store_->UpsertHost(host));

  HostAppState state;
  state.set_app("web");
  state.set_current_release("v3");
  state.add_releases("v3");
  ASSERT_OK(store_->UpsertHostAppState("web-01", state));
  HostAppState added;
  added.set_app("api");
  ASSERT_OK(store_->UpsertHostAppState("web-01", added));

  absl::StatusOr<Host> got = store_->GetHost("web-01");
  ASSERT_OK(got);
  ASSERT_EQ(got->apps_size(), 3);
  EXPECT_EQ(got->apps(0).app(), "api");
  EXPECT_EQ(got->apps(1).current_release(), "v3");
  EXPECT_THAT(got->apps(1).releases(), ElementsAre("v3"));
  EXPECT_EQ(got->apps(2).app(), "worker");
}

TEST_F(StoreTest, Host_UnknownIsNotFound) {
  EXPECT_THAT(store_->GetHost("nope"),
              StatusIs(absl::StatusCode::kNotFound, "unknown host 'nope'"));
  EXPECT_THAT(store_->SetHostConnected("nope", true, 1),
              StatusIs(absl::StatusCode::kNotFound, "unknown host 'nope'"));
  HostAppState state;
  state.set_app("web");
  EXPECT_THAT(store_->UpsertHostAppState("nope", state),
              StatusIs(absl::StatusCode::kNotFound, "unknown host 'nope'"));
}

TEST_F(StoreTest, Host_ConnectedFlagFollowsSessions) {
  for (const char* id : {"b", "a"}) {
    Host host;
    host.set_id(id);
    host.set_connected(true);
    host.set_last_seen_ms(100);
    ASSERT_OK(store_->UpsertHost(host));
  }
  ASSERT_OK(store_->SetHostConnected("a", false, 200));
  absl::StatusOr<Host> a = store_->GetHost("a");
  ASSERT_OK(a);
  EXPECT_FALSE(a->connected());
  EXPECT_EQ(a->last_seen_ms(), 200);

  ASSERT_OK(store_->MarkAllHostsDisconnected());
  absl::StatusOr<std::vector<Host>> hosts = store_->ListHosts();
  ASSERT_OK(hosts);
  ASSERT_EQ(hosts->size(), 2u);
  for (const Host& host : *hosts) EXPECT_FALSE(host.connected()) << host.id();
}

TEST_F(StoreTest, Host_ListIsSortedByIdWithAppStates) {
  for (const char* id : {"web-02", "web-01", "db-01"}) {
    Host host;
    host.set_id(id);
    host.add_apps()->set_app(absl::StrCat("app-of-", id));
    ASSERT_OK(store_->UpsertHost(host));
  }
  absl::StatusOr<std::vector<Host>> hosts = store_->ListHosts();
  ASSERT_OK(hosts);
  std::vector<std::string> ids;
  for (const Host& host : *hosts) {
    ids.push_back(host.id());
    ASSERT_EQ(host.apps_size(), 1);
    EXPECT_EQ(host.apps(0).app(), absl::StrCat("app-of-", host.id()));
  }
  EXPECT_THAT(ids, ElementsAre("db-01", "web-01", "web-02"));
}

TEST_F(StoreTest, Rollout_CreateAssignsIncreasingIdsAndStoresTasks) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  Rollout first = MakeRollout(
      "web", "v2", {MakeTask("web-03", 1), MakeTask("web-02", 1), MakeTask("web-01", 0)});
  first.set_id("ignored");
  ASSERT_OK(store_->CreateRollout(&first));
  Rollout second = MakeRollout("web", "v3");
  ASSERT_OK(store_->CreateRollout(&second));
  int64_t first_id = 0, second_id = 0;
  ASSERT_TRUE(absl::SimpleAtoi(first.id(), &first_id)) << first.id();
  ASSERT_TRUE(absl::SimpleAtoi(second.id(), &second_id)) << second.id();
  EXPECT_GT(second_id, first_id);

  absl::StatusOr<Rollout> got = store_->GetRollout(first.id());
  ASSERT_OK(got);
  EXPECT_EQ(got->app(), "web");
  EXPECT_EQ(got->version(), "v2");
  EXPECT_EQ(got->from_version(), "v1");
  EXPECT_EQ(got->kind(), fleet::v1::ROLLOUT_KIND_DEPLOY);
  EXPECT_EQ(got->state(), fleet::v1::ROLLOUT_STATE_STAGING);
  EXPECT_EQ(got->selector(), "env=prod");
  EXPECT_EQ(got->created_by(), "alice");
  EXPECT_EQ(got->created_at_ms(), 7000);
  // Sorted by wave, then host.
  EXPECT_THAT(TaskHosts(*got), ElementsAre("web-01", "web-02", "web-03"));
  EXPECT_EQ(got->tasks(0).to_version(), "v2");
  EXPECT_EQ(got->tasks(0).state(), fleet::v1::TASK_STATE_PENDING);
}

TEST_F(StoreTest, Rollout_CreateForUnknownAppIsNotFound) {
  Rollout rollout = MakeRollout("ghost", "v1");
  EXPECT_THAT(store_->CreateRollout(&rollout), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(rollout.id().empty());
}

TEST_F(StoreTest, Rollout_CreateWithTwoTasksForOneHostLeavesNothing) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  Rollout rollout = MakeRollout("web", "v2", {MakeTask("web-01", 0), MakeTask("web-01", 1)});
  EXPECT_THAT(store_->CreateRollout(&rollout), StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<std::vector<Rollout>> rollouts = store_->ListRollouts("", 0, true);
  ASSERT_OK(rollouts);
  EXPECT_TRUE(rollouts->empty());
}

TEST_F(StoreTest, Rollout_UpdateWritesStateReasonFinishAndFromVersionOnly) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  Rollout rollout = MakeRollout("web", "v2", {MakeTask("web-01", 0)});
  ASSERT_OK(store_->CreateRollout(&rollout));

  Rollout update = rollout;
  update.set_state(fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
  update.set_reason("/healthz returned 502 on web-01");
  update.set_finished_at_ms(8000);
  update.set_from_version("v0");
  update.set_version("not written");
  update.set_selector("not written");
  ASSERT_OK(store_->UpdateRollout(update));

  absl::StatusOr<Rollout> got = store_->GetRollout(rollout.id());
  ASSERT_OK(got);
  EXPECT_EQ(got->state(), fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
  EXPECT_EQ(got->reason(), "/healthz returned 502 on web-01");
  EXPECT_EQ(got->finished_at_ms(), 8000);
  EXPECT_EQ(got->from_version(), "v0");
  EXPECT_EQ(got->version(), "v2");
  EXPECT_EQ(got->selector(), "env=prod");
}

TEST_F(StoreTest, Rollout_UpdateTaskWritesEveryField) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  Rollout rollout = MakeRollout("web", "v2", {MakeTask("web-01", 0), MakeTask("web-02", 0)});
  ASSERT_OK(store_->CreateRollout(&rollout));

  HostTask task;
  task.set_host_id("web-02");
  task.set_state(fleet::v1::TASK_STATE_FAILED);
  task.set_from_version("v1");
  task.set_to_version("v2");
  task.set_reason("tcp 127.0.0.1:8080: connection refused");
  task.set_updated_at_ms(9100);
  task.set_wave(3);
  task.set_command_id("cmd-17");
  ASSERT_OK(store_->UpdateTask(rollout.id(), task));

  absl::StatusOr<Rollout> got = store_->GetRollout(rollout.id());
  ASSERT_OK(got);
  ASSERT_EQ(got->tasks_size(), 2);
  EXPECT_EQ(got->tasks(1).SerializeAsString(), task.SerializeAsString())
      << got->tasks(1).DebugString();
  EXPECT_EQ(got->tasks(0).state(), fleet::v1::TASK_STATE_PENDING);
}

TEST_F(StoreTest, Rollout_UnknownIsNotFound) {
  EXPECT_THAT(store_->GetRollout("42"),
              StatusIs(absl::StatusCode::kNotFound, "unknown rollout '42'"));
  EXPECT_THAT(store_->GetRollout("abc"),
              StatusIs(absl::StatusCode::kNotFound, "unknown rollout 'abc'"));
  Rollout rollout = MakeRollout("web", "v1");
  rollout.set_id("42");
  EXPECT_THAT(store_->UpdateRollout(rollout),
              StatusIs(absl::StatusCode::kNotFound, "unknown rollout '42'"));
  EXPECT_THAT(store_->UpdateTask("42", MakeTask("web-01", 0)),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(StoreTest, Rollout_ListIsNewestFirstFilteredAndLimited) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->UpsertApp(MakeApp("api"), nullptr));
  std::vector<std::string> web_ids;
  std::vector<std::string> all_ids;
  for (const char* app : {"web", "api", "web", "web"}) {
    Rollout rollout = MakeRollout(app, "v2", {MakeTask("h1", 0)});
    ASSERT_OK(store_->CreateRollout(&rollout));
    all_ids.insert(all_ids.begin(), rollout.id());
    if (rollout.app() == "web") web_ids.insert(web_ids.begin(), rollout.id());
  }

  absl::StatusOr<std::vector<Rollout>> all = store_->ListRollouts("", 0, false);
  ASSERT_OK(all);
  EXPECT_EQ(Ids(*all), all_ids);
  EXPECT_EQ((*all)[0].tasks_size(), 0);

  absl::StatusOr<std::vector<Rollout>> web = store_->ListRollouts("web", 2, true);
  ASSERT_OK(web);
  EXPECT_THAT(Ids(*web), ElementsAre(web_ids[0], web_ids[1]));
  for (const Rollout& r : *web) EXPECT_THAT(TaskHosts(r), ElementsAre("h1"));
}

TEST_F(StoreTest, Rollout_ListActiveExcludesTerminalStatesOldestFirst) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  const fleet::v1::RolloutState states[] = {
      fleet::v1::ROLLOUT_STATE_STAGING,    fleet::v1::ROLLOUT_STATE_SUCCEEDED,
      fleet::v1::ROLLOUT_STATE_ACTIVATING, fleet::v1::ROLLOUT_STATE_ROLLED_BACK,
      fleet::v1::ROLLOUT_STATE_FAILED,     fleet::v1::ROLLOUT_STATE_ROLLING_BACK};
  std::vector<std::string> active;
  for (fleet::v1::RolloutState state : states) {
    Rollout rollout = MakeRollout("web", "v2", {MakeTask("h1", 0)});
    rollout.set_state(state);
    ASSERT_OK(store_->CreateRollout(&rollout));
    if (!IsTerminal(state)) active.push_back(rollout.id());
  }
  ASSERT_EQ(active.size(), 3u);
  absl::StatusOr<std::vector<Rollout>> got = store_->ListActiveRollouts();
  ASSERT_OK(got);
  EXPECT_EQ(Ids(*got), active);
  for (const Rollout& r : *got) EXPECT_THAT(TaskHosts(r), ElementsAre("h1"));
}

TEST(StoreStateTest, Rollout_IsTerminalOnlyForSucceededRolledBackAndFailed) {
  EXPECT_TRUE(IsTerminal(fleet::v1::ROLLOUT_STATE_SUCCEEDED));
  EXPECT_TRUE(IsTerminal(fleet::v1::ROLLOUT_STATE_ROLLED_BACK));
  EXPECT_TRUE(IsTerminal(fleet::v1::ROLLOUT_STATE_FAILED));
  EXPECT_FALSE(IsTerminal(fleet::v1::ROLLOUT_STATE_UNSPECIFIED));
  EXPECT_FALSE(IsTerminal(fleet::v1::ROLLOUT_STATE_STAGING));
  EXPECT_FALSE(IsTerminal(fleet::v1::ROLLOUT_STATE_ACTIVATING));
  EXPECT_FALSE(IsTerminal(fleet::v1::ROLLOUT_STATE_ROLLING_BACK));
}

TEST_F(StoreTest, Event_ListIsNewestFirstFilteredByAppAndLimited) {
  std::vector<int64_t> ids;
  for (const auto& [app, kind] : std::vector<std::pair<std::string, std::string>>{
           {"web", "a"}, {"api", "b"}, {"web", "c"}, {"", "d"}, {"web", "e"}}) {
    Event event = MakeEvent(app, kind);
    event.set_rollout_id("3");
    event.set_host_id("web-01");
    ASSERT_OK(store_->AddEvent(&event));
    if (!ids.empty()) {
      EXPECT_GT(event.id(), ids.back());
    }
    ids.push_back(event.id());
  }
  absl::StatusOr<std::vector<Event>> all = store_->ListEvents("", 0);
  ASSERT_OK(all);
  EXPECT_THAT(Kinds(*all), ElementsAre("e", "d", "c", "b", "a"));
  EXPECT_EQ((*all)[0].id(), ids.back());
  EXPECT_EQ((*all)[0].message(), "e of web");
  EXPECT_EQ((*all)[0].actor(), "alice");
  EXPECT_EQ((*all)[0].rollout_id(), "3");
  EXPECT_EQ((*all)[0].host_id(), "web-01");
  EXPECT_EQ((*all)[0].at_ms(), 9000);

  absl::StatusOr<std::vector<Event>> web = store_->ListEvents("web", 0);
  ASSERT_OK(web);
  EXPECT_THAT(Kinds(*web), ElementsAre("e", "c", "a"));
  absl::StatusOr<std::vector<Event>> limited = store_->ListEvents("web", 2);
  ASSERT_OK(limited);
  EXPECT_THAT(Kinds(*limited), ElementsAre("e", "c"));
}

TEST_F(StoreTest, Transaction_DestroyedWithoutCommitRollsBack) {
  {
    Store::Transaction txn(store_.get());
    ASSERT_OK(txn.begin_status());
    ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
    ASSERT_OK(store_->InsertRelease(MakeRelease("web", "v1")));
    Rollout rollout = MakeRollout("web", "v1", {MakeTask("web-01", 0)});
    ASSERT_OK(store_->CreateRollout(&rollout));
    // Visible to the thread that holds the transaction.
    EXPECT_OK(store_->GetApp("web"));
  }
  EXPECT_THAT(store_->GetApp("web"), StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<std::vector<Rollout>> rollouts = store_->ListRollouts("", 0, true);
  ASSERT_OK(rollouts);
  EXPECT_TRUE(rollouts->empty());
  EXPECT_EQ(QueryOne(path(), "SELECT count(*) FROM releases"), "0");
}

TEST_F(StoreTest, Transaction_CommitPersists) {
  {
    Store::Transaction txn(store_.get());
    ASSERT_OK(txn.begin_status());
    ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
    Rollout rollout = MakeRollout("web", "v1", {MakeTask("web-01", 0)});
    ASSERT_OK(store_->CreateRollout(&rollout));
    ASSERT_OK(txn.Commit());
    EXPECT_THAT(txn.Commit(), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  store_.reset();
  // Read through another connection: the rows are in the file.
  EXPECT_EQ(QueryOne(path(), "SELECT name FROM apps"), "web");
  EXPECT_EQ(QueryOne(path(), "SELECT count(*) FROM rollout_tasks"), "1");
}

TEST_F(StoreTest, Transaction_FailedCallInsideLeavesNoPartialRows) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  {
    Store::Transaction txn(store_.get());
    ASSERT_OK(txn.begin_status());
    Rollout bad = MakeRollout("web", "v2", {MakeTask("web-01", 0), MakeTask("web-01", 1)});
    EXPECT_THAT(store_->CreateRollout(&bad), StatusIs(absl::StatusCode::kInvalidArgument));
    Event event = MakeEvent("web", "rollout.refused");
    ASSERT_OK(store_->AddEvent(&event));
    ASSERT_OK(txn.Commit());
  }
  EXPECT_EQ(QueryOne(path(), "SELECT count(*) FROM rollouts"), "0");
  EXPECT_EQ(QueryOne(path(), "SELECT count(*) FROM rollout_tasks"), "0");
  EXPECT_EQ(QueryOne(path(), "SELECT kind FROM events"), "rollout.refused");
}

TEST_F(StoreTest, Transaction_DoesNotNest) {
  Store::Transaction outer(store_.get());
  ASSERT_OK(outer.begin_status());
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  {
    Store::Transaction inner(store_.get());
    EXPECT_THAT(inner.begin_status(), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(inner.Commit(), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  // The inner one neither committed nor rolled back the outer one.
  ASSERT_OK(store_->GetApp("web"));
  EXPECT_EQ(QueryOne(path(), "SELECT count(*) FROM apps"), "0");
  ASSERT_OK(outer.Commit());
  EXPECT_EQ(QueryOne(path(), "SELECT count(*) FROM apps"), "1");
}

TEST_F(StoreTest, Transaction_BlocksOtherThreadsUntilDestroyed) {
  std::atomic<bool> other_done{false};
  std::thread other;
  {
    Store::Transaction txn(store_.get());
    EXPECT_OK(txn.begin_status());
    Event mine = MakeEvent("web", "mine");
    EXPECT_OK(store_->AddEvent(&mine));
    other = std::thread([&] {
      Event theirs = MakeEvent("web", "theirs");
      EXPECT_OK(store_->AddEvent(&theirs));
      other_done = true;
    });
    absl::SleepFor(absl::Milliseconds(300));
    EXPECT_FALSE(other_done.load()) << "another thread wrote during the transaction";
    EXPECT_OK(txn.Commit());
  }
  other.join();
  EXPECT_TRUE(other_done.load());
  absl::StatusOr<std::vector<Event>> events = store_->ListEvents("", 0);
  ASSERT_OK(events);
  EXPECT_THAT(Kinds(*events), ElementsAre("theirs", "mine"));
}

TEST_F(StoreTest, Transaction_BeginFailureFailsEveryCallUntilDestroyed) {
  // Another process holds the write lock longer than the 5 s busy timeout.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path().c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  {
    Store::Transaction txn(store_.get());
    EXPECT_THAT(txn.begin_status(), StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_THAT(std::string(txn.begin_status().message()),
                HasSubstr("cannot begin transaction on " + path()));
    absl::StatusOr<std::vector<App>> apps = store_->ListApps();
    EXPECT_FALSE(apps.ok());
    EXPECT_THAT(std::string(apps.status().message()), HasSubstr("did not begin"));
    EXPECT_EQ(txn.Commit().code(), absl::StatusCode::kUnavailable);
  }
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_OK(store_->ListApps());
}

// A database written by the schema v2 code: the v3 step keeps every row and
// records that old rollouts were releases.
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

  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path);
  ASSERT_OK(store);
  EXPECT_EQ(QueryOne(path, "PRAGMA user_version"), absl::StrCat(Store::kSchemaVersion));
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

fleet::v1::ConfigRelease MakeConfig(const std::string& app, const std::string& version) {
  fleet::v1::ConfigRelease config;
  config.set_app(app);
  config.set_version(version);
  config.set_sha256(std::string(64, 'c'));
  config.set_size(321);
  config.set_created_at_ms(5000);
  config.set_created_by("ci");
  auto* file = config.add_files();
  file->set_path("app.yaml");
  file->set_mode(0640);
  file->set_size(300);
  auto* secret = config.add_files();
  secret->set_path("secrets.env.age");
  secret->set_mode(0600);
  secret->set_size(21);
  secret->set_secret(true);
  return config;
}

TEST_F(StoreTest, Config_InsertRoundTripsEveryFieldAndListsInPushOrder) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->InsertConfig(MakeConfig("web", "c2")));
  ASSERT_OK(store_->InsertConfig(MakeConfig("web", "c1")));
  absl::StatusOr<fleet::v1::ConfigRelease> got = store_->GetConfig("web", "c2");
  ASSERT_OK(got);
  EXPECT_EQ(got->DebugString(), MakeConfig("web", "c2").DebugString());
  absl::StatusOr<std::vector<fleet::v1::ConfigRelease>> all = store_->ListConfigs("web");
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].version(), "c2");
  EXPECT_EQ((*all)[1].version(), "c1");
}

TEST_F(StoreTest, Config_InsertTwiceIsAlreadyExistsAndUnknownAppIsNotFound) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->InsertConfig(MakeConfig("web", "c1")));
  EXPECT_THAT(store_->InsertConfig(MakeConfig("web", "c1")),
              StatusIs(absl::StatusCode::kAlreadyExists, "config web@c1 exists already"));
  EXPECT_THAT(
      store_->InsertConfig(MakeConfig("api", "c1")),
      StatusIs(absl::StatusCode::kNotFound, "cannot insert config api@c1: unknown app 'api'"));
  EXPECT_THAT(store_->GetConfig("web", "c9"),
              StatusIs(absl::StatusCode::kNotFound, "unknown config web@c9"));
}

TEST_F(StoreTest, Config_DesiredConfigIsSeparateFromDesiredVersion) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  ASSERT_OK(store_->SetDesired("web", fleet::v1::SUBJECT_RELEASE, "v2"));
  ASSERT_OK(store_->SetDesired("web", fleet::v1::SUBJECT_CONFIG, "c3"));
  absl::StatusOr<App> app = store_->GetApp("web");
  ASSERT_OK(app);
  EXPECT_EQ(app->desired_version(), "v2");
  EXPECT_EQ(app->desired_config(), "c3");
  EXPECT_THAT(store_->SetDesired("nope", fleet::v1::SUBJECT_CONFIG, "c1"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(StoreTest, Config_HostConfigStateAndRolloutPairRoundTrip) {
  ASSERT_OK(store_->UpsertApp(MakeApp("web"), nullptr));
  Host host;
  host.set_id("web-01");
  HostAppState* state = host.add_apps();
  state->set_app("web");
  state->set_current_release("v2");
  state->set_current_config("c2");
  state->add_configs("c1");
  state->add_configs("c2");
  state->set_last_good_config("c2");
  state->set_previous_config("c1");
  ASSERT_OK(store_->UpsertHost(host));
  absl::StatusOr<Host> got = store_->GetHost("web-01");
  ASSERT_OK(got);
  ASSERT_EQ(got->apps_size(), 1);
  EXPECT_EQ(got->apps(0).DebugString(), state->DebugString());

  Rollout rollout = MakeRollout("web", "c2", {MakeTask("web-01", 0)});
  rollout.set_subject(fleet::v1::SUBJECT_CONFIG);
  rollout.set_release("v2");
  rollout.set_config("c2");
  ASSERT_OK(store_->CreateRollout(&rollout));
  absl::StatusOr<Rollout> read = store_->GetRollout(rollout.id());
  ASSERT_OK(read);
  EXPECT_EQ(read->subject(), fleet::v1::SUBJECT_CONFIG);
  EXPECT_EQ(read->release(), "v2");
  EXPECT_EQ(read->config(), "c2");
}

Store::AlertRecord MakeAlertRecord(const std::string& status) {
  Store::AlertRecord alert;
  alert.fingerprint = "4f1c2a";
  alert.starts_at = "2024-05-01T11:59:00Z";
  alert.status = status;
  alert.app = "web";
  alert.alertname = "HighErrorRate";
  alert.received_at_ms = 9000;
  alert.outcome = "acting";
  alert.message = "rolling back release v2";
  return alert;
}

TEST_F(StoreTest, Alert_InsertRoundTripsAndSecondInsertOfTheKeyIsAlreadyExists) {
  ASSERT_OK(store_->InsertAlert(MakeAlertRecord("firing")));
  Store::AlertRecord again = MakeAlertRecord("firing");
  again.outcome = "ignored";
  EXPECT_THAT(store_->InsertAlert(again), StatusIs(absl::StatusCode::kAlreadyExists));
  // The same alert resolved is another key; alerts need no app row.
  Store::AlertRecord resolved = MakeAlertRecord("resolved");
  resolved.app = "unknown-app";
  EXPECT_OK(store_->InsertAlert(resolved));

  absl::StatusOr<Store::AlertRecord> got =
      store_->GetAlert("4f1c2a", "2024-05-01T11:59:00Z", "firing");
  ASSERT_OK(got);
  EXPECT_EQ(got->app, "web");
  EXPECT_EQ(got->alertname, "HighErrorRate");
  EXPECT_EQ(got->received_at_ms, 9000);
  EXPECT_EQ(got->outcome, "acting");  // the first insert stays
  EXPECT_EQ(got->message, "rolling back release v2");
  EXPECT_THAT(store_->GetAlert("4f1c2a", "2024-05-01T12:30:00Z", "firing"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(StoreTest, Alert_UpdateWritesOutcomeRolloutAndMessageAndSurvivesReopen) {
  ASSERT_OK(store_->InsertAlert(MakeAlertRecord("firing")));
  Store::AlertRecord done = MakeAlertRecord("firing");
  done.outcome = "rollback";
  done.rollout_id = "12";
  done.message = "rollback 12 goes to v1";
  done.app = "ignored-by-update";
  ASSERT_OK(store_->UpdateAlert(done));
  EXPECT_THAT(store_->UpdateAlert(MakeAlertRecord("resolved")),
              StatusIs(absl::StatusCode::kNotFound));
  store_.reset();

  absl::StatusOr<std::unique_ptr<Store>> reopened = Store::Open(path());
  ASSERT_OK(reopened);
  absl::StatusOr<Store::AlertRecord> got =
      (*reopened)->GetAlert("4f1c2a", "2024-05-01T11:59:00Z", "firing");
  ASSERT_OK(got);
  EXPECT_EQ(got->outcome, "rollback");
  EXPECT_EQ(got->rollout_id, "12");
  EXPECT_EQ(got->message, "rollback 12 goes to v1");
  EXPECT_EQ(got->app, "web");
}

TEST_F(StoreTest, Alert_InsertInsideRolledBackTransactionLeavesNoKey) {
  {
    Store::Transaction txn(store_.get());
    ASSERT_OK(txn.begin_status());
    ASSERT_OK(store_->InsertAlert(MakeAlertRecord("firing")));
  }
  EXPECT_THAT(store_->GetAlert("4f1c2a", "2024-05-01T11:59:00Z", "firing"),
              StatusIs(absl::StatusCode::kNotFound));
}

fleet::v1::TokenInfo MakeToken(const std::string& id, fleet::v1::Role role,
                               const std::string& app = "") {
  fleet::v1::TokenInfo token;
  token.set_id(id);
  token.set_role(role);
  token.set_app(app);
  token.set_description(absl::StrCat("token ", id));
  token.set_created_by("alice (token 000000000000)");
  token.set_created_at_ms(4000);
  return token;
}

TEST_F(StoreTest, Token_InsertRoundTripsEveryFieldAndIsFoundByHashOnly) {
  fleet::v1::TokenInfo deployer = MakeToken("3fa9c2d4e5f6", fleet::v1::ROLE_DEPLOYER, "api");
  ASSERT_OK(store_->InsertToken(deployer, std::string(64, 'd')));
  absl::StatusOr<fleet::v1::TokenInfo> got = store_->FindTokenByHash(std::string(64, 'd'));
  ASSERT_OK(got);
  EXPECT_EQ(got->DebugString(), deployer.DebugString());
  EXPECT_THAT(store_->FindTokenByHash(std::string(64, 'e')),
              StatusIs(absl::StatusCode::kNotFound));
  // The id is not a hash.
  EXPECT_THAT(store_->FindTokenByHash("3fa9c2d4e5f6"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(StoreTest, Token_InsertWithStoredIdOrHashIsAlreadyExistsAndKeepsTheFirst) {
  ASSERT_OK(store_->InsertToken(MakeToken("aaaaaaaaaaaa", fleet::v1::ROLE_VIEWER),
                                std::string(64, 'a')));
  EXPECT_THAT(store_->InsertToken(MakeToken("aaaaaaaaaaaa", fleet::v1::ROLE_ADMIN),
                                  std::string(64, 'b')),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(store_->InsertToken(MakeToken("bbbbbbbbbbbb", fleet::v1::ROLE_ADMIN),
                                  std::string(64, 'a')),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(store_->InsertToken(MakeToken("cccccccccccc", fleet::v1::ROLE_UNSPECIFIED),
                                  std::string(64, 'c')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->InsertToken(MakeToken("", fleet::v1::ROLE_VIEWER), std::string(64, 'c')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<std::vector<fleet::v1::TokenInfo>> tokens = store_->ListTokens();
  ASSERT_OK(tokens);
  ASSERT_EQ(tokens->size(), 1u);
  EXPECT_EQ((*tokens)[0].role(), fleet::v1::ROLE_VIEWER);
  EXPECT_EQ(store_->CountTokens().value_or(-1), 1);
}

TEST_F(StoreTest, Token_ListIsCreationOrderAndCountIncludesRevoked) {
  EXPECT_EQ(store_->CountTokens().value_or(-1), 0);
  ASSERT_OK(store_->InsertToken(MakeToken("ffffffffffff", fleet::v1::ROLE_ADMIN),
                                std::string(64, 'f')));
  ASSERT_OK(store_->InsertToken(MakeToken("111111111111", fleet::v1::ROLE_VIEWER),
                                std::string(64, '1')));
  ASSERT_OK(store_->RevokeToken("ffffffffffff", 6000));
  absl::StatusOr<std::vector<fleet::v1::TokenInfo>> tokens = store_->ListTokens();
  ASSERT_OK(tokens);
  ASSERT_EQ(tokens->size(), 2u);
  EXPECT_EQ((*tokens)[0].id(), "ffffffffffff");
  EXPECT_EQ((*tokens)[1].id(), "111111111111");
  EXPECT_EQ(store_->CountTokens().value_or(-1), 2);
}

TEST_F(StoreTest, Token_RevokeKeepsTheRowAndTheFirstRevocationTime) {
  ASSERT_OK(store_->InsertToken(MakeToken("3fa9c2d4e5f6", fleet::v1::ROLE_DEPLOYER, "api"),
                                std::string(64, 'd')));
  absl::StatusOr<fleet::v1::TokenInfo> revoked = store_->RevokeToken("3fa9c2d4e5f6", 6000);
  ASSERT_OK(revoked);
  EXPECT_EQ(revoked->revoked_at_ms(), 6000);
  EXPECT_EQ(revoked->app(), "api");
  revoked = store_->RevokeToken("3fa9c2d4e5f6", 7000);
  ASSERT_OK(revoked);
  EXPECT_EQ(revoked->revoked_at_ms(), 6000);
  absl::StatusOr<fleet::v1::TokenInfo> found = store_->FindTokenByHash(std::string(64, 'd'));
  ASSERT_OK(found);
  EXPECT_EQ(found->revoked_at_ms(), 6000);
  EXPECT_THAT(store_->RevokeToken("000000000000", 6000),
              StatusIs(absl::StatusCode::kNotFound, "unknown API token '000000000000'"));
}

// A database written by the schema v4 code (the v5 schema without tokens):
// the v5 step adds the tokens table and keeps every row.
TEST(StoreOpenTest, Store_MigratesVersion4DatabaseAddingTokens) {
  fleet::testing::TempDir dir;
  const std::string path = dir.Sub("fleet.db");
  {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path);
    ASSERT_OK(store);
    ASSERT_OK((*store)->UpsertApp(MakeApp("web"), nullptr));
    ASSERT_OK((*store)->InsertRelease(MakeRelease("web", "v1")));
  }
  ExecAll(path, "DROP TABLE tokens; PRAGMA user_version = 4;");
  ASSERT_EQ(QueryOne(path, "SELECT count(*) FROM sqlite_master WHERE name = 'tokens'"), "0");

  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path);
  ASSERT_OK(store);
  EXPECT_EQ(QueryOne(path, "PRAGMA user_version"), "5");
  EXPECT_OK((*store)->GetRelease("web", "v1"));
  EXPECT_EQ((*store)->CountTokens().value_or(-1), 0);
  ASSERT_OK((*store)->InsertToken(MakeToken("3fa9c2d4e5f6", fleet::v1::ROLE_ADMIN),
                                  std::string(64, 'd')));
  EXPECT_OK((*store)->FindTokenByHash(std::string(64, 'd')));
}

}  // namespace
}  // namespace fleet::controller
