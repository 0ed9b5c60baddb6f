#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/rollout_text.h"
#include "common/fs.h"

namespace fleet::cli {
namespace {

void Apply(Session* session, const std::string& file) {
  absl::StatusOr<std::string> yaml = ReadFile(file);
  if (!yaml.ok()) Fail(yaml.status().message());
  fleet::v1::ApplyAppRequest req;
  req.set_spec_yaml(*yaml);
  req.set_source(file);
  req.set_actor(session->actor());
  fleet::v1::ApplyAppResponse resp;
  auto* api = session->Api();
  grpc::Status st = api->ApplyApp(session->Context().get(), req, &resp);
  if (!st.ok()) FailRpc(st);
  if (session->json()) {
    std::cout << JsonText(resp);
  } else {
    std::cout << "app " << resp.app().spec().name() << (resp.created() ? " created" : " updated")
              << "\n";
  }
  Exit(0);
}

void List(Session* session) {
  fleet::v1::ListAppsResponse resp;
  auto* api = session->Api();
  grpc::Status st = api->ListApps(session->Context().get(), {}, &resp);
  if (!st.ok()) FailRpc(st);
  ExitWithJsonIfAsked(session, resp);
  std::vector<std::vector<std::string>> rows = {
      {"APP", "RELEASE", "CONFIG", "KEEP", "CHECKS", "UPDATED"}};
  for (const auto& a : resp.apps()) {
    rows.push_back({a.spec().name(), OrDash(a.desired_version()), OrDash(a.desired_config()),
                    std::to_string(a.spec().keep_releases()),
                    std::to_string(a.spec().health_size()), FormatMs(a.updated_at_ms())});
  }
  PrintTable(rows);
  Exit(0);
}

}  // namespace

void AddAppCommands(CLI::App* app, Session* session) {
  auto file = std::make_shared<std::string>();
  CLI::App* cmd = app->add_subcommand("app", "manage app specs")->require_subcommand(1);
  CLI::App* apply = cmd->add_subcommand("apply", "create or update an app from a spec file");
  apply->add_option("-f,--file", *file, "app spec YAML")->required();
  apply->callback([session, file] { Apply(session, *file); });
  cmd->add_subcommand("list", "list apps")->callback([session] { List(session); });
}

}  // namespace fleet::cli
