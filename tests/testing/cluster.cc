#include "tests/testing/cluster.h"

#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/pki.h"
#include "gtest/gtest.h"
#include "tests/testing/archive_builder.h"

namespace fleet::testing {

std::string Cluster::Binary(const std::string& name) {
  if (name == "fleet-controller") return absl::StrCat(FLEET_BINARY_DIR, "/controller/", name);
  if (name == "fleet-agent") return absl::StrCat(FLEET_BINARY_DIR, "/agent/", name);
  if (name == "fleetctl") return absl::StrCat(FLEET_BINARY_DIR, "/cli/", name);
  return absl::StrCat(FLEET_BINARY_DIR, "/deploy/examples/hello/", name);
}

std::string Cluster::RolloutId(const std::string& fleetctl_out) {
  // "[config ]rollout|rollback ID of ...": the word before "of".
  std::vector<std::string> words = absl::StrSplit(fleetctl_out, absl::ByAnyChar(" \n"));
  for (size_t i = 1; i + 1 < words.size(); ++i) {
    if (words[i + 1] == "of") return words[i];
  }
  return "";
}

Cluster::Cluster(ClusterOptions options) : options_(options) {
  grpc_port_ = FreePort();
  http_port_ = FreePort();
  if (options_.tls) MakePki();
  if (simulated()) {
    options_.simulators = std::clamp(options_.simulators, 1, options_.simulated);
    agents_.resize(options_.simulators);
    StartController();
    for (size_t slot = 0; slot < agents_.size(); ++slot) StartSimulator(slot);
    return;
  }
  for (int i = 0; i < options_.agents; ++i) service_ports_.push_back(FreePort());
  agents_.resize(options_.agents);
  StartController();
  for (int i = 0; i < options_.agents; ++i) StartAgent(i);
}

Cluster::~Cluster() {
  for (auto& agent : agents_) agent.reset();
  controller_.reset();
  // The agents started hello instances in their own sessions; stop them.
  std::string stop = absl::StrCat(FLEET_SOURCE_DIR, "/deploy/examples/hello/stop");
  for (int i = 0; i < agents(); ++i) {
    std::string app_dir = AppsRoot(i) + "/hello";
    if (std::filesystem::exists(app_dir + "/shared/run")) {
      RunCommand({"/bin/bash", stop, app_dir}, absl::Seconds(15));
    }
  }
  // Last resort: nothing started under this cluster's dir may outlive it
  // (for example an instance whose pid file a killed agent never wrote).
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    int pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid) || pid == getpid()) continue;
    std::string cmdline = ReadTextFile(entry.path().string() + "/cmdline");
    if (absl::StrContains(cmdline, dir_.path() + "/")) kill(pid, SIGKILL);
  }
}

std::string Cluster::address() const { return absl::StrCat("127.0.0.1:", grpc_port_); }
// Simulated ids are the simulator's: "<host-id>-%04d".
std::string Cluster::HostId(int i) const {
  if (simulated()) {
    return absl::StrFormat("%s-%04d", SimulatorPrefix(AgentSlot(i)), SimulatedNumber(i));
  }
  return absl::StrCat(options_.host_prefix, "-", i + 1 < 10 ? "0" : "", i + 1);
}
std::string Cluster::AppsRoot(int i) const {
  if (simulated()) return dir_.Sub("sim/apps/" + HostId(i));
  return dir_.Sub(HostId(i) + "/apps");
}
std::string Cluster::StateDir(int i) const {
  if (simulated()) return dir_.Sub("sim/state/" + HostId(i));
  return dir_.Sub(HostId(i) + "/state");
}
pid_t Cluster::AgentPid(int i) const { return AgentProcessPid(static_cast<int>(AgentSlot(i))); }
pid_t Cluster::AgentProcessPid(int slot) const {
  const auto& agent = agents_[slot];
  return agent ? agent->pid() : -1;
}

// Simulators 0..extra-1 run base+1 hosts, the others base.
size_t Cluster::AgentSlot(int i) const {
  if (!simulated()) return static_cast<size_t>(i);
  const int base = options_.simulated / options_.simulators;
  const int extra = options_.simulated % options_.simulators;
  if (i < extra * (base + 1)) return i / (base + 1);
  return extra + (i - extra * (base + 1)) / base;
}
int Cluster::SimulatedNumber(int i) const {
  int first = 0;  // index of the first host of i's simulator
  for (size_t slot = 0; slot < AgentSlot(i); ++slot) first += SimulatedHosts(slot);
  return i - first + 1;
}
int Cluster::SimulatedHosts(size_t slot) const {
  const int base = options_.simulated / options_.simulators;
  return base + (static_cast<int>(slot) < options_.simulated % options_.simulators ? 1 : 0);
}
std::string Cluster::SimulatorPrefix(size_t slot) const {
  if (options_.simulators == 1) return options_.host_prefix;
  return absl::StrCat(options_.host_prefix, slot + 1);
}
std::string Cluster::SimulatorLog(size_t slot) const {
  return dir_.Sub(options_.simulators == 1 ? "sim.log" : absl::StrCat("sim", slot + 1, ".log"));
}

void Cluster::MakePki() {
  EXPECT_FALSE(simulated()) << "simulated hosts cannot use TLS";
  absl::Status st = InitCertificateAuthorityDir(PkiDir(), absl::Hours(24));
  EXPECT_TRUE(st.ok()) << st;
  st = IssueCertificateToDir(PkiDir(), "controller", CertificateKind::kController,
                             absl::Hours(24), false);
  EXPECT_TRUE(st.ok()) << st;
  for (int i = 0; i < options_.agents; ++i) {
    st = IssueCertificateToDir(PkiDir(), HostId(i), CertificateKind::kHost, absl::Hours(24), false);
    EXPECT_TRUE(st.ok()) << st;
  }
  WriteTextFile(ControllerCaFile(), ReadTextFile(CaCertPath(PkiDir())));
}

namespace {

// Whether something accepts TCP connections on 127.0.0.1:`port`.
bool Listening(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

}  // namespace

std::string RolloutsTable(const std::string& history_text) {
  return history_text.substr(0, history_text.find("\n\n") + 1);
}

void Cluster::StartController() {
  std::vector<std::string> argv({Binary("fleet-controller"), "--listen", address(), "--http-listen",
                                 absl::StrCat("127.0.0.1:", http_port_), "--data-dir", DataDir(),
                                 "--host-timeout", options_.host_timeout});
  if (options_.tls) {
    argv.insert(argv.end(), {"--tls-cert", IssuedCertPath(PkiDir(), "controller"), "--tls-key",
                             IssuedKeyPath(PkiDir(), "controller"), "--tls-ca",
                             ControllerCaFile(), "--tls-reload-interval", "1s"});
  }
  if (options_.auth) argv.push_back("--auth");
  argv.insert(argv.end(), options_.controller_args.begin(), options_.controller_args.end());
  controller_ = std::make_unique<Subprocess>(argv, dir_.Sub("controller.log"));
  // fleetctl reports a refused connection at once: tests start using the
  // controller only once it listens (or gave up starting).
  WaitFor([&] { return !controller_->running() || Listening(grpc_port_); }, absl::Seconds(30));
}

void Cluster::KillController() {
  if (controller_) controller_->Kill();
  controller_.reset();
}

// Every simulator shares the apps and state roots: their host ids differ.
void Cluster::StartSimulator(size_t slot) {
  agents_[slot] = std::make_unique<Subprocess>(
      std::vector<std::string>{Binary("fleet-agent"), "--controller", address(), "--simulate",
                               std::to_string(SimulatedHosts(slot)), "--host-id",
                               SimulatorPrefix(slot), "--apps-root", dir_.Sub("sim/apps"),
                               "--state-dir", dir_.Sub("sim/state"), "--label", "role=web",
                               "--age-identity", AgeIdentity()},
      SimulatorLog(slot));
}

void Cluster::StartAgent(int i) {
  if (simulated()) {
    StartSimulator(AgentSlot(i));
    return;
  }
  std::vector<std::string> argv = {
      Binary("fleet-agent"), "--controller", address(), "--host-id", HostId(i), "--apps-root",
      AppsRoot(i), "--state-dir", StateDir(i), "--label", "role=web", "--label",
      absl::StrCat("zone=", i % 2 == 0 ? "a" : "b"), "--var",
      absl::StrCat("port=", service_ports_[i]), "--age-identity", AgeIdentity()};
  if (options_.tls) {
    argv.insert(argv.end(), {"--tls-cert", IssuedCertPath(PkiDir(), HostId(i)), "--tls-key",
                             IssuedKeyPath(PkiDir(), HostId(i)), "--tls-ca",
                             CaCertPath(PkiDir()), "--tls-reload-interval", "1s"});
  }
  agents_[i] = std::make_unique<Subprocess>(argv, dir_.Sub(HostId(i) + ".log"));
}

std::unique_ptr<Subprocess> Cluster::StartExtraAgent(const std::string& host_id,
                                                     const std::string& cert,
                                                     const std::string& key,
                                                     const std::string& log) {
  const std::string home = dir_.Sub("extra/" + host_id);
  std::filesystem::create_directories(home);
  return std::make_unique<Subprocess>(
      std::vector<std::string>{Binary("fleet-agent"), "--controller", address(), "--host-id",
                               host_id, "--apps-root", home + "/apps", "--state-dir",
                               home + "/state", "--label", "role=extra", "--tls-cert", cert,
                               "--tls-key", key, "--tls-ca", CaCertPath(PkiDir()),
                               "--tls-reload-interval", "1s"},
      log);
}

void Cluster::KillAgent(int i) {
  auto& agent = agents_[AgentSlot(i)];
  if (agent) agent->Kill();
  agent.reset();
}

bool Cluster::AgentRunning(int i) {
  auto& agent = agents_[AgentSlot(i)];
  return agent && agent->running();
}

bool Cluster::WaitForConnectedHosts(int n, absl::Duration timeout) {
  return WaitFor(
      [&] {
        CommandOutput out = Fleetctl({"hosts"}, absl::Seconds(10));
        if (out.exit_code != 0) return false;
        int connected = 0;
        for (absl::string_view line : absl::StrSplit(out.out, '\n')) {
          std::vector<absl::string_view> cols = absl::StrSplit(line, ' ', absl::SkipEmpty());
          if (cols.size() >= 2 && cols[1] == "yes") ++connected;
        }
        return connected >= n;
      },
      timeout);
}

CommandOutput Cluster::Fleetctl(const std::vector<std::string>& args, absl::Duration timeout) {
  return FleetctlWithToken(AdminToken(), args, timeout);
}

CommandOutput Cluster::FleetctlWithToken(const std::string& token,
                                         const std::vector<std::string>& args,
                                         absl::Duration timeout) {
  return RunCommand(FleetctlArgv(args), timeout, FleetctlEnv(token));
}

std::unique_ptr<Subprocess> Cluster::StartFleetctl(const std::vector<std::string>& args,
                                                   const std::string& log) {
  return std::make_unique<Subprocess>(FleetctlArgv(args), log, FleetctlEnv(AdminToken()));
}

std::string Cluster::AdminToken() const {
  // "" until an --auth controller wrote the file, and always without --auth.
  return std::string(absl::StripAsciiWhitespace(ReadTextFile(AdminTokenPath())));
}

std::vector<std::string> Cluster::FleetctlArgv(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {Binary("fleetctl"), "--controller", address()};
  if (options_.tls) argv.insert(argv.end(), {"--tls-ca", CaCertPath(PkiDir())});
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// FLEET_TOKEN is always set, so that one in the test's environment is never
// sent.
std::map<std::string, std::string> Cluster::FleetctlEnv(const std::string& token) {
  return {{"FLEET_ACTOR", "tester@ci"}, {"FLEET_TOKEN", token}};
}

std::string Cluster::MakeHelloArtifact(const std::string& version, int healthz_status,
                                       double error_share) {
  std::string out = dir_.Sub(absl::StrCat("artifacts/", version, ".tar.gz"));
  std::filesystem::create_directories(dir_.Sub("artifacts"));
  std::vector<std::string> argv(
      {"/bin/bash", absl::StrCat(FLEET_SOURCE_DIR, "/deploy/examples/hello/make-artifact.sh"),
       version, out, "--bin", Binary("hello"), "--healthz-status", std::to_string(healthz_status),
       "--greeting", absl::StrCat("hi from ", version)});
  if (error_share > 0) {
    argv.insert(argv.end(), {"--error-share", absl::StrFormat("%g", error_share)});
  }
  CommandOutput made = RunCommand(argv);
  EXPECT_EQ(made.exit_code, 0) << made.err;
  return out;
}

std::vector<nlohmann::json> Cluster::HistoryEvents(const std::string& app,
                                                   const std::string& kind) {
  CommandOutput out = Fleetctl({"--output", "json", "history", app});
  EXPECT_EQ(out.exit_code, 0) << out.err;
  std::vector<nlohmann::json> events;
  nlohmann::json doc = nlohmann::json::parse(out.out, nullptr, false);
  if (!doc.is_object() || !doc.contains("events")) return events;
  for (const nlohmann::json& e : doc["events"]) {
    if (e.value("kind", "") == kind) events.push_back(e);
  }
  return events;
}

std::string Cluster::AgeRecipient() {
  if (!std::filesystem::exists(AgeIdentity())) {
    CommandOutput made = RunCommand({"age-keygen", "-o", AgeIdentity()});
    EXPECT_EQ(made.exit_code, 0) << made.err;
  }
  CommandOutput recipient = RunCommand({"age-keygen", "-y", AgeIdentity()});
  EXPECT_EQ(recipient.exit_code, 0) << recipient.err;
  return std::string(absl::StripAsciiWhitespace(recipient.out));
}

void Cluster::ApplyHelloSpec(const std::string& bake, const std::string& extra) {
  std::string spec = absl::StrCat(R"(name: hello
keep_releases: 3
shared_dirs: [log, run]
reload: "${FLEET_RELEASE_DIR}/bin/restart"
health:
  - http: "http://127.0.0.1:${port}/healthz"
    timeout: 2s
    retries: 1
    interval: 200ms
  - tcp: "127.0.0.1:${port}"
bake: )",
                                  bake, "\n", extra);
  std::string path = dir_.Sub("hello.yaml");
  WriteTextFile(path, spec);
  CommandOutput out = Fleetctl({"app", "apply", "-f", path});
  ASSERT_EQ(out.exit_code, 0) << out.err;
}

std::string Cluster::MakeExecArtifact(const std::string& version, bool healthy) {
  std::string out = dir_.Sub(absl::StrCat("artifacts/", version, ".tar.gz"));
  std::filesystem::create_directories(dir_.Sub("artifacts"));
  ArchiveBuilder archive;
  archive.AddFile("VERSION", version + "\n");
  if (healthy) archive.AddFile("healthy", "");
  absl::Status st = archive.WriteTarGz(out);
  EXPECT_TRUE(st.ok()) << "cannot write " << out << ": " << st;
  return out;
}

void Cluster::ApplyExecSpec(const std::string& name, const std::string& bake) {
  std::string spec = absl::StrCat("name: ", name, R"(
keep_releases: 3
reload: "true"
health:
  - exec: "test -f ${FLEET_RELEASE_DIR}/healthy"
    timeout: 2s
    retries: 0
    interval: 200ms
bake: )",
                                  bake, "\n");
  std::string path = dir_.Sub(name + ".yaml");
  WriteTextFile(path, spec);
  CommandOutput out = Fleetctl({"app", "apply", "-f", path});
  ASSERT_EQ(out.exit_code, 0) << out.err;
}

std::string Cluster::Current(int i, const std::string& app) const {
  std::error_code ec;
  auto target = std::filesystem::read_symlink(AppsRoot(i) + "/" + app + "/current", ec);
  if (ec) return "";
  std::string t = target.string();
  return absl::StartsWith(t, "releases/") ? t.substr(9) : t;
}

std::string Cluster::HttpGet(int i, const std::string& path) const {
  if (simulated()) return "";
  httplib::Client client("127.0.0.1", service_ports_[i]);
  client.set_connection_timeout(2);
  client.set_read_timeout(2);
  auto res = client.Get(path);
  if (!res) return "";
  return res->body;
}

std::string Cluster::AgentLog(int i) const {
  return ReadTextFile(simulated() ? SimulatorLog(AgentSlot(i)) : dir_.Sub(HostId(i) + ".log"));
}
std::string Cluster::ControllerLog() const { return ReadTextFile(dir_.Sub("controller.log")); }

}  // namespace fleet::testing
