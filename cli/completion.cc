#include "cli/completion.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"

namespace fleet::cli {
namespace {

constexpr char kBash[] = R"(# fleetctl completion for bash: source <(fleetctl completion bash)
_fleetctl() {
  local IFS=$'\n'
  COMPREPLY=($(fleetctl __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _fleetctl fleetctl
)";

constexpr char kZsh[] = R"(#compdef fleetctl
# fleetctl completion for zsh: source <(fleetctl completion zsh), after compinit
_fleetctl() {
  local -a candidates
  candidates=("${(@f)$(fleetctl __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  compadd -a candidates
}
compdef _fleetctl fleetctl
)";

constexpr char kFish[] = R"(# fleetctl completion for fish: fleetctl completion fish | source
complete -c fleetctl -f -a '(fleetctl __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
)";

std::vector<std::string> ValuesOf(const std::string& flag) {
  if (flag == "--output" || flag == "-o") return {"text", "json", "jsonl"};
  return {};
}

}  // namespace

const CLI::Option* FindFlag(CLI::App* cmd, const std::string& flag) {
  for (const CLI::Option* opt : cmd->get_options()) {
    if (!opt->nonpositional()) continue;
    for (const std::string& name : opt->get_lnames()) {
      if ("--" + name == flag) return opt;
    }
    for (const std::string& name : opt->get_snames()) {
      if ("-" + name == flag) return opt;
    }
  }
  return nullptr;
}

CLI::App* FindSubcommand(CLI::App* cmd, const std::string& name) {
  for (CLI::App* sub : cmd->get_subcommands({})) {
    if (sub->check_name(name)) return sub;
  }
  return nullptr;
}

std::string CompletionScript(const std::string& shell) {
  if (shell == "bash") return kBash;
  if (shell == "zsh") return kZsh;
  if (shell == "fish") return kFish;
  return "";
}

std::vector<std::string> CompletionCandidates(CLI::App* root,
                                              const std::vector<std::string>& words) {
  if (words.empty()) return CompletionCandidates(root, {""});
  CLI::App* cmd = root;
  std::string value_of;  // the flag the last word is the value of
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    const std::string& word = words[i];
    value_of.clear();
    if (absl::StartsWith(word, "-")) {
      const CLI::Option* opt = FindFlag(cmd, word);
      if (opt != nullptr && opt->get_expected_min() > 0) value_of = word;
      if (!value_of.empty() && i + 2 < words.size()) {
        ++i;  // the value
        value_of.clear();
      }
      continue;
    }
    CLI::App* sub = FindSubcommand(cmd, word);
    if (sub != nullptr) cmd = sub;
  }
  const std::string& last = words.back();
  std::set<std::string> all;
  if (!value_of.empty()) {
    for (const std::string& v : ValuesOf(value_of)) all.insert(v);
  } else if (absl::StartsWith(last, "-")) {
    for (const CLI::Option* opt : cmd->get_options()) {
      if (!opt->nonpositional()) continue;
      for (const std::string& name : opt->get_lnames()) all.insert("--" + name);
    }
  } else if (cmd->get_name() == "completion") {
    all = {"bash", "zsh", "fish"};
  } else {
    for (const CLI::App* sub : cmd->get_subcommands({})) {
      if (!sub->get_group().empty()) all.insert(sub->get_name());
    }
  }
  std::vector<std::string> out;
  for (const std::string& candidate : all) {
    if (absl::StartsWith(candidate, last)) out.push_back(candidate);
  }
  return out;
}

}  // namespace fleet::cli
