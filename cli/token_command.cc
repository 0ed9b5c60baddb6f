#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/rollout_text.h"

namespace fleet::cli {
namespace {

struct TokenArgs {
  std::string role;
  std::string app;
  std::string description;
  std::string id;
};

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

void Create(Session* session, const TokenArgs& args) {
  fleet::v1::CreateTokenRequest req;
  req.set_role(RoleOf(args.role));
  req.set_app(args.app);
  req.set_description(args.description);
  req.set_actor(session->actor());
  fleet::v1::CreateTokenResponse resp;
  auto* api = session->Api();
  grpc::Status st = api->CreateToken(session->Context().get(), req, &resp);
  if (!st.ok()) FailRpc(st);
  ExitWithJsonIfAsked(session, resp);
  // stdout holds the token alone, for FLEET_TOKEN=$(fleetctl token create ...).
  std::cout << resp.token() << "\n";
  std::cerr << "created " << TokenName(resp.info())
            << "; the token is shown only this once, keep it secret\n";
  Exit(0);
}

void List(Session* session) {
  fleet::v1::ListTokensResponse resp;
  auto* api = session->Api();
  grpc::Status st = api->ListTokens(session->Context().get(), {}, &resp);
  if (!st.ok()) FailRpc(st);
  ExitWithJsonIfAsked(session, resp);
  std::vector<std::vector<std::string>> rows = {
      {"ID", "ROLE", "APP", "DESCRIPTION", "CREATED", "BY", "REVOKED"}};
  for (const auto& t : resp.tokens()) {
    rows.push_back({t.id(), RoleWord(t.role()), t.app().empty() ? "all" : t.app(),
                    OrDash(t.description()), FormatMs(t.created_at_ms()), t.created_by(),
                    FormatMs(t.revoked_at_ms())});
  }
  PrintTable(rows);
  Exit(0);
}

void Revoke(Session* session, const TokenArgs& args) {
  fleet::v1::RevokeTokenRequest req;
  req.set_id(args.id);
  req.set_actor(session->actor());
  fleet::v1::TokenInfo resp;
  auto* api = session->Api();
  grpc::Status st = api->RevokeToken(session->Context().get(), req, &resp);
  if (!st.ok()) FailRpc(st);
  if (session->json()) {
    std::cout << JsonText(resp);
  } else {
    std::cout << "revoked " << TokenName(resp) << " at " << FormatMs(resp.revoked_at_ms()) << "\n";
  }
  Exit(0);
}

}  // namespace

void AddTokenCommands(CLI::App* app, Session* session) {
  auto args = std::make_shared<TokenArgs>();
  CLI::App* cmd =
      app->add_subcommand("token", "manage API tokens (admin only)")->require_subcommand(1);
  CLI::App* create = cmd->add_subcommand(
      "create", "create a token and print it once (viewer reads; deployer also pushes, rolls "
                "out and back; admin also applies apps and manages tokens)");
  create->add_option("--role", args->role, "viewer, deployer or admin")
      ->required()
      ->check(CLI::IsMember({"viewer", "deployer", "admin"}));
  create->add_option("--app", args->app, "deployer only: the one app it may change");
  create->add_option("--description", args->description, "what or who it is for");
  create->callback([session, args] { Create(session, *args); });
  cmd->add_subcommand("list", "list tokens (never the tokens themselves)")->callback([session] {
    List(session);
  });
  CLI::App* revoke = cmd->add_subcommand("revoke", "revoke a token by its id");
  revoke->add_option("id", args->id)->required();
  revoke->callback([session, args] { Revoke(session, *args); });
}

}  // namespace fleet::cli
