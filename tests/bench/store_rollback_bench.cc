// Rollback speed on each store, in the same run: HOSTS real agents, an app
// whose reload and exec probe are `true` (bake 0), and RUNS `fleetctl
// rollback --wait` runs (alternately to v1 and v2) against a controller on
// SQLite in its data dir, then against one on PostgreSQL 15 (a server of
// the bench's own on loopback, fsync on, as SQLite's synchronous=FULL).
// Prints median, min and max milliseconds from the command's start to its
// exit, and how many store transactions PostgreSQL committed for them.
//
//   build/tests/bench/store_rollback_bench [RUNS [HOSTS]]   default: 5 10
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/bench/rollback_timing.h"
#include "tests/testing/cluster.h"
#include "tests/testing/postgres_server.h"

namespace {

using fleet::bench::Median;
using fleet::bench::TrivialAppRollbacks;

double Min(const std::vector<double>& ms) {
  return ms.empty() ? 0 : *std::min_element(ms.begin(), ms.end());
}
double Max(const std::vector<double>& ms) {
  return ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end());
}

int64_t Commits(const std::string& url) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(fleet::testing::PgQueryOne(url,
                                                   "SELECT xact_commit FROM pg_stat_database "
                                                   "WHERE datname = current_database()"),
                        &n)) {
    return -1;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  int hosts = 10;
  if ((argc > 1 && (!absl::SimpleAtoi(argv[1], &runs) || runs < 1)) ||
      (argc > 2 && (!absl::SimpleAtoi(argv[2], &hosts) || hosts < 1)) || argc > 3) {
    std::fprintf(stderr, "usage: %s [RUNS [HOSTS]]   (default: 5 10)\n", argv[0]);
    return 2;
  }

  std::vector<double> sqlite;
  if (!TrivialAppRollbacks(hosts, runs, {}, &sqlite)) return 1;

  fleet::testing::PostgresServerOptions pg_options;
  pg_options.durable = true;
  fleet::testing::PostgresServer server(pg_options);
  if (!server.ok()) return 1;
  const std::string url = server.CreateDatabase("fleet");
  fleet::testing::TempDir dir;
  const std::string url_file = dir.Sub("database.url");
  fleet::testing::WriteTextFile(url_file, url, 0600);
  std::vector<double> postgres;
  const int64_t commits_before = Commits(url);
  if (!TrivialAppRollbacks(hosts, runs, {"--database-file", url_file}, &postgres)) return 1;
  const int64_t commits = Commits(url) - commits_before;

  std::printf("rollback of %d hosts, %d runs each (fleetctl rollback --wait, start to exit)\n",
              hosts, runs);
  std::printf("%-32s %10s %10s %10s\n", "store", "median ms", "min ms", "max ms");
  std::printf("%-32s %10.0f %10.0f %10.0f\n", "SQLite (WAL, synchronous=FULL)", Median(sqlite),
              Min(sqlite), Max(sqlite));
  std::printf("%-32s %10.0f %10.0f %10.0f\n", "PostgreSQL 15 (loopback, fsync)", Median(postgres),
              Min(postgres), Max(postgres));
  std::printf(
      "PostgreSQL transactions committed during the PostgreSQL run (setup included): %lld\n",
      static_cast<long long>(commits));
  return 0;
}
