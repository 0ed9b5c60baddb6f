#include "cli/session.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "cli/actor.h"
#include "cli/connection.h"
#include "cli/fleetctl.h"
#include "cli/output.h"
#include "common/address.h"
#include "common/fs.h"

namespace fleet::cli {
namespace {

constexpr char kGlobalGroup[] = "Global options";

std::string Env(const char* name, const std::string& fallback) {
  const char* value = getenv(name);
  return value != nullptr && *value ? value : fallback;
}

}  // namespace

void AddGlobalOptions(CLI::App* app, GlobalOptions* options) {
  // A command's own option of the same name wins there (pki issue
  // --controller NAME).
  auto add = [app](const std::string& name, std::string* value, const std::string& help) {
    if (app->get_option_no_throw(name.substr(0, name.find(','))) != nullptr) return;
    app->add_option(name, *value, help)->group(kGlobalGroup);
  };
  add("--controller", &options->controller,
      "controller HOST:PORT (env FLEET_CONTROLLER; default 127.0.0.1:7000)");
  add("--output,-o", &options->output,
      "text, json, or jsonl (json, but --wait and rollout watch print each update as one JSON "
      "object per line)");
  if (CLI::Option* output = app->get_option_no_throw("--output"); output != nullptr) {
    output->check(CLI::IsMember({"text", "json", "jsonl"}));
  }
  if (app->get_option_no_throw("--token") == nullptr) {
    app->add_option("--token", options->token,
                    "API token, sent as a bearer token (env FLEET_TOKEN; prefer it or "
                    "--token-file: arguments show in ps)")
        ->each([options](const std::string&) { options->token_flag = true; })
        ->group(kGlobalGroup);
  }
  add("--token-file", &options->token_file, "file holding the API token, e.g. admin.token");
  add("--tls-ca", &options->tls_ca,
      "PEM CA bundle that the controller's certificate must chain to: talk TLS (env "
      "FLEET_TLS_CA; unset: plaintext)");
  if (app->get_option_no_throw("--insecure") == nullptr) {
    app->add_flag("--insecure", options->insecure,
                  "allow sending the API token over plaintext to a non-loopback controller")
        ->group(kGlobalGroup);
  }
}

void Exit(int code) {
  if (code == kExitOk) throw CLI::Success();
  throw CLI::RuntimeError(code);
}

void Fail(absl::string_view message) {
  std::cerr << "fleetctl: " << message << "\n" << std::flush;
  Exit(kExitError);
}

void FailRpc(const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    Fail(absl::StrCat("controller unavailable: ", status.error_message()));
  }
  Fail(status.error_message());
}

void ExitWithJsonIfAsked(Session* session, const google::protobuf::Message& message) {
  if (!session->json()) return;
  std::cout << JsonText(message);
  Exit(kExitOk);
}

Session::Session() {
  options_.controller = Env("FLEET_CONTROLLER", options_.controller);
  options_.tls_ca = Env("FLEET_TLS_CA", "");
  options_.token = Env("FLEET_TOKEN", "");
}

std::string Session::actor() const { return CurrentActor(); }

void Session::LoadToken() {
  token_ = options_.token;
  if (options_.token_flag && !options_.token_file.empty()) {
    Fail("--token and --token-file exclude each other; give one");
  }
  if (!options_.token_file.empty()) {
    absl::StatusOr<std::string> read = ReadFile(options_.token_file);
    if (!read.ok()) Fail(absl::StrCat("cannot read --token-file: ", read.status().message()));
    token_ = *std::move(read);
  }
  token_ = std::string(absl::StripAsciiWhitespace(token_));
  // gRPC refuses such metadata with an obscure error; say what is wrong.
  if (std::any_of(token_.begin(), token_.end(), [](char c) { return c < 0x21 || c > 0x7e; })) {
    Fail(absl::StrCat("the API token from ",
                      options_.token_file.empty() ? "FLEET_TOKEN or --token" : options_.token_file,
                      " holds spaces or control characters; no token does"));
  }
  // Before connecting: anyone on the path reads a plaintext token, and a
  // token lives until it is revoked.
  if (!token_.empty() && options_.tls_ca.empty() && !options_.insecure &&
      !IsLoopbackAddress(options_.controller)) {
    Fail(absl::StrCat("refusing to send the API token over plaintext to ", options_.controller,
                      ": set --tls-ca (FLEET_TLS_CA), or pass --insecure to send it anyway"));
  }
}

fleet::v1::FleetService::Stub* Session::Api() {
  if (stub_ != nullptr) return stub_.get();
  LoadToken();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ConnectToController(options_.controller, options_.tls_ca);
  if (!channel.ok()) Fail(channel.status().message());
  channel_ = *std::move(channel);
  stub_ = fleet::v1::FleetService::NewStub(channel_);
  return stub_.get();
}

std::unique_ptr<grpc::ClientContext> Session::Context(absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (timeout != absl::InfiniteDuration()) {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
  if (!token_.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  return ctx;
}

}  // namespace fleet::cli
