// fleetctl logs APP [--host H] [--rollout ID] [-n N] [--follow]: what the
// reloads, hooks and probe attempts of recent activations printed on the
// hosts, fetched from their agents at the time of the call (the controller
// keeps none of it).
#include <unistd.h>

#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace fleet::cli {
namespace {

using fleet::v1::ActivationOutput;
using fleet::v1::CommandRun;
using fleet::v1::GetOutputResponse;
using fleet::v1::HostOutput;

struct LogsArgs {
  std::string app;
  std::string host;
  std::string rollout;
  int activations = 1;
  bool follow = false;
};

constexpr absl::Duration kFollowInterval = absl::Seconds(1);

// What was printed so far: every run (host, command id, index of the run),
// the activation whose header came last, and the errors said.
struct Printed {
  std::set<std::tuple<std::string, std::string, int>> runs;
  std::string last_header;
  std::set<std::string> errors;
};

std::string Header(const HostOutput& host, const ActivationOutput& a) {
  return absl::StrCat(
      "==> ", host.host_id(), ": ", a.kind(), " of ",
      a.subject() == fleet::v1::SUBJECT_CONFIG ? "config " : "", a.version(),
      a.rollout_id().empty() ? "" : absl::StrCat(" (rollout ", a.rollout_id(), ")"), ", ",
      FormatMs(a.started_at_ms()),
      a.runs_dropped() > 0 ? absl::StrCat(", ", a.runs_dropped(), " earlier runs not kept") : "",
      " <==");
}

std::string RunLine(const CommandRun& run) {
  std::string line = absl::StrCat("--- ", FormatMs(run.started_at_ms()), " ", run.step(), " `",
                                  run.command(), "`: ", run.status(), " (", run.elapsed_ms(),
                                  " ms)");
  if (run.repeats() > 0) {
    absl::StrAppend(&line, "; the same ", run.repeats(), " more time",
                    run.repeats() == 1 ? "" : "s", " until ", FormatMs(run.last_at_ms()));
  }
  return line;
}

void PrintRun(const CommandRun& run) {
  std::cout << RunLine(run) << "\n" << run.output();
  if (!run.output().empty() && run.output().back() != '\n') std::cout << "\n";
}

// Prints what `printed` does not hold yet (and adds it there). Returns
// whether some host answered.
bool PrintNew(Session* session, const GetOutputResponse& resp, Printed* printed) {
  bool answered = false;
  for (const HostOutput& host : resp.hosts()) {
    if (!host.error().empty()) {
      if (printed->errors.insert(host.host_id() + ": " + host.error()).second) {
        std::cerr << "fleetctl: no output from " << host.host_id() << ": " << host.error()
                  << "\n";
      }
      continue;
    }
    answered = true;
    for (const ActivationOutput& a : host.activations()) {
      for (int i = 0; i < a.runs_size(); ++i) {
        if (!printed->runs.insert({host.host_id(), a.command_id(), i}).second) continue;
        if (session->json()) {
          nlohmann::ordered_json line;
          line["host_id"] = host.host_id();
          line["command_id"] = a.command_id();
          line["rollout_id"] = a.rollout_id();
          line["kind"] = a.kind();
          line["version"] = a.version();
          line["run"] = ToJson(a.runs(i));
          std::cout << line.dump() << "\n";
          continue;
        }
        // Again when another host's or activation's runs came in between.
        const std::string activation = host.host_id() + "\n" + a.command_id();
        if (printed->last_header != activation) {
          printed->last_header = activation;
          std::cout << Header(host, a) << "\n";
        }
        PrintRun(a.runs(i));
      }
    }
  }
  std::cout.flush();
  return answered;
}

GetOutputResponse Fetch(Session* session, const LogsArgs& args) {
  fleet::v1::GetOutputRequest req;
  req.set_app(args.app);
  req.set_host_id(args.host);
  req.set_rollout_id(args.rollout);
  req.set_activations(args.activations);
  GetOutputResponse resp;
  grpc::Status st = session->Api()->GetOutput(session->Context().get(), req, &resp);
  if (!st.ok()) FailRpc(st);
  return resp;
}

void Logs(Session* session, const LogsArgs& args) {
  if (args.activations < 1) Fail("-n must be at least 1");
  GetOutputResponse resp = Fetch(session, args);
  if (!args.follow) ExitWithJsonIfAsked(session, resp);
  Printed printed;
  const bool answered = PrintNew(session, resp, &printed);
  if (!args.follow) {
    if (!answered) Fail(absl::StrCat("no host answered with output of ", args.app));
    if (printed.runs.empty()) {
      std::cout << "no output kept of " << args.app
                << (args.rollout.empty() ? "" : absl::StrCat(" in rollout ", args.rollout))
                << " on the hosts that answered\n";
    }
    Exit(0);
  }
  // Until interrupted, like tail -f: new runs as the agents record them.
  for (;;) {
    usleep(static_cast<useconds_t>(absl::ToInt64Microseconds(kFollowInterval)));
    PrintNew(session, Fetch(session, args), &printed);
  }
}

}  // namespace

void AddLogsCommands(CLI::App* app, Session* session) {
  auto args = std::make_shared<LogsArgs>();
  CLI::App* cmd = app->add_subcommand(
      "logs",
      "what reloads, hooks and probes printed on the hosts in APP's newest activations, fetched "
      "from the agents now (the controller keeps none of it)");
  cmd->add_option("app", args->app, "app name")->required();
  cmd->add_option("--host", args->host, "only this host");
  cmd->add_option("--rollout", args->rollout,
                  "only this rollout's activations (and only its hosts)");
  cmd->add_option("-n,--activations", args->activations,
                  "the newest N activations per host (at most 10)")
      ->default_val(1);
  cmd->add_flag("-f,--follow", args->follow,
                "keep printing new runs as the agents record them, until interrupted");
  cmd->callback([session, args] { Logs(session, *args); });
}

}  // namespace fleet::cli
