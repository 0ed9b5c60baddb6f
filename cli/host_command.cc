// fleetctl host release HOST APP: ends the hold a break-glass rollback on
// the host (fleet-agent rollback) left, so the controller brings the host
// back to the fleet's release.
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace fleet::cli {
namespace {

struct HostArgs {
  std::string host;
  std::string app;
};

void Release(Session* session, const HostArgs& args) {
  fleet::v1::ReleaseHoldRequest req;
  req.set_host_id(args.host);
  req.set_app(args.app);
  req.set_actor(session->actor());
  fleet::v1::Host resp;
  auto* api = session->Api();
  grpc::Status st = api->ReleaseHold(session->Context().get(), req, &resp);
  if (!st.ok()) FailRpc(st);
  ExitWithJsonIfAsked(session, resp);
  std::cout << "released the hold of " << args.app << " on host " << args.host
            << "; the controller brings it back to the fleet's release\n";
  Exit(0);
}

}  // namespace

void AddHostCommands(CLI::App* app, Session* session) {
  auto args = std::make_shared<HostArgs>();
  CLI::App* cmd = app->add_subcommand("host", "act on one host")->require_subcommand(1);
  CLI::App* release = cmd->add_subcommand(
      "release",
      "end the hold of APP on HOST left by a rollback on the host (fleet-agent rollback); the "
      "controller then brings the host back to the fleet's release");
  release->add_option("host", args->host, "host id")->required();
  release->add_option("app", args->app, "app name")->required();
  release->callback([session, args] { Release(session, *args); });
}

}  // namespace fleet::cli
