#include "controller/api_access.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/event_kind.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/status.h"
#include "controller/api_token.h"

namespace fleet::controller {
namespace {

constexpr char kAnonymous[] = "anonymous";
// The denial window shared by new peer addresses when the map is full.
constexpr char kOverflowKey[] = "*";

// The address of a gRPC peer without its port ("ipv4:10.0.0.7:50412" ->
// "ipv4:10.0.0.7"): a caller picks a new port for every connection.
absl::string_view PeerAddress(absl::string_view peer) {
  if (!absl::StartsWith(peer, "ipv4:") && !absl::StartsWith(peer, "ipv6:")) return peer;
  const size_t colon = peer.rfind(':');
  return colon <= 4 ? peer : peer.substr(0, colon);
}
constexpr size_t kMaxDescriptionBytes = 256;

bool IsValidAdmin(const fleet::v1::TokenInfo& token) {
  return token.role() == fleet::v1::ROLE_ADMIN && token.revoked_at_ms() == 0;
}

std::string DescribeNewToken(const fleet::v1::TokenInfo& token) {
  return absl::StrCat(DescribeToken(token),
                      token.description().empty() ? "" : absl::StrCat(": ", token.description()));
}

// Inserts `token` with `hash` and its "token.created" event in one
// transaction.
absl::Status InsertTokenWithEvent(Store* store, const fleet::v1::TokenInfo& token,
                                  const std::string& hash) {
  FLEET_ASSIGN_OR_RETURN(std::unique_ptr<StoreTransaction> txn, store->Begin());
  FLEET_RETURN_IF_ERROR(txn->InsertToken(token, hash));
  fleet::v1::Event e;
  e.set_at_ms(token.created_at_ms());
  e.set_app(token.app());
  e.set_kind(EventKindName(EventKind::kTokenCreated));
  e.set_actor(token.created_by());
  e.set_message(absl::StrCat("created ", DescribeNewToken(token)));
  FLEET_RETURN_IF_ERROR(txn->AddEvent(&e));
  return txn->Commit();
}

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// Removes the PATH.tmp that WriteFileDurably leaves behind when a start is
// killed while writing the token: a copy of a token nobody needs twice.
absl::Status RemoveTempFile(const std::string& path) {
  const std::string tmp = path + ".tmp";
  if (unlink(tmp.c_str()) != 0 && errno != ENOENT) return ErrnoError("cannot remove", tmp);
  return absl::OkStatus();
}

}  // namespace

std::string ApiCaller::Actor(absl::string_view client_actor) const {
  if (!token_) return ClientText(client_actor);
  if (client_actor.empty()) return absl::StrCat("token ", token_->id());
  return absl::StrCat(ClientText(client_actor), " (token ", token_->id(), ")");
}

bool ApiAccess::ShouldRecordAnonymousDenial(absl::string_view peer, absl::string_view reason,
                                            int64_t* suppressed) {
  const absl::Time now = clock_->Now();
  std::string key = absl::StrCat(PeerAddress(peer), "\n", reason);
  absl::MutexLock lock(&mu_);
  auto it = denial_windows_.find(key);
  if (it == denial_windows_.end() && denial_windows_.size() >= kMaxAnonymousDenialKeys) {
    // Forgets windows that are over: their next denial is recorded anyway,
    // only without the count of suppressed ones.
    absl::erase_if(denial_windows_, [now](const auto& entry) {
      return now - entry.second.recorded_at >= kAnonymousDenialWindow;
    });
    // Still full: many addresses at once, which one window covers.
    if (denial_windows_.size() >= kMaxAnonymousDenialKeys) key = kOverflowKey;
    it = denial_windows_.find(key);
  }
  if (it == denial_windows_.end()) {
    denial_windows_.emplace(std::move(key), DenialWindow{now, 0});
    *suppressed = 0;
    return true;
  }
  DenialWindow& window = it->second;
  if (now - window.recorded_at < kAnonymousDenialWindow) {
    ++window.suppressed;
    return false;
  }
  *suppressed = window.suppressed;
  window = DenialWindow{now, 0};
  return true;
}

absl::Status ApiAccess::Deny(const ApiCall& call, const std::string& app, const std::string& actor,
                             absl::Status denial, absl::string_view detail, bool rate_limited) {
  int64_t suppressed = 0;
  if (rate_limited && !ShouldRecordAnonymousDenial(call.peer, denial.message(), &suppressed)) {
    return denial;
  }
  std::string message = absl::StrCat(call.rpc, " from ", ClientText(call.peer),
                                     " denied: ", denial.message(), detail);
  if (suppressed > 0) absl::StrAppend(&message, " (", suppressed, " more since)");
  spdlog::warn("{}", message);
  // Only an app the store knows: the name comes from a caller who may be
  // anyone.
  std::string known_app;
  if (!app.empty() && store_->GetApp(app).ok()) known_app = app;
  fleet::v1::Event e;
  e.set_at_ms(absl::ToUnixMillis(clock_->Now()));
  e.set_app(known_app);
  e.set_kind(EventKindName(EventKind::kAuthDenied));
  e.set_actor(actor);
  e.set_message(message);
  absl::Status recorded = store_->AddEvent(&e);
  // The caller is refused either way; a store failure only costs the record.
  if (!recorded.ok()) spdlog::error("cannot record auth.denied event: {}", recorded.message());
  return denial;
}

absl::StatusOr<ApiCaller> ApiAccess::Authenticate(const ApiCall& call, const std::string& app) {
  if (!required_) return ApiCaller();
  std::optional<std::string> token =
      call.authorization ? BearerToken(*call.authorization) : std::nullopt;
  if (!token) {
    return Deny(call, app, kAnonymous,
                absl::UnauthenticatedError("missing API token (set FLEET_TOKEN or --token)"), "",
                /*rate_limited=*/true);
  }
  const absl::Status invalid = absl::UnauthenticatedError("invalid API token");
  // Found through the unique index on the hash: comparing hashes of a
  // 256-bit secret leaks nothing useful through timing, unlike comparing
  // the tokens themselves.
  absl::StatusOr<fleet::v1::TokenInfo> found = store_->FindTokenByHash(HashApiToken(*token));
  if (absl::IsNotFound(found.status())) {
    return Deny(call, app, kAnonymous, invalid, "", /*rate_limited=*/true);
  }
  if (!found.ok()) {
    // Not the caller's fault: report it as it is, without an audit event.
    spdlog::error("{} from {}: {}", call.rpc, call.peer, found.status().message());
    return Annotate(found.status(), "cannot check API token");
  }
  if (found->revoked_at_ms() != 0) {
    return Deny(call, app, found->id(), invalid,
                absl::StrCat(" (token ", found->id(), " is revoked)"), /*rate_limited=*/true);
  }
  return ApiCaller(*std::move(found));
}

absl::Status ApiAccess::Authorize(const ApiCaller& caller, const ApiCall& call, ApiAction action,
                                  const std::string& app) {
  if (!caller.token()) return absl::OkStatus();
  absl::Status allowed = controller::Authorize(*caller.token(), action, app);
  if (allowed.ok()) return allowed;
  return Deny(call, app, caller.token()->id(), allowed, "", /*rate_limited=*/false);
}

absl::StatusOr<ApiCaller> ApiAccess::Admit(const ApiCall& call, ApiAction action,
                                           const std::string& app) {
  FLEET_ASSIGN_OR_RETURN(ApiCaller caller, Authenticate(call, app));
  FLEET_RETURN_IF_ERROR(Authorize(caller, call, action, app));
  return caller;
}

absl::StatusOr<fleet::v1::CreateTokenResponse> ApiAccess::CreateToken(
    const fleet::v1::CreateTokenRequest& req) {
  if (req.role() == fleet::v1::ROLE_UNSPECIFIED || !fleet::v1::Role_IsValid(req.role())) {
    return absl::InvalidArgumentError(
        "cannot create a token without a role: choose viewer, deployer or admin");
  }
  FLEET_RETURN_IF_ERROR(CheckTokenScope(req.role(), req.app()));
  if (req.description().size() > kMaxDescriptionBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("token description is ", req.description().size(),
                     " bytes long; the limit is ", kMaxDescriptionBytes));
  }
  if (!req.app().empty()) {
    FLEET_RETURN_IF_ERROR(Annotate(store_->GetApp(req.app()).status(),
                                   absl::StrCat("cannot create a ", RoleName(req.role()),
                                                " token for app '", req.app(), "'")));
  }
  FLEET_ASSIGN_OR_RETURN(GeneratedApiToken generated, GenerateApiToken());
  fleet::v1::CreateTokenResponse resp;
  fleet::v1::TokenInfo* info = resp.mutable_info();
  info->set_id(generated.id);
  info->set_role(req.role());
  info->set_app(req.app());
  info->set_description(req.description());
  info->set_created_by(req.actor());
  info->set_created_at_ms(NowMs());
  FLEET_RETURN_IF_ERROR(InsertTokenWithEvent(store_, *info, generated.hash));
  spdlog::info("{} created {}", req.actor(), DescribeToken(*info));
  resp.set_token(std::move(generated.token));
  return resp;
}

absl::StatusOr<std::vector<fleet::v1::TokenInfo>> ApiAccess::ListTokens() {
  return store_->ListTokens();
}

absl::StatusOr<fleet::v1::TokenInfo> ApiAccess::RevokeToken(const std::string& id,
                                                            const std::string& actor) {
  FLEET_ASSIGN_OR_RETURN(std::unique_ptr<StoreTransaction> txn, store_->Begin());
  FLEET_ASSIGN_OR_RETURN(std::vector<fleet::v1::TokenInfo> tokens, txn->ListTokens());
  const fleet::v1::TokenInfo* target = nullptr;
  int valid_admins = 0;
  for (const fleet::v1::TokenInfo& token : tokens) {
    if (token.id() == id) target = &token;
    if (IsValidAdmin(token)) ++valid_admins;
  }
  if (target == nullptr) return absl::NotFoundError(absl::StrCat("unknown API token '", id, "'"));
  if (target->revoked_at_ms() != 0) return *target;
  if (IsValidAdmin(*target) && valid_admins == 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("token ", id,
                     " is the last valid admin token; create another admin token before "
                     "revoking it"));
  }
  FLEET_ASSIGN_OR_RETURN(fleet::v1::TokenInfo revoked, txn->RevokeToken(id, NowMs()));
  fleet::v1::Event e;
  e.set_at_ms(revoked.revoked_at_ms());
  e.set_app(revoked.app());
  e.set_kind(EventKindName(EventKind::kTokenRevoked));
  e.set_actor(actor);
  e.set_message(absl::StrCat("revoked ", DescribeNewToken(revoked)));
  FLEET_RETURN_IF_ERROR(txn->AddEvent(&e));
  FLEET_RETURN_IF_ERROR(txn->Commit());
  spdlog::info("{} revoked {}", actor, DescribeToken(revoked));
  return revoked;
}

absl::Status EnsureFirstAdminToken(Store* store, const std::string& path) {
  FLEET_ASSIGN_OR_RETURN(int64_t tokens, store->CountTokens());
  if (tokens > 0) return absl::OkStatus();
  fleet::v1::TokenInfo info;
  info.set_role(fleet::v1::ROLE_ADMIN);
  info.set_description("bootstrap admin");
  info.set_created_by("fleet-controller");
  info.set_created_at_ms(NowMs());

  absl::StatusOr<std::string> existing = ReadFile(path);
  if (existing.ok()) {
    // An earlier start wrote the file and stopped before storing its token.
    FLEET_RETURN_IF_ERROR(RemoveTempFile(path));
    const std::string token(absl::StripAsciiWhitespace(*existing));
    if (!IsWellFormedApiToken(token)) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " holds no API token and the database has none; remove ", path,
                       " so that the controller can create the first admin token"));
    }
    const std::string hash = HashApiToken(token);
    info.set_id(ApiTokenId(hash));
    FLEET_RETURN_IF_ERROR(
        Annotate(InsertTokenWithEvent(store, info, hash), "cannot store the first admin token"));
    spdlog::info("stored the first admin token, found in {}", path);
    return absl::OkStatus();
  }
  if (!absl::IsNotFound(existing.status())) return existing.status();

  FLEET_ASSIGN_OR_RETURN(GeneratedApiToken generated, GenerateApiToken());
  info.set_id(generated.id);
  // link(2), not rename(2): a token file that is there is never replaced.
  FLEET_RETURN_IF_ERROR(
      Annotate(WriteFileDurably(path, generated.token + "\n", 0600, /*replace=*/false),
               "cannot write the first admin token"));
  FLEET_RETURN_IF_ERROR(Annotate(InsertTokenWithEvent(store, info, generated.hash),
                                 "cannot store the first admin token"));
  spdlog::info("created the first admin token in {}", path);
  return absl::OkStatus();
}

}  // namespace fleet::controller
