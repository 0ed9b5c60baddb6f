// fleet-controller: keeps release history and rollout plans, drives agents.
#include <signal.h>

#include <CLI/CLI.hpp>

#include "absl/time/time.h"
#include "common/logging.h"
#include "common/runtime.h"
#include "common/tls.h"
#include "controller/controller.h"

int main(int argc, char** argv) {
  fleet::InitRuntime();
  CLI::App app{"fleet-controller: release history, rollouts and rollbacks for a fleet"};
  fleet::controller::ControllerOptions options;
  std::string log_level = "info";
  std::string host_timeout = "2m";
  std::string reconcile_interval = "10s";
  app.add_option("--listen", options.listen, "gRPC address for agents and fleetctl")
      ->capture_default_str();
  app.add_option("--http-listen", options.http_listen, "HTTP address for /healthz, /metrics (Prometheus) and the Alertmanager webhook "
                 "(POST /api/v1/alerts/alertmanager); HTTPS with the --tls-* files")
      ->capture_default_str();
  app.add_option("--data-dir", options.data_dir, "SQLite database and artifact blobs")->required();
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

  if (auto st = fleet::InitLogging("fleet-controller", log_level); !st.ok()) {
    std::fprintf(stderr, "fleet-controller: %s\n", std::string(st.message()).c_str());
    return 1;
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
