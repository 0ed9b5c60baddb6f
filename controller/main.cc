// fleet-controller: keeps release history and rollout plans, drives agents.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdlib>

#include "absl/time/time.h"
#include "common/logging.h"
#include "common/runtime.h"
#include "common/tls.h"
#include "controller/controller.h"
#include "controller/pg_connection.h"
#include "controller/store_location.h"
#include "controller/store_migration.h"

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "fleet-controller: %s\n", std::string(status.message()).c_str());
  return 1;
}

// `fleet-controller migrate-store`: copies DATA_DIR/fleet.db into an empty
// PostgreSQL database (store_migration.h) and reports what it copied.
int MigrateStore(const std::string& from, const std::string& to, const std::string& to_file) {
  absl::StatusOr<std::string> url = fleet::controller::ResolveDatabaseUrl(
      to, to_file, std::getenv(fleet::controller::kDatabaseEnv));
  if (!url.ok()) return Fail(url.status());
  if (url->empty()) {
    return Fail(absl::InvalidArgumentError(
        "migrate-store needs the PostgreSQL database: --to URL, --to-file PATH or FLEET_DATABASE"));
  }
  absl::StatusOr<fleet::controller::StoreCopyReport> report =
      fleet::controller::CopySqliteStoreToPostgres(from, *url);
  if (!report.ok()) return Fail(report.status());
  std::printf("%s\n", fleet::controller::DescribeStoreCopy(*report).c_str());
  std::printf(
      "artifacts stay in %s/blobs: start fleet-controller with --data-dir %s and the "
      "database\n",
      from.c_str(), from.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  fleet::InitRuntime();
  CLI::App app{"fleet-controller: release history, rollouts and rollbacks for a fleet"};
  fleet::controller::ControllerOptions options;
  std::string log_level = "info";
  std::string host_timeout = "2m";
  std::string reconcile_interval = "10s";
  app.add_option("--listen", options.listen, "gRPC address for agents and fleetctl")
      ->capture_default_str();
  app.add_option("--http-listen", options.http_listen,
                 "HTTP address for /healthz, /metrics (Prometheus) and the Alertmanager webhook "
                 "(POST /api/v1/alerts/alertmanager); HTTPS with the --tls-* files")
      ->capture_default_str();
  app.add_option("--data-dir", options.data_dir,
                 "artifact blobs, and the SQLite database unless a PostgreSQL one is given");
  std::string database_url;
  std::string database_file;
  app.add_option("--database", database_url,
                 "PostgreSQL store: postgres://USER@HOST:PORT/DB (a password here shows in ps; "
                 "prefer --database-file or the FLEET_DATABASE environment variable); default: "
                 "SQLite in --data-dir");
  app.add_option("--database-file", database_file,
                 "file holding the PostgreSQL URL; must not be readable by group or others");
  CLI::App* migrate =
      app.add_subcommand("migrate-store",
                         "copy the SQLite store of a data dir into an empty PostgreSQL database, "
                         "verify the copy and report it");
  std::string migrate_from, migrate_to, migrate_to_file;
  migrate->add_option("--from", migrate_from, "data dir of the SQLite store (DATA_DIR/fleet.db)")
      ->required();
  migrate->add_option("--to", migrate_to, "PostgreSQL URL (or --to-file, or FLEET_DATABASE)");
  migrate->add_option("--to-file", migrate_to_file,
                      "file holding the PostgreSQL URL; must not be readable by group or others");

  app.add_option("--host-timeout", host_timeout,
                 "a host with work that stays away or silent this long counts as failed")
      ->capture_default_str();
  app.add_option("--reconcile-interval", reconcile_interval,
                 "how often connected hosts are checked against the fleet's release and config; "
                 "one that differs (and is not held) is brought back")
      ->capture_default_str();
  app.add_option("--alert-token-file", options.alert_token_file,
                 "shared bearer token that Alertmanager's webhook must send to "
                 "POST /api/v1/alerts/alertmanager (unset: the endpoint is disabled)");
  app.add_option("--prometheus-url", options.prometheus_url,
                 "Prometheus base URL (http://HOST:PORT) for the analysis checks of apps whose "
                 "spec has no prometheus_url");
  app.add_flag("--auth", options.auth,
               "require API tokens even on loopback in development mode (the first start "
               "writes an admin token to DATA_DIR/admin.token)");
  std::string tls_reload_interval = "1m";
  app.add_option("--tls-cert", options.tls_cert,
                 "PEM certificate for --listen and --http-listen (with --tls-key and --tls-ca: "
                 "mutual TLS; agents must present a certificate naming their host id)");
  app.add_option("--tls-key", options.tls_key, "PEM private key of --tls-cert");
  app.add_option("--tls-ca", options.tls_ca, "PEM CA bundle that agents' certificates chain to");
  app.add_option("--tls-reload-interval", tls_reload_interval,
                 "re-read the TLS files this often (rotation without restart)")
      ->capture_default_str();
  app.add_flag("--insecure", options.insecure,
               "serve plaintext gRPC on a --listen address that is not loopback");
  app.add_option("--log-level", log_level, "debug, info, warn or error")->capture_default_str();
  app.set_version_flag("--version", FLEET_VERSION);
  CLI11_PARSE(app, argc, argv);
  if (migrate->parsed()) return MigrateStore(migrate_from, migrate_to, migrate_to_file);
  if (options.data_dir.empty()) {
    std::fprintf(stderr, "fleet-controller: --data-dir is required\n");
    return 1;
  }
  absl::StatusOr<std::string> database = fleet::controller::ResolveDatabaseUrl(
      database_url, database_file, std::getenv(fleet::controller::kDatabaseEnv));
  if (!database.ok()) return Fail(database.status());
  options.database = *database;

  if (auto st = fleet::InitLogging("fleet-controller", log_level); !st.ok()) {
    std::fprintf(stderr, "fleet-controller: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  if (!database_url.empty() && fleet::controller::DatabaseUrlHasPassword(database_url)) {
    spdlog::warn(
        "the password in --database shows in every user's ps; give the URL with "
        "--database-file or FLEET_DATABASE instead");
  }
  absl::StatusOr<absl::Duration> reload = fleet::ParseTlsReloadInterval(tls_reload_interval);
  if (!reload.ok()) {
    std::fprintf(stderr, "fleet-controller: %s\n", std::string(reload.status().message()).c_str());
    return 1;
  }
  options.tls_reload_interval = *reload;
  if (!absl::ParseDuration(host_timeout, &options.engine.host_timeout) ||
      options.engine.host_timeout <= absl::ZeroDuration()) {
    std::fprintf(stderr, "fleet-controller: --host-timeout '%s' is not a duration like 2m\n",
                 host_timeout.c_str());
    return 1;
  }
  if (!absl::ParseDuration(reconcile_interval, &options.engine.reconcile_interval) ||
      options.engine.reconcile_interval < absl::Seconds(1)) {
    std::fprintf(stderr,
                 "fleet-controller: --reconcile-interval '%s' is not a duration of 1s or more\n",
                 reconcile_interval.c_str());
    return 1;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  fleet::controller::Controller controller(options);
  if (auto st = controller.Start(); !st.ok()) {
    std::fprintf(stderr, "fleet-controller: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: shutting down", sig);
  controller.Shutdown();
  return 0;
}
