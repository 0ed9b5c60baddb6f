// Builders of store rows and the fixtures shared by the store's tests:
// StoreTest runs each test on a fresh SqliteStore in a temp dir and on a
// fresh PgStore on a PostgreSQL server of the test's own
// (tests/testing/postgres_server.h); SqliteStoreTest on SQLite only. Their
// QueryOne and ExecAll reach the database through a connection of their
// own, as another process would.
#ifndef FLEET_TESTS_UNIT_CONTROLLER_STORE_FIXTURE_H_
#define FLEET_TESTS_UNIT_CONTROLLER_STORE_FIXTURE_H_

#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controller/pg_connection.h"
#include "controller/pg_store.h"
#include "controller/sqlite_store.h"
#include "controller/store.h"
#include "gtest/gtest.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::controller {

// The fixture's own vocabulary, for the tests that use it.
using ::fleet::testing::StatusIs;
using ::fleet::v1::App;
using ::fleet::v1::Event;
using ::fleet::v1::Host;
using ::fleet::v1::HostAppState;
using ::fleet::v1::HostTask;
using ::fleet::v1::Release;
using ::fleet::v1::Rollout;

// Runs `sql` on a connection of its own, as another process would, and
// returns the first column of the first row ("" when there is none).
inline std::string QueryOne(const std::string& path, const std::string& sql) {
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
inline void ExecAll(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
      << (err != nullptr ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

inline App MakeApp(const std::string& name, int64_t at_ms = 1000) {
  App app;
  app.mutable_spec()->set_name(name);
  app.mutable_spec()->set_keep_releases(5);
  app.mutable_spec()->add_shared_dirs("log");
  app.mutable_spec()->add_health()->set_http("http://127.0.0.1:8080/healthz");
  app.set_spec_yaml(absl::StrCat("name: ", name, "\nkeep_releases: 5\n"));
  app.set_updated_at_ms(at_ms);
  return app;
}

inline Release MakeRelease(const std::string& app, const std::string& version) {
  Release release;
  release.set_app(app);
  release.set_version(version);
  release.set_sha256(std::string(64, 'a'));
  release.set_size(1234);
  release.set_created_at_ms(5000);
  release.set_created_by("ci");
  return release;
}

inline HostTask MakeTask(const std::string& host, int wave) {
  HostTask task;
  task.set_host_id(host);
  task.set_wave(wave);
  task.set_state(fleet::v1::TASK_STATE_PENDING);
  task.set_from_version("v1");
  task.set_to_version("v2");
  return task;
}

inline Rollout MakeRollout(const std::string& app, const std::string& version,
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

inline Event MakeEvent(const std::string& app, const std::string& kind) {
  Event event;
  event.set_at_ms(9000);
  event.set_app(app);
  event.set_kind(kind);
  event.set_actor("alice");
  event.set_message(absl::StrCat(kind, " of ", app));
  return event;
}

inline std::vector<std::string> Versions(const std::vector<Release>& releases) {
  std::vector<std::string> out;
  for (const Release& r : releases) out.push_back(r.version());
  return out;
}
inline std::vector<std::string> Ids(const std::vector<Rollout>& rollouts) {
  std::vector<std::string> out;
  for (const Rollout& r : rollouts) out.push_back(r.id());
  return out;
}
inline std::vector<std::string> Kinds(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const Event& e : events) out.push_back(e.kind());
  return out;
}
inline std::vector<std::string> TaskHosts(const Rollout& rollout) {
  std::vector<std::string> out;
  for (const HostTask& t : rollout.tasks()) out.push_back(t.host_id());
  return out;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path());
    ASSERT_OK(store);
    store_ = std::move(*store);
  }
  std::string path() const { return dir_.Sub("fleet.db"); }

  fleet::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

enum class StoreBackend { kSqlite, kPostgres };

inline std::string StoreBackendName(const ::testing::TestParamInfo<StoreBackend>& info) {
  return info.param == StoreBackend::kSqlite ? "Sqlite" : "Postgres";
}

// Another process's write transaction, open until destroyed.
class ForeignWriter {
 public:
  virtual ~ForeignWriter() = default;
};

class StoreTest : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override {
    if (postgres()) {
      server_ = std::make_unique<fleet::testing::PostgresServer>();
      ASSERT_TRUE(server_->ok());
      url_ = server_->CreateDatabase("fleet");
    }
    absl::StatusOr<std::unique_ptr<Store>> store = Reopen();
    ASSERT_OK(store);
    store_ = std::move(*store);
  }

  bool postgres() const { return GetParam() == StoreBackend::kPostgres; }
  // Opens the same database again, as a restarted controller would.
  absl::StatusOr<std::unique_ptr<Store>> Reopen() {
    return postgres() ? OpenPgStore(url_) : OpenSqliteStore(path());
  }
  // How the store's errors name the database: the file, or the URL
  // without its password.
  std::string label() const { return postgres() ? RedactDatabaseUrl(url_) : path(); }
  std::string path() const { return dir_.Sub("fleet.db"); }
  std::string QueryOne(const std::string& sql) {
    return postgres() ? fleet::testing::PgQueryOne(url_, sql)
                      : ::fleet::controller::QueryOne(path(), sql);
  }
  void ExecAll(const std::string& sql) {
    if (postgres()) {
      fleet::testing::PgExec(url_, sql);
    } else {
      ::fleet::controller::ExecAll(path(), sql);
    }
  }
  // Holds the database's write lock from another connection, as another
  // controller's transaction would, until the result is destroyed.
  std::unique_ptr<ForeignWriter> HoldWriteLockElsewhere();

  fleet::testing::TempDir dir_;
  std::unique_ptr<fleet::testing::PostgresServer> server_;
  std::string url_;
  std::unique_ptr<Store> store_;
};

inline fleet::v1::ConfigRelease MakeConfig(const std::string& app, const std::string& version) {
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

inline AlertRecord MakeAlertRecord(const std::string& status) {
  AlertRecord alert;
  alert.fingerprint = "4f1c2a";
  alert.starts_at = "2024-05-01T11:59:00Z";
  alert.status = status;
  alert.app = "web";
  alert.alertname = "HighErrorRate";
  alert.received_at_ms = 9000;
  alert.outcome = AlertOutcome::kActing;
  alert.message = "rolling back release v2";
  return alert;
}

inline fleet::v1::TokenInfo MakeToken(const std::string& id, fleet::v1::Role role,
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

}  // namespace fleet::controller

#endif  // FLEET_TESTS_UNIT_CONTROLLER_STORE_FIXTURE_H_
