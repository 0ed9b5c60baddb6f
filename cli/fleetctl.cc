#include "cli/fleetctl.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/actor.h"
#include "cli/pki_command.h"
#include "cli/rollout_text.h"
#include "cli/watch.h"
#include "common/address.h"
#include "common/config_bundle.h"
#include "common/rollout_state.h"
#include "common/sha256.h"
#include "common/signing.h"
#include "common/tls.h"
#include "fleet/v1/api.grpc.pb.h"
#include "google/protobuf/util/json_util.h"

namespace fleet::cli {
namespace {

using fleet::v1::FleetService;
using fleet::v1::Rollout;

constexpr absl::Duration kConnectTimeout = absl::Seconds(5);
constexpr absl::Duration kCallTimeout = absl::Seconds(30);

// A failure to report: one line on stderr and an exit code.
struct Failure {
  int code;
  std::string message;
};

class Client {
 public:
  Client(std::string address, bool json) : address_(std::move(address)), json_(json) {}

  // Connects within kConnectTimeout, or fails with a clear message. With
  // `tls_ca` the channel is TLS and the controller's certificate must chain
  // to that CA bundle and name the --controller host; without, plaintext.
  bool Connect(const std::string& tls_ca, Failure* failure) {
    if (!tls_ca.empty()) {
      if (absl::Status st = ValidateCaFile("--tls-ca", tls_ca); !st.ok()) {
        *failure = {kExitError, std::string(st.message())};
        return false;
      }
    }
    // Failed handshakes are reported once, by ConnectFailure, not by gRPC's
    // log on every retry (GRPC_VERBOSITY brings its log back).
    if (getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function(DiscardGrpcLog);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    // A watch that outlives its controller notices a dead connection within
    // seconds, and reconnects at its own pace (RolloutStream), not after
    // gRPC's own backoff grew to minutes.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);  // a long bake sends no data
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    channel_ = grpc::CreateCustomChannel(
        address_,
        tls_ca.empty() ? grpc::InsecureChannelCredentials()
                       : TlsChannelCredentials({"", "", tls_ca}, kDefaultTlsReloadInterval),
        args);
    stub_ = FleetService::NewStub(channel_);
    if (!channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + kConnectTimeout))) {
      *failure = {kExitError, ConnectFailure(tls_ca)};
      return false;
    }
    return true;
  }

  FleetService::Stub* api() { return stub_.get(); }
  bool json() const { return json_; }
  // The API token every call sends as `authorization: Bearer <token>`;
  // "" sends none.
  void set_token(std::string token) { token_ = std::move(token); }

  std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = kCallTimeout) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    if (!token_.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
    return ctx;
  }

 private:
  static void DiscardGrpcLog(gpr_log_func_args* /*args*/) {}

  // Why Connect gave up, from the error of one call on the failed channel:
  // nothing listening, a TLS handshake that failed, or (in plaintext) a
  // server that does not speak plaintext gRPC, which is most likely TLS.
  std::string ConnectFailure(const std::string& tls_ca) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    fleet::v1::ListAppsResponse ignored;
    const std::string error = stub_->ListApps(&ctx, {}, &ignored).error_message();
    const std::string unreachable = absl::StrCat(
        "cannot reach the controller at ", address_, " within ",
        absl::FormatDuration(kConnectTimeout), " (set --controller or FLEET_CONTROLLER");
    const size_t handshake = error.find("andshake failed");
    if (!tls_ca.empty() && handshake != std::string::npos) {
      const size_t start = error.rfind(": ", handshake);
      const std::string detail = start == std::string::npos ? error : error.substr(start + 2);
      std::string host;
      int port = 0;
      if (!SplitHostPort(address_, &host, &port).ok()) host = address_;
      return absl::StrCat("TLS handshake with the controller at ", address_,
                          " failed: its certificate must chain to a CA in --tls-ca ", tls_ca,
                          " and name ", host, ", and it must serve TLS (", detail, ")");
    }
    if (tls_ca.empty() && absl::StrContains(error, "Socket closed")) {
      return absl::StrCat(unreachable, "; is it TLS? pass --tls-ca or set FLEET_TLS_CA)");
    }
    return absl::StrCat(unreachable, ")");
  }

  std::string address_;
  bool json_;
  std::string token_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<FleetService::Stub> stub_;
};

Failure RpcFailure(const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return {kExitError, absl::StrCat("controller unavailable: ", status.error_message())};
  }
  return {kExitError, status.error_message()};
}

std::string Json(const google::protobuf::Message& msg) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(msg, &out, options);
  return out;
}

std::string FormatMs(int64_t ms) {
  if (ms <= 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(ms), absl::LocalTimeZone());
}

// `fleetctl token` names roles as the controller's messages do.
fleet::v1::Role RoleOf(const std::string& word) {
  if (word == "admin") return fleet::v1::ROLE_ADMIN;
  if (word == "deployer") return fleet::v1::ROLE_DEPLOYER;
  if (word == "viewer") return fleet::v1::ROLE_VIEWER;
  return fleet::v1::ROLE_UNSPECIFIED;
}
std::string RoleWord(fleet::v1::Role role) {
  switch (role) {
    case fleet::v1::ROLE_ADMIN:
      return "admin";
    case fleet::v1::ROLE_DEPLOYER:
      return "deployer";
    case fleet::v1::ROLE_VIEWER:
      return "viewer";
    default:
      return "-";
  }
}
// "deployer token 3fa9c2d4e5f6 for app 'api'"
std::string TokenName(const fleet::v1::TokenInfo& t) {
  return absl::StrCat(RoleWord(t.role()), " token ", t.id(),
                      t.app().empty() ? "" : absl::StrCat(" for app '", t.app(), "'"));
}

// Prints a table: columns padded to their widest cell.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], row[i].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

void PrintRollout(const Rollout& r) {
  std::cout << KindName(r) << " " << r.id() << " of " << r.app() << ": " << OrDash(r.from_version())
            << " -> " << r.version() << "  " << RolloutStateName(r.state()) << "\n";
  if (!r.reason().empty()) std::cout << "reason: " << r.reason() << "\n";
  if (r.plan().waves_size() > 1 || r.awaiting_promote()) {
    for (int w = 0; w < r.plan().waves_size(); ++w) std::cout << WaveLine(r, w) << "\n";
  }
  std::vector<std::vector<std::string>> rows = {{"HOST", "WAVE", "STATE", "FROM", "TO", "REASON"}};
  for (const auto& t : r.tasks()) {
    rows.push_back({t.host_id(), std::to_string(t.wave() + 1), TaskStateName(t.state()),
                    OrDash(t.from_version()), OrDash(t.to_version()), t.reason()});
  }
  if (r.tasks_size() > 0) PrintTable(rows);
}

// The plan of a rollout: waves with their hosts, threshold, bake.
void PrintPlan(const Rollout& r) {
  const auto& plan = r.plan();
  std::cout << "plan for " << r.app() << " " << OrDash(r.from_version()) << " -> " << r.version()
            << " on " << r.tasks_size() << " hosts: max failures " << plan.max_failures() << " ("
            << plan.max_failures_spec() << "), bake "
            << absl::FormatDuration(absl::Milliseconds(plan.bake_ms())) << ", max parallel "
            << (plan.max_parallel() > 0 ? std::to_string(plan.max_parallel()) : "all")
            << (plan.manual_promote() ? ", manual promote" : "") << "\n";
  for (const auto& wave : plan.waves()) {
    std::vector<std::string> hosts;
    for (const auto& t : r.tasks()) {
      if (t.wave() == wave.index()) hosts.push_back(t.host_id());
    }
    std::cout << "wave " << wave.index() + 1 << " (" << wave.target() << ", " << wave.hosts()
              << " hosts in all): " << absl::StrJoin(hosts, " ") << "\n";
  }
}

// Follows rollout `id` until it ends (cli/watch.h) and returns the final
// rollout, shown as --output asks.
bool Follow(Client& client, const std::string& output, const std::string& id, Rollout* out,
            Failure* failure) {
  WatchOptions options;
  options.output = output == "json"    ? WatchOutput::kJson
                   : output == "jsonl" ? WatchOutput::kJsonLines
                                       : WatchOutput::kText;
  options.terminal = isatty(STDOUT_FILENO);
  absl::StatusOr<Rollout> r = WatchRollout(
      client.api(), [&client] { return client.Context(absl::InfiniteDuration()); }, id, options,
      std::cout, std::cerr);
  if (!r.ok()) {
    *failure = {kExitError, std::string(r.status().message())};
    return false;
  }
  *out = *std::move(r);
  return true;
}

std::string ReadAll(const std::string& path, Failure* failure) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *failure = {kExitError, absl::StrCat("cannot read ", path)};
    return "";
  }
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The files under `dir` for a config push: regular files with their
// relative paths and permission bits. Symlinks and special files are
// refused rather than followed or skipped, so what is pushed is what the
// directory shows.
bool ReadConfigDir(const std::string& dir, fleet::v1::PushConfigRequest* req, Failure* failure) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    *failure = {kExitError, absl::StrCat(dir, " is not a directory")};
    return false;
  }
  std::vector<fs::path> files;
  fs::recursive_directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    fs::file_status st = it->symlink_status(ec);
    if (ec) break;
    const std::string name = it->path().filename().string();
    if (fs::is_directory(st)) {
      // Version control metadata is never config.
      if (IsVcsDirName(name)) it.disable_recursion_pending();
      continue;
    }
    std::string rel = fs::relative(it->path(), dir, ec).generic_string();
    // An editor's backup of a secret is its plaintext.
    if (IsEditorBackupName(name)) {
      *failure = {kExitError, absl::StrCat(rel, " in ", dir,
                                           " looks like an editor backup; remove it or push a "
                                           "clean directory")};
      return false;
    }
    if (fs::is_symlink(st) || !fs::is_regular_file(st)) {
      *failure = {kExitError, absl::StrCat(rel, " in ", dir, " is ",
                                           fs::is_symlink(st) ? "a symlink" : "not a regular file",
                                           "; config pushes carry regular files only")};
      return false;
    }
    files.push_back(it->path());
  }
  if (ec) {
    *failure = {kExitError, absl::StrCat("cannot read ", dir, ": ", ec.message())};
    return false;
  }
  std::sort(files.begin(), files.end());
  int64_t total = 0;
  for (const fs::path& path : files) {
    fleet::v1::ConfigFile* file = req->add_files();
    file->set_path(fs::relative(path, dir, ec).generic_string());
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      *failure = {kExitError, absl::StrCat("cannot read ", path.string(), ": it changed")};
      return false;
    }
    file->set_mode(st.st_mode & 0777);
    total += st.st_size;
    // The controller refuses this too, but a request past gRPC's message
    // limit would not get that far.
    if (total > ConfigLimits().max_total_bytes) {
      *failure = {kExitError, absl::StrCat(dir, " has more than ", ConfigLimits().max_total_bytes,
                                           " bytes; keep big data out of config")};
      return false;
    }
    file->set_content(ReadAll(path.string(), failure));
    if (failure->code) return false;
  }
  return true;
}

}  // namespace

int Run(int argc, char** argv) {
  CLI::App app{"fleetctl: release, roll out and roll back apps across a fleet"};
  app.require_subcommand(1);
  std::string controller = "127.0.0.1:7000";
  if (const char* env = getenv("FLEET_CONTROLLER"); env != nullptr && *env) controller = env;
  std::string output = "text";
  app.add_option("--controller", controller, "controller HOST:PORT (env FLEET_CONTROLLER)")
      ->capture_default_str();
  std::string tls_ca;
  if (const char* env = getenv("FLEET_TLS_CA"); env != nullptr && *env) tls_ca = env;
  app.add_option("--tls-ca", tls_ca,
                 "PEM CA bundle that the controller's certificate must chain to: talk TLS "
                 "(env FLEET_TLS_CA; unset: plaintext)");
  app.add_option("--output,-o", output,
                 "text, json, or jsonl (json, but --wait and rollout watch print each update "
                 "as one JSON object per line)")
      ->check(CLI::IsMember({"text", "json", "jsonl"}))
      ->capture_default_str();
  app.set_version_flag("--version", FLEET_VERSION);
  std::string token, token_file;
  if (const char* env = getenv("FLEET_TOKEN"); env != nullptr && *env) token = env;
  auto* token_opt = app.add_option(
      "--token", token,
      "API token, sent as a bearer token (env FLEET_TOKEN; prefer it or --token-file: "
      "arguments show in ps)");
  app.add_option("--token-file", token_file, "file holding the API token, e.g. admin.token")
      ->excludes(token_opt);
  bool insecure = false;
  app.add_flag("--insecure", insecure,
               "allow sending the API token over plaintext to a non-loopback controller");

  std::string a_app, a_version, a_file, a_selector, a_to, a_id;
  bool wait = false;

  auto* app_cmd = app.add_subcommand("app", "manage app specs")->require_subcommand(1);
  auto* app_apply = app_cmd->add_subcommand("apply", "create or update an app from a spec file");
  app_apply->add_option("-f,--file", a_file, "app spec YAML")->required();
  auto* app_list = app_cmd->add_subcommand("list", "list apps");

  auto* rel_cmd = app.add_subcommand("release", "manage releases")->require_subcommand(1);
  auto* rel_push = rel_cmd->add_subcommand("push", "upload an artifact as APP VERSION");
  rel_push->add_option("app", a_app)->required();
  rel_push->add_option("version", a_version)->required();
  rel_push->add_option("file", a_file, "artifact (tar, tar.gz, ...)")->required();
  auto* rel_list = rel_cmd->add_subcommand("list", "list an app's releases");
  rel_list->add_option("app", a_app)->required();
  std::string a_sign, a_key_out;
  rel_push->add_option("--sign", a_sign,
                       "secret key file from fleetctl keygen: sign the release's manifest");
  auto* keygen = app.add_subcommand(
      "keygen", "make an Ed25519 key pair that signs releases (works without a controller)");
  keygen->add_option("--out", a_key_out, "write PREFIX.key (secret, mode 0600) and PREFIX.pub")
      ->required();

  std::string a_waves, a_max_failures, a_bake, a_host_timeout;
  int a_max_parallel = 0;
  bool manual_promote = false, dry_run = false;
  // `rollout` and `config rollout` take the same plan options.
  auto add_plan_options = [&](CLI::App* cmd) {
    cmd->add_option("--selector", a_selector, "k=v,k2=v2: only hosts with these labels");
    cmd->add_option("--waves", a_waves,
                    "cumulative waves, e.g. 1,10%,50%,100% (default: spec, else 1,100%)");
    cmd->add_option("--max-failures", a_max_failures, "N or P% of hosts that may fail (default 0)");
    cmd->add_option("--max-parallel", a_max_parallel,
                    "hosts switching at once in a wave (0 = all)");
    cmd->add_option("--bake", a_bake, "each host stays healthy this long before the next wave");
    cmd->add_option("--host-timeout", a_host_timeout,
                    "a host silent or away this long fails (default 2m)");
    cmd->add_flag("--manual-promote", manual_promote, "pause after each wave until promoted");
    cmd->add_flag("--dry-run", dry_run, "print the plan; change nothing");
    cmd->add_flag("--wait", wait, "follow it; exit 0 only if it succeeded");
  };
  auto* rollout = app.add_subcommand("rollout", "roll a release out: rollout APP VERSION");
  rollout->add_option("app", a_app);
  rollout->add_option("version", a_version);
  add_plan_options(rollout);
  auto* ro_list = rollout->add_subcommand("list", "list rollouts [APP]");
  ro_list->add_option("app", a_app);
  auto* ro_status = rollout->add_subcommand("status", "show one rollout");
  ro_status->add_option("id", a_id)->required();
  auto* ro_watch = rollout->add_subcommand("watch", "follow a rollout until it ends");
  ro_watch->add_option("id", a_id)->required();
  std::map<CLI::App*, std::string> actions;
  for (const char* action : {"pause", "resume", "promote", "abort"}) {
    auto* sub = rollout->add_subcommand(
        action, absl::StrCat(action, " a running rollout", std::string(action) == "abort"
                                                                 ? " (switched hosts go back)"
                                                                 : ""));
    sub->add_option("id", a_id)->required();
    actions[sub] = action;
  }

  auto* rollback = app.add_subcommand("rollback", "switch every host back to an earlier release");
  rollback->add_option("app", a_app)->required();
  rollback->add_option("--to", a_to, "release (default: the last successful one before current)");
  rollback->add_flag("--wait", wait, "follow it; exit 0 only if it succeeded");

  auto* cfg_cmd = app.add_subcommand("config", "manage config releases")->require_subcommand(1);
  auto* cfg_push = cfg_cmd->add_subcommand(
      "push", "validate and store the files of DIR as config APP VERSION (*.age: secrets)");
  cfg_push->add_option("app", a_app)->required();
  cfg_push->add_option("version", a_version)->required();
  cfg_push->add_option("dir", a_file, "directory with the config files")->required();
  auto* cfg_list = cfg_cmd->add_subcommand("list", "list an app's config releases");
  cfg_list->add_option("app", a_app)->required();
  auto* cfg_rollout =
      cfg_cmd->add_subcommand("rollout", "roll a config out like a release: APP VERSION");
  cfg_rollout->add_option("app", a_app)->required();
  cfg_rollout->add_option("version", a_version)->required();
  add_plan_options(cfg_rollout);
  auto* cfg_rollback =
      cfg_cmd->add_subcommand("rollback", "switch every host back to an earlier config");
  cfg_rollback->add_option("app", a_app)->required();
  cfg_rollback->add_option("--to", a_to,
                           "config (default: the last successful one before current)");
  cfg_rollback->add_flag("--wait", wait, "follow it; exit 0 only if it succeeded");

  auto* status = app.add_subcommand("status", "an app's hosts, releases, configs and rollouts");
  status->add_option("app", a_app)->required();
  auto* hosts = app.add_subcommand("hosts", "list hosts");
  auto* history = app.add_subcommand("history", "an app's rollouts and rollbacks");
  history->add_option("app", a_app)->required();

  std::string a_role, a_description;
  auto* token_cmd =
      app.add_subcommand("token", "manage API tokens (admin only)")->require_subcommand(1);
  auto* tok_create = token_cmd->add_subcommand(
      "create", "create a token and print it once (viewer reads; deployer also pushes, rolls "
                "out and back; admin also applies apps and manages tokens)");
  tok_create->add_option("--role", a_role, "viewer, deployer or admin")
      ->required()
      ->check(CLI::IsMember({"viewer", "deployer", "admin"}));
  tok_create->add_option("--app", a_app, "deployer only: the one app it may change");
  tok_create->add_option("--description", a_description, "what or who it is for");
  auto* tok_list = token_cmd->add_subcommand("list", "list tokens (never the tokens themselves)");
  auto* tok_revoke = token_cmd->add_subcommand("revoke", "revoke a token by its id");
  tok_revoke->add_option("id", a_id)->required();
  AddPkiCommands(&app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitError;
  }
  CLI::App* action_cmd = nullptr;
  for (const auto& [sub, name] : actions) {
    if (sub->parsed()) action_cmd = sub;
  }
  if (rollout->parsed() && !ro_list->parsed() && !ro_status->parsed() && !ro_watch->parsed() &&
      action_cmd == nullptr && (a_app.empty() || a_version.empty())) {
    std::cerr << "fleetctl: rollout needs APP and VERSION (or one of list, status, watch, pause, "
                 "resume, promote, abort)\n";
    return kExitError;
  }

  const bool json = output != "text";
  Client client(controller, json);
  Failure failure{kExitOk, ""};
  auto fail = [&](const Failure& f) {
    std::cerr << "fleetctl: " << f.message << "\n";
    return f.code;
  };
  // Before connecting: a key pair is made where it is kept, and the
  // controller never sees the secret half.
  if (keygen->parsed()) {
    absl::StatusOr<SigningKeyPair> keys = GenerateSigningKeyPair();
    absl::Status st = keys.ok() ? WriteKeyFiles(*keys, a_key_out) : keys.status();
    if (!st.ok()) return fail({kExitError, absl::StrCat("keygen: ", st.message())});
    const std::string public_key = FormatPublicKey(keys->public_key);
    if (json) {
      nlohmann::json out = {{"public_key", public_key},
                            {"secret_key_file", a_key_out + ".key"},
                            {"public_key_file", a_key_out + ".pub"}};
      std::cout << out.dump(2) << "\n";
    } else {
      std::cout << "wrote " << a_key_out << ".key (secret, mode 0600; for release push --sign) and "
                << a_key_out << ".pub; list this public key in the app spec's trusted_keys:\n"
                << public_key << "\n";
    }
    return kExitOk;
  }
  if (!token_file.empty()) {
    token = ReadAll(token_file, &failure);
    if (failure.code) return fail(failure);
  }
  token = std::string(absl::StripAsciiWhitespace(token));
  // gRPC refuses such metadata with an obscure error; say what is wrong.
  if (std::any_of(token.begin(), token.end(), [](char c) { return c < 0x21 || c > 0x7e; })) {
    return fail({kExitError, absl::StrCat("the API token from ",
                                          token_file.empty() ? "FLEET_TOKEN or --token"
                                                             : token_file,
                                          " holds spaces or control characters; no token does")});
  }
  // Before connecting: anyone on the path reads a plaintext token, and a
  // token lives until it is revoked.
  if (!token.empty() && tls_ca.empty() && !insecure && !IsLoopbackAddress(controller)) {
    return fail({kExitError,
                 absl::StrCat("refusing to send the API token over plaintext to ", controller,
                              ": set --tls-ca (FLEET_TLS_CA), or pass --insecure to send it "
                              "anyway")});
  }
  client.set_token(token);
  if (!client.Connect(tls_ca, &failure)) return fail(failure);
  const std::string actor = CurrentActor();

  if (app_apply->parsed()) {
    fleet::v1::ApplyAppRequest req;
    req.set_spec_yaml(ReadAll(a_file, &failure));
    if (failure.code) return fail(failure);
    req.set_source(a_file);
    req.set_actor(actor);
    fleet::v1::ApplyAppResponse resp;
    grpc::Status st = client.api()->ApplyApp(client.Context().get(), req, &resp);
    if (!st.ok()) return fail(RpcFailure(st));
    if (json) {
      std::cout << Json(resp);
    } else {
      std::cout << "app " << resp.app().spec().name() << (resp.created() ? " created" : " updated")
                << "\n";
    }
    return kExitOk;
  }
  if (app_list->parsed()) {
    fleet::v1::ListAppsResponse resp;
    grpc::Status st = client.api()->ListApps(client.Context().get(), {}, &resp);
    if (!st.ok()) return fail(RpcFailure(st));
    if (json) {
      std::cout << Json(resp);
      return kExitOk;
    }
    std::vector<std::vector<std::string>> rows = {
        {"APP", "RELEASE", "CONFIG", "KEEP", "CHECKS", "UPDATED"}};
    for (const auto& a : resp.apps()) {
      rows.push_back({a.spec().name(), OrDash(a.desired_version()), OrDash(a.desired_config()),
                      std::to_string(a.spec().keep_releases()),
                      std::to_string(a.spec().health_size()), FormatMs(a.updated_at_ms())});
    }
    PrintTable(rows);
    return kExitOk;
  }
  if (rel_push->parsed()) {
    std::ifstream in(a_file, std::ios::binary | std::ios::ate);
    if (!in) return fail({kExitError, absl::StrCat("cannot read ", a_file)});
    int64_t size = in.tellg();
    in.seekg(0);
    auto sha = Sha256File(a_file);
    if (!sha.ok()) return fail({kExitError, std::string(sha.status().message())});
    std::string signature;
    if (!a_sign.empty()) {
      absl::StatusOr<std::string> key = ReadSecretKeyFile(a_sign);
      absl::StatusOr<std::string> signed_manifest =
          key.ok() ? SignReleaseManifest(*key, a_app, a_version, *sha, size) : key.status();
      if (!signed_manifest.ok()) {
        return fail({kExitError, absl::StrCat("cannot sign ", a_app, "@", a_version, ": ",
                                              signed_manifest.status().message())});
      }
      signature = *std::move(signed_manifest);
    }
    fleet::v1::Release resp;
    auto ctx = client.Context(absl::Hours(1));
    auto writer = client.api()->PushRelease(ctx.get(), &resp);
    fleet::v1::PushReleaseRequest req;
    auto* header = req.mutable_header();
    header->set_app(a_app);
    header->set_version(a_version);
    header->set_size(size);
    header->set_sha256(*sha);
    header->set_actor(actor);
    header->set_signature(signature);
    bool ok = writer->Write(req);
    std::string buf(1 << 20, '\0');
    while (ok && in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      if (in.gcount() <= 0) break;
      fleet::v1::PushReleaseRequest chunk;
      chunk.set_data(buf.data(), static_cast<size_t>(in.gcount()));
      ok = writer->Write(chunk);
    }
    writer->WritesDone();
    grpc::Status st = writer->Finish();
    if (!st.ok()) return fail(RpcFailure(st));
    if (json) {
      std::cout << Json(resp);
    } else {
      std::cout << "pushed " << resp.app() << "@" << resp.version() << " sha256 " << resp.sha256()
                << " (" << resp.size() << " bytes)"
                << (resp.signature().empty() ? ", unsigned" : ", signed") << "\n";
    }
    return kExitOk;
  }
  if (cfg_push->parsed()) {
    fleet::v1::PushConfigRequest req;
    req.set_app(a_app);
    req.set_version(a_version);
    req.set_actor(actor);
    if (!ReadConfigDir(a_file, &req, &failure)) return fail(failure);
    fleet::v1::PushConfigResponse resp;
    grpc::Status st = client.api()->PushConfig(client.Context().get(), req, &resp);
    if (!st.ok()) return fail(RpcFailure(st));
    if (json) {
      std::cout << Json(resp);
      return kExitOk;
    }
    const auto& c = resp.config();
    int secrets = 0;
    for (const auto& f : c.files()) secrets += f.secret() ? 1 : 0;
    std::cout << (resp.created() ? "pushed config " : "config already pushed with these files: ")
              << c.app() << "@" << c.version() << ": " << c.files_size() << " files (" << secrets
              << " secret), sha256 " << c.sha256() << " (" << c.size() << " bytes)\n";
    return kExitOk;
  }
  if (cfg_list->parsed()) {
    fleet::v1::ListConfigsRequest req;
    req.set_app(a_app);
    fleet::v1::ListConfigsResponse resp;
    grpc::Status st = client.api()->ListConfigs(client.Context().get(), req, &resp);
    if (!st.ok()) return fail(RpcFailure(st));
    if (json) {
      std::cout << Json(resp);
      return kExitOk;
    }
    std::vector<std::vector<std::string>> rows = {{"VERSION", "FILES", "SHA256", "PUSHED", "BY"}};
    for (const auto& c : resp.configs()) {
      std::vector<std::string> names;
      for (const auto& f : c.files()) names.push_back(f.path());
      rows.push_back({c.version(), absl::StrJoin(names, ","), c.sha256().substr(0, 12),
                      FormatMs(c.created_at_ms()), c.created_by()});
    }
    PrintTable(rows);
    return kExitOk;
  }
  if (rel_list->parsed()) {
    fleet::v1::ListReleasesRequest req;
    req.set_app(a_app);
    fleet::v1::ListReleasesResponse resp;
    grpc::Status st = client.api()->ListReleases(client.Context().get(), req, &resp);
    if (!st.ok()) return fail(RpcFailure(st));
    if (json) {
      std::cout << Json(resp);
      return kExitOk;
    }
    std::vector<std::vector<std::string>> rows = {
        {"VERSION", "SHA256", "SIZE", "SIGNED", "PUSHED", "BY"}};
    for (const auto& r : resp.releases()) {
      rows.push_back({r.version(), r.sha256().substr(0, 12), std::to_string(r.size()),
                      r.signature().empty() ? "no" : "yes", FormatMs(r.created_at_ms()),
                      r.created_by()});
    }
    PrintTable(rows);
    return kExitOk;
  }
  if (ro_list->parsed()) {
    fleet::v1::ListRolloutsRequest req;
    req.set_app(a_app);
    req.set_limit(50);
    fleet::v1::ListRolloutsResponse resp;
    grpc::Status st = client.api()->ListRollouts(client.Context().get(), req, &resp);
    if (!st.ok()) return fail(RpcFailure(st));
    if (json) {
      std::cout << Json(resp);
      return kExitOk;
    }
    std::vector<std::vector<std::string>> rows = {
        {"ID", "APP", "KIND", "VERSION", "FROM", "STATE", "STARTED", "BY"}};
    for (const auto& r : resp.rollouts()) {
      rows.push_back({r.id(), r.app(), KindName(r), r.version(), OrDash(r.from_version()),
                      RolloutStateName(r.state()), FormatMs(r.created_at_ms()), r.created_by()});
    }
    PrintTable(rows);
    return kExitOk;
  }
  if (ro_status->parsed() || ro_watch->parsed()) {
    Rollout r;
    if (ro_watch->parsed()) {
      if (!Follow(client, output, a_id, &r, &failure)) return fail(failure);
    } else {
      fleet::v1::GetRolloutRequest req;
      req.set_id(a_id);
      grpc::Status st = client.api()->GetRollout(client.Context().get(), req, &r);
      if (!st.ok()) return fail(RpcFailure(st));
    }
    // jsonl printed every update already, the last one terminal.
    const bool streamed = ro_watch->parsed() && output == "jsonl";
    if (json && !streamed) {
      std::cout << Json(r);
    } else if (!json) {
      PrintRollout(r);
    }
    return IsTerminal(r.state()) ? ExitCodeFor(r) : kExitOk;
  }
  if (action_cmd != nullptr) {
    fleet::v1::RolloutActionRequest req;
    req.set_id(a_id);
    req.set_actor(actor);
    Rollout r;
    grpc::Status st;
    const std::string& name = actions[action_cmd];
    if (name == "pause") st = client.api()->PauseRollout(client.Context().get(), req, &r);
    if (name == "resume") st = client.api()->ResumeRollout(client.Context().get(), req, &r);
    if (name == "promote") st = client.api()->PromoteRollout(client.Context().get(), req, &r);
    if (name == "abort") st = client.api()->AbortRollout(client.Context().get(), req, &r);
    if (!st.ok()) return fail(RpcFailure(st));
    if (json) {
      std::cout << Json(r);
    } else {
      std::cout << KindName(r) << " " << r.id() << " " << RolloutStateName(r.state()) << "\n";
    }
    return kExitOk;
  }
  if (rollout->parsed() || rollback->parsed() || cfg_rollout->parsed() || cfg_rollback->parsed()) {
    const fleet::v1::Subject subject = cfg_rollout->parsed() || cfg_rollback->parsed()
                                           ? fleet::v1::SUBJECT_CONFIG
                                           : fleet::v1::SUBJECT_RELEASE;
    Rollout r;
    grpc::Status st;
    if (rollout->parsed() || cfg_rollout->parsed()) {
      fleet::v1::StartRolloutRequest req;
      req.set_subject(subject);
      req.set_app(a_app);
      req.set_version(a_version);
      req.set_selector(a_selector);
      req.set_actor(actor);
      for (absl::string_view wave : absl::StrSplit(a_waves, ',', absl::SkipWhitespace())) {
        req.add_waves(std::string(absl::StripAsciiWhitespace(wave)));
      }
      req.set_max_failures(a_max_failures);
      req.set_max_parallel(a_max_parallel);
      req.set_bake(a_bake);
      req.set_host_timeout(a_host_timeout);
      req.set_manual_promote(manual_promote);
      req.set_dry_run(dry_run);
      st = client.api()->StartRollout(client.Context().get(), req, &r);
      if (st.ok() && dry_run) {
        if (json) {
          std::cout << Json(r);
        } else {
          PrintPlan(r);
        }
        return kExitOk;
      }
    } else {
      fleet::v1::RollbackRequest req;
      req.set_subject(subject);
      req.set_app(a_app);
      req.set_to_version(a_to);
      req.set_actor(actor);
      st = client.api()->Rollback(client.Context().get(), req, &r);
    }
    if (!st.ok()) return fail(RpcFailure(st));
    if (!json) {
      std::cout << KindName(r) << " " << r.id() << " of " << r.app() << " "
                << OrDash(r.from_version()) << " -> " << r.version() << " on " << r.tasks_size()
                << " hosts"
                << (wait ? "" : " started; follow it with: fleetctl rollout watch " + r.id())
                << "\n";
    }
    if (wait) {
      if (!Follow(client, output, r.id(), &r, &failure)) return fail(failure);
    }
    if (json && !(wait && output == "jsonl")) std::cout << Json(r);
    if (!wait) return kExitOk;
    if (r.state() != fleet::v1::ROLLOUT_STATE_SUCCEEDED) {
      std::cerr << "fleetctl: " << KindName(r) << " " << r.id() << " "
                << RolloutStateName(r.state()) << ": " << r.reason() << "\n";
    }
    return ExitCodeFor(r);
  }
  if (status->parsed()) {
    fleet::v1::GetAppStatusRequest req;
    req.set_app(a_app);
    fleet::v1::AppStatus resp;
    grpc::Status st = client.api()->GetAppStatus(client.Context().get(), req, &resp);
    if (!st.ok()) return fail(RpcFailure(st));
    if (json) {
      std::cout << Json(resp);
      return kExitOk;
    }
    std::cout << "app " << resp.app().spec().name() << ": fleet release "
              << OrDash(resp.app().desired_version()) << ", config "
              << OrDash(resp.app().desired_config()) << "\n";
    std::vector<std::vector<std::string>> rows = {
        {"HOST", "CONNECTED", "RELEASE", "CONFIG", "LAST GOOD", "PREVIOUS", "ON DISK", "CONFIGS"}};
    for (const auto& h : resp.hosts()) {
      const auto& s = h.state();
      // LAST GOOD and PREVIOUS show "release/config".
      rows.push_back({h.host_id(), h.connected() ? "yes" : "no", OrDash(s.current_release()),
                      OrDash(s.current_config()),
                      absl::StrCat(OrDash(s.last_known_good()), "/", OrDash(s.last_good_config())),
                      absl::StrCat(OrDash(s.previous_release()), "/", OrDash(s.previous_config())),
                      absl::StrJoin(s.releases(), ","), absl::StrJoin(s.configs(), ",")});
    }
    PrintTable(rows);
    for (const Rollout* r : {&resp.active_rollout(), &resp.last_rollout()}) {
      if (r->id().empty()) continue;
      std::cout << (r == &resp.active_rollout() ? "running: " : "last: ") << KindName(*r) << " "
                << r->id() << " " << OrDash(r->from_version()) << " -> " << r->version() << " "
                << RolloutStateName(r->state()) << (r->reason().empty() ? "" : ": ") << r->reason()
                << "\n";
    }
    return kExitOk;
  }
  if (hosts->parsed()) {
    fleet::v1::ListHostsResponse resp;
    grpc::Status st = client.api()->ListHosts(client.Context().get(), {}, &resp);
    if (!st.ok()) return fail(RpcFailure(st));
    if (json) {
      std::cout << Json(resp);
      return kExitOk;
    }
    std::vector<std::vector<std::string>> rows = {
        {"HOST", "CONNECTED", "LAST SEEN", "LABELS", "APPS"}};
    for (const auto& h : resp.hosts()) {
      std::vector<std::string> labels, apps;
      for (const auto& [k, v] : std::map<std::string, std::string>(h.labels().begin(),
                                                                  h.labels().end())) {
        labels.push_back(k + "=" + v);
      }
      for (const auto& a : h.apps()) {
        apps.push_back(absl::StrCat(a.app(), "@", OrDash(a.current_release()),
                                    a.current_config().empty() ? "" : "+" + a.current_config()));
      }
      rows.push_back({h.id(), h.connected() ? "yes" : "no", FormatMs(h.last_seen_ms()),
                      absl::StrJoin(labels, ","), absl::StrJoin(apps, ",")});
    }
    PrintTable(rows);
    return kExitOk;
  }
  if (tok_create->parsed()) {
    fleet::v1::CreateTokenRequest req;
    req.set_role(RoleOf(a_role));
    req.set_app(a_app);
    req.set_description(a_description);
    req.set_actor(actor);
    fleet::v1::CreateTokenResponse resp;
    grpc::Status st = client.api()->CreateToken(client.Context().get(), req, &resp);
    if (!st.ok()) return fail(RpcFailure(st));
    if (json) {
      std::cout << Json(resp);
      return kExitOk;
    }
    // stdout holds the token alone, for FLEET_TOKEN=$(fleetctl token create ...).
    std::cout << resp.token() << "\n";
    std::cerr << "created " << TokenName(resp.info())
              << "; the token is shown only this once, keep it secret\n";
    return kExitOk;
  }
  if (tok_list->parsed()) {
    fleet::v1::ListTokensResponse resp;
    grpc::Status st = client.api()->ListTokens(client.Context().get(), {}, &resp);
    if (!st.ok()) return fail(RpcFailure(st));
    if (json) {
      std::cout << Json(resp);
      return kExitOk;
    }
    std::vector<std::vector<std::string>> rows = {
        {"ID", "ROLE", "APP", "DESCRIPTION", "CREATED", "BY", "REVOKED"}};
    for (const auto& t : resp.tokens()) {
      rows.push_back({t.id(), RoleWord(t.role()), t.app().empty() ? "all" : t.app(),
                      OrDash(t.description()), FormatMs(t.created_at_ms()), t.created_by(),
                      FormatMs(t.revoked_at_ms())});
    }
    PrintTable(rows);
    return kExitOk;
  }
  if (tok_revoke->parsed()) {
    fleet::v1::RevokeTokenRequest req;
    req.set_id(a_id);
    req.set_actor(actor);
    fleet::v1::TokenInfo resp;
    grpc::Status st = client.api()->RevokeToken(client.Context().get(), req, &resp);
    if (!st.ok()) return fail(RpcFailure(st));
    if (json) {
      std::cout << Json(resp);
    } else {
      std::cout << "revoked " << TokenName(resp) << " at " << FormatMs(resp.revoked_at_ms())
                << "\n";
    }
    return kExitOk;
  }
  if (history->parsed()) {
    fleet::v1::GetHistoryRequest req;
    req.set_app(a_app);
    fleet::v1::GetHistoryResponse resp;
    grpc::Status st = client.api()->GetHistory(client.Context().get(), req, &resp);
    if (!st.ok()) return fail(RpcFailure(st));
    if (json) {
      std::cout << Json(resp);
      return kExitOk;
    }
    // RELEASE and CONFIG: the pair the fleet runs when it succeeded.
    std::vector<std::vector<std::string>> rows = {
        {"ID", "WHEN", "KIND", "VERSION", "FROM", "RELEASE", "CONFIG", "RESULT", "BY", "REASON"}};
    for (const auto& r : resp.rollouts()) {
      rows.push_back({r.id(), FormatMs(r.created_at_ms()), KindName(r), r.version(),
                      OrDash(r.from_version()), OrDash(r.release()), OrDash(r.config()),
                      RolloutStateName(r.state()), r.created_by(), r.reason()});
    }
    PrintTable(rows);
    return kExitOk;
  }
  return fail({kExitError, "no command given; see fleetctl --help"});
}

}  // namespace fleet::cli
