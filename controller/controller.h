// Wires the controller together: store, blobs, agent hub, rollout engine,
// the gRPC server (agent protocol + public API + reflection), the HTTP
// endpoints and the engine's ticker.
#ifndef FLEET_CONTROLLER_CONTROLLER_H_
#define FLEET_CONTROLLER_CONTROLLER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "common/tls.h"
#include "controller/agent_hub.h"
#include "controller/analysis.h"
#include "controller/api_access.h"
#include "controller/api_service.h"
#include "controller/audit_log.h"
#include "controller/blob_store.h"
#include "controller/catalog.h"
#include "controller/dashboard_api.h"
#include "controller/event_feed.h"
#include "controller/metrics.h"
#include "controller/notifier.h"
#include "controller/rollout_engine.h"
#include "controller/rollout_watch.h"
#include "controller/store.h"

namespace httplib {
class Server;
}

namespace fleet::controller {

struct ControllerOptions {
  std::string listen = "127.0.0.1:7000";
  std::string http_listen = "127.0.0.1:7001";
  // Artifact blobs, and the SQLite store unless `database` is set.
  std::string data_dir;
  // PostgreSQL URL (postgres://...) of the store; "" = SQLite in data_dir.
  // Holds a password more often than not: never logged (store_location.h).
  std::string database;
  EngineOptions engine;
  absl::Duration tick = absl::Milliseconds(500);
  // File holding the bearer token of POST /api/v1/alerts/alertmanager; ""
  // disables that endpoint (503).
  std::string alert_token_file;
  // Prometheus base URL for analysis checks of apps whose spec names none;
  // "" for none (such apps cannot start a rollout).
  std::string prometheus_url;
  // PEM files for gRPC over TLS: all three or none (common/tls.h). With them
  // agents must present a certificate signed by tls_ca naming their host id.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  // How often the three TLS files are re-read (rotation without a restart).
  absl::Duration tls_reload_interval = kDefaultTlsReloadInterval;
  // Allows plaintext on a --listen address that is not loopback.
  bool insecure = false;
  // Requires API tokens even in development mode.
  bool auth = false;

  // Plaintext gRPC on a loopback address only: nothing proves who a peer is,
  // so API tokens are off unless `auth` is set.
  bool DevelopmentMode() const;
  // Whether the public API requires a bearer token.
  bool RequiresAuth() const { return auth || !DevelopmentMode(); }
};

class Controller {
 public:
  explicit Controller(ControllerOptions options);
  ~Controller();

  // Opens the store and starts serving. On error nothing keeps running.
  absl::Status Start();
  // The gRPC port actually bound (useful with port 0).
  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }
  // Stops serving; Start() must have succeeded. Idempotent.
  void Shutdown();

 private:
  // The steps of Start(), in order. CheckOptions answers the alert token
  // (or "" without --alert-token-file).
  absl::StatusOr<std::string> CheckOptions();
  absl::Status OpenState();
  void StartServices();
  absl::Status StartGrpc();
  absl::Status StartHttp(const std::string& alert_token);

  ControllerOptions options_;
  std::unique_ptr<Store> store_;
  // Observes the engine and audit_, and is read by dashboard_'s streams:
  // declared before all three so that it is destroyed after them.
  std::unique_ptr<EventFeed> event_feed_;
  // The audit log of what is recorded outside the engine (alerts, denied
  // hosts), observed by metrics_ and notifier_. Borrowed by the hub's denial
  // hook and the alert handler: declared before hub_ and http_ so that it is
  // destroyed after them.
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<AgentHub> hub_;
  // Observes the engine and is read by the HTTP server: declared before
  // both so that it is destroyed after them.
  std::unique_ptr<Metrics> metrics_;
  // Observes the engine and writes to the store: declared between them so
  // that it stops after the engine and before the store closes.
  std::unique_ptr<Notifier> notifier_;
  // Observes the engine and is used by api_'s WatchRollout calls: declared
  // before both so that it is destroyed after them.
  std::unique_ptr<RolloutWatchHub> watches_;
  std::unique_ptr<RolloutEngine> engine_;
  // Calls the engine: declared after it so that it stops first.
  std::unique_ptr<Analyzer> analyzer_;
  // Used by api_: declared before it so that it is destroyed after it.
  std::unique_ptr<ApiAccess> access_;
  std::unique_ptr<OutputFetch> output_fetch_;
  std::unique_ptr<ApiService> api_;
  std::unique_ptr<grpc::Server> server_;
  // Serves on http_ through server_'s in-process channel: declared before
  // http_ so that it is destroyed after it.
  std::unique_ptr<DashboardApi> dashboard_;
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
  std::thread ticker_;
  absl::Notification stop_;
  int grpc_port_ = 0;
  int http_port_ = 0;
  bool stopped_ = false;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_CONTROLLER_H_
