// A real PostgreSQL 15 server of a test's own (Debian's postgresql-15):
// its data dir (in a temp dir of its own) is a copy of a cluster made once
// by initdb and kept in the build dir (tests/postgres15-template), it
// listens on a free
// loopback port with its unix socket in its own temp dir, and it runs as
// `nobody` when the test runs as root (PostgreSQL refuses root). Logins
// need the password of user `fleet`, which Url() carries. The server is
// stopped (fast shutdown, then SIGKILL) and its dir removed on destruction.
#ifndef FLEET_TESTS_TESTING_POSTGRES_SERVER_H_
#define FLEET_TESTS_TESTING_POSTGRES_SERVER_H_

#include <memory>
#include <string>

#include "tests/testing/test_env.h"

namespace fleet::testing {

struct PostgresServerOptions {
  // fsync and synchronous commits as in production; off (the default) for
  // quick unit tests, whose server dies with them anyway.
  bool durable = false;
};

class PostgresServer {
 public:
  // Starts the server; a failure fails the test (ADD_FAILURE) and leaves
  // ok() false.
  explicit PostgresServer(PostgresServerOptions options = {});
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  bool ok() const { return server_ != nullptr; }
  int port() const { return port_; }
  pid_t pid() const { return server_ ? server_->pid() : -1; }
  // The password of user `fleet`, as it appears in Url().
  const std::string& password() const { return password_; }

  // postgresql://fleet:PASSWORD@127.0.0.1:PORT/DB
  std::string Url(const std::string& db) const;
  // Creates database `db` (UTF-8) and returns its Url(); "" and a test
  // failure when it cannot.
  std::string CreateDatabase(const std::string& db);

  // Stops the server (fast shutdown) and starts it again on the same port
  // and data, as a database restart during a test.
  bool Restart();

  // The server's log.
  std::string Log() const;

 private:
  bool Start();
  void Stop();

  PostgresServerOptions options_;
  TempDir dir_;
  int port_ = 0;
  std::string password_;
  std::unique_ptr<Subprocess> server_;
};

// Runs `sql` on the database at `url` on a connection of its own and
// returns the first column of the first row ("" when there is none); a
// failure fails the test and returns "".
std::string PgQueryOne(const std::string& url, const std::string& sql);
// Runs every statement of `sql` on a connection of its own.
void PgExec(const std::string& url, const std::string& sql);

}  // namespace fleet::testing

#endif  // FLEET_TESTS_TESTING_POSTGRES_SERVER_H_
