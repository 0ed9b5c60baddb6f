// fleetctl's commands, one module each. Every Add*Commands function adds
// its subcommands to `app` with their own options; their callbacks run from
// `app`'s parse, call the controller through `session` (connecting on first
// use), print their result on stdout (JSON when the session's --output
// asks) and end the parse with Exit() or Fail() (cli/session.h). `app` and
// `session` must outlive the parse.
#ifndef FLEET_CLI_COMMANDS_H_
#define FLEET_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>

#include "cli/session.h"

namespace fleet::cli {

// app apply -f SPEC, app list
void AddAppCommands(CLI::App* app, Session* session);
// release push APP VERSION FILE|DIR [--sign KEY], release list APP, keygen --out PREFIX
void AddReleaseCommands(CLI::App* app, Session* session);
// config push APP VERSION DIR, config list APP
void AddConfigCommands(CLI::App* app, Session* session);
// rollout APP VERSION [plan options], rollout list|status|watch|pause|resume|
// promote|abort, rollback APP, and (under the `config` command that
// AddConfigCommands added) config rollout / config rollback.
void AddRolloutCommands(CLI::App* app, Session* session);
// status APP, hosts, history APP [--kind K]...
void AddStatusCommands(CLI::App* app, Session* session);
// host release HOST APP
void AddHostCommands(CLI::App* app, Session* session);
// logs APP [--host H] [--rollout ID] [-n N] [--follow]
void AddLogsCommands(CLI::App* app, Session* session);
// token create|list|revoke
void AddTokenCommands(CLI::App* app, Session* session);
// version, completion bash|zsh|fish
void AddVersionCommands(CLI::App* app, Session* session);

}  // namespace fleet::cli

#endif  // FLEET_CLI_COMMANDS_H_
