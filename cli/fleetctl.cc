#include "cli/fleetctl.h"

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/commands.h"
#include "cli/completion.h"
#include "cli/pki_command.h"
#include "cli/session.h"
#include "cli/suggest.h"

namespace fleet::cli {
namespace {

// Every command and, on each of them, the global options.
void BuildCommands(CLI::App* app, Session* session) {
  app->set_version_flag("--version", absl::StrCat("fleetctl ", FLEET_VERSION));
  app->require_subcommand(1);
  app->footer("Global options go before or after the command. Run 'fleetctl COMMAND --help' "
              "for a command's own options.");
  AddAppCommands(app, session);
  AddReleaseCommands(app, session);
  AddConfigCommands(app, session);
  AddRolloutCommands(app, session);
  AddStatusCommands(app, session);
  AddHostCommands(app, session);
  AddLogsCommands(app, session);
  AddTokenCommands(app, session);
  AddPkiCommands(app, session);
  AddVersionCommands(app, session);
  std::vector<CLI::App*> todo = {app};
  while (!todo.empty()) {
    CLI::App* cmd = todo.back();
    todo.pop_back();
    AddGlobalOptions(cmd, &session->options());
    for (CLI::App* sub : cmd->get_subcommands({})) todo.push_back(sub);
  }
}

std::vector<std::string> SubcommandNames(CLI::App* cmd) {
  std::vector<std::string> names;
  for (CLI::App* sub : cmd->get_subcommands({})) names.push_back(sub->get_name());
  return names;
}

std::vector<std::string> FlagNames(CLI::App* cmd) {
  std::vector<std::string> names;
  for (const CLI::Option* opt : cmd->get_options()) {
    if (!opt->nonpositional()) continue;
    for (const std::string& name : opt->get_lnames()) names.push_back("--" + name);
  }
  return names;
}

bool HasPositionals(CLI::App* cmd) {
  for (const CLI::Option* opt : cmd->get_options()) {
    if (!opt->nonpositional()) return true;
  }
  return false;
}

std::string DidYouMean(const std::string& close, const std::string& path) {
  return close.empty() ? absl::StrCat("; see '", path, " --help'")
                       : absl::StrCat("; did you mean '", close, "'?");
}

// Walks `args` down the command tree as the parser did and names the first
// word it could not place: an unknown command or flag, with the closest
// known one. Sets *path to the deepest command reached ("fleetctl rollout").
// "" when every word has its place (the error is about something else).
std::string FindUnknownWord(CLI::App* root, const std::vector<std::string>& args,
                            std::string* path) {
  CLI::App* cmd = root;
  *path = "fleetctl";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (word == "--") break;
    if (absl::StartsWith(word, "-") && word != "-") {
      const std::string name = word.substr(0, word.find('='));
      const CLI::Option* opt = FindFlag(cmd, name);
      if (opt == nullptr) {
        return absl::StrCat("unknown flag '", name, "' for '", *path, "'",
                            DidYouMean(ClosestMatch(name, FlagNames(cmd)), *path));
      }
      if (opt->get_expected_min() > 0 && name.size() == word.size()) ++i;
      continue;
    }
    if (CLI::App* sub = FindSubcommand(cmd, word); sub != nullptr) {
      cmd = sub;
      absl::StrAppend(path, " ", word);
      continue;
    }
    if (HasPositionals(cmd)) continue;
    const std::vector<std::string> names = SubcommandNames(cmd);
    if (names.empty()) {
      return absl::StrCat("unexpected argument '", word, "' for '", *path, "'; see '", *path,
                          " --help'");
    }
    return absl::StrCat("unknown command '", word, "'",
                        *path == "fleetctl" ? "" : absl::StrCat(" for '", *path, "'"),
                        DidYouMean(ClosestMatch(word, names), *path));
  }
  return "";
}

// One line for a parse error: the unknown word if there is one, else
// CLI11's message under the command it is about.
std::string DescribeParseError(CLI::App* root, const std::vector<std::string>& args,
                               const CLI::ParseError& e) {
  std::string path;
  std::string unknown = FindUnknownWord(root, args, &path);
  if (!unknown.empty()) return unknown;
  CLI::App* cmd = root;
  for (absl::string_view word : absl::StrSplit(path, ' ', absl::SkipEmpty())) {
    if (word != "fleetctl") cmd = FindSubcommand(cmd, std::string(word));
  }
  if (cmd != nullptr && cmd->get_subcommands().empty() && !SubcommandNames(cmd).empty() &&
      absl::StrContains(e.what(), "subcommand")) {
    return absl::StrCat("'", path, "' needs a command: ", absl::StrJoin(SubcommandNames(cmd), ", "),
                        "; see '", path, " --help'");
  }
  std::string message = absl::StrReplaceAll(e.what(), {{"\n", " "}});
  absl::string_view command = path;
  absl::ConsumePrefix(&command, "fleetctl ");
  return absl::StrCat(command, ": ", absl::StripAsciiWhitespace(message), "; see '", path,
                      " --help'");
}

// `fleetctl __complete WORD...`: the candidates, one a line.
int Complete(const std::vector<std::string>& words) {
  Session session;
  CLI::App app;
  BuildCommands(&app, &session);
  for (const std::string& candidate : CompletionCandidates(&app, words)) {
    std::cout << candidate << "\n";
  }
  return kExitOk;
}

}  // namespace

int Run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == kCompleteCommand) {
    return Complete(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  Session session;
  CLI::App app{"fleetctl: release, roll out and roll back apps across a fleet", "fleetctl"};
  BuildCommands(&app, &session);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help and --version print here
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command ended; it printed what it had to
  } catch (const CLI::ParseError& e) {
    std::cerr << "fleetctl: " << DescribeParseError(&app, args, e) << "\n";
    return kExitError;
  }
  // A command that printed nothing and threw nothing cannot exist: every
  // callback ends with Exit() or Fail().
  std::cerr << "fleetctl: no command given; see 'fleetctl --help'\n";
  return kExitError;
}

}  // namespace fleet::cli
