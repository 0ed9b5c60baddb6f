// What every fleetctl command shares: the global options (accepted before
// or after the subcommand), the connection to the controller, and the way a
// command ends (its output printed, or one "fleetctl: ..." line on stderr).
#ifndef FLEET_CLI_SESSION_H_
#define FLEET_CLI_SESSION_H_

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fleet/v1/api.grpc.pb.h"

namespace fleet::cli {

inline constexpr absl::Duration kCallTimeout = absl::Seconds(30);

// The options every command takes. Defaults come from the environment
// (FLEET_CONTROLLER, FLEET_TLS_CA, FLEET_TOKEN), flags override them.
struct GlobalOptions {
  std::string controller = "127.0.0.1:7000";
  std::string output = "text";  // text, json or jsonl
  std::string token;
  std::string token_file;
  std::string tls_ca;
  bool insecure = false;
  bool token_flag = false;  // --token was given (not only FLEET_TOKEN)
};

// Adds the global options, bound to `options`, to `app` under the group
// "Global options" (so that every command's --help lists them). Call it on
// the root and on every subcommand: whichever command a flag follows
// stores it in the same place.
void AddGlobalOptions(CLI::App* app, GlobalOptions* options);

// Ends the running command from inside a CLI11 callback: CLI::Success for
// kExitOk, else CLI::RuntimeError(code), which Run turns into the exit code
// without printing anything more.
[[noreturn]] void Exit(int code);
// Prints "fleetctl: <message>" on stderr and ends with kExitError.
[[noreturn]] void Fail(absl::string_view message);
// As Fail, for a failed call: "controller unavailable: ..." when it could
// not reach the controller, else the controller's message.
[[noreturn]] void FailRpc(const grpc::Status& status);

class Session;
// With --output json or jsonl: prints `message` as JSON (cli/output.h) and
// ends with kExitOk. Otherwise returns, for the caller's text.
void ExitWithJsonIfAsked(Session* session, const google::protobuf::Message& message);

// The state of one fleetctl run. Commands read the options and call the
// controller through it; it connects on the first Api() call. Not
// thread-safe.
class Session {
 public:
  Session();
  GlobalOptions& options() { return options_; }
  bool json() const { return options_.output != "text"; }
  const std::string& output() const { return options_.output; }
  // "user@host" recorded in history (cli/actor.h).
  std::string actor() const;

  // The API, connected: checks the token (file, characters, plaintext to a
  // remote controller), connects within the connect timeout and Fail()s with
  // one precise line when it cannot (connection refused, unknown host name,
  // TLS handshake, no answer).
  fleet::v1::FleetService::Stub* Api();
  // A context for one call: the token, and a deadline `timeout` from now.
  std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = kCallTimeout);

 private:
  void LoadToken();

  GlobalOptions options_;
  std::string token_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<fleet::v1::FleetService::Stub> stub_;
};

}  // namespace fleet::cli

#endif  // FLEET_CLI_SESSION_H_
