#include <unistd.h>

#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/commands.h"
#include "cli/fleetctl.h"
#include "cli/output.h"
#include "cli/rollout_text.h"
#include "cli/watch.h"
#include "common/rollout_state.h"

namespace fleet::cli {
namespace {

using fleet::v1::Rollout;

struct RolloutArgs {
  std::string app;
  std::string version;
  std::string id;
  std::string to;
  std::string selector;
  std::string waves;
  std::string max_failures;
  std::string bake;
  std::string host_timeout;
  int max_parallel = 0;
  bool manual_promote = false;
  bool dry_run = false;
  bool wait = false;
};

void PrintRollout(const Rollout& r) {
  const bool color = ColorEnabled();
  std::cout << KindName(r) << " " << r.id() << " of " << r.app() << ": " << OrDash(r.from_version())
            << " -> " << r.version() << "  " << Paint(RolloutStateName(r.state()), color) << "\n";
  if (r.awaiting_promote()) std::cout << PromoteHint(r) << "\n";
  if (!r.reason().empty()) std::cout << "reason: " << r.reason() << "\n";
  if (r.plan().waves_size() > 1 || r.awaiting_promote()) {
    for (int w = 0; w < r.plan().waves_size(); ++w) std::cout << WaveLine(r, w) << "\n";
  }
  std::vector<std::vector<std::string>> rows = {{"HOST", "WAVE", "STATE", "FROM", "TO", "REASON"}};
  for (const auto& t : r.tasks()) {
    rows.push_back({t.host_id(), std::to_string(t.wave() + 1), TaskStateName(t.state()),
                    OrDash(t.from_version()), OrDash(t.to_version()), t.reason()});
  }
  if (r.tasks_size() > 0) PrintTable(rows, color);
}

// The plan of a rollout: waves with their hosts, threshold, bake.
void PrintPlan(const Rollout& r) {
  const auto& plan = r.plan();
  std::cout << "plan for " << r.app() << " " << OrDash(r.from_version()) << " -> " << r.version()
            << " on " << r.tasks_size() << " hosts: max failures " << plan.max_failures() << " ("
            << plan.max_failures_spec() << "), bake "
            << absl::FormatDuration(absl::Milliseconds(plan.bake_ms())) << ", max parallel "
            << (plan.max_parallel() > 0 ? std::to_string(plan.max_parallel()) : "all")
            << (plan.manual_promote() ? ", manual promote" : "") << "\n";
  for (const auto& wave : plan.waves()) {
    std::vector<std::string> hosts;
    for (const auto& t : r.tasks()) {
      if (t.wave() == wave.index()) hosts.push_back(t.host_id());
    }
    std::cout << "wave " << wave.index() + 1 << " (" << wave.target() << ", " << wave.hosts()
              << " hosts in all): " << absl::StrJoin(hosts, " ") << "\n";
  }
}

// The hosts the controller lists as not connected, for the live view.
absl::StatusOr<std::set<std::string>> DisconnectedHosts(Session* session) {
  fleet::v1::ListHostsResponse resp;
  grpc::Status st = session->Api()->ListHosts(session->Context(absl::Seconds(5)).get(), {}, &resp);
  if (!st.ok()) return absl::UnavailableError(st.error_message());
  std::set<std::string> away;
  for (const auto& h : resp.hosts()) {
    if (!h.connected()) away.insert(h.id());
  }
  return away;
}

// Follows rollout `id` until it ends (cli/watch.h) and returns the final
// rollout, shown as --output asks.
Rollout Follow(Session* session, const std::string& id) {
  WatchOptions options;
  const std::string& output = session->output();
  options.output = output == "json"    ? WatchOutput::kJson
                   : output == "jsonl" ? WatchOutput::kJsonLines
                                       : WatchOutput::kText;
  options.terminal = isatty(STDOUT_FILENO);
  options.color = ColorEnabled();
  options.disconnected_hosts = [session] { return DisconnectedHosts(session); };
  auto* api = session->Api();
  absl::StatusOr<Rollout> r = WatchRollout(
      api, [session] { return session->Context(absl::InfiniteDuration()); }, id, options,
      std::cout, std::cerr);
  if (!r.ok()) Fail(r.status().message());
  return *std::move(r);
}

// Shows a rollout or rollback that was just created and, with --wait,
// follows it to its end; the exit code says how it ended.
[[noreturn]] void Started(Session* session, Rollout r, bool wait) {
  const bool json = session->json();
  if (!json) {
    std::cout << KindName(r) << " " << r.id() << " of " << r.app() << " "
              << OrDash(r.from_version()) << " -> " << r.version() << " on " << r.tasks_size()
              << " hosts"
              << (wait ? "" : " started; follow it with: fleetctl rollout watch " + r.id()) << "\n";
  }
  if (wait) r = Follow(session, r.id());
  if (json && !(wait && session->output() == "jsonl")) std::cout << JsonText(r);
  if (!wait) Exit(0);
  if (r.state() != fleet::v1::ROLLOUT_STATE_SUCCEEDED) {
    std::cerr << "fleetctl: " << KindName(r) << " " << r.id() << " "
              << RolloutStateName(r.state()) << ": " << r.reason() << "\n";
  }
  Exit(ExitCodeFor(r));
}

void Start(Session* session, const RolloutArgs& args, fleet::v1::Subject subject) {
  if (args.app.empty() || args.version.empty()) {
    Fail("rollout needs APP and VERSION (or one of list, status, watch, pause, resume, promote, "
         "abort); see fleetctl rollout --help");
  }
  fleet::v1::StartRolloutRequest req;
  req.set_subject(subject);
  req.set_app(args.app);
  req.set_version(args.version);
  req.set_selector(args.selector);
  req.set_actor(session->actor());
  for (absl::string_view wave : absl::StrSplit(args.waves, ',', absl::SkipWhitespace())) {
    req.add_waves(std::string(absl::StripAsciiWhitespace(wave)));
  }
  req.set_max_failures(args.max_failures);
  req.set_max_parallel(args.max_parallel);
  req.set_bake(args.bake);
  req.set_host_timeout(args.host_timeout);
  req.set_manual_promote(args.manual_promote);
  req.set_dry_run(args.dry_run);
  Rollout r;
  auto* api = session->Api();
  grpc::Status st = api->StartRollout(session->Context().get(), req, &r);
  if (!st.ok()) FailRpc(st);
  if (args.dry_run) {
    if (session->json()) {
      std::cout << JsonText(r);
    } else {
      PrintPlan(r);
    }
    Exit(0);
  }
  Started(session, r, args.wait);
}

void Rollback(Session* session, const RolloutArgs& args, fleet::v1::Subject subject) {
  fleet::v1::RollbackRequest req;
  req.set_subject(subject);
  req.set_app(args.app);
  req.set_to_version(args.to);
  req.set_actor(session->actor());
  Rollout r;
  auto* api = session->Api();
  grpc::Status st = api->Rollback(session->Context().get(), req, &r);
  if (!st.ok()) FailRpc(st);
  Started(session, r, args.wait);
}

void List(Session* session, const RolloutArgs& args) {
  fleet::v1::ListRolloutsRequest req;
  req.set_app(args.app);
  req.set_limit(50);
  fleet::v1::ListRolloutsResponse resp;
  auto* api = session->Api();
  grpc::Status st = api->ListRollouts(session->Context().get(), req, &resp);
  if (!st.ok()) FailRpc(st);
  ExitWithJsonIfAsked(session, resp);
  std::vector<std::vector<std::string>> rows = {
      {"ID", "APP", "KIND", "VERSION", "FROM", "STATE", "STARTED", "BY"}};
  for (const auto& r : resp.rollouts()) {
    rows.push_back({r.id(), r.app(), KindName(r), r.version(), OrDash(r.from_version()),
                    RolloutStateName(r.state()), FormatMs(r.created_at_ms()), r.created_by()});
  }
  PrintTable(rows, ColorEnabled());
  Exit(0);
}

// `rollout status` (once) and `rollout watch` (until it ends).
void Show(Session* session, const std::string& id, bool watch) {
  Rollout r;
  if (watch) {
    r = Follow(session, id);
  } else {
    fleet::v1::GetRolloutRequest req;
    req.set_id(id);
    auto* api = session->Api();
    grpc::Status st = api->GetRollout(session->Context().get(), req, &r);
    if (!st.ok()) FailRpc(st);
  }
  // jsonl printed every update already, the last one terminal.
  const bool streamed = watch && session->output() == "jsonl";
  if (session->json() && !streamed) {
    std::cout << JsonText(r);
  } else if (!session->json()) {
    PrintRollout(r);
  }
  Exit(IsTerminal(r.state()) ? ExitCodeFor(r) : kExitOk);
}

void Act(Session* session, const std::string& id, const std::string& action) {
  fleet::v1::RolloutActionRequest req;
  req.set_id(id);
  req.set_actor(session->actor());
  Rollout r;
  auto* api = session->Api();
  auto ctx = session->Context();
  grpc::Status st;
  if (action == "pause") st = api->PauseRollout(ctx.get(), req, &r);
  if (action == "resume") st = api->ResumeRollout(ctx.get(), req, &r);
  if (action == "promote") st = api->PromoteRollout(ctx.get(), req, &r);
  if (action == "abort") st = api->AbortRollout(ctx.get(), req, &r);
  if (!st.ok()) FailRpc(st);
  if (session->json()) {
    std::cout << JsonText(r);
  } else {
    std::cout << KindName(r) << " " << r.id() << " "
              << Paint(RolloutStateName(r.state()), ColorEnabled()) << "\n";
  }
  Exit(0);
}

// `rollout` and `config rollout` take the same plan options.
void AddPlanOptions(CLI::App* cmd, RolloutArgs* args) {
  cmd->add_option("--selector", args->selector, "k=v,k2=v2: only hosts with these labels");
  cmd->add_option("--waves", args->waves,
                  "cumulative waves, e.g. 1,10%,50%,100% (default: spec, else 1,100%)");
  cmd->add_option("--max-failures", args->max_failures,
                  "N or P% of hosts that may fail (default 0)");
  cmd->add_option("--max-parallel", args->max_parallel,
                  "hosts switching at once in a wave (0 = all)");
  cmd->add_option("--bake", args->bake, "each host stays healthy this long before the next wave");
  cmd->add_option("--host-timeout", args->host_timeout,
                  "a host silent or away this long fails (default 2m)");
  cmd->add_flag("--manual-promote", args->manual_promote, "pause after each wave until promoted");
  cmd->add_flag("--dry-run", args->dry_run, "print the plan; change nothing");
  cmd->add_flag("--wait", args->wait, "follow it; exit 0 only if it succeeded");
}

void AddRollbackCommand(CLI::App* parent, Session* session, std::shared_ptr<RolloutArgs> args,
                        fleet::v1::Subject subject) {
  const bool config = subject == fleet::v1::SUBJECT_CONFIG;
  CLI::App* cmd = parent->add_subcommand(
      "rollback", config ? "switch every host back to an earlier config"
                         : "switch every host back to an earlier release");
  cmd->add_option("app", args->app)->required();
  cmd->add_option("--to", args->to,
                  absl::StrCat(config ? "config" : "release",
                               " (default: the last successful one before current)"));
  cmd->add_flag("--wait", args->wait, "follow it; exit 0 only if it succeeded");
  cmd->callback([session, args, subject] { Rollback(session, *args, subject); });
}

}  // namespace

void AddRolloutCommands(CLI::App* app, Session* session) {
  auto args = std::make_shared<RolloutArgs>();
  CLI::App* rollout = app->add_subcommand("rollout", "roll a release out: rollout APP VERSION");
  rollout->add_option("app", args->app);
  rollout->add_option("version", args->version);
  AddPlanOptions(rollout, args.get());
  rollout->callback([session, args] { Start(session, *args, fleet::v1::SUBJECT_RELEASE); });
  CLI::App* list = rollout->add_subcommand("list", "list rollouts [APP]");
  list->add_option("app", args->app);
  list->callback([session, args] { List(session, *args); });
  for (const char* name : {"status", "watch"}) {
    const bool watch = std::string(name) == "watch";
    CLI::App* cmd = rollout->add_subcommand(
        name, watch ? "follow a rollout until it ends" : "show one rollout");
    cmd->add_option("id", args->id)->required();
    cmd->callback([session, args, watch] { Show(session, args->id, watch); });
  }
  for (const char* action : {"pause", "resume", "promote", "abort"}) {
    CLI::App* cmd = rollout->add_subcommand(
        action, absl::StrCat(action, " a running rollout",
                             std::string(action) == "abort" ? " (switched hosts go back)" : ""));
    cmd->add_option("id", args->id)->required();
    cmd->callback([session, args, action = std::string(action)] {
      Act(session, args->id, action);
    });
  }
  AddRollbackCommand(app, session, args, fleet::v1::SUBJECT_RELEASE);

  CLI::App* config = app->get_subcommand("config");
  CLI::App* cfg_rollout =
      config->add_subcommand("rollout", "roll a config out like a release: APP VERSION");
  cfg_rollout->add_option("app", args->app)->required();
  cfg_rollout->add_option("version", args->version)->required();
  AddPlanOptions(cfg_rollout, args.get());
  cfg_rollout->callback([session, args] { Start(session, *args, fleet::v1::SUBJECT_CONFIG); });
  AddRollbackCommand(config, session, args, fleet::v1::SUBJECT_CONFIG);
}

}  // namespace fleet::cli
