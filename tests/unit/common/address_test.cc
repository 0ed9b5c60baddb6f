#include "common/address.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fleet {
namespace {

using ::fleet::testing::StatusIs;
using ::testing::HasSubstr;

TEST(SplitHostPortTest, SplitsHostAndPort) {
  std::string host;
  int port = -1;
  ASSERT_OK(SplitHostPort("controller.example.net:7000", &host, &port));
  EXPECT_EQ(host, "controller.example.net");
  EXPECT_EQ(port, 7000);
}

TEST(SplitHostPortTest, AcceptsPortZero) {
  std::string host;
  int port = -1;
  ASSERT_OK(SplitHostPort("0.0.0.0:0", &host, &port));
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_EQ(port, 0);
}

TEST(SplitHostPortTest, StripsBracketsOfIpv6Host) {
  std::string host;
  int port = -1;
  ASSERT_OK(SplitHostPort("[::1]:7000", &host, &port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 7000);
}

TEST(SplitHostPortTest, RefusesAddressWithoutPort) {
  std::string host;
  int port = 0;
  EXPECT_THAT(
      SplitHostPort("controller", &host, &port),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'controller' is not HOST:PORT")));
}

TEST(SplitHostPortTest, RefusesMissingHostAndBadPorts) {
  std::string host;
  int port = 0;
  for (const char* bad : {":7000", "host:", "host:x", "host:-1", "host:65536"}) {
    EXPECT_THAT(SplitHostPort(bad, &host, &port), StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
}

TEST(IsLoopbackHostTest, LocalhostAndLoopbackAddressesAreLoopback) {
  for (const char* host : {"localhost", "127.0.0.1", "127.1.2.3", "127.255.255.255", "::1"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
}

TEST(IsLoopbackHostTest, WildcardsOtherAddressesAndNamesAreNot) {
  for (const char* host : {"0.0.0.0", "::", "10.0.0.5", "128.0.0.1", "::2", "example.net",
                           "localhost.example.net", "127.0.0.1.nip.io", ""}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

TEST(IsLoopbackAddressTest, JudgesTheHostPart) {
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1:7000"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:0"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:7000"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0:7000"));
  EXPECT_FALSE(IsLoopbackAddress("[::]:7000"));
  EXPECT_FALSE(IsLoopbackAddress("controller.example.net:7000"));
}

TEST(IsLoopbackAddressTest, MalformedAddressIsNotLoopback) {
  EXPECT_FALSE(IsLoopbackAddress("127.0.0.1"));
  EXPECT_FALSE(IsLoopbackAddress("localhost:port"));
}

}  // namespace
}  // namespace fleet
