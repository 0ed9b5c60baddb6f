#include "controller/api_service.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/app_spec.h"
#include "common/clock.h"
#include "common/config_bundle.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/rollout_state.h"
#include "common/sha256.h"
#include "common/signing.h"
#include "common/status.h"

namespace fleet::controller {
namespace {

// Runs `fn` (returning absl::Status) and finishes the call with its result.
template <typename Fn>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, Fn fn) {
  auto* reactor = ctx->DefaultReactor();
  absl::Status st = fn();
  reactor->Finish(ToGrpcStatus(st));
  return reactor;
}

constexpr int64_t kMaxArtifactBytes = 8ll << 30;

// What ApiAccess needs to know of a call: the RPC, the peer and the bearer
// token's metadata.
ApiCall CallOf(const grpc::CallbackServerContext* ctx, const char* rpc) {
  ApiCall call;
  call.rpc = rpc;
  call.peer = ctx->peer();
  const auto& metadata = ctx->client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    call.authorization = std::string(it->second.data(), it->second.size());
  }
  return call;
}

// An app as the API shows it: notification URLs carry access tokens and
// DingTalk secrets sign messages, so neither leaves the controller; the
// spec's YAML, which holds them too, is left out when the app has sinks.
fleet::v1::App Redacted(fleet::v1::App app) {
  for (fleet::v1::NotifySink& sink : *app.mutable_spec()->mutable_notify()) {
    const std::string& url = sink.url();
    size_t host_end = url.find('/', url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
    sink.set_url(absl::StrCat(url.substr(0, host_end), host_end == std::string::npos ? "" : "/…"));
    if (!sink.secret().empty()) sink.set_secret("***");
  }
  if (app.spec().notify_size() > 0) app.clear_spec_yaml();
  return app;
}

}  // namespace

grpc::ServerUnaryReactor* ApiService::ApplyApp(grpc::CallbackServerContext* ctx,
                                               const fleet::v1::ApplyAppRequest* req,
                                               fleet::v1::ApplyAppResponse* resp) {
  return Unary(ctx, [&]() -> absl::Status {
    // Admitted before the YAML is read: only admins may apply specs, and
    // admin tokens are never limited to an app, so the spec's name is not
    // needed to decide, and nobody else gets untrusted YAML parsed or
    // learns what is wrong with a spec.
    FLEET_ASSIGN_OR_RETURN(ApiCaller caller,
                           access_->Admit(CallOf(ctx, "ApplyApp"), ApiAction::kApplyApp, ""));
    std::string source = req->source().empty() ? "app spec" : ClientText(req->source());
    auto spec = ParseAppSpec(req->spec_yaml(), source);
    if (!spec.ok()) return spec.status();
    FLEET_ASSIGN_OR_RETURN(std::unique_ptr<StoreTransaction> txn, store_->Begin());
    fleet::v1::App app;
    auto existing = txn->GetApp(spec->name());
    if (existing.ok()) app = *existing;
    *app.mutable_spec() = *spec;
    app.set_spec_yaml(req->spec_yaml());
    app.set_updated_at_ms(NowMs());
    bool created = false;
    absl::Status st = txn->UpsertApp(app, &created);
    if (!st.ok()) return st;
    fleet::v1::Event e;
    e.set_at_ms(NowMs());
    e.set_app(spec->name());
    e.set_kind(created ? "app.created" : "app.updated");
    e.set_actor(caller.Actor(req->actor()));
    e.set_message(absl::StrCat("spec applied from ", source));
    st = txn->AddEvent(&e);
    if (!st.ok()) return st;
    st = txn->Commit();
    if (!st.ok()) return st;
    *resp->mutable_app() = Redacted(app);
    resp->set_created(created);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::ListApps(grpc::CallbackServerContext* ctx,
                                               const fleet::v1::ListAppsRequest*,
                                               fleet::v1::ListAppsResponse* resp) {
  return Unary(ctx, [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(
        access_->Admit(CallOf(ctx, "ListApps"), ApiAction::kRead, "").status());
    auto apps = store_->ListApps();
    if (!apps.ok()) return apps.status();
    for (auto& a : *apps) *resp->add_apps() = Redacted(std::move(a));
    return absl::OkStatus();
  });
}

// Receives an upload: header first, then data into a blob; the release is
// recorded only after the whole blob is on disk and verified.
class ApiService::PushReader : public grpc::ServerReadReactor<fleet::v1::PushReleaseRequest> {
 public:
  // The token is checked before anything is read; its scope once the header
  // names the app.
  PushReader(ApiService* service, fleet::v1::Release* resp, ApiCall call)
      : service_(service), resp_(resp), call_(std::move(call)) {
    absl::StatusOr<ApiCaller> caller = service_->access_->Authenticate(call_, "");
    if (!caller.ok()) {
      Finish(ToGrpcStatus(caller.status()));
      return;
    }
    caller_ = *std::move(caller);
    StartRead(&req_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(ToGrpcStatus(Complete()));
      return;
    }
    absl::Status st = Handle();
    if (!st.ok()) {
      Finish(ToGrpcStatus(st));
      return;
    }
    StartRead(&req_);
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Handle() {
    if (!writer_) {
      if (!req_.has_header()) {
        return absl::InvalidArgumentError("the first PushRelease message must be the header");
      }
      header_ = req_.header();
      FLEET_RETURN_IF_ERROR(service_->access_->Authorize(caller_, call_, ApiAction::kPushRelease,
                                                         header_.app()));
      header_.set_actor(caller_.Actor(header_.actor()));
      auto app = service_->store_->GetApp(header_.app());
      if (!app.ok()) return app.status();
      if (!IsSafeName(header_.version())) {
        return absl::InvalidArgumentError(absl::StrCat(
            "invalid version '", header_.version(),
            "': use letters, digits, '.', '_' or '-', not starting with '.'"));
      }
      if (header_.size() < 0 || header_.size() > kMaxArtifactBytes) {
        return absl::InvalidArgumentError(absl::StrCat("artifact size ", header_.size(),
                                                       " is outside 0..", kMaxArtifactBytes));
      }
      // Refused before the upload starts, so nobody sends gigabytes to
      // learn that the signature is missing or made for something else.
      const std::string label = absl::StrCat(header_.app(), "@", header_.version());
      if (!header_.signature().empty()) {
        FLEET_RETURN_IF_ERROR(CheckSignatureFormat(header_.signature(), label));
      }
      if (!header_.sha256().empty()) {
        FLEET_RETURN_IF_ERROR(
            VerifyReleaseSignature(Announced(header_.sha256()), app->spec().trusted_keys()));
      } else if (app->spec().trusted_keys_size() > 0 && header_.signature().empty()) {
        return VerifyReleaseSignature(Announced(""), app->spec().trusted_keys());
      }
      auto writer = service_->blobs_->NewWriter();
      if (!writer.ok()) return writer.status();
      writer_ = std::move(*writer);
      return absl::OkStatus();
    }
    if (!req_.has_data() && req_.data().empty()) return absl::OkStatus();
    if (static_cast<int64_t>(writer_->size() + req_.data().size()) > header_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("upload is larger than the announced ",
                                                     header_.size(), " bytes"));
    }
    return writer_->Append(req_.data());
  }

  absl::Status Complete() {
    if (!writer_) return absl::InvalidArgumentError("no header received");
    std::string label = absl::StrCat(header_.app(), "@", header_.version());
    if (static_cast<int64_t>(writer_->size()) != header_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("upload of ", label, " ended after ",
                                                     writer_->size(), " of ", header_.size(),
                                                     " bytes"));
    }
    auto sha = writer_->Commit();
    if (!sha.ok()) return sha.status();
    if (!header_.sha256().empty() && header_.sha256() != *sha) {
      return absl::DataLossError(absl::StrCat("upload of ", label, " arrived with sha256 ", *sha,
                                              ", not the announced ", header_.sha256()));
    }
    Store* store = service_->store_;
    auto existing = store->GetRelease(header_.app(), header_.version());
    if (existing.ok()) {
      if (existing->sha256() == *sha && existing->signature() == header_.signature()) {
        *resp_ = *existing;  // the same content again: nothing to do
        return absl::OkStatus();
      }
      // Keeping the stored signature would answer OK to a push whose
      // signature never took effect.
      if (existing->sha256() == *sha) {
        return absl::AlreadyExistsError(absl::StrCat(
            "release ", label, " exists already ",
            existing->signature().empty() ? "unsigned" : "with another signature",
            "; versions are immutable, push a new version"));
      }
      return absl::AlreadyExistsError(absl::StrCat(
          "release ", label, " exists already with different content (sha256 ",
          existing->sha256().substr(0, 12), "…, this upload ", sha->substr(0, 12),
          "…); versions are immutable, push a new version"));
    }
    fleet::v1::Release release = Announced(*sha);
    release.set_created_at_ms(NowMs());
    release.set_created_by(header_.actor());
    *release.mutable_metadata() = header_.metadata();
    FLEET_ASSIGN_OR_RETURN(std::unique_ptr<StoreTransaction> txn, store->Begin());
    // Against the spec as it is now, which may have changed during the
    // upload; the agents check again, with the spec they are sent.
    auto app = txn->GetApp(release.app());
    if (!app.ok()) return app.status();
    FLEET_RETURN_IF_ERROR(VerifyReleaseSignature(release, app->spec().trusted_keys()));
    absl::Status st = txn->InsertRelease(release);
    if (!st.ok()) return st;
    fleet::v1::Event e;
    e.set_at_ms(release.created_at_ms());
    e.set_app(release.app());
    e.set_kind("release.pushed");
    e.set_actor(header_.actor());
    e.set_message(absl::StrCat(release.version(), " sha256 ", *sha, " ", release.size(), " bytes"));
    st = txn->AddEvent(&e);
    if (!st.ok()) return st;
    st = txn->Commit();
    if (!st.ok()) return st;
    spdlog::info("release {} pushed by {}: sha256 {}, {} bytes", label, header_.actor(), *sha,
                 release.size());
    *resp_ = release;
    return absl::OkStatus();
  }

  // The release the header announces, with the artifact's `sha256`.
  fleet::v1::Release Announced(const std::string& sha256) const {
    fleet::v1::Release release;
    release.set_app(header_.app());
    release.set_version(header_.version());
    release.set_sha256(sha256);
    release.set_size(header_.size());
    release.set_signature(header_.signature());
    return release;
  }

  ApiService* service_;
  fleet::v1::Release* resp_;
  const ApiCall call_;
  ApiCaller caller_;
  fleet::v1::PushReleaseRequest req_;
  fleet::v1::PushReleaseHeader header_;
  std::unique_ptr<BlobStore::Writer> writer_;
};

grpc::ServerReadReactor<fleet::v1::PushReleaseRequest>* ApiService::PushRelease(
    grpc::CallbackServerContext* ctx, fleet::v1::Release* resp) {
  return new PushReader(this, resp, CallOf(ctx, "PushRelease"));
}

grpc::ServerUnaryReactor* ApiService::ListReleases(grpc::CallbackServerContext* ctx,
                                                   const fleet::v1::ListReleasesRequest* req,
                                                   fleet::v1::ListReleasesResponse* resp) {
  return Unary(ctx, [&]() -> absl::Status {
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
  return Unary(ctx, [&]() -> absl::Status {
    FLEET_ASSIGN_OR_RETURN(ApiCaller caller, access_->Admit(CallOf(ctx, "StartRollout"),
                                                            ApiAction::kRollOut, req->app()));
    fleet::v1::StartRolloutRequest request = *req;
    request.set_actor(caller.Actor(req->actor()));
    auto r = engine_->StartRollout(request);
    if (!r.ok()) return r.status();
    *resp = std::move(*r);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::GetRollout(grpc::CallbackServerContext* ctx,
                                                 const fleet::v1::GetRolloutRequest* req,
                                                 fleet::v1::Rollout* resp) {
  return Unary(ctx, [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(
        access_->Admit(CallOf(ctx, "GetRollout"), ApiAction::kRead, "").status());
    auto r = store_->GetRollout(req->id());
    if (!r.ok()) return r.status();
    *resp = std::move(*r);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::ListRollouts(grpc::CallbackServerContext* ctx,
                                                   const fleet::v1::ListRolloutsRequest* req,
                                                   fleet::v1::ListRolloutsResponse* resp) {
  return Unary(ctx, [&]() -> absl::Status {
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
  return Unary(ctx, [&]() -> absl::Status {
    FLEET_ASSIGN_OR_RETURN(ApiCaller caller, access_->Admit(CallOf(ctx, "Rollback"),
                                                            ApiAction::kRollBack, req->app()));
    fleet::v1::RollbackRequest request = *req;
    request.set_actor(caller.Actor(req->actor()));
    auto r = engine_->Rollback(request);
    if (!r.ok()) return r.status();
    *resp = std::move(*r);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::Act(grpc::CallbackServerContext* ctx,
                                          const fleet::v1::RolloutActionRequest* req,
                                          fleet::v1::Rollout* resp, RolloutAction action,
                                          const char* rpc, ApiAction api_action) {
  return Unary(ctx, [&]() -> absl::Status {
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
    auto r = engine_->Act(request, action);
    if (!r.ok()) return r.status();
    *resp = std::move(*r);
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
  return Unary(ctx, [&]() -> absl::Status {
    FLEET_RETURN_IF_ERROR(
        access_->Admit(CallOf(ctx, "GetAppStatus"), ApiAction::kRead, req->app()).status());
    auto app = store_->GetApp(req->app());
    if (!app.ok()) return app.status();
    *resp->mutable_app() = Redacted(*app);
    auto hosts = store_->ListHosts();
    if (!hosts.ok()) return hosts.status();
    for (const auto& host : *hosts) {
      for (const auto& state : host.apps()) {
        if (state.app() != req->app()) continue;
        auto* h = resp->add_hosts();
        h->set_host_id(host.id());
        h->set_connected(hub_->IsConnected(host.id()));
        *h->mutable_state() = state;
      }
    }
    auto rollouts = store_->ListRollouts(req->app(), 1, /*with_tasks=*/false);
    if (!rollouts.ok()) return rollouts.status();
    if (!rollouts->empty()) {
      auto last = store_->GetRollout(rollouts->front().id());
      if (!last.ok()) return last.status();
      if (IsTerminal(last->state())) {
        *resp->mutable_last_rollout() = *last;
      } else {
        *resp->mutable_active_rollout() = *last;
      }
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::ListHosts(grpc::CallbackServerContext* ctx,
                                                const fleet::v1::ListHostsRequest*,
                                                fleet::v1::ListHostsResponse* resp) {
  return Unary(ctx, [&]() -> absl::Status {
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
  return Unary(ctx, [&]() -> absl::Status {
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

namespace {

// Answers a push of a version that exists: a no-op when it carries the same
// files, AlreadyExists otherwise.
absl::Status SamePushOrRefuse(fleet::v1::ConfigRelease existing, const std::string& pushed_sha,
                              fleet::v1::PushConfigResponse* resp) {
  if (existing.sha256() != pushed_sha) {
    return absl::AlreadyExistsError(absl::StrCat(
        "config ", existing.app(), "@", existing.version(), " exists with other content (sha256 ",
        existing.sha256().substr(0, 12), ", this push ", pushed_sha.substr(0, 12),
        "); push the change as a new version"));
  }
  *resp->mutable_config() = std::move(existing);
  resp->set_created(false);
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* ApiService::PushConfig(grpc::CallbackServerContext* ctx,
                                                 const fleet::v1::PushConfigRequest* req,
                                                 fleet::v1::PushConfigResponse* resp) {
  return Unary(ctx, [&]() -> absl::Status {
    FLEET_ASSIGN_OR_RETURN(ApiCaller caller, access_->Admit(CallOf(ctx, "PushConfig"),
                                                            ApiAction::kPushConfig, req->app()));
    const std::string actor = caller.Actor(req->actor());
    FLEET_ASSIGN_OR_RETURN(fleet::v1::App app, store_->GetApp(req->app()));
    // The same files under a version pushed before are a no-op whatever the
    // spec says now, so a retried CI job passes; other files are refused.
    const fleet::v1::ConfigBundle bundle = SortedConfigBundle(req->files());
    const std::string bytes = SerializeConfigBundle(bundle);
    Sha256 pushed;
    pushed.Update(bytes);
    const std::string pushed_sha = pushed.HexDigest();
    auto existing = store_->GetConfig(req->app(), req->version());
    if (existing.ok()) return SamePushOrRefuse(*std::move(existing), pushed_sha, resp);
    if (!absl::IsNotFound(existing.status())) return existing.status();
    // CheckConfigPush returns this same bundle when the push is valid.
    FLEET_RETURN_IF_ERROR(CheckConfigPush(req->version(), req->files(), app.spec(), {}).status());
    fleet::v1::ConfigRelease config;
    config.set_app(req->app());
    config.set_version(req->version());
    config.set_sha256(pushed_sha);
    config.set_size(static_cast<int64_t>(bytes.size()));
    config.set_created_at_ms(NowMs());
    config.set_created_by(actor);
    int secrets = 0;
    for (const fleet::v1::ConfigFile& file : bundle.files()) {
      fleet::v1::ConfigFileInfo* info = config.add_files();
      info->set_path(file.path());
      info->set_mode(file.mode());
      info->set_size(static_cast<int64_t>(file.content().size()));
      info->set_secret(IsSecretPath(file.path()));
      secrets += info->secret() ? 1 : 0;
    }
    // The blob first: a config row always has its bundle on disk.
    FLEET_ASSIGN_OR_RETURN(std::unique_ptr<BlobStore::Writer> writer, blobs_->NewWriter());
    FLEET_RETURN_IF_ERROR(writer->Append(bytes));
    FLEET_ASSIGN_OR_RETURN(std::string stored, writer->Commit());
    if (stored != config.sha256()) {
      return absl::InternalError(
          absl::StrCat("config bundle stored as ", stored, ", expected ", config.sha256()));
    }
    FLEET_ASSIGN_OR_RETURN(std::unique_ptr<StoreTransaction> txn, store_->Begin());
    absl::Status inserted = txn->InsertConfig(config);
    if (absl::IsAlreadyExists(inserted)) {
      // Another push of this version won the race; the failed insert ended
      // the transaction.
      txn.reset();
      FLEET_ASSIGN_OR_RETURN(fleet::v1::ConfigRelease other,
                             store_->GetConfig(req->app(), req->version()));
      return SamePushOrRefuse(std::move(other), config.sha256(), resp);
    }
    FLEET_RETURN_IF_ERROR(inserted);
    fleet::v1::Event e;
    e.set_at_ms(config.created_at_ms());
    e.set_app(req->app());
    e.set_kind("config.pushed");
    e.set_actor(actor);
    e.set_message(absl::StrCat("config ", req->version(), ": ", bundle.files_size(), " files (",
                               secrets, " secret), sha256 ", config.sha256().substr(0, 12)));
    FLEET_RETURN_IF_ERROR(txn->AddEvent(&e));
    FLEET_RETURN_IF_ERROR(txn->Commit());
    spdlog::info("config {}@{} pushed by {}: {} files, {} bytes", req->app(), req->version(),
                 actor, bundle.files_size(), bytes.size());
    *resp->mutable_config() = std::move(config);
    resp->set_created(true);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ApiService::ListConfigs(grpc::CallbackServerContext* ctx,
                                                  const fleet::v1::ListConfigsRequest* req,
                                                  fleet::v1::ListConfigsResponse* resp) {
  return Unary(ctx, [&]() -> absl::Status {
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
  return Unary(ctx, [&]() -> absl::Status {
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
  return Unary(ctx, [&]() -> absl::Status {
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
  return Unary(ctx, [&]() -> absl::Status {
    FLEET_ASSIGN_OR_RETURN(ApiCaller caller, access_->Admit(CallOf(ctx, "RevokeToken"),
                                                            ApiAction::kManageTokens, ""));
    FLEET_ASSIGN_OR_RETURN(*resp, access_->RevokeToken(req->id(), caller.Actor(req->actor())));
    return absl::OkStatus();
  });
}

}  // namespace fleet::controller
