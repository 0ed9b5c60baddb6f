// End-to-end on PostgreSQL: a real controller with --database-file on a
// PostgreSQL 15 server of the test's own, real agents, a deploy, a failed
// release, a rollback and a controller killed mid-rollout; and
// `fleet-controller migrate-store` of a store a real run left in SQLite,
// then a rollback on PostgreSQL to a release recorded in SQLite.
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"
#include "tests/testing/postgres_server.h"

namespace fleet {
namespace {

using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::PgQueryOne;
using testing::PostgresServer;

// The URL in a 0600 file, so no password is on a command line.
std::string WriteUrlFile(const testing::TempDir& dir, const std::string& url) {
  const std::string path = dir.Sub("database.url");
  testing::WriteTextFile(path, url + "\n", 0600);
  return path;
}

ClusterOptions OnDatabase(const std::string& url_file) {
  ClusterOptions options;
  options.controller_args = {"--database-file", url_file};
  return options;
}

void Push(Cluster& cluster, const std::string& version, int healthz_status = 200) {
  std::string artifact = cluster.MakeHelloArtifact(version, healthz_status);
  CommandOutput out = cluster.Fleetctl({"release", "push", "hello", version, artifact});
  ASSERT_EQ(out.exit_code, 0) << out.err;
}

void Deploy(Cluster& cluster, const std::string& version) {
  CommandOutput out = cluster.Fleetctl({"rollout", "hello", version, "--wait"});
  ASSERT_EQ(out.exit_code, 0) << out.out << out.err << cluster.ControllerLog();
}

void ExpectFleetOn(Cluster& cluster, const std::string& version) {
  for (int i = 0; i < cluster.agents(); ++i) {
    EXPECT_EQ(cluster.Current(i), version) << cluster.HostId(i);
    EXPECT_EQ(cluster.HttpGet(i, "/version"), version + "\n") << cluster.HostId(i);
  }
}

class E2EPostgresTest : public ::testing::Test {
 protected:
  E2EPostgresTest()
      : url_(server_.CreateDatabase("fleet")),
        url_file_(WriteUrlFile(dir_, url_)),
        cluster_(OnDatabase(url_file_)) {}

  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(3)) << cluster_.ControllerLog();
  }

  PostgresServer server_;
  testing::TempDir dir_;
  std::string url_;
  std::string url_file_;
  Cluster cluster_;
};

TEST_F(E2EPostgresTest, DeployFailedReleaseAndRollback_AllStoredInPostgres) {
  cluster_.ApplyHelloSpec();
  Push(cluster_, "v1");
  Push(cluster_, "v2");
  Push(cluster_, "v3", 502);
  Deploy(cluster_, "v1");
  Deploy(cluster_, "v2");
  ExpectFleetOn(cluster_, "v2");

  CommandOutput failed = cluster_.Fleetctl({"rollout", "hello", "v3", "--wait"});
  EXPECT_EQ(failed.exit_code, 2) << failed.out << failed.err;
  EXPECT_THAT(failed.err, HasSubstr("/healthz returned 502"));
  ExpectFleetOn(cluster_, "v2");

  CommandOutput rollback = cluster_.Fleetctl({"rollback", "hello", "--wait"});
  EXPECT_EQ(rollback.exit_code, 0) << rollback.out << rollback.err;
  ExpectFleetOn(cluster_, "v1");

  // Everything is in PostgreSQL, nothing in a SQLite file.
  EXPECT_EQ(PgQueryOne(url_, "SELECT count(*) FROM rollouts"), "4");
  EXPECT_EQ(PgQueryOne(url_, "SELECT count(*) FROM releases WHERE app = 'hello'"), "3");
  EXPECT_EQ(PgQueryOne(url_, "SELECT count(*) FROM hosts WHERE connected"), "3");
  EXPECT_EQ(PgQueryOne(url_, "SELECT desired_version FROM apps WHERE name = 'hello'"), "v1");
  // v3 failed at its one-host canary, which switched itself back.
  EXPECT_EQ(PgQueryOne(url_, "SELECT count(*) FROM events WHERE kind = 'host.switched_back'"),
            "1");
  EXPECT_FALSE(std::filesystem::exists(cluster_.DataDir() + "/fleet.db"));
  CommandOutput history = cluster_.Fleetctl({"history", "hello"});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  std::vector<std::string> lines =
      absl::StrSplit(testing::RolloutsTable(history.out), '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 5u) << history.out;

  // The start line names the store; the password is nowhere in the log.
  const std::string log = cluster_.ControllerLog();
  EXPECT_THAT(log, HasSubstr(absl::StrCat("store: PostgreSQL postgresql://fleet@127.0.0.1:",
                                          server_.port(), "/fleet")));
  EXPECT_THAT(log, Not(HasSubstr(server_.password())));
}

TEST_F(E2EPostgresTest, ControllerKilledDuringActivation_ResumesFromPostgresAndFinishes) {
  cluster_.ApplyHelloSpec("3s");
  Push(cluster_, "v1");
  Deploy(cluster_, "v1");
  Push(cluster_, "v2");
  CommandOutput started = cluster_.Fleetctl({"rollout", "hello", "v2"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  const std::string id = Cluster::RolloutId(started.out);
  ASSERT_TRUE(testing::WaitFor([&] { return cluster_.Current(0) == "v2"; }, absl::Seconds(20)));
  cluster_.KillController();
  cluster_.StartController();

  CommandOutput watched = cluster_.Fleetctl({"rollout", "watch", id}, absl::Seconds(90));
  EXPECT_EQ(watched.exit_code, 0) << watched.out << watched.err << cluster_.ControllerLog();
  ExpectFleetOn(cluster_, "v2");
  CommandOutput list = cluster_.Fleetctl({"rollout", "list", "hello"});
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 3) << list.out;
  // Each host switched to v2 once: one healthy task per host, no second rollout.
  EXPECT_EQ(PgQueryOne(url_, absl::StrCat("SELECT count(*) FROM rollout_tasks WHERE rollout_id = ",
                                          id, " AND state = 5")),
            "3");
}

TEST(E2EMigrateStoreTest, SqliteStoreOfARealRun_CopiedThenRolledBackOnPostgres) {
  PostgresServer server;
  ASSERT_TRUE(server.ok());
  testing::TempDir dir;
  const std::string url = server.CreateDatabase("fleet");
  const std::string url_file = WriteUrlFile(dir, url);
  Cluster cluster;  // SQLite in its data dir
  ASSERT_TRUE(cluster.WaitForConnectedHosts(3)) << cluster.ControllerLog();
  cluster.ApplyHelloSpec();
  Push(cluster, "v1");
  Push(cluster, "v2");
  Deploy(cluster, "v1");
  Deploy(cluster, "v2");
  cluster.KillController();

  const std::string controller = Cluster::Binary("fleet-controller");
  CommandOutput copied = testing::RunCommand(
      {controller, "migrate-store", "--from", cluster.DataDir(), "--to-file", url_file});
  ASSERT_EQ(copied.exit_code, 0) << copied.out << copied.err;
  EXPECT_THAT(copied.out, HasSubstr("copied 1 apps, 2 releases, 0 configs, 3 hosts, 3 host_apps, "
                                    "0 host_holds, 2 rollouts, 6 rollout_tasks"));
  EXPECT_THAT(copied.out, HasSubstr("verified"));
  EXPECT_THAT(copied.out, HasSubstr("artifacts stay in " + cluster.DataDir() + "/blobs"));
  EXPECT_THAT(copied.out + copied.err, Not(HasSubstr(server.password())));

  // A second copy finds the database holding the first: refused, one line.
  CommandOutput again = testing::RunCommand(
      {controller, "migrate-store", "--from", cluster.DataDir(), "--to-file", url_file});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("is not empty: apps holds 1 rows"));
  EXPECT_EQ(std::count(again.err.begin(), again.err.end(), '\n'), 1) << again.err;
  EXPECT_EQ(PgQueryOne(url, "SELECT count(*) FROM rollouts"), "2");

  // The same data dir (artifacts) with the PostgreSQL store: back to v1,
  // a release SQLite recorded.
  cluster.SetControllerArgs({"--database-file", url_file});
  cluster.StartController();
  ASSERT_TRUE(cluster.WaitForConnectedHosts(3)) << cluster.ControllerLog();
  CommandOutput rollback = cluster.Fleetctl({"rollback", "hello", "--wait"});
  EXPECT_EQ(rollback.exit_code, 0) << rollback.out << rollback.err << cluster.ControllerLog();
  ExpectFleetOn(cluster, "v1");
  EXPECT_THAT(cluster.ControllerLog(), HasSubstr("store: PostgreSQL"));
  EXPECT_EQ(PgQueryOne(url, "SELECT count(*) FROM rollouts"), "3");
  EXPECT_EQ(PgQueryOne(url, "SELECT max(id) FROM rollouts"), "3");
  CommandOutput history = cluster.Fleetctl({"history", "hello"});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  std::vector<std::string> lines =
      absl::StrSplit(testing::RolloutsTable(history.out), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u) << history.out;  // header, the rollback, v2, v1
  EXPECT_THAT(lines[1], HasSubstr("rollback"));
}

TEST(E2EPostgresFlagsTest, BadDatabaseFlags_GetOneLineAndStartNothing) {
  testing::TempDir dir;
  const std::string controller = Cluster::Binary("fleet-controller");
  testing::WriteTextFile(dir.Sub("open.url"), "postgres://fleet:hunter2@127.0.0.1:1/fleet", 0644);
  CommandOutput open = testing::RunCommand(
      {controller, "--data-dir", dir.Sub("data"), "--database-file", dir.Sub("open.url")});
  EXPECT_EQ(open.exit_code, 1);
  EXPECT_THAT(open.err, HasSubstr("may be read by group or others (mode 0644): chmod 600 it"));
  EXPECT_EQ(std::count(open.err.begin(), open.err.end(), '\n'), 1) << open.err;

  // Nothing listens on port 1: the error names the database, not the password.
  CommandOutput down = testing::RunCommand(
      {controller, "--data-dir", dir.Sub("data"), "--listen", "127.0.0.1:0", "--http-listen",
       "127.0.0.1:0"},
      absl::Seconds(30), {{"FLEET_DATABASE", "postgres://fleet:hunter2@127.0.0.1:1/fleet"}});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_THAT(down.err, HasSubstr("cannot connect to postgresql://fleet@127.0.0.1:1/fleet"));
  EXPECT_THAT(down.out + down.err, Not(HasSubstr("hunter2")));

  CommandOutput no_store =
      testing::RunCommand({controller, "migrate-store", "--from", dir.Sub("nothing"), "--to",
                           "postgres://fleet:hunter2@127.0.0.1:1/fleet"});
  EXPECT_EQ(no_store.exit_code, 1);
  EXPECT_THAT(no_store.err, HasSubstr("no store at " + dir.Sub("nothing") + "/fleet.db"));
  EXPECT_THAT(no_store.err, Not(HasSubstr("hunter2")));
}

}  // namespace
}  // namespace fleet
