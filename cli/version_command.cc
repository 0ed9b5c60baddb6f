#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/completion.h"

namespace fleet::cli {
namespace {

// The client's version at once; then the controller's, or why it could
// not be asked (exit 1).
void Version(Session* session) {
  const bool json = session->json();
  if (!json) std::cout << "fleetctl " << FLEET_VERSION << "\n" << std::flush;
  fleet::v1::VersionInfo resp;
  auto* api = session->Api();
  grpc::Status st = api->GetVersion(session->Context().get(), {}, &resp);
  if (!st.ok()) FailRpc(st);
  if (json) {
    nlohmann::ordered_json out = {{"client", FLEET_VERSION},
                                  {"controller", resp.version()},
                                  {"controller_address", session->options().controller}};
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << "controller " << resp.version() << " at " << session->options().controller
              << "\n";
  }
  Exit(0);
}

void Completion(const std::string& shell) {
  std::cout << CompletionScript(shell);
  Exit(0);
}

}  // namespace

void AddVersionCommands(CLI::App* app, Session* session) {
  app->add_subcommand("version", "the versions of fleetctl and of the controller")
      ->callback([session] { Version(session); });
  auto shell = std::make_shared<std::string>();
  CLI::App* completion = app->add_subcommand(
      "completion",
      "print a shell completion script: source <(fleetctl completion bash), zsh the same, "
      "fleetctl completion fish | source");
  completion->add_option("shell", *shell, "bash, zsh or fish")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh", "fish"}));
  completion->callback([shell] { Completion(*shell); });
}

}  // namespace fleet::cli
