#include "tests/testing/postgres_server.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace fleet::testing {
namespace {

constexpr char kBinDir[] = "/usr/lib/postgresql/15/bin/";

// PostgreSQL refuses to run as root: as root, the server and initdb run as
// nobody and own their dirs.
bool RunsAsRoot() { return geteuid() == 0; }

std::vector<std::string> AsServerUser(std::vector<std::string> argv) {
  if (!RunsAsRoot()) return argv;
  const passwd* nobody = getpwnam("nobody");
  const uid_t uid = nobody != nullptr ? nobody->pw_uid : 65534;
  const gid_t gid = nobody != nullptr ? nobody->pw_gid : 65534;
  argv.insert(argv.begin(), {"setpriv", absl::StrCat("--reuid=", uid),
                             absl::StrCat("--regid=", gid), "--clear-groups"});
  return argv;
}

bool GiveToServerUser(const std::string& path) {
  if (!RunsAsRoot()) return true;
  const passwd* nobody = getpwnam("nobody");
  if (nobody == nullptr || chown(path.c_str(), nobody->pw_uid, nobody->pw_gid) != 0) {
    ADD_FAILURE() << "cannot give " << path << " to user nobody: " << std::strerror(errno);
    return false;
  }
  return true;
}

// A build product like the binaries: `make clean` removes it.
std::string TemplateDir() { return std::string(FLEET_BINARY_DIR) + "/tests/postgres15-template"; }

std::string RandomPassword() {
  std::string bytes(16, '\0');
  FILE* f = fopen("/dev/urandom", "rb");
  if (f != nullptr) {
    if (fread(bytes.data(), 1, bytes.size(), f) != bytes.size()) bytes.assign(16, 'x');
    fclose(f);
  }
  return absl::BytesToHexString(bytes);
}

// Makes the template cluster once: initdb is slow (seconds), a copy of its
// result is not. initdb runs in a temp dir (which the server user can
// reach, unlike perhaps the build dir); its result is copied next to the
// template and renamed into place. Several test processes may race here;
// the first rename wins.
bool EnsureTemplate() {
  const std::string dir = TemplateDir();
  if (access((dir + "/data/PG_VERSION").c_str(), R_OK) == 0 &&
      access((dir + "/password").c_str(), R_OK) == 0) {
    return true;
  }
  TempDir work;
  const std::string password = RandomPassword();
  if (!GiveToServerUser(work.path())) return false;
  WriteTextFile(work.Sub("pwfile"), password + "\n", 0600);
  if (!GiveToServerUser(work.Sub("pwfile"))) return false;
  CommandOutput out = RunCommand(
      AsServerUser({std::string(kBinDir) + "initdb", "-D", work.Sub("data"), "-U", "fleet",
                    "--pwfile=" + work.Sub("pwfile"), "-A", "scram-sha-256", "-E", "UTF8",
                    "--locale=C.UTF-8", "--no-sync"}),
      absl::Seconds(180));
  if (out.exit_code != 0) {
    ADD_FAILURE() << "initdb failed (" << out.exit_code << "): " << out.err << out.out;
    return false;
  }
  std::string staging = dir + "-XXXXXX";
  if (mkdtemp(staging.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << staging << ": " << std::strerror(errno);
    return false;
  }
  CommandOutput copy = RunCommand({"cp", "-a", work.Sub("data"), staging + "/data"});
  bool ok = copy.exit_code == 0;
  if (ok) WriteTextFile(staging + "/password", password, 0600);
  if (ok && rename(staging.c_str(), dir.c_str()) == 0) return true;
  std::error_code ec;
  std::filesystem::remove_all(staging, ec);
  if (!ok) ADD_FAILURE() << "cannot copy the initdb result: " << copy.err;
  // Another process won the race, or this one failed.
  return ok && access((dir + "/password").c_str(), R_OK) == 0;
}

}  // namespace

PostgresServer::PostgresServer(PostgresServerOptions options) : options_(options) {
  if (!EnsureTemplate() || !GiveToServerUser(dir_.path())) return;
  CommandOutput copy = RunCommand({"cp", "-a", TemplateDir() + "/data", dir_.Sub("data")});
  if (copy.exit_code != 0) {
    ADD_FAILURE() << "cannot copy the PostgreSQL template: " << copy.err;
    return;
  }
  password_ = ReadTextFile(TemplateDir() + "/password");
  port_ = FreePort();
  Start();
}

PostgresServer::~PostgresServer() { Stop(); }

bool PostgresServer::Start() {
  std::vector<std::string> argv = {std::string(kBinDir) + "postgres",
                                   "-D",
                                   dir_.Sub("data"),
                                   "-k",
                                   dir_.path(),
                                   "-p",
                                   absl::StrCat(port_),
                                   "-h",
                                   "127.0.0.1",
                                   "-c",
                                   "max_connections=50"};
  if (!options_.durable) {
    for (const char* setting : {"fsync=off", "synchronous_commit=off", "full_page_writes=off"}) {
      argv.insert(argv.end(), {"-c", setting});
    }
  }
  auto server = std::make_unique<Subprocess>(AsServerUser(argv), dir_.Sub("postgres.log"));
  const std::string ping =
      absl::StrCat("host=127.0.0.1 port=", port_, " dbname=postgres connect_timeout=2");
  const bool up = WaitFor([&] { return !server->running() || PQping(ping.c_str()) == PQPING_OK; },
                          absl::Seconds(60));
  if (!up || !server->running()) {
    ADD_FAILURE() << "PostgreSQL did not start on port " << port_ << ":\n" << Log();
    return false;
  }
  server_ = std::move(server);
  return true;
}

void PostgresServer::Stop() {
  if (server_ == nullptr) return;
  kill(server_->pid(), SIGINT);  // fast shutdown: ends sessions, checkpoints
  if (server_->Wait(absl::Seconds(20)) < 0) server_->Kill();
  server_.reset();
}

bool PostgresServer::Restart() {
  Stop();
  return Start();
}

std::string PostgresServer::Url(const std::string& db) const {
  return absl::StrCat("postgresql://fleet:", password_, "@127.0.0.1:", port_, "/", db);
}

std::string PostgresServer::CreateDatabase(const std::string& db) {
  if (!ok()) return "";
  PgExec(Url("postgres"), absl::StrCat("CREATE DATABASE ", db, " ENCODING 'UTF8'"));
  return Url(db);
}

std::string PostgresServer::Log() const { return ReadTextFile(dir_.Sub("postgres.log")); }

std::string PgQueryOne(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  std::string value;
  if (PQstatus(conn) != CONNECTION_OK) {
    ADD_FAILURE() << "cannot connect: " << PQerrorMessage(conn);
  } else {
    PGresult* result = PQexec(conn, sql.c_str());
    const ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      ADD_FAILURE() << sql << ": " << PQresultErrorMessage(result);
    } else if (PQntuples(result) > 0 && PQnfields(result) > 0) {
      value = PQgetvalue(result, 0, 0);
    }
    PQclear(result);
  }
  PQfinish(conn);
  return value;
}

void PgExec(const std::string& url, const std::string& sql) { PgQueryOne(url, sql); }

}  // namespace fleet::testing
