// The public API (fleet.v1.FleetService) over the store, the catalog and the
// engine: each RPC admits its caller, converts the request, and delegates.
#ifndef FLEET_CONTROLLER_API_SERVICE_H_
#define FLEET_CONTROLLER_API_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "controller/agent_hub.h"
#include "controller/api_access.h"
#include "controller/catalog.h"
#include "controller/output_fetch.h"
#include "controller/rollout_engine.h"
#include "controller/rollout_watch.h"
#include "controller/store.h"
#include "fleet/v1/api.grpc.pb.h"

namespace fleet::controller {

// Metadata with which the dashboard's HTTP API (dashboard_api.h), calling
// this service over the server's in-process channel, names its own client
// ("127.0.0.1:50412") for audit events and the rate limit of denials. It is
// believed only from a call that also carries kGatewayKeyMetadata with
// GatewayKey(), which never leaves the process.
inline constexpr char kHttpPeerMetadata[] = "fleet-http-peer";
inline constexpr char kGatewayKeyMetadata[] = "fleet-gateway-key";
// 32 random bytes in hex, made once per process; any thread.
const std::string& GatewayKey();

// Every RPC is admitted by `access` first (API tokens and roles; see
// api_access.h), then acts with the caller's actor as ApiCaller::Actor gives it.
class ApiService final : public fleet::v1::FleetService::CallbackService {
 public:
  // All pointers must outlive the service.
  ApiService(Store* store, Catalog* catalog, AgentHub* hub, RolloutEngine* engine,
             ApiAccess* access, RolloutWatchHub* watches, OutputFetch* output)
      : store_(store),
        catalog_(catalog),
        hub_(hub),
        engine_(engine),
        access_(access),
        watches_(watches),
        output_(output) {}

  grpc::ServerUnaryReactor* ApplyApp(grpc::CallbackServerContext* ctx,
                                     const fleet::v1::ApplyAppRequest* req,
                                     fleet::v1::ApplyAppResponse* resp) override;
  grpc::ServerUnaryReactor* ListApps(grpc::CallbackServerContext* ctx,
                                     const fleet::v1::ListAppsRequest* req,
                                     fleet::v1::ListAppsResponse* resp) override;
  grpc::ServerReadReactor<fleet::v1::PushReleaseRequest>* PushRelease(
      grpc::CallbackServerContext* ctx, fleet::v1::Release* resp) override;
  grpc::ServerUnaryReactor* ListReleases(grpc::CallbackServerContext* ctx,
                                         const fleet::v1::ListReleasesRequest* req,
                                         fleet::v1::ListReleasesResponse* resp) override;
  grpc::ServerUnaryReactor* StartRollout(grpc::CallbackServerContext* ctx,
                                         const fleet::v1::StartRolloutRequest* req,
                                         fleet::v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* GetRollout(grpc::CallbackServerContext* ctx,
                                       const fleet::v1::GetRolloutRequest* req,
                                       fleet::v1::Rollout* resp) override;
  grpc::ServerWriteReactor<fleet::v1::RolloutUpdate>* WatchRollout(
      grpc::CallbackServerContext* ctx, const fleet::v1::WatchRolloutRequest* req) override;
  grpc::ServerUnaryReactor* ListRollouts(grpc::CallbackServerContext* ctx,
                                         const fleet::v1::ListRolloutsRequest* req,
                                         fleet::v1::ListRolloutsResponse* resp) override;
  // Fetched from the agents (output_fetch.h); hosts that do not answer
  // within kOutputTimeout are named with that error.
  grpc::ServerUnaryReactor* GetOutput(grpc::CallbackServerContext* ctx,
                                      const fleet::v1::GetOutputRequest* req,
                                      fleet::v1::GetOutputResponse* resp) override;
  static constexpr absl::Duration kOutputTimeout = absl::Seconds(5);
  static constexpr int kMaxOutputActivations = 10;
  grpc::ServerUnaryReactor* ReleaseHold(grpc::CallbackServerContext* ctx,
                                        const fleet::v1::ReleaseHoldRequest* req,
                                        fleet::v1::Host* resp) override;
  grpc::ServerUnaryReactor* Rollback(grpc::CallbackServerContext* ctx,
                                     const fleet::v1::RollbackRequest* req,
                                     fleet::v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* PauseRollout(grpc::CallbackServerContext* ctx,
                                         const fleet::v1::RolloutActionRequest* req,
                                         fleet::v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* ResumeRollout(grpc::CallbackServerContext* ctx,
                                          const fleet::v1::RolloutActionRequest* req,
                                          fleet::v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* PromoteRollout(grpc::CallbackServerContext* ctx,
                                           const fleet::v1::RolloutActionRequest* req,
                                           fleet::v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* AbortRollout(grpc::CallbackServerContext* ctx,
                                         const fleet::v1::RolloutActionRequest* req,
                                         fleet::v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* GetAppStatus(grpc::CallbackServerContext* ctx,
                                         const fleet::v1::GetAppStatusRequest* req,
                                         fleet::v1::AppStatus* resp) override;
  grpc::ServerUnaryReactor* GetVersion(grpc::CallbackServerContext* ctx,
                                       const fleet::v1::GetVersionRequest* req,
                                       fleet::v1::VersionInfo* resp) override;
  grpc::ServerUnaryReactor* ListHosts(grpc::CallbackServerContext* ctx,
                                      const fleet::v1::ListHostsRequest* req,
                                      fleet::v1::ListHostsResponse* resp) override;
  grpc::ServerUnaryReactor* GetHistory(grpc::CallbackServerContext* ctx,
                                       const fleet::v1::GetHistoryRequest* req,
                                       fleet::v1::GetHistoryResponse* resp) override;
  grpc::ServerUnaryReactor* PushConfig(grpc::CallbackServerContext* ctx,
                                       const fleet::v1::PushConfigRequest* req,
                                       fleet::v1::PushConfigResponse* resp) override;
  grpc::ServerUnaryReactor* ListConfigs(grpc::CallbackServerContext* ctx,
                                        const fleet::v1::ListConfigsRequest* req,
                                        fleet::v1::ListConfigsResponse* resp) override;
  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* ctx,
                                        const fleet::v1::CreateTokenRequest* req,
                                        fleet::v1::CreateTokenResponse* resp) override;
  grpc::ServerUnaryReactor* ListTokens(grpc::CallbackServerContext* ctx,
                                       const fleet::v1::ListTokensRequest* req,
                                       fleet::v1::ListTokensResponse* resp) override;
  grpc::ServerUnaryReactor* RevokeToken(grpc::CallbackServerContext* ctx,
                                        const fleet::v1::RevokeTokenRequest* req,
                                        fleet::v1::TokenInfo* resp) override;
  grpc::ServerUnaryReactor* ListEvents(grpc::CallbackServerContext* ctx,
                                       const fleet::v1::ListEventsRequest* req,
                                       fleet::v1::ListEventsResponse* resp) override;
  grpc::ServerUnaryReactor* WhoAmI(grpc::CallbackServerContext* ctx,
                                   const fleet::v1::WhoAmIRequest* req,
                                   fleet::v1::Caller* resp) override;

 private:
  class PushReader;
  grpc::ServerUnaryReactor* Act(grpc::CallbackServerContext* ctx,
                                const fleet::v1::RolloutActionRequest* req,
                                fleet::v1::Rollout* resp, RolloutAction action,
                                const char* rpc, ApiAction api_action);
  // The hosts GetOutput asks, sorted: the one named, or those of the
  // rollout named, or every host that reported the app.
  absl::StatusOr<std::vector<std::string>> OutputHosts(const fleet::v1::GetOutputRequest& req);

  Store* store_;
  Catalog* catalog_;
  AgentHub* hub_;
  RolloutEngine* engine_;
  ApiAccess* access_;
  RolloutWatchHub* watches_;
  OutputFetch* output_;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_API_SERVICE_H_
