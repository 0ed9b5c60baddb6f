// fleet-controller: keeps release history and rollout plans, drives agents.
#include <signal.h>

#include <CLI/CLI.hpp>

#include "absl/time/time.h"
#include "common/logging.h"
#include "controller/controller.h"

int main(int argc, char** argv) {
  CLI::App app{"fleet-controller: release history, rollouts and rollbacks for a fleet"};
  fleet::controller::ControllerOptions options;
  std::string log_level = "info";
  std::string host_timeout = "2m";
  app.add_option("--listen", options.listen, "gRPC address for agents and fleetctl")
      ->capture_default_str();
  app.add_option("--http-listen", options.http_listen, "HTTP address for /healthz")
      ->capture_default_str();
  app.add_option("--data-dir", options.data_dir, "SQLite database and artifact blobs")->required();
  app.add_option("--host-timeout", host_timeout,
                 "a host with work that stays away or silent this long counts as failed")
      ->capture_default_str();
  app.add_option("--alert-token-file", options.alert_token_file,
                 "shared bearer token that Alertmanager's webhook must send to "
                 "POST /api/v1/alerts/alertmanager (unset: the endpoint is disabled)");
  app.add_option("--prometheus-url", options.prometheus_url,
                 "Prometheus base URL (http://HOST:PORT) for the analysis checks of apps whose "
                 "spec has no prometheus_url");
  app.add_option("--log-level", log_level, "debug, info, warn or error")->capture_default_str();
  app.set_version_flag("--version", FLEET_VERSION);
  CLI11_PARSE(app, argc, argv);

  if (auto st = fleet::InitLogging("fleet-controller", log_level); !st.ok()) {
    std::fprintf(stderr, "fleet-controller: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  if (!absl::ParseDuration(host_timeout, &options.engine.host_timeout) ||
      options.engine.host_timeout <= absl::ZeroDuration()) {
    std::fprintf(stderr, "fleet-controller: --host-timeout '%s' is not a duration like 2m\n",
                 host_timeout.c_str());
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
