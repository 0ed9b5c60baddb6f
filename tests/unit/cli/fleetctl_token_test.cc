// fleetctl's refusal to send an API token where anyone on the path could
// read it.
#include <stdlib.h>

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/fleetctl.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleet::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Unroutable: a connection attempt would hang until fleetctl's timeout.
constexpr char kRemoteController[] = "10.255.255.1:1";
constexpr char kRefusal[] =
    "fleetctl: refusing to send the API token over plaintext to 10.255.255.1:1: set --tls-ca "
    "(FLEET_TLS_CA), or pass --insecure to send it anyway\n";

struct Outcome {
  int exit_code = -1;
  std::string err;
  absl::Duration took;
};

class FleetctlTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"FLEET_CONTROLLER", "FLEET_TLS_CA", "FLEET_TOKEN"}) unsetenv(name);
  }
  void TearDown() override { unsetenv("FLEET_TOKEN"); }

  static Outcome RunFleetctl(std::vector<std::string> args) {
    std::vector<char*> argv = {const_cast<char*>("fleetctl")};
    for (std::string& arg : args) argv.push_back(arg.data());
    Outcome outcome;
    const absl::Time start = absl::Now();
    ::testing::internal::CaptureStderr();
    outcome.exit_code = cli::Run(static_cast<int>(argv.size()), argv.data());
    outcome.err = ::testing::internal::GetCapturedStderr();
    outcome.took = absl::Now() - start;
    return outcome;
  }
};

TEST_F(FleetctlTokenTest, Run_RefusesTokenOverPlaintextToRemoteControllerBeforeConnecting) {
  Outcome outcome =
      RunFleetctl({"--controller", kRemoteController, "--token", "fleet_secret", "app", "list"});
  EXPECT_EQ(outcome.exit_code, kExitError);
  EXPECT_EQ(outcome.err, kRefusal);
  EXPECT_LT(outcome.took, absl::Seconds(2));
}

TEST_F(FleetctlTokenTest, Run_RefusesTokenFromEnvironmentOverPlaintextToRemoteController) {
  setenv("FLEET_TOKEN", "fleet_secret", 1);
  Outcome outcome = RunFleetctl({"--controller", kRemoteController, "app", "list"});
  EXPECT_EQ(outcome.exit_code, kExitError);
  EXPECT_EQ(outcome.err, kRefusal);
  EXPECT_LT(outcome.took, absl::Seconds(2));
}

TEST_F(FleetctlTokenTest, Run_SendsTokenOverPlaintextToRemoteControllerWithInsecure) {
  // 0.0.0.0 is not a loopback address, yet refuses connections at once.
  Outcome outcome = RunFleetctl(
      {"--insecure", "--controller", "0.0.0.0:1", "--token", "fleet_secret", "app", "list"});
  EXPECT_EQ(outcome.exit_code, kExitError);
  EXPECT_THAT(outcome.err, HasSubstr("cannot reach the controller at 0.0.0.0:1"));
  EXPECT_THAT(outcome.err, Not(HasSubstr("refusing")));
}

}  // namespace
}  // namespace fleet::cli
