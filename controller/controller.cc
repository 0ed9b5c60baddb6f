#include "controller/controller.h"

#include <fcntl.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/address.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/status.h"
#include "controller/alerts.h"
#include "controller/listener_limits.h"
#include "controller/store_location.h"

namespace fleet::controller {
namespace {

// The data dir holds the database (notification URLs, secrets, token
// hashes) and every artifact: private to the controller's user. SQLite
// gives fleet.db-wal and fleet.db-shm the mode of fleet.db, so creating
// that one 0600 covers all three; with a PostgreSQL store (`sqlite` false)
// there is none.
absl::Status PrepareDataDir(const std::string& dir, bool sqlite) {
  FLEET_ASSIGN_OR_RETURN(int tightened, MakePrivateTree(dir));
  if (tightened > 0) {
    spdlog::warn("--data-dir {}: took group and other access off {} entries", dir, tightened);
  }
  if (!sqlite) return absl::OkStatus();
  const std::string db = dir + "/fleet.db";
  int fd = open(db.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", db));
  close(fd);
  return absl::OkStatus();
}

// Loads --tls-cert and --tls-key for each HTTPS handshake, so that the HTTP
// endpoints pick up a rotated certificate without a restart, as gRPC does.
// Handshakes are rare there (scrapes, health checks, alert webhooks).
int LoadHttpsCertificate(SSL* ssl, void* arg) {
  const auto* options = static_cast<const ControllerOptions*>(arg);
  if (SSL_use_certificate_chain_file(ssl, options->tls_cert.c_str()) == 1 &&
      SSL_use_PrivateKey_file(ssl, options->tls_key.c_str(), SSL_FILETYPE_PEM) == 1 &&
      SSL_check_private_key(ssl) == 1) {
    return 1;
  }
  char reason[256];
  ERR_error_string_n(ERR_peek_last_error(), reason, sizeof(reason));
  ERR_clear_error();
  spdlog::error("https: cannot load --tls-cert {} with --tls-key {}: {}", options->tls_cert,
                options->tls_key, reason);
  return 0;
}

}  // namespace

bool ControllerOptions::DevelopmentMode() const {
  return tls_cert.empty() && IsLoopbackAddress(listen);
}

Controller::Controller(ControllerOptions options) : options_(std::move(options)) {}

Controller::~Controller() { Shutdown(); }

absl::Status Controller::Start() {
  FLEET_ASSIGN_OR_RETURN(std::string alert_token, CheckOptions());
  FLEET_RETURN_IF_ERROR(OpenState());
  StartServices();
  FLEET_RETURN_IF_ERROR(StartGrpc());
  FLEET_RETURN_IF_ERROR(StartHttp(alert_token));
  ticker_ = std::thread([this] {
    // The first tick resumes the rollouts that were running before a restart.
    do {
      engine_->PostTick();
    } while (!stop_.WaitForNotificationWithTimeout(options_.tick));
  });
  const bool plaintext = options_.tls_cert.empty();
  std::string http_host;
  int unused_port = 0;
  SplitHostPort(options_.http_listen, &http_host, &unused_port).IgnoreError();  // checked
  spdlog::info(
      "fleet-controller {} listening on {} (grpc port {}, {}), {} on {}:{}, data in {}, store: {}",
      FLEET_VERSION, options_.listen, grpc_port_, plaintext ? "plaintext" : "mutual TLS",
      plaintext ? "http" : "https", http_host, http_port_, options_.data_dir,
      DescribeStore(options_.database, options_.data_dir));
  if (plaintext) {
    spdlog::warn("gRPC on {} is plaintext and unauthenticated: any agent may claim any host id{}",
                 options_.listen,
                 options_.insecure && !IsLoopbackAddress(options_.listen)
                     ? " and anyone on the network can listen in (--insecure)"
                     : "; give --tls-cert, --tls-key and --tls-ca outside development");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Controller::CheckOptions() {
  std::string host;
  int port = 0;
  absl::Status st = SplitHostPort(options_.http_listen, &host, &port);
  if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat("--http-listen: ", st.message()));
  st = SplitHostPort(options_.listen, &host, &port);
  if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat("--listen: ", st.message()));
  const TlsFiles tls{options_.tls_cert, options_.tls_key, options_.tls_ca};
  FLEET_RETURN_IF_ERROR(ValidateTlsFiles(tls));
  FLEET_RETURN_IF_ERROR(CheckPlaintextAllowed("--listen", options_.listen, !tls.empty(),
                                              options_.insecure, "serve plaintext"));
  if (!options_.prometheus_url.empty() && !absl::StartsWith(options_.prometheus_url, "http://") &&
      !absl::StartsWith(options_.prometheus_url, "https://")) {
    return absl::InvalidArgumentError(absl::StrCat("--prometheus-url '", options_.prometheus_url,
                                                   "' must be an http:// or https:// URL"));
  }
  options_.engine.prometheus_url = options_.prometheus_url;
  if (options_.alert_token_file.empty()) return std::string();
  absl::StatusOr<std::string> token = ReadAlertToken(options_.alert_token_file);
  if (!token.ok()) return Annotate(token.status(), "--alert-token-file");
  return token;
}

absl::Status Controller::OpenState() {
  FLEET_RETURN_IF_ERROR(PrepareDataDir(options_.data_dir, options_.database.empty()));
  FLEET_ASSIGN_OR_RETURN(store_, OpenStore(options_.database, options_.data_dir));
  FLEET_RETURN_IF_ERROR(store_->MarkAllHostsDisconnected());
  blobs_ = std::make_unique<BlobStore>(options_.data_dir + "/blobs");
  FLEET_RETURN_IF_ERROR(blobs_->Init());
  catalog_ = std::make_unique<Catalog>(store_.get(), blobs_.get());
  // Before anything runs: a failure here leaves nothing to stop.
  access_ = std::make_unique<ApiAccess>(store_.get(), options_.RequiresAuth());
  if (options_.RequiresAuth()) {
    return EnsureFirstAdminToken(store_.get(), options_.data_dir + "/admin.token");
  }
  spdlog::warn(
      "the API on {} is unauthenticated (development mode: plaintext gRPC on loopback); "
      "pass --auth to require API tokens",
      options_.listen);
  return absl::OkStatus();
}

void Controller::StartServices() {
  hub_ = std::make_unique<AgentHub>(blobs_.get(), DefaultClock());
  metrics_ = std::make_unique<Metrics>(store_.get(), hub_.get());
  hub_->set_bytes_served_hook(
      [metrics = metrics_.get()](int64_t bytes) { metrics->AddArtifactBytesServed(bytes); });
  engine_ =
      std::make_unique<RolloutEngine>(store_.get(), hub_.get(), DefaultClock(), options_.engine);
  hub_->set_listener(engine_.get());
  engine_->AddObserver(metrics_.get());
  notifier_ = std::make_unique<Notifier>(store_.get(), DefaultClock());
  engine_->AddObserver(notifier_.get());
  audit_ = std::make_unique<AuditLog>(DefaultClock());
  audit_->AddObserver(metrics_.get());
  audit_->AddObserver(notifier_.get());  // sends alert.rollback and alert.failed
  event_feed_ = std::make_unique<EventFeed>();
  engine_->AddObserver(event_feed_.get());
  audit_->AddObserver(event_feed_.get());
  watches_ = std::make_unique<RolloutWatchHub>();
  engine_->AddObserver(watches_.get());
  notifier_->Start();
  engine_->Start();
  analyzer_ = std::make_unique<Analyzer>(engine_.get(), std::make_unique<CurlPrometheusClient>());
  analyzer_->Start();
  output_fetch_ = std::make_unique<OutputFetch>(
      [hub = hub_.get()](const std::string& host, const fleet::v1::OutputRequest& request) {
        return hub->SendOutputRequest(host, request);
      });
  hub_->set_output_reply_hook(
      [fetch = output_fetch_.get()](const std::string& host, const fleet::v1::OutputReply& reply) {
        fetch->OnReply(host, reply);
      });
  api_ = std::make_unique<ApiService>(store_.get(), catalog_.get(), hub_.get(), engine_.get(),
                                      access_.get(), watches_.get(), output_fetch_.get());
  hub_->set_require_client_certificate(!options_.tls_cert.empty());
  hub_->set_denial_hook(
      [store = store_.get(), audit = audit_.get()](const fleet::v1::Event& event) {
        EngineEvent denied;
        denied.event = event;
        denied.event_kind = EventKind::kAuthDenied;
        // Record() logs a failure; the host is refused either way.
        audit->Record(store, std::move(denied)).IgnoreError();
      });
}

absl::Status Controller::StartGrpc() {
  const TlsFiles tls{options_.tls_cert, options_.tls_key, options_.tls_ca};
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen,
                           tls.empty() ? grpc::InsecureServerCredentials()
                                       : TlsServerCredentials(tls, options_.tls_reload_interval),
                           &grpc_port_);
  builder.RegisterService(hub_.get());
  builder.RegisterService(api_.get());
  builder.SetMaxReceiveMessageSize(16 << 20);
  ConfigureServerKeepalive(&builder);
  ApplyGrpcLimits(&builder);
  server_ = builder.BuildAndStart();
  if (!server_ || grpc_port_ == 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options_.listen, " (address in use or not local?)"));
  }
  return absl::OkStatus();
}

absl::Status Controller::StartHttp(const std::string& alert_token) {
  if (options_.tls_cert.empty()) {
    http_ = std::make_unique<httplib::Server>();
  } else {
    // The same certificate as gRPC, without client certificates: scrapers,
    // health checkers and Alertmanager (bearer token) have none.
    http_ = std::make_unique<httplib::SSLServer>([this](SSL_CTX& ctx) {
      SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
      SSL_CTX_set_cert_cb(&ctx, LoadHttpsCertificate, &options_);
      return true;
    });
  }
  // Slow or many clients must not stall /healthz (listener_limits.h).
  ApplyHttpLimits(http_.get());
  dashboard_ = std::make_unique<DashboardApi>(server_->InProcessChannel(grpc::ChannelArguments()),
                                              event_feed_.get());
  dashboard_->Register(http_.get());
  http_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  http_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    absl::StatusOr<std::string> text = metrics_->Render();
    if (!text.ok()) {
      spdlog::error("GET /metrics: {}", text.status().message());
      res.status = 500;
      res.set_content(std::string(text.status().message()) + "\n", "text/plain");
      return;
    }
    res.set_content(*std::move(text), kMetricsContentType);
  });
  // Without --alert-token-file the endpoint answers 503 saying so.
  std::shared_ptr<AlertHandler> alerts;
  if (!alert_token.empty()) {
    alerts =
        std::make_shared<AlertHandler>(store_.get(), engine_.get(), audit_.get(), DefaultClock());
  }
  AddAlertmanagerWebhook(http_.get(), std::move(alerts), alert_token);
  std::string host;
  int port = 0;
  FLEET_RETURN_IF_ERROR(SplitHostPort(options_.http_listen, &host, &port));
  if (port == 0) {
    http_port_ = http_->bind_to_any_port(host);
  } else if (http_->bind_to_port(host, port)) {
    http_port_ = port;
  }
  if (http_port_ <= 0) {
    server_->Shutdown();
    server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.http_listen));
  }
  http_thread_ = std::thread([this] { http_->listen_after_bind(); });
  return absl::OkStatus();
}

void Controller::Shutdown() {
  if (stopped_ || !server_) return;
  stopped_ = true;
  stop_.Notify();
  // HTTP first: an alert arriving while the rest stops would act on an
  // engine without agents and record a failure. Its event streams end first.
  dashboard_->Shutdown();
  http_->stop();
  if (http_thread_.joinable()) http_thread_.join();
  analyzer_->Stop();
  if (ticker_.joinable()) ticker_.join();
  hub_->CloseAll();
  // Watchers end with UNAVAILABLE (fleetctl reconnects) rather than hold
  // the server's shutdown until its deadline.
  watches_->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  engine_->Stop();
  // After the engine: nothing queues notifications any more.
  notifier_->Stop();
}

}  // namespace fleet::controller
