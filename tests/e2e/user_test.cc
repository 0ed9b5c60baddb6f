// End-to-end: an app spec's `user:` on real agents. The release belongs to
// that user and reload and exec probes run as it. Switching users needs
// root, which CI has; elsewhere these tests skip.
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"

namespace fleet {
namespace {

using ::fleet::testing::FileOwner;
using ::testing::HasSubstr;
using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;

ClusterOptions TwoHosts() {
  ClusterOptions options;
  options.agents = 2;
  return options;
}

class E2EUserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to run commands as another user";
    cluster_ = std::make_unique<Cluster>(TwoHosts());
    ASSERT_TRUE(cluster_->WaitForConnectedHosts(2)) << cluster_->ControllerLog();
  }

  // The probe passes only when it runs as nobody; reload records its user
  // in the shared log dir (relative paths: the test dirs are root's 0700).
  void ApplySpec(const std::string& user) {
    std::string spec = absl::StrCat(R"(name: svc
keep_releases: 3
user: )", user, R"(
shared_dirs: [log]
reload: "id -un > log/reload-user"
health:
  - exec: "test \"$(id -un)\" = nobody && test -f healthy"
    timeout: 2s
    retries: 0
    interval: 200ms
bake: 500ms
)");
    std::string path = cluster_->dir() + "/svc.yaml";
    testing::WriteTextFile(path, spec);
    CommandOutput out = cluster_->Fleetctl({"app", "apply", "-f", path});
    ASSERT_EQ(out.exit_code, 0) << out.err;
  }

  void Push(const std::string& version) {
    CommandOutput out = cluster_->Fleetctl(
        {"release", "push", "svc", version, cluster_->MakeExecArtifact(version, true)});
    ASSERT_EQ(out.exit_code, 0) << out.err;
  }

  std::unique_ptr<Cluster> cluster_;
};

TEST_F(E2EUserTest, Rollout_RunsReloadAndProbesAsTheSpecUserWhoOwnsTheRelease) {
  ApplySpec("nobody");
  Push("v1");

  CommandOutput out = cluster_->Fleetctl({"rollout", "svc", "v1", "--wait"});
  ASSERT_EQ(out.exit_code, 0) << out.out << out.err;

  for (int i = 0; i < 2; ++i) {
    const std::string app = cluster_->AppsRoot(i) + "/svc";
    EXPECT_EQ(cluster_->Current(i, "svc"), "v1");
    EXPECT_EQ(testing::ReadTextFile(app + "/shared/log/reload-user"), "nobody\n");
    EXPECT_EQ(FileOwner(app + "/releases/v1/VERSION"), 65534u);
    EXPECT_EQ(FileOwner(app + "/shared/log/reload-user"), 65534u);
  }
}

TEST_F(E2EUserTest, Rollout_FailsOnHostsThatLackTheUserAndActivatesNothing) {
  ApplySpec("fleet-no-such-user");
  Push("v1");

  CommandOutput out = cluster_->Fleetctl({"rollout", "svc", "v1", "--wait"});
  EXPECT_NE(out.exit_code, 0);
  EXPECT_THAT(out.out + out.err, HasSubstr("user 'fleet-no-such-user' does not exist on this host"));
  for (int i = 0; i < 2; ++i) EXPECT_EQ(cluster_->Current(i, "svc"), "");
}

}  // namespace
}  // namespace fleet
