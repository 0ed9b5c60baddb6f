#include "agent/break_glass.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "agent/agent_lock.h"
#include "agent/control_socket.h"
#include "agent/deployer.h"
#include "agent/fetch.h"
#include "agent/probe.h"
#include "agent/state_store.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/process.h"

namespace fleet::agent {
namespace {

// A rollback never downloads: the target must be on disk.
class NoArtifacts : public ArtifactSource {
 public:
  absl::Status Fetch(const fleet::v1::Release& release, const std::string&) override {
    return absl::FailedPreconditionError(absl::StrCat(
        "a break-glass rollback does not download (", release.app(), "@", release.version(), ")"));
  }
};

struct RollbackArgs {
  std::string state_dir = "/var/lib/fleet-agent";
  std::string apps_root;  // default: the agent's, from agent.json
  std::string host_id;    // idem
  fleet::v1::LocalRollbackRequest request;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "fleet-agent rollback: %s\n", message.c_str());
  return 1;
}

int Report(const fleet::v1::LocalRollbackReply& reply, bool by_agent) {
  if (!reply.has_rollback()) return Fail(reply.message());
  std::printf("%s\n", reply.message().c_str());
  std::printf("%s\n", by_agent ? "the controller was told, or hears of it when the agent reconnects"
                               : "the controller hears of it when the agent next connects");
  return reply.ok() ? 0 : 2;
}

// No agent runs: this process is the one writer.
int RollBackWithoutAgent(const RollbackArgs& args) {
  StateStore state(args.state_dir);
  absl::StatusOr<AgentLock> lock = AgentLock::Acquire(state.lock_path(), absl::ZeroDuration());
  if (!lock.ok()) {
    return Fail(absl::StrCat(lock.status().message(),
                             " but nothing answers on its control socket; is the agent starting? "
                             "try again in a few seconds"));
  }
  AgentOptions options;
  options.state_dir = args.state_dir;
  if (auto identity = state.LoadIdentity()) {
    options.host_id = identity->host_id();
    options.apps_root = identity->apps_root();
    options.vars.insert(identity->vars().begin(), identity->vars().end());
  }
  if (!args.host_id.empty()) options.host_id = args.host_id;
  if (!args.apps_root.empty()) options.apps_root = args.apps_root;
  if (options.host_id.empty() || options.apps_root.empty()) {
    return Fail(absl::StrCat("no agent ever started with state dir ", args.state_dir,
                             " (no agent.json); give --host-id and --apps-root"));
  }
  NoArtifacts artifacts;
  RealProbeTransport probes(DefaultProcessRunner());
  Deployer deployer(options, DefaultProcessRunner(), &probes, DefaultClock(), &artifacts);
  if (absl::Status st = deployer.Recover(); !st.ok()) {
    return Fail(absl::StrCat("cannot recover state: ", st.message()));
  }
  return Report(deployer.RollBackLocally(args.request, LocalActor(geteuid(), options.host_id)),
                false);
}

}  // namespace

int RunRollbackCommand(int argc, char** argv) {
  CLI::App app{
      "fleet-agent rollback: switch this host's APP back to its previous release (or --to "
      "VERSION) from disk, with the app's reload and probes; works without the controller, "
      "which then holds the app on this host until `fleetctl host release HOST APP` or the "
      "next rollout or rollback"};
  app.name("fleet-agent rollback");
  RollbackArgs args;
  app.add_option("app", *args.request.mutable_app(), "the app to roll back")->required();
  app.add_option("--to", *args.request.mutable_to_version(),
                 "release to switch to (default: the previous release)");
  app.add_option("--reason", *args.request.mutable_reason(),
                 "why, for the controller's history");
  app.add_option("--state-dir", args.state_dir, "the agent's --state-dir")->capture_default_str();
  app.add_option("--apps-root", args.apps_root,
                 "the agent's --apps-root, when no agent ever started with this state dir");
  app.add_option("--host-id", args.host_id,
                 "the agent's --host-id, when no agent ever started with this state dir");
  CLI11_PARSE(app, argc, argv);
  if (auto st = InitLogging("fleet-agent", "error"); !st.ok()) return Fail(std::string(st.message()));

  StateStore state(args.state_dir);
  absl::StatusOr<fleet::v1::LocalRollbackReply> reply =
      AskAgent(state.socket_path(), args.request);
  if (reply.ok()) return Report(*reply, true);
  if (!absl::IsNotFound(reply.status()) && !absl::IsUnavailable(reply.status())) {
    return Fail(std::string(reply.status().message()));
  }
  return RollBackWithoutAgent(args);
}

}  // namespace fleet::agent
