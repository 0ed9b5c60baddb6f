#include "controller/live_hosts.h"

#include <gtest/gtest.h>

#include "absl/time/time.h"

namespace fleet::controller {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1000);

TEST(LiveHostsTest, HostNeverSeen_IsDisconnectedSinceTheEngineStarted) {
  LiveHosts hosts(kStart);
  HostLiveness live = hosts.Liveness("web-01");
  EXPECT_FALSE(live.connected);
  EXPECT_EQ(live.disconnected_since, kStart);
  EXPECT_EQ(live.last_progress, absl::InfinitePast());
}

TEST(LiveHostsTest, Connected_RecordsWhenAndKeepsOtherHostsApart) {
  LiveHosts hosts(kStart);
  hosts.Connected("web-01", kStart + absl::Seconds(5));
  HostLiveness live = hosts.Liveness("web-01");
  EXPECT_TRUE(live.connected);
  EXPECT_EQ(live.connected_since, kStart + absl::Seconds(5));
  EXPECT_FALSE(hosts.Liveness("web-02").connected);
}

TEST(LiveHostsTest, Disconnected_ClearsConnectedSinceAndKeepsLastProgress) {
  LiveHosts hosts(kStart);
  hosts.Connected("web-01", kStart + absl::Seconds(1));
  hosts.Progressed("web-01", kStart + absl::Seconds(2));
  hosts.Disconnected("web-01", kStart + absl::Seconds(3));
  HostLiveness live = hosts.Liveness("web-01");
  EXPECT_FALSE(live.connected);
  EXPECT_EQ(live.connected_since, absl::InfinitePast());
  EXPECT_EQ(live.disconnected_since, kStart + absl::Seconds(3));
  EXPECT_EQ(live.last_progress, kStart + absl::Seconds(2));
}

TEST(LiveHostsTest, ProgressFromAHostNotYetConnected_LeavesItDisconnectedSinceStart) {
  LiveHosts hosts(kStart);
  hosts.Progressed("web-01", kStart + absl::Seconds(2));
  HostLiveness live = hosts.Liveness("web-01");
  EXPECT_FALSE(live.connected);
  EXPECT_EQ(live.disconnected_since, kStart);
  EXPECT_EQ(live.last_progress, kStart + absl::Seconds(2));
}

}  // namespace
}  // namespace fleet::controller
