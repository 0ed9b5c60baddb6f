// migrate-store: a SQLite store copied into PostgreSQL reads back the same
// through the store interface, ids go on where SQLite left them, and a
// database that holds anything is refused untouched.
#include "controller/store_migration.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "controller/pg_schema.h"
#include "controller/pg_store.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/unit/controller/store_fixture.h"

namespace fleet::controller {
namespace {

using ::fleet::testing::PgQueryOne;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

template <typename M>
void ExpectSameList(const absl::StatusOr<std::vector<M>>& a,
                    const absl::StatusOr<std::vector<M>>& b) {
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals((*a)[i], (*b)[i])) << (*a)[i].DebugString() << "\nvs\n"
                                                              << (*b)[i].DebugString();
  }
}

class StoreMigrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    url_ = server_.CreateDatabase("fleet");
    absl::StatusOr<std::unique_ptr<Store>> sqlite = OpenSqliteStore(dir_.Sub("fleet.db"));
    ASSERT_OK(sqlite);
    sqlite_ = std::move(*sqlite);
  }

  // A store with a row in every table, the way a controller leaves it.
  void Fill() {
    ASSERT_OK(sqlite_->UpsertApp(MakeApp("web"), nullptr));
    ASSERT_OK(sqlite_->UpsertApp(MakeApp("api"), nullptr));
    Release v1 = MakeRelease("web", "v1");
    (*v1.mutable_metadata())["git"] = "3fa9c2";
    v1.set_signature("sig-bytes\x01\x02");
    ASSERT_OK(sqlite_->InsertRelease(v1));
    ASSERT_OK(sqlite_->InsertRelease(MakeRelease("web", "v2")));
    ASSERT_OK(sqlite_->InsertRelease(MakeRelease("web", "v0")));  // pushed last, listed last
    ASSERT_OK(sqlite_->InsertConfig(MakeConfig("web", "c1")));
    ASSERT_OK(sqlite_->SetDesired("web", fleet::v1::SUBJECT_RELEASE, "v1"));
    ASSERT_OK(sqlite_->SetDesired("web", fleet::v1::SUBJECT_CONFIG, "c1"));
    for (const char* id : {"web-02", "web-01"}) {
      Host host;
      host.set_id(id);
      (*host.mutable_labels())["role"] = "web,a=b";
      host.set_connected(true);
      host.set_last_seen_ms(4242);
      HostAppState* state = host.add_apps();
      state->set_app("web");
      state->set_current_release("v1");
      state->add_releases("v0");
      state->add_releases("v1");
      state->set_current_config("c1");
      ASSERT_OK(sqlite_->UpsertHost(host));
    }
    for (bool held : {true, false}) {
      HostHoldRecord hold;
      hold.host_id = held ? "web-01" : "web-02";
      hold.held = held;
      hold.hold.set_app("web");
      hold.hold.set_version("v0");
      hold.hold.set_from_version("v1");
      hold.hold.set_reason("v1 leaks memory");
      hold.hold.set_actor("root@" + hold.host_id);
      hold.hold.set_since_ms(5000);
      hold.hold.set_local_id("local-" + hold.host_id);
      ASSERT_OK(sqlite_->PutHostHold(hold));
    }
    Rollout done = MakeRollout("web", "v1", {MakeTask("web-01", 0), MakeTask("web-02", 1)});
    done.mutable_plan()->set_max_failures(1);
    ASSERT_OK(sqlite_->CreateRollout(&done));
    done.set_state(fleet::v1::ROLLOUT_STATE_SUCCEEDED);
    done.set_finished_at_ms(9999);
    ASSERT_OK(sqlite_->UpdateRollout(done));
    HostTask task = MakeTask("web-01", 0);
    task.set_state(fleet::v1::TASK_STATE_HEALTHY);
    task.set_command_id("cmd-1");
    ASSERT_OK(sqlite_->UpdateTask(done.id(), task));
    Rollout running = MakeRollout("web", "v2", {MakeTask("web-01", 0)});
    running.set_awaiting_promote(true);
    running.set_pause_reason(fleet::v1::PAUSE_REASON_PROMOTE_GATE);
    ASSERT_OK(sqlite_->CreateRollout(&running));
    last_rollout_id_ = running.id();
    for (const char* kind : {"rollout.started", "rollout.succeeded"}) {
      Event event = MakeEvent("web", kind);
      ASSERT_OK(sqlite_->AddEvent(&event));
    }
    ASSERT_OK(sqlite_->InsertAlert(MakeAlertRecord("firing")));
    AlertRecord decided = MakeAlertRecord("firing");
    decided.outcome = AlertOutcome::kRollback;
    decided.rollout_id = done.id();
    ASSERT_OK(sqlite_->UpdateAlert(decided));
    ASSERT_OK(sqlite_->InsertToken(MakeToken("aaaaaaaaaaaa", fleet::v1::ROLE_ADMIN),
                                   std::string(64, '1')));
    ASSERT_OK(sqlite_->InsertToken(MakeToken("bbbbbbbbbbbb", fleet::v1::ROLE_DEPLOYER, "web"),
                                   std::string(64, '2')));
    ASSERT_OK(sqlite_->RevokeToken("bbbbbbbbbbbb", 8000).status());
  }

  fleet::testing::TempDir dir_;
  fleet::testing::PostgresServer server_;
  std::string url_;
  std::unique_ptr<Store> sqlite_;
  std::string last_rollout_id_;
};

TEST_F(StoreMigrationTest, Copy_EveryTableReadsBackTheSameThroughThePostgresStore) {
  Fill();
  absl::StatusOr<StoreCopyReport> report = CopySqliteStoreToPostgres(dir_.path(), url_);
  ASSERT_OK(report);
  EXPECT_THAT(report->tables,
              ElementsAre(Pair("apps", 2), Pair("releases", 3), Pair("configs", 1),
                          Pair("hosts", 2), Pair("host_apps", 2), Pair("host_holds", 2),
                          Pair("rollouts", 2), Pair("rollout_tasks", 3), Pair("events", 2),
                          Pair("alerts", 1), Pair("tokens", 2)));
  EXPECT_THAT(DescribeStoreCopy(*report), HasSubstr("copied 2 apps, 3 releases, 1 configs"));
  EXPECT_THAT(DescribeStoreCopy(*report), Not(HasSubstr(server_.password())));

  absl::StatusOr<std::unique_ptr<Store>> pg = OpenPgStore(url_);
  ASSERT_OK(pg);
  Store& copy = **pg;
  ExpectSameList(sqlite_->ListApps(), copy.ListApps());
  ExpectSameList(sqlite_->ListReleases("web"), copy.ListReleases("web"));
  ExpectSameList(sqlite_->ListConfigs("web"), copy.ListConfigs("web"));
  ExpectSameList(sqlite_->ListHosts(), copy.ListHosts());
  absl::StatusOr<std::vector<HostHoldRecord>> holds = copy.ListHostHolds();
  ASSERT_OK(holds);
  ASSERT_EQ(holds->size(), 2u);
  EXPECT_EQ((*holds)[0].host_id, "web-01");
  EXPECT_TRUE((*holds)[0].held);
  EXPECT_EQ((*holds)[1].hold.local_id(), "local-web-02");
  EXPECT_FALSE((*holds)[1].held);
  ExpectSameList(sqlite_->ListRollouts("", 0, true), copy.ListRollouts("", 0, true));
  ExpectSameList(sqlite_->ListActiveRollouts(), copy.ListActiveRollouts());
  ExpectSameList(sqlite_->ListEvents("", 0), copy.ListEvents("", 0));
  ExpectSameList(sqlite_->ListTokens(), copy.ListTokens());
  absl::StatusOr<Release> v1 = copy.GetRelease("web", "v1");
  ASSERT_OK(v1);
  EXPECT_EQ(v1->signature(), "sig-bytes\x01\x02");
  EXPECT_THAT(Versions(*copy.ListReleases("web")), ElementsAre("v1", "v2", "v0"));
  absl::StatusOr<AlertRecord> alert = copy.GetAlert("4f1c2a", "2024-05-01T11:59:00Z", "firing");
  ASSERT_OK(alert);
  EXPECT_EQ(alert->outcome, AlertOutcome::kRollback);
  EXPECT_EQ(PgQueryOne(url_, "SELECT first_seen_ms FROM hosts WHERE id = 'web-01'"), "4242");

  // Ids go on after the last one SQLite gave.
  Rollout next = MakeRollout("web", "v3");
  ASSERT_OK(copy.CreateRollout(&next));
  EXPECT_EQ(std::stoll(next.id()), std::stoll(last_rollout_id_) + 1);
  Event event = MakeEvent("web", "rollout.started");
  ASSERT_OK(copy.AddEvent(&event));
  EXPECT_EQ(event.id(), 3);
}

TEST_F(StoreMigrationTest, Copy_IntoADatabaseThatHoldsAnythingIsRefusedAndChangesNothing) {
  Fill();
  ASSERT_OK(CopySqliteStoreToPostgres(dir_.path(), url_));
  ASSERT_OK(sqlite_->UpsertApp(MakeApp("extra"), nullptr));
  absl::StatusOr<StoreCopyReport> again = CopySqliteStoreToPostgres(dir_.path(), url_);
  EXPECT_THAT(again, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(again.status().message()),
              HasSubstr("is not empty: apps holds 2 rows; migrate-store copies into an empty "
                        "database only"));
  EXPECT_THAT(std::string(again.status().message()), Not(HasSubstr(server_.password())));
  EXPECT_EQ(PgQueryOne(url_, "SELECT count(*) FROM apps"), "2");
}

TEST_F(StoreMigrationTest, Copy_WithoutASqliteStoreIsNotFoundAndCreatesNothing) {
  fleet::testing::TempDir empty;
  EXPECT_THAT(CopySqliteStoreToPostgres(empty.path(), url_), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(std::filesystem::exists(empty.Sub("fleet.db")));
  EXPECT_EQ(PgQueryOne(url_, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), "0");
}

TEST_F(StoreMigrationTest, Copy_OfAnEmptyStoreIsAllowedAndLeavesAnEmptyCopy) {
  absl::StatusOr<StoreCopyReport> report = CopySqliteStoreToPostgres(dir_.path(), url_);
  ASSERT_OK(report);
  for (const auto& [table, rows] : report->tables) EXPECT_EQ(rows, 0) << table;
  EXPECT_EQ(PgQueryOne(url_, "SELECT version FROM schema_version"), absl::StrCat(kPgSchemaVersion));
}

}  // namespace
}  // namespace fleet::controller
