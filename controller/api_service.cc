#include "controller/api_service.h"

#include <google/protobuf/util/message_differencer.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <initializer_list>
#include <memory>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/rollout_state.h"
#include "common/status.h"
#include "controller/authorizer.h"
#include "controller/event_filter.h"
#include "controller/redaction.h"

namespace fleet::controller {
namespace {

// Every answer of the API leaves through here: `resp` (when `st` is OK) and
// the error message with their credentials redacted (redaction.h).
grpc::Status Answer(const absl::Status& st, google::protobuf::Message* resp) {
  if (!st.ok()) return ToGrpcStatus(RedactStatus(st));
  RedactMessage(resp);
  return grpc::Status::OK;
}

// Runs `fn` (returning absl::Status, filling `resp`) and finishes the call
// with its result.
template <typename Fn>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx,
                                google::protobuf::Message* resp, Fn fn) {
  auto* reactor = ctx->DefaultReactor();
  absl::Status st = fn();
  reactor->Finish(Answer(st, resp));
  return reactor;
}

// Runs `fn`, which admits the call and hands it to the rollout engine: a
// non-OK status finishes the call at once; otherwise the engine's callback
// (FinishWith) finishes it, so no gRPC thread waits for the engine.
template <typename Fn>
grpc::ServerUnaryReactor* Deferred(grpc::CallbackServerContext* ctx, Fn fn) {
  auto* reactor = ctx->DefaultReactor();
  absl::Status st = fn(reactor);
  if (!st.ok()) reactor->Finish(Answer(st, nullptr));
  return reactor;
}

// The engine's callback that answers a deferred call with a rollout (or a
// host).
template <typename T>
RolloutEngine::Done<T> FinishWith(grpc::ServerUnaryReactor* reactor, T* resp) {
  return [reactor, resp](absl::StatusOr<T> r) {
    if (r.ok()) *resp = *std::move(r);
    reactor->Finish(Answer(r.status(), resp));
  };
}

// Names in requests are at most kMaxClientTextBytes (as IsSafeName wants); a
// longer one is refused without quoting it, so no answer echoes unbounded
// input. Checks each (field, value) pair in order.
absl::Status CheckNameLengths(
    std::initializer_list<std::pair<absl::string_view, absl::string_view>> names) {
  for (const auto& [field, value] : names) {
    if (value.size() > kMaxClientTextBytes) {
      return absl::InvalidArgumentError(absl::StrCat(field, " is ", value.size(),
                                                     " bytes long; names have at most ",
                                                     kMaxClientTextBytes));
    }
  }
  return absl::OkStatus();
}

// What ApiAccess needs to know of a call: the RPC, the peer and the bearer
// token's metadata.
ApiCall CallOf(const grpc::CallbackServerContext* ctx, const char* rpc) {
  ApiCall call;
  call.rpc = rpc;
  call.peer = ctx->peer();
  const auto& metadata = ctx->client_metadata();
  auto key = metadata.find(kGatewayKeyMetadata);
  auto http_peer = metadata.find(kHttpPeerMetadata);
  if (key != metadata.end() && http_peer != metadata.end() && !GatewayKey().empty() &&
      key->second.size() == GatewayKey().size() &&
      CRYPTO_memcmp(key->second.data(), GatewayKey().data(), GatewayKey().size()) == 0) {
    call.peer = absl::StrCat(
        "http:", ClientText(absl::string_view(http_peer->second.data(), http_peer->second.size())));
  }
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    call.authorization = std::string(it->second.data(), it->second.size());
  }
  return call;
}

// An app as the API shows it. Answer() redacts its spec like any message;
// the spec's YAML holds the same credentials in whatever YAML form, so it is
// left out when the spec has anything to redact.
fleet::v1::App Redacted(fleet::v1::App app) {
  fleet::v1::AppSpec spec = app.spec();
  RedactMessage(&spec);
  if (!google::protobuf::util::MessageDifferencer::Equals(spec, app.spec())) {
    app.clear_spec_yaml();
  }
  return app;
}

}  // namespace

const std::string& GatewayKey() {
  static const std::string* key = [] {
    unsigned char bytes[32];
    // Without randomness the key is empty, which CallOf never accepts:
    // HTTP clients are then named "unknown".
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) return new std::string();
    return new std::string(absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes))));
  }();
  return *key;
}

grpc::ServerUnaryReactor* ApiService::ApplyApp(grpc::CallbackServerContext* ctx,
                                               const fleet::v1::ApplyAppRequest* req,
                                               fleet::v1::ApplyAppResponse* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    // Admitted before the YAML is read: only admins may apply specs, and
    // admin tokens are never limited to an app, so the spec's name is not
    // needed to decide, and nobody else gets untrusted YAML parsed or
    // learns what is wrong with a spec.
    FLEET_ASSIGN_OR_RETURN(ApiCaller caller,
                           access_->Admit(CallOf(ctx, "ApplyApp"), ApiAction::kApplyApp, ""));
    std::string source = req->source().empty() ? "app spec" : ClientText(req->source());
    FLEET_ASSIGN_OR_RETURN(
        Catalog::AppliedApp applied,
        catalog_->ApplyApp(req->spec_yaml(), source, caller.Actor(req->actor())));
    *resp->mutable_app() = Redacted(std::move(applied.app));
    resp->set_created(applied.created);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::ListApps(grpc::CallbackServerContext* ctx,
                                               const fleet::v1::ListAppsRequest*,
                                               fleet::v1::ListAppsResponse* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(
        access_->Admit(CallOf(ctx, "ListApps"), ApiAction::kRead, "").status());
    auto apps = store_->ListApps();
    if (!apps.ok()) return apps.status();
    for (auto& a : *apps) *resp->add_apps() = Redacted(std::move(a));
    return absl::OkStatus();
  });
}

// Receives an upload, header first, and hands it to the catalog.
class ApiService::PushReader : public grpc::ServerReadReactor<fleet::v1::PushReleaseRequest> {
 public:
  // The token is checked before anything is read; its scope once the header
  // names the app.
  PushReader(ApiService* service, fleet::v1::Release* resp, ApiCall call)
      : service_(service), resp_(resp), call_(std::move(call)) {
    absl::StatusOr<ApiCaller> caller = service_->access_->Authenticate(call_, "");
    if (!caller.ok()) {
      Finish(Answer(caller.status(), resp_));
      return;
    }
    caller_ = *std::move(caller);
    StartRead(&req_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(Answer(Complete(), resp_));
      return;
    }
    absl::Status st = Handle();
    if (!st.ok()) {
      Finish(Answer(st, resp_));
      return;
    }
    StartRead(&req_);
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Handle() {
    if (upload_ == nullptr) {
      if (!req_.has_header()) {
        return absl::InvalidArgumentError("the first PushRelease message must be the header");
      }
      fleet::v1::PushReleaseHeader header = req_.header();
      FLEET_RETURN_IF_ERROR(
          CheckNameLengths({{"app", header.app()}, {"version", header.version()}}));
      FLEET_RETURN_IF_ERROR(
          service_->access_->Authorize(caller_, call_, ApiAction::kPushRelease, header.app()));
      header.set_actor(caller_.Actor(header.actor()));
      FLEET_ASSIGN_OR_RETURN(upload_, service_->catalog_->StartReleasePush(header));
      return absl::OkStatus();
    }
    if (!req_.has_data() && req_.data().empty()) return absl::OkStatus();
    return upload_->Append(req_.data());
  }

  absl::Status Complete() {
    if (upload_ == nullptr) return absl::InvalidArgumentError("no header received");
    FLEET_ASSIGN_OR_RETURN(*resp_, upload_->Finish());
    return absl::OkStatus();
  }

  ApiService* service_;
  fleet::v1::Release* resp_;
  const ApiCall call_;
  ApiCaller caller_;
  fleet::v1::PushReleaseRequest req_;
  std::unique_ptr<ReleaseUpload> upload_;
};

grpc::ServerReadReactor<fleet::v1::PushReleaseRequest>* ApiService::PushRelease(
    grpc::CallbackServerContext* ctx, fleet::v1::Release* resp) {
  return new PushReader(this, resp, CallOf(ctx, "PushRelease"));
}

grpc::ServerUnaryReactor* ApiService::ListReleases(grpc::CallbackServerContext* ctx,
                                                   const fleet::v1::ListReleasesRequest* req,
                                                   fleet::v1::ListReleasesResponse* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(
        access_->Admit(CallOf(ctx, "ListReleases"), ApiAction::kRead, req->app()).status());
    auto app = store_->GetApp(req->app());
    if (!app.ok()) return app.status();
    auto releases = store_->ListReleases(req->app());
    if (!releases.ok()) return releases.status();
    for (auto& r : *releases) *resp->add_releases() = std::move(r);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::StartRollout(grpc::CallbackServerContext* ctx,
                                                   const fleet::v1::StartRolloutRequest* req,
                                                   fleet::v1::Rollout* resp) {
  return Deferred(ctx, [&](grpc::ServerUnaryReactor* reactor) -> absl::Status {
    FLEET_RETURN_IF_ERROR(CheckNameLengths({{"app", req->app()}, {"version", req->version()}}));
    FLEET_ASSIGN_OR_RETURN(ApiCaller caller, access_->Admit(CallOf(ctx, "StartRollout"),
                                                            ApiAction::kRollOut, req->app()));
    fleet::v1::StartRolloutRequest request = *req;
    request.set_actor(caller.Actor(req->actor()));
    engine_->StartRollout(request, FinishWith(reactor, resp));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::GetRollout(grpc::CallbackServerContext* ctx,
                                                 const fleet::v1::GetRolloutRequest* req,
                                                 fleet::v1::Rollout* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(
        access_->Admit(CallOf(ctx, "GetRollout"), ApiAction::kRead, "").status());
    auto r = store_->GetRollout(req->id());
    if (!r.ok()) return r.status();
    *resp = std::move(*r);
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<fleet::v1::RolloutUpdate>* ApiService::WatchRollout(
    grpc::CallbackServerContext* ctx, const fleet::v1::WatchRolloutRequest* req) {
  // Read like GetRollout: every valid token may read every rollout.
  absl::Status admitted =
      access_->Admit(CallOf(ctx, "WatchRollout"), ApiAction::kRead, "").status();
  return NewRolloutWatch(store_, watches_, req->id(), admitted);
}

grpc::ServerUnaryReactor* ApiService::ListRollouts(grpc::CallbackServerContext* ctx,
                                                   const fleet::v1::ListRolloutsRequest* req,
                                                   fleet::v1::ListRolloutsResponse* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(
        access_->Admit(CallOf(ctx, "ListRollouts"), ApiAction::kRead, req->app()).status());
    if (!req->app().empty()) {
      auto app = store_->GetApp(req->app());
      if (!app.ok()) return app.status();
    }
    auto list = store_->ListRollouts(req->app(), req->limit(), /*with_tasks=*/false);
    if (!list.ok()) return list.status();
    for (auto& r : *list) *resp->add_rollouts() = std::move(r);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::Rollback(grpc::CallbackServerContext* ctx,
                                               const fleet::v1::RollbackRequest* req,
                                               fleet::v1::Rollout* resp) {
  return Deferred(ctx, [&](grpc::ServerUnaryReactor* reactor) -> absl::Status {
    FLEET_RETURN_IF_ERROR(
        CheckNameLengths({{"app", req->app()}, {"to_version", req->to_version()}}));
    FLEET_ASSIGN_OR_RETURN(ApiCaller caller, access_->Admit(CallOf(ctx, "Rollback"),
                                                            ApiAction::kRollBack, req->app()));
    fleet::v1::RollbackRequest request = *req;
    request.set_actor(caller.Actor(req->actor()));
    engine_->Rollback(request, FinishWith(reactor, resp));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::ReleaseHold(grpc::CallbackServerContext* ctx,
                                                  const fleet::v1::ReleaseHoldRequest* req,
                                                  fleet::v1::Host* resp) {
  return Deferred(ctx, [&](grpc::ServerUnaryReactor* reactor) -> absl::Status {
    FLEET_RETURN_IF_ERROR(CheckNameLengths({{"host", req->host_id()}, {"app", req->app()}}));
    FLEET_ASSIGN_OR_RETURN(ApiCaller caller, access_->Admit(CallOf(ctx, "ReleaseHold"),
                                                            ApiAction::kReleaseHold, req->app()));
    fleet::v1::ReleaseHoldRequest request = *req;
    request.set_actor(caller.Actor(req->actor()));
    engine_->ReleaseHold(request, FinishWith(reactor, resp));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<std::string>> ApiService::OutputHosts(
    const fleet::v1::GetOutputRequest& req) {
  std::vector<std::string> hosts;
  if (!req.rollout_id().empty()) {
    FLEET_ASSIGN_OR_RETURN(fleet::v1::Rollout r, store_->GetRollout(req.rollout_id()));
    if (r.app() != req.app()) {
      return absl::InvalidArgumentError(absl::StrCat("rollout ", r.id(), " is of app ", r.app(),
                                                     ", not ", req.app()));
    }
    for (const auto& task : r.tasks()) hosts.push_back(task.host_id());
  } else {
    FLEET_ASSIGN_OR_RETURN(std::vector<fleet::v1::HostAppStatus> states,
                           store_->ListAppHosts(req.app()));
    for (const auto& state : states) hosts.push_back(state.host_id());
  }
  if (!req.host_id().empty()) {
    FLEET_RETURN_IF_ERROR(store_->GetHost(req.host_id()).status());
    if (std::find(hosts.begin(), hosts.end(), req.host_id()) == hosts.end()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "host ", req.host_id(), req.rollout_id().empty() ? " has no " : " is not in rollout ",
          req.rollout_id().empty() ? req.app() : req.rollout_id()));
    }
    hosts = {req.host_id()};
  }
  if (hosts.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("no host has ", req.app(), " yet"));
  }
  std::sort(hosts.begin(), hosts.end());
  hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
  return hosts;
}

grpc::ServerUnaryReactor* ApiService::GetOutput(grpc::CallbackServerContext* ctx,
                                                const fleet::v1::GetOutputRequest* req,
                                                fleet::v1::GetOutputResponse* resp) {
  return Deferred(ctx, [&](grpc::ServerUnaryReactor* reactor) -> absl::Status {
    FLEET_RETURN_IF_ERROR(CheckNameLengths(
        {{"app", req->app()}, {"host", req->host_id()}, {"rollout", req->rollout_id()}}));
    FLEET_RETURN_IF_ERROR(access_->Admit(CallOf(ctx, "GetOutput"), ApiAction::kReadOutput,
                                         req->app())
                              .status());
    FLEET_RETURN_IF_ERROR(store_->GetApp(req->app()).status());
    FLEET_ASSIGN_OR_RETURN(std::vector<std::string> hosts, OutputHosts(*req));
    fleet::v1::OutputRequest request;
    request.set_app(req->app());
    request.set_rollout_id(req->rollout_id());
    request.set_activations(std::clamp(req->activations(), 1, kMaxOutputActivations));
    output_->Ask(hosts, request, kOutputTimeout,
                 [reactor, resp](fleet::v1::GetOutputResponse answer) {
                   *resp = std::move(answer);
                   reactor->Finish(Answer(absl::OkStatus(), resp));
                 });
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::Act(grpc::CallbackServerContext* ctx,
                                          const fleet::v1::RolloutActionRequest* req,
                                          fleet::v1::Rollout* resp, RolloutAction action,
                                          const char* rpc, ApiAction api_action) {
  return Deferred(ctx, [&](grpc::ServerUnaryReactor* reactor) -> absl::Status {
    const ApiCall call = CallOf(ctx, rpc);
    FLEET_ASSIGN_OR_RETURN(ApiCaller caller, access_->Authenticate(call, ""));
    // The scope is checked against the rollout's app. Every valid token may
    // read rollouts, so an unknown id is no secret to this caller.
    if (caller.token()) {
      FLEET_ASSIGN_OR_RETURN(fleet::v1::Rollout target, store_->GetRollout(req->id()));
      FLEET_RETURN_IF_ERROR(access_->Authorize(caller, call, api_action, target.app()));
    }
    fleet::v1::RolloutActionRequest request = *req;
    request.set_actor(caller.Actor(req->actor()));
    engine_->Act(request, action, FinishWith(reactor, resp));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::PauseRollout(grpc::CallbackServerContext* ctx,
                                                   const fleet::v1::RolloutActionRequest* req,
                                                   fleet::v1::Rollout* resp) {
  return Act(ctx, req, resp, RolloutAction::kPause, "PauseRollout", ApiAction::kPauseRollout);
}

grpc::ServerUnaryReactor* ApiService::ResumeRollout(grpc::CallbackServerContext* ctx,
                                                    const fleet::v1::RolloutActionRequest* req,
                                                    fleet::v1::Rollout* resp) {
  return Act(ctx, req, resp, RolloutAction::kResume, "ResumeRollout",
             ApiAction::kResumeRollout);
}

grpc::ServerUnaryReactor* ApiService::PromoteRollout(grpc::CallbackServerContext* ctx,
                                                     const fleet::v1::RolloutActionRequest* req,
                                                     fleet::v1::Rollout* resp) {
  return Act(ctx, req, resp, RolloutAction::kPromote, "PromoteRollout",
             ApiAction::kPromoteRollout);
}

grpc::ServerUnaryReactor* ApiService::AbortRollout(grpc::CallbackServerContext* ctx,
                                                   const fleet::v1::RolloutActionRequest* req,
                                                   fleet::v1::Rollout* resp) {
  return Act(ctx, req, resp, RolloutAction::kAbort, "AbortRollout", ApiAction::kAbortRollout);
}

grpc::ServerUnaryReactor* ApiService::GetAppStatus(grpc::CallbackServerContext* ctx,
                                                   const fleet::v1::GetAppStatusRequest* req,
                                                   fleet::v1::AppStatus* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(
        access_->Admit(CallOf(ctx, "GetAppStatus"), ApiAction::kRead, req->app()).status());
    auto app = store_->GetApp(req->app());
    if (!app.ok()) return app.status();
    *resp->mutable_app() = Redacted(*app);
    auto hosts = store_->ListAppHosts(req->app());
    if (!hosts.ok()) return hosts.status();
    resp->mutable_hosts()->Reserve(static_cast<int>(hosts->size()));
    for (auto& host : *hosts) {
      host.set_connected(hub_->IsConnected(host.host_id()));
      *resp->add_hosts() = std::move(host);
    }
    // The newest rollout without its tasks (GetRollout has them): at
    // thousands of hosts they would be most of the answer.
    auto rollouts = store_->ListRollouts(req->app(), 1, /*with_tasks=*/false);
    if (!rollouts.ok()) return rollouts.status();
    if (!rollouts->empty()) {
      fleet::v1::Rollout& last = rollouts->front();
      *(IsTerminal(last.state()) ? resp->mutable_last_rollout() : resp->mutable_active_rollout()) =
          std::move(last);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::GetVersion(grpc::CallbackServerContext* ctx,
                                                 const fleet::v1::GetVersionRequest*,
                                                 fleet::v1::VersionInfo* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(
        access_->Admit(CallOf(ctx, "GetVersion"), ApiAction::kRead, "").status());
    resp->set_version(FLEET_VERSION);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::ListHosts(grpc::CallbackServerContext* ctx,
                                                const fleet::v1::ListHostsRequest*,
                                                fleet::v1::ListHostsResponse* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(
        access_->Admit(CallOf(ctx, "ListHosts"), ApiAction::kRead, "").status());
    auto hosts = store_->ListHosts();
    if (!hosts.ok()) return hosts.status();
    for (auto& h : *hosts) {
      h.set_connected(hub_->IsConnected(h.id()));
      *resp->add_hosts() = std::move(h);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::GetHistory(grpc::CallbackServerContext* ctx,
                                                 const fleet::v1::GetHistoryRequest* req,
                                                 fleet::v1::GetHistoryResponse* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(
        access_->Admit(CallOf(ctx, "GetHistory"), ApiAction::kRead, req->app()).status());
    auto app = store_->GetApp(req->app());
    if (!app.ok()) return app.status();
    int limit = req->limit() > 0 ? req->limit() : 50;
    auto rollouts = store_->ListRollouts(req->app(), limit, /*with_tasks=*/true);
    if (!rollouts.ok()) return rollouts.status();
    for (auto& r : *rollouts) *resp->add_rollouts() = std::move(r);
    auto events = store_->ListEvents(req->app(), limit * 10);
    if (!events.ok()) return events.status();
    for (auto& e : *events) *resp->add_events() = std::move(e);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::PushConfig(grpc::CallbackServerContext* ctx,
                                                 const fleet::v1::PushConfigRequest* req,
                                                 fleet::v1::PushConfigResponse* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(CheckNameLengths({{"app", req->app()}, {"version", req->version()}}));
    FLEET_ASSIGN_OR_RETURN(ApiCaller caller, access_->Admit(CallOf(ctx, "PushConfig"),
                                                            ApiAction::kPushConfig, req->app()));
    FLEET_ASSIGN_OR_RETURN(
        Catalog::PushedConfig pushed,
        catalog_->PushConfig(req->app(), req->version(), req->files(), caller.Actor(req->actor())));
    *resp->mutable_config() = std::move(pushed.config);
    resp->set_created(pushed.created);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::ListConfigs(grpc::CallbackServerContext* ctx,
                                                  const fleet::v1::ListConfigsRequest* req,
                                                  fleet::v1::ListConfigsResponse* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(
        access_->Admit(CallOf(ctx, "ListConfigs"), ApiAction::kRead, req->app()).status());
    FLEET_RETURN_IF_ERROR(store_->GetApp(req->app()).status());
    FLEET_ASSIGN_OR_RETURN(std::vector<fleet::v1::ConfigRelease> configs,
                           store_->ListConfigs(req->app()));
    for (auto& c : configs) *resp->add_configs() = std::move(c);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::CreateToken(grpc::CallbackServerContext* ctx,
                                                  const fleet::v1::CreateTokenRequest* req,
                                                  fleet::v1::CreateTokenResponse* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    FLEET_ASSIGN_OR_RETURN(ApiCaller caller, access_->Admit(CallOf(ctx, "CreateToken"),
                                                            ApiAction::kManageTokens, req->app()));
    fleet::v1::CreateTokenRequest request = *req;
    request.set_actor(caller.Actor(req->actor()));
    FLEET_ASSIGN_OR_RETURN(*resp, access_->CreateToken(request));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::ListTokens(grpc::CallbackServerContext* ctx,
                                                 const fleet::v1::ListTokensRequest*,
                                                 fleet::v1::ListTokensResponse* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(
        access_->Admit(CallOf(ctx, "ListTokens"), ApiAction::kManageTokens, "").status());
    FLEET_ASSIGN_OR_RETURN(std::vector<fleet::v1::TokenInfo> tokens, access_->ListTokens());
    for (auto& t : tokens) *resp->add_tokens() = std::move(t);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::RevokeToken(grpc::CallbackServerContext* ctx,
                                                  const fleet::v1::RevokeTokenRequest* req,
                                                  fleet::v1::TokenInfo* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    FLEET_ASSIGN_OR_RETURN(ApiCaller caller, access_->Admit(CallOf(ctx, "RevokeToken"),
                                                            ApiAction::kManageTokens, ""));
    FLEET_ASSIGN_OR_RETURN(*resp, access_->RevokeToken(req->id(), caller.Actor(req->actor())));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::ListEvents(grpc::CallbackServerContext* ctx,
                                                 const fleet::v1::ListEventsRequest* req,
                                                 fleet::v1::ListEventsResponse* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(
        access_->Admit(CallOf(ctx, "ListEvents"), ApiAction::kRead, req->app()).status());
    FLEET_RETURN_IF_ERROR(CheckEventFilters(*req));
    if (!req->app().empty()) FLEET_RETURN_IF_ERROR(store_->GetApp(req->app()).status());
    FLEET_ASSIGN_OR_RETURN(std::vector<fleet::v1::Event> events,
                           store_->ListEvents(req->app(), kEventSearchWindow));
    *resp = FilterEvents(std::move(events), *req);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::WhoAmI(grpc::CallbackServerContext* ctx,
                                             const fleet::v1::WhoAmIRequest*,
                                             fleet::v1::Caller* resp) {
  return Unary(ctx, resp, [&]() -> absl::Status {
    FLEET_ASSIGN_OR_RETURN(ApiCaller caller,
                           access_->Admit(CallOf(ctx, "WhoAmI"), ApiAction::kRead, ""));
    resp->set_auth_required(access_->required());
    if (caller.token()) *resp->mutable_token() = *caller.token();
    return absl::OkStatus();
  });
}

}  // namespace fleet::controller
