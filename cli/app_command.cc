#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
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

// The spec as applied and who applied it when. When the spec holds
// credentials the controller leaves its YAML out; the parsed spec, redacted,
// is shown instead.
void Show(Session* session, const std::string& name) {
  auto* api = session->Api();
  fleet::v1::ListAppsResponse apps;
  grpc::Status st = api->ListApps(session->Context().get(), {}, &apps);
  if (!st.ok()) FailRpc(st);
  const fleet::v1::App* app = nullptr;
  for (const auto& a : apps.apps()) {
    if (a.spec().name() == name) app = &a;
  }
  if (app == nullptr) Fail(absl::StrCat("unknown app '", name, "' (fleetctl app list lists them)"));
  fleet::v1::ListEventsRequest req;
  req.set_app(name);
  req.add_kinds("app.created");
  req.add_kinds("app.updated");
  req.set_limit(1);
  fleet::v1::ListEventsResponse applied;
  st = api->ListEvents(session->Context().get(), req, &applied);
  if (!st.ok()) FailRpc(st);
  const fleet::v1::Event* last = applied.events().empty() ? nullptr : &applied.events(0);
  if (session->json()) {
    nlohmann::ordered_json out;
    out["app"] = ToJson(*app);
    out["applied"] = last != nullptr ? ToJson(*last) : nlohmann::ordered_json();
    std::cout << out.dump(2) << "\n";
    Exit(0);
  }
  std::cout << "app " << name << ": release " << OrDash(app->desired_version()) << ", config "
            << OrDash(app->desired_config()) << "\n";
  if (last != nullptr) {
    std::cout << "applied by " << last->actor() << " at " << FormatMs(last->at_ms()) << " ("
              << last->kind() << ")\n";
  }
  if (!app->spec_yaml().empty()) {
    std::cout << "---\n" << app->spec_yaml();
    if (app->spec_yaml().back() != '\n') std::cout << "\n";
  } else {
    std::cout << "the spec holds credentials: shown parsed, with them redacted\n"
              << JsonText(app->spec());
  }
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
  auto name = std::make_shared<std::string>();
  CLI::App* show = cmd->add_subcommand("show", "an app's spec as applied, and who applied it when");
  show->add_option("app", *name)->required();
  show->callback([session, name] { Show(session, *name); });
}

}  // namespace fleet::cli
