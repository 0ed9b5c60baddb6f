// fleet-agent: runs on every host, applies the controller's commands.
#include <signal.h>

#include <thread>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "agent/agent_lock.h"
#include "agent/break_glass.h"
#include "agent/control_socket.h"
#include "agent/deployer.h"
#include "agent/fetch.h"
#include "agent/probe.h"
#include "agent/session.h"
#include "agent/simulator.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/runtime.h"
#include "common/tls.h"
#include "common/vars.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "fleet-agent: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  fleet::InitRuntime();
  // Break-glass: `fleet-agent rollback APP ...` (agent/break_glass.h).
  if (argc > 1 && std::string(argv[1]) == "rollback") {
    return fleet::agent::RunRollbackCommand(argc - 1, argv + 1);
  }
  CLI::App app{"fleet-agent: applies Fleet's deploy and rollback commands on this host"};
  app.footer("Break-glass rollback on this host, with or without the controller: "
             "fleet-agent rollback APP [--to VERSION] [--reason TEXT] [--state-dir DIR] "
             "(see fleet-agent rollback --help)");
  std::string controller, host_id, apps_root = "/opt", state_dir = "/var/lib/fleet-agent";
  std::string log_level = "info";
  std::string age_identity = fleet::agent::AgentOptions().age_identity;
  std::vector<std::string> labels, vars;
  int simulate = 0;
  fleet::TlsFiles tls;
  std::string tls_reload_interval = "1m";
  bool insecure = false;
  app.add_option("--controller", controller, "controller address HOST:PORT")->required();
  app.add_option("--host-id", host_id, "this host's id")->required();
  app.add_option("--apps-root", apps_root, "where apps live")->capture_default_str();
  app.add_option("--state-dir", state_dir, "agent state (journal, results)")->capture_default_str();
  app.add_option("--label", labels, "KEY=VALUE label for selectors (repeatable)");
  app.add_option("--var", vars, "KEY=VALUE for ${KEY} in specs and commands' env (repeatable)");
  app.add_option("--age-identity", age_identity,
                 "age identity file that decrypts the *.age secrets of config releases")
      ->capture_default_str();
  app.add_option("--tls-cert", tls.cert,
                 "PEM client certificate naming --host-id (CN or DNS SAN); with --tls-key and "
                 "--tls-ca: mutual TLS");
  app.add_option("--tls-key", tls.key, "PEM private key of --tls-cert");
  app.add_option("--tls-ca", tls.ca,
                 "PEM CA bundle the controller's certificate must chain to (it must also name "
                 "the --controller host)");
  app.add_option("--tls-reload-interval", tls_reload_interval,
                 "re-read the TLS files this often (rotation without restart)")
      ->capture_default_str();
  app.add_flag("--insecure", insecure,
               "connect in plaintext to a --controller address that is not loopback");
  app.add_option("--log-level", log_level, "debug, info, warn or error")->capture_default_str();
  app.add_option("--simulate", simulate,
                 "run N simulated hosts <host-id>-0001... in this process, each with its own "
                 "apps-root and state-dir subdirectory (for tests and benchmarks)");
  app.set_version_flag("--version", FLEET_VERSION);
  CLI11_PARSE(app, argc, argv);

  if (auto st = fleet::InitLogging("fleet-agent", log_level); !st.ok()) {
    return Fail(std::string(st.message()));
  }
  if (!fleet::IsSafeName(host_id)) {
    return Fail("--host-id '" + host_id + "' must be letters, digits, '.', '_' or '-'");
  }
  if (simulate < 0 || simulate > fleet::agent::Simulator::kMaxHosts) {
    return Fail("--simulate " + std::to_string(simulate) + " must be between 1 and " +
                std::to_string(fleet::agent::Simulator::kMaxHosts) + " (0 = one real agent)");
  }
  if (simulate > 0 && !tls.empty()) {
    return Fail("--simulate cannot use --tls-cert/--tls-key/--tls-ca: its hosts share one "
                "process and cannot each hold a certificate; simulate against a loopback "
                "controller without TLS");
  }
  if (auto st = fleet::ValidateTlsFiles(tls); !st.ok()) return Fail(std::string(st.message()));
  if (auto st = fleet::CheckPlaintextAllowed("--controller", controller, !tls.empty(), insecure,
                                             "connect in plaintext");
      !st.ok()) {
    return Fail(std::string(st.message()));
  }
  absl::StatusOr<absl::Duration> reload = fleet::ParseTlsReloadInterval(tls_reload_interval);
  if (!reload.ok()) return Fail(std::string(reload.status().message()));
  if (tls.empty()) {
    spdlog::warn("connecting to {} in plaintext: nothing proves the controller is ours, nor this "
                 "host to it; give --tls-cert, --tls-key and --tls-ca outside development",
                 controller);
  }
  fleet::agent::AgentOptions options;
  options.host_id = host_id;
  options.apps_root = apps_root;
  options.state_dir = state_dir;
  // Simulated hosts share it (Simulator::HostOptions copies the base).
  options.age_identity = age_identity;
  for (const auto& [flag, list, out] :
       {std::tuple{"--label", &labels, &options.labels}, std::tuple{"--var", &vars, &options.vars}}) {
    for (const std::string& kv : *list) {
      std::string key, value;
      if (auto st = fleet::ParseKeyValue(kv, &key, &value); !st.ok()) {
        return Fail(std::string(flag) + ": " + std::string(st.message()));
      }
      (*out)[key] = value;
    }
  }
  options.labels["host"] = host_id;

  // Signals are taken by one thread with sigwait; block them everywhere else.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (simulate > 0) {
    fleet::agent::RealProbeTransport probes(fleet::DefaultProcessRunner());
    fleet::agent::Simulator simulator(options, simulate, controller, fleet::DefaultProcessRunner(),
                                      &probes, fleet::DefaultClock());
    if (auto st = simulator.Start(); !st.ok()) return Fail(std::string(st.message()));
    std::thread signal_thread([&] {
      int sig = 0;
      sigwait(&signals, &sig);
      spdlog::info("signal {}: shutting down {} simulated hosts", sig, simulate);
      simulator.Shutdown();
    });
    simulator.Run();
    signal_thread.join();
    return 0;
  }

  auto channel = grpc::CreateCustomChannel(
      controller,
      tls.empty() ? grpc::InsecureChannelCredentials() : fleet::TlsChannelCredentials(tls, *reload),
      fleet::agent::AgentChannelArguments());
  fleet::agent::GrpcArtifactSource artifacts(channel, host_id);
  fleet::agent::RealProbeTransport probes(fleet::DefaultProcessRunner());
  fleet::agent::Deployer deployer(options, fleet::DefaultProcessRunner(), &probes,
                                  fleet::DefaultClock(), &artifacts);
  // One writer per host: a `fleet-agent rollback` running without us holds
  // the lock until it is done.
  if (auto st = fleet::MakeDirs(state_dir, 0700); !st.ok()) return Fail(std::string(st.message()));
  fleet::agent::StateStore state(state_dir);
  absl::StatusOr<fleet::agent::AgentLock> lock =
      fleet::agent::AgentLock::Acquire(state.lock_path(), absl::ZeroDuration());
  if (!lock.ok()) {
    spdlog::warn("{}; waiting for it", lock.status().message());
    lock = fleet::agent::AgentLock::Acquire(state.lock_path(), absl::Hours(1));
    if (!lock.ok()) return Fail(std::string(lock.status().message()));
  }
  if (auto st = deployer.Recover(); !st.ok()) {
    return Fail("cannot recover state: " + std::string(st.message()));
  }
  fleet::v1::AgentIdentity identity;
  identity.set_host_id(host_id);
  identity.set_apps_root(apps_root);
  identity.mutable_vars()->insert(options.vars.begin(), options.vars.end());
  if (auto st = state.SaveIdentity(identity); !st.ok()) {
    return Fail("cannot write the agent's identity: " + std::string(st.message()));
  }
  fleet::agent::AgentSession session(channel, &deployer);
  absl::StatusOr<std::unique_ptr<fleet::agent::ControlSocket>> control =
      fleet::agent::ControlSocket::Listen(
          state.socket_path(), host_id,
          [&deployer, &session](const fleet::v1::LocalRollbackRequest& request,
                                const std::string& actor) {
            fleet::v1::LocalRollbackReply reply = deployer.RollBackLocally(request, actor);
            if (reply.has_rollback()) session.ReportLocalRollback(reply.rollback());
            return reply;
          });
  if (!control.ok()) return Fail(std::string(control.status().message()));
  session.set_failure_hint([&tls](const grpc::Status& status) -> std::string {
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return "";
    const std::string& error = status.error_message();
    if (!tls.empty() && absl::StrContains(error, "andshake failed")) {
      return "does --tls-ca hold the CA of the controller's certificate, and does that "
             "certificate name the --controller host?";
    }
    // How gRPC reports a handshake that the controller broke off.
    if (!absl::StrContains(error, "Socket closed")) return "";
    if (tls.empty()) return "if this repeats: does the controller want TLS (--tls-cert, ...)?";
    if (std::string problem = fleet::CertificateValidityProblem(tls.cert); !problem.empty()) {
      return absl::StrCat("--tls-cert ", tls.cert, " ", problem);
    }
    return "if this repeats: does the controller's --tls-ca hold the CA that signed --tls-cert?";
  });
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("signal {}: shutting down", sig);
    session.Shutdown();
  });
  spdlog::info("fleet-agent {} host {} controller {} ({}) apps-root {} state-dir {}",
               FLEET_VERSION, host_id, controller, tls.empty() ? "plaintext" : "mutual TLS",
               apps_root, state_dir);
  session.Run();
  // Wake the signal thread if Run() ended for another reason.
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  return 0;
}
