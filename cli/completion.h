// Shell completion for fleetctl. The scripts are small and fixed: each asks
// `fleetctl __complete WORD...` for the candidates, so completion always
// matches the binary's own commands and flags.
#ifndef FLEET_CLI_COMPLETION_H_
#define FLEET_CLI_COMPLETION_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace fleet::cli {

// The hidden command the scripts call: `fleetctl __complete WORD... CURRENT`.
inline constexpr char kCompleteCommand[] = "__complete";

// The completion script for `shell` ("bash", "zsh" or "fish"); "" for any
// other shell.
std::string CompletionScript(const std::string& shell);

// The words that may replace the last of `words` (the command line after
// "fleetctl", the last word being the one under the cursor, maybe ""):
// subcommands of the command the earlier words name, its flags (and the
// global ones) when the last word starts with '-', the values of --output
// or of `completion`, each starting with the last word. Sorted.
std::vector<std::string> CompletionCandidates(CLI::App* root,
                                              const std::vector<std::string>& words);

// The non-positional option of `cmd` (not its parents) that `flag` names
// ("--output", "-o"), or nullptr.
const CLI::Option* FindFlag(CLI::App* cmd, const std::string& flag);

// The direct subcommand of `cmd` named `name`, or nullptr.
CLI::App* FindSubcommand(CLI::App* cmd, const std::string& name);

}  // namespace fleet::cli

#endif  // FLEET_CLI_COMPLETION_H_
