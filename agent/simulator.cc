#include "agent/simulator.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/fs.h"
#include "common/logging.h"

namespace fleet::agent {

namespace {

// Pause between the session starts of two channel groups: 1000 hosts come up
// in under 0.1 s, yet the controller sees their Hellos in batches.
constexpr absl::Duration kGroupStagger = absl::Milliseconds(5);

}  // namespace

Simulator::Simulator(AgentOptions base, int hosts, std::string controller, ProcessRunner* runner,
                     ProbeTransport* probes, Clock* clock)
    : base_(std::move(base)),
      hosts_count_(hosts),
      controller_(std::move(controller)),
      runner_(runner),
      probes_(probes),
      clock_(clock) {}

Simulator::~Simulator() {
  Shutdown();
  JoinSessions();
}

AgentOptions Simulator::HostOptions(const AgentOptions& base, int i) {
  AgentOptions options = base;
  options.host_id = absl::StrFormat("%s-%04d", base.host_id, i);
  options.apps_root = absl::StrCat(base.apps_root, "/", options.host_id);
  options.state_dir = absl::StrCat(base.state_dir, "/", options.host_id);
  // Replaces the base's own host= label: selectors must tell the hosts apart.
  options.labels["host"] = options.host_id;
  return options;
}

absl::Status Simulator::Start() {
  const int groups = (hosts_count_ + kHostsPerChannel - 1) / kHostsPerChannel;
  for (int g = 0; g < groups; ++g) {
    grpc::ChannelArguments args = AgentChannelArguments();
    // gRPC shares one connection among channels whose arguments are equal;
    // a distinct argument per group gives each group its own connection.
    args.SetInt("fleet.channel_group", g);
    channels_.push_back(
        grpc::CreateCustomChannel(controller_, grpc::InsecureChannelCredentials(), args));
  }

  std::vector<std::unique_ptr<Host>> hosts;
  hosts.reserve(hosts_count_);
  for (int i = 1; i <= hosts_count_; ++i) {
    AgentOptions options = HostOptions(base_, i);
    if (!IsSafeName(options.host_id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("simulated host id '", options.host_id,
                       "' must be at most 128 letters, digits, '.', '_' or '-'"));
    }
    const std::shared_ptr<grpc::Channel>& channel = channels_[(i - 1) / kHostsPerChannel];
    auto host = std::make_unique<Host>();
    host->artifacts = std::make_unique<GrpcArtifactSource>(channel, options.host_id);
    std::string host_id = options.host_id;
    host->deployer = std::make_unique<Deployer>(std::move(options), runner_, probes_, clock_,
                                                host->artifacts.get());
    if (absl::Status st = host->deployer->Recover(); !st.ok()) {
      return absl::Status(st.code(),
                          absl::StrCat("host ", host_id, ": cannot recover state: ", st.message()));
    }
    host->session = std::make_unique<AgentSession>(channel, host->deployer.get());
    hosts.push_back(std::move(host));
  }

  std::vector<Host*> to_start;
  {
    absl::MutexLock lock(&mu_);
    hosts_ = std::move(hosts);
    for (auto& host : hosts_) to_start.push_back(host.get());
  }
  for (size_t i = 0; i < to_start.size(); ++i) {
    absl::MutexLock lock(&mu_);
    if (i > 0 && i % kHostsPerChannel == 0 &&
        mu_.AwaitWithTimeout(absl::Condition(&shutdown_), kGroupStagger)) {
      break;
    }
    if (shutdown_) break;
    AgentSession* session = to_start[i]->session.get();
    to_start[i]->thread = std::thread([session] { session->Run(); });
  }
  spdlog::info("simulating {} hosts, {} to {}, on {} connections to {}", hosts_count_,
               HostOptions(base_, 1).host_id, HostOptions(base_, hosts_count_).host_id,
               channels_.size(), controller_);
  return absl::OkStatus();
}

void Simulator::Run() {
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&shutdown_));
  }
  JoinSessions();
}

void Simulator::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  for (auto& host : hosts_) host->session->Shutdown();
}

void Simulator::JoinSessions() {
  std::vector<Host*> hosts;
  {
    absl::MutexLock lock(&mu_);
    for (auto& host : hosts_) hosts.push_back(host.get());
  }
  // Without mu_: a session's Run() returns only after Shutdown(), which
  // takes mu_.
  for (Host* host : hosts) {
    if (host->thread.joinable()) host->thread.join();
  }
}

}  // namespace fleet::agent
