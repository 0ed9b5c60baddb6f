// The chaos loop (`make chaos`, run by .ci/run): a controller and three
// real agents take random rollouts (healthy ones, and ones that fail their
// probe on one host) and rollbacks, while agents and the controller are
// killed with SIGKILL at random moments. After every round the fleet must
// settle within a bound, and then:
//   - every host's `current` is a complete release (all its files),
//   - the controller's view of every host is what its disk holds, and every
//     host is on the fleet's release;
// and at the end, no host switched twice for one command without its agent
// restarted in between (from the agents' logs). The app's reload and probe
// use ${FLEET_ROLLOUT} and $FLEET_HOST, as real apps do.
//
// FLEET_CHAOS_SECONDS (default 120) bounds the loop; FLEET_CHAOS_SEED
// replays a run (the seed is printed first).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/archive_builder.h"
#include "tests/testing/cluster.h"
#include "tests/testing/test_env.h"

namespace fleet {
namespace {

using nlohmann::json;
using testing::ArchiveBuilder;
using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;

constexpr int kHosts = 3;
constexpr int kFilesPerRelease = 60;
constexpr absl::Duration kSettleBound = absl::Seconds(60);

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  int64_t n = 0;
  return value != nullptr && absl::SimpleAtoi(value, &n) ? n : fallback;
}

ClusterOptions ChaosCluster() {
  ClusterOptions options;
  options.agents = kHosts;
  options.host_timeout = "3s";
  options.controller_args = {"--reconcile-interval", "1s"};
  return options;
}

class ChaosTest : public ::testing::Test {
 protected:
  ChaosTest() : cluster_(ChaosCluster()) {}

  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(kHosts)) << cluster_.ControllerLog();
    const std::string path = cluster_.dir() + "/svc.yaml";
    testing::WriteTextFile(path, R"yaml(name: svc
keep_releases: 3
reload: 'echo "${FLEET_ROLLOUT} ${FLEET_RELEASE}" >> ${FLEET_APP_DIR}/reloads'
health:
  - exec: "test ! -e bad-$FLEET_HOST"
    timeout: 2s
    retries: 0
    interval: 200ms
bake: 300ms
)yaml");
    CommandOutput out = cluster_.Fleetctl({"app", "apply", "-f", path});
    ASSERT_EQ(out.exit_code, 0) << out.err;
    Push("v1", -1);
    out = cluster_.Fleetctl({"rollout", "svc", "v1", "--waves", "100%", "--wait"});
    ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  }

  // Pushes `version`: VERSION, kFilesPerRelease files, and a marker that
  // fails the probe on host `bad_host` (none when -1).
  void Push(const std::string& version, int bad_host) {
    ArchiveBuilder archive;
    archive.AddFile("VERSION", version + "\n");
    for (int f = 0; f < kFilesPerRelease; ++f) {
      archive.AddFile(absl::StrCat("files/f", f), std::string(4096 + f, 'a' + f % 26));
    }
    if (bad_host >= 0) archive.AddFile("bad-" + cluster_.HostId(bad_host), "");
    const std::string artifact = cluster_.dir() + "/" + version + ".tar.gz";
    ASSERT_TRUE(archive.WriteTarGz(artifact).ok());
    CommandOutput out = cluster_.Fleetctl({"release", "push", "svc", version, artifact});
    ASSERT_EQ(out.exit_code, 0) << out.err;
    versions_.push_back(version);
  }

  // One random action, through fleetctl, without waiting for its end; a
  // refusal or a controller that is down is part of the game.
  void Act() {
    const int dice = Roll(100);
    if (dice < 45) {
      const std::string version = absl::StrCat("v", versions_.size() + 1);
      Push(version, Roll(100) < 30 ? Roll(kHosts) : -1);
      Count(cluster_.Fleetctl({"rollout", "svc", version, "--waves", "1,100%"}), "rollout");
    } else if (dice < 70) {
      Count(cluster_.Fleetctl({"rollback", "svc"}), "rollback");
    } else if (dice < 85) {
      const std::string& to = versions_[Roll(static_cast<int>(versions_.size()))];
      Count(cluster_.Fleetctl({"rollback", "svc", "--to", to}), "rollback --to");
    } else {
      const std::string& again = versions_[Roll(static_cast<int>(versions_.size()))];
      Count(cluster_.Fleetctl({"rollout", "svc", again, "--waves", "100%"}), "rollout again");
    }
  }

  // A random fault while the action runs: an agent or the controller
  // killed and started again, or none.
  void Fault() {
    absl::SleepFor(absl::Milliseconds(Roll(1500)));
    const int dice = Roll(100);
    if (dice < 35) {
      const int host = Roll(kHosts);
      cluster_.KillAgent(host);
      absl::SleepFor(absl::Milliseconds(Roll(800)));
      cluster_.StartAgent(host);
      ++stats_["agent kill"];
    } else if (dice < 55) {
      cluster_.KillController();
      absl::SleepFor(absl::Milliseconds(Roll(500)));
      cluster_.StartController();
      ++stats_["controller kill"];
    }
  }

  // Waits until no rollout runs and every host is connected and on the
  // fleet's release as the controller reports it; false after kSettleBound.
  // `status` is the last status read.
  bool Settle(json* status) {
    const absl::Time start = absl::Now();
    const bool settled = testing::WaitFor(
        [&] {
          CommandOutput out = cluster_.Fleetctl({"status", "svc", "-o", "json"});
          if (out.exit_code != 0) return false;
          *status = json::parse(out.out, nullptr, false);
          if (status->is_discarded() || !(*status)["active_rollout"].is_null()) return false;
          const json& hosts = (*status)["hosts"];
          if (!hosts.is_array() || hosts.size() != kHosts) return false;
          const std::string desired = (*status)["app"]["desired_version"];
          for (const json& host : hosts) {
            if (!host["connected"].get<bool>()) return false;
            if (host["state"]["current_release"] != desired) return false;
          }
          return true;
        },
        kSettleBound);
    settle_ms_.push_back(absl::ToInt64Milliseconds(absl::Now() - start));
    return settled;
  }

  // Every `current` is complete and is what the controller reports.
  void CheckDisk(const json& status, int round) {
    for (int i = 0; i < kHosts; ++i) {
      const std::string current = cluster_.Current(i, "svc");
      const std::string dir = cluster_.AppsRoot(i) + "/svc/releases/" + current;
      int files = 0;
      std::error_code ec;
      for (auto it = std::filesystem::directory_iterator(dir + "/files", ec);
           !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        ++files;
      }
      EXPECT_EQ(files, kFilesPerRelease)
          << "round " << round << ": host " << i << " current " << current << " is incomplete";
      EXPECT_EQ(testing::ReadTextFile(dir + "/VERSION"), current + "\n") << "round " << round;
      EXPECT_EQ(status["hosts"][i]["state"]["current_release"], current)
          << "round " << round << ": the controller's view of host " << i << " is not its disk";
    }
  }

  // A command switches a host at most once per start of its agent (a
  // restarted agent may run an interrupted command again): every switch is
  // logged as "<command id>: switching <from> -> <to>", every start as
  // "fleet-agent <version> host ...".
  void CheckSwitchedOncePerCommand() {
    for (int i = 0; i < kHosts; ++i) {
      int starts = 0;
      std::map<std::string, int> switched_in;  // command id -> start of its last switch
      for (absl::string_view line : absl::StrSplit(cluster_.AgentLog(i), '\n')) {
        const size_t at = line.find(" fleet-agent: ");
        if (at == absl::string_view::npos) continue;
        absl::string_view rest = line.substr(at + 14);
        if (absl::StartsWith(rest, "fleet-agent ")) {
          ++starts;
          continue;
        }
        const size_t colon = rest.find(": switching ");
        if (colon == absl::string_view::npos) continue;
        const std::string command(rest.substr(0, colon));
        auto [it, first] = switched_in.emplace(command, starts);
        EXPECT_TRUE(first || it->second != starts)
            << "host " << i << " switched twice for command " << command
            << " with no restart of its agent in between:\n"
            << Grep(cluster_.AgentLog(i), command + ":");
        it->second = starts;
        ++stats_["switches"];
      }
    }
  }

  // The lines of `text` that hold `needle`.
  static std::string Grep(const std::string& text, const std::string& needle) {
    std::string out;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (absl::StrContains(line, needle)) absl::StrAppend(&out, line, "\n");
    }
    return out;
  }
  int Roll(int n) { return std::uniform_int_distribution<int>(0, n - 1)(random_); }
  void Count(const CommandOutput& out, const std::string& what) {
    ++stats_[absl::StrCat(what, out.exit_code == 0 ? " started" : " refused or failed")];
  }

  Cluster cluster_;
  std::mt19937_64 random_;
  std::vector<std::string> versions_;
  std::map<std::string, int> stats_;
  std::vector<int64_t> settle_ms_;
};

TEST_F(ChaosTest, RandomKillsDuringRolloutsAndRollbacks_KeepEveryInvariant) {
  const int64_t seed = EnvInt("FLEET_CHAOS_SEED", absl::ToUnixNanos(absl::Now()) % 1000000007);
  const absl::Duration budget = absl::Seconds(EnvInt("FLEET_CHAOS_SECONDS", 120));
  std::printf("chaos: seed %lld (FLEET_CHAOS_SEED=%lld replays it), %s\n",
              static_cast<long long>(seed), static_cast<long long>(seed),
              absl::FormatDuration(budget).c_str());
  random_.seed(static_cast<uint64_t>(seed));
  const absl::Time end = absl::Now() + budget;
  int round = 0;
  while (absl::Now() < end && !HasFailure()) {
    ++round;
    Act();
    Fault();
    json status;
    ASSERT_TRUE(Settle(&status)) << "round " << round << ": the fleet did not settle within "
                                 << kSettleBound << "; last status: " << status.dump()
                                 << "\ncontroller log:\n"
                                 << cluster_.ControllerLog();
    CheckDisk(status, round);
  }
  CheckSwitchedOncePerCommand();

  std::vector<std::string> counts;
  for (const auto& [what, n] : stats_) counts.push_back(absl::StrCat(what, ": ", n));
  std::sort(settle_ms_.begin(), settle_ms_.end());
  std::printf("chaos: %d rounds; %s\n", round, absl::StrJoin(counts, ", ").c_str());
  if (!settle_ms_.empty()) {
    std::printf("chaos: settled after each round in median %lld ms, max %lld ms\n",
                static_cast<long long>(settle_ms_[settle_ms_.size() / 2]),
                static_cast<long long>(settle_ms_.back()));
  }
}

}  // namespace
}  // namespace fleet
