#include "agent/probe.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_env.h"

namespace fleet::agent {
namespace {

using ::fleet::v1::HealthCheck;
using ::testing::ElementsAre;

// Time that only moves when the code under test sleeps.
class FakeClock : public Clock {
 public:
  absl::Time Now() override { return now_; }
  void SleepFor(absl::Duration d) override {
    sleeps_.push_back(d);
    now_ += d;
    if (on_sleep_) on_sleep_();
  }
  void Advance(absl::Duration d) { now_ += d; }
  absl::Duration Elapsed() const { return now_ - start_; }
  const std::vector<absl::Duration>& sleeps() const { return sleeps_; }
  void set_on_sleep(std::function<void()> f) { on_sleep_ = std::move(f); }

 private:
  const absl::Time start_ = absl::FromUnixSeconds(1700000000);
  absl::Time now_ = start_;
  std::vector<absl::Duration> sleeps_;
  std::function<void()> on_sleep_;
};

// Records every attempt and answers from `respond` (success by default).
class FakeTransport : public ProbeTransport {
 public:
  struct Call {
    std::string kind;  // "http", "tcp" or "exec"
    std::string target;
    int expect_status = 0;
    absl::Duration timeout;
    absl::Duration at;  // clock time since the start
    ProbeContext ctx;
  };

  explicit FakeTransport(FakeClock* clock) : clock_(clock) {}

  ProbeAttempt Http(const std::string& url, int expect_status, absl::Duration timeout) override {
    return Record({"http", url, expect_status, timeout, clock_->Elapsed(), {}});
  }
  ProbeAttempt Tcp(const std::string& host_port, absl::Duration timeout) override {
    return Record({"tcp", host_port, 0, timeout, clock_->Elapsed(), {}});
  }
  ProbeAttempt Exec(const std::string& command, const ProbeContext& ctx,
                    absl::Duration timeout) override {
    return Record({"exec", command, 0, timeout, clock_->Elapsed(), ctx});
  }

  // Each attempt takes this long on the clock.
  void set_attempt_cost(absl::Duration d) { attempt_cost_ = d; }
  void set_respond(std::function<ProbeAttempt(const Call&, int index)> f) {
    respond_ = std::move(f);
  }
  const std::vector<Call>& calls() const { return calls_; }
  std::vector<absl::Duration> CallTimes() const {
    std::vector<absl::Duration> out;
    for (const Call& call : calls_) out.push_back(call.at);
    return out;
  }

 private:
  ProbeAttempt Record(Call call) {
    calls_.push_back(call);
    clock_->Advance(attempt_cost_);
    if (!respond_) return {true, "", ""};
    return respond_(calls_.back(), static_cast<int>(calls_.size()) - 1);
  }

  FakeClock* clock_;
  absl::Duration attempt_cost_;
  std::function<ProbeAttempt(const Call&, int)> respond_;
  std::vector<Call> calls_;
};

HealthCheck HttpCheck(const std::string& url, int retries = 2, int64_t interval_ms = 1000) {
  HealthCheck check;
  check.set_http(url);
  check.set_expect_status(200);
  check.set_timeout_ms(2000);
  check.set_retries(retries);
  check.set_interval_ms(interval_ms);
  return check;
}

HealthCheck TcpCheck(const std::string& host_port, int retries = 2, int64_t interval_ms = 1000) {
  HealthCheck check;
  check.set_tcp(host_port);
  check.set_timeout_ms(2000);
  check.set_retries(retries);
  check.set_interval_ms(interval_ms);
  return check;
}

ProbeAttempt Fail(const std::string& reason) { return {false, reason, ""}; }

class ProbeRunnerTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  FakeTransport transport_{&clock_};
  ProbeRunner runner_{&transport_, &clock_};
  ProbeContext ctx_;
};

TEST_F(ProbeRunnerTest, RunCheck_SucceedsOnFirstAttemptWithoutSleeping) {
  EXPECT_TRUE(runner_.RunCheck(HttpCheck("http://h/healthz"), ctx_).ok());
  ASSERT_EQ(transport_.calls().size(), 1u);
  EXPECT_EQ(transport_.calls()[0].kind, "http");
  EXPECT_EQ(transport_.calls()[0].target, "http://h/healthz");
  EXPECT_EQ(transport_.calls()[0].expect_status, 200);
  EXPECT_EQ(transport_.calls()[0].timeout, absl::Seconds(2));
  EXPECT_TRUE(clock_.sleeps().empty());
}

TEST_F(ProbeRunnerTest, RunCheck_RetriesIntervalApartUntilSuccess) {
  transport_.set_respond([](const FakeTransport::Call&, int i) {
    return i < 2 ? Fail("not yet") : ProbeAttempt{true, "", ""};
  });
  EXPECT_TRUE(runner_.RunCheck(TcpCheck("h:1", 2, 1500), ctx_).ok());
  EXPECT_THAT(transport_.CallTimes(),
              ElementsAre(absl::ZeroDuration(), absl::Milliseconds(1500), absl::Seconds(3)));
}

TEST_F(ProbeRunnerTest, RunCheck_ReportsLastReasonAndAttemptCount) {
  transport_.set_respond([](const FakeTransport::Call&, int i) {
    return Fail(absl::StrCat("GET http://h/healthz returned ", 500 + i));
  });
  absl::Status st = runner_.RunCheck(HttpCheck("http://h/healthz", 2), ctx_);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(st.message(), "GET http://h/healthz returned 502 (3 attempts)");
  EXPECT_EQ(transport_.calls().size(), 3u);
}

TEST_F(ProbeRunnerTest, RunCheck_MakesOneAttemptWithoutRetries) {
  transport_.set_respond([](const FakeTransport::Call&, int) { return Fail("refused"); });
  absl::Status st = runner_.RunCheck(TcpCheck("h:1", 0), ctx_);
  EXPECT_EQ(st.message(), "refused (1 attempt)");
  EXPECT_EQ(transport_.calls().size(), 1u);
  EXPECT_TRUE(clock_.sleeps().empty());
}

TEST_F(ProbeRunnerTest, RunCheck_ClampsTimeoutToMaximum) {
  HealthCheck check = TcpCheck("h:1");
  check.set_timeout_ms(60000);
  ASSERT_TRUE(runner_.RunCheck(check, ctx_).ok());
  check.set_timeout_ms(0);  // unset in the proto: the maximum is the default
  ASSERT_TRUE(runner_.RunCheck(check, ctx_).ok());
  check.set_timeout_ms(250);
  ASSERT_TRUE(runner_.RunCheck(check, ctx_).ok());
  ASSERT_EQ(transport_.calls().size(), 3u);
  EXPECT_EQ(transport_.calls()[0].timeout, ProbeRunner::kMaxTimeout);
  EXPECT_EQ(transport_.calls()[1].timeout, absl::Seconds(10));
  EXPECT_EQ(transport_.calls()[2].timeout, absl::Milliseconds(250));
}

TEST_F(ProbeRunnerTest, RunCheck_DefaultsExpectStatusTo200) {
  HealthCheck check = HttpCheck("http://h/");
  check.clear_expect_status();
  ASSERT_TRUE(runner_.RunCheck(check, ctx_).ok());
  EXPECT_EQ(transport_.calls()[0].expect_status, 200);
}

TEST_F(ProbeRunnerTest, RunCheck_PassesContextToExec) {
  HealthCheck check;
  check.set_exec("bin/check");
  ctx_.cwd = "/opt/web/releases/r1";
  ctx_.env = {{"FLEET_APP", "web"}};
  ASSERT_TRUE(runner_.RunCheck(check, ctx_).ok());
  ASSERT_EQ(transport_.calls().size(), 1u);
  EXPECT_EQ(transport_.calls()[0].kind, "exec");
  EXPECT_EQ(transport_.calls()[0].ctx.cwd, "/opt/web/releases/r1");
  EXPECT_EQ(transport_.calls()[0].ctx.env.at("FLEET_APP"), "web");
}

TEST_F(ProbeRunnerTest, RunCheck_RejectsCheckWithoutExactlyOneTarget) {
  HealthCheck none;
  EXPECT_EQ(runner_.RunCheck(none, ctx_).code(), absl::StatusCode::kInvalidArgument);
  HealthCheck two = HttpCheck("http://h/");
  two.set_tcp("h:1");
  EXPECT_EQ(runner_.RunCheck(two, ctx_).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(transport_.calls().empty());
}

TEST_F(ProbeRunnerTest, RunChecks_RunsOneRoundWithoutBake) {
  ASSERT_TRUE(
      runner_.RunChecks({HttpCheck("http://h/"), TcpCheck("h:1")}, ctx_, absl::ZeroDuration())
          .ok());
  ASSERT_EQ(transport_.calls().size(), 2u);
  EXPECT_EQ(transport_.calls()[0].kind, "http");
  EXPECT_EQ(transport_.calls()[1].kind, "tcp");
  EXPECT_TRUE(clock_.sleeps().empty());
}

TEST_F(ProbeRunnerTest, RunChecks_RepeatsRoundsAtSmallestIntervalThroughBake) {
  ASSERT_TRUE(
      runner_
          .RunChecks({TcpCheck("h:1", 2, 3000), TcpCheck("h:2", 2, 1000)}, ctx_, absl::Seconds(5))
          .ok());
  // Rounds at 0, 1, 2, 3, 4 and 5 s, two checks each.
  EXPECT_EQ(transport_.calls().size(), 12u);
  EXPECT_EQ(transport_.calls().back().at, absl::Seconds(5));
  EXPECT_EQ(clock_.Elapsed(), absl::Seconds(5));
}

TEST_F(ProbeRunnerTest, RunChecks_RunsLastRoundWhenBakeEnds) {
  ASSERT_TRUE(runner_.RunChecks({TcpCheck("h:1")}, ctx_, absl::Milliseconds(2500)).ok());
  EXPECT_THAT(transport_.CallTimes(), ElementsAre(absl::ZeroDuration(), absl::Seconds(1),
                                                  absl::Seconds(2), absl::Milliseconds(2500)));
}

TEST_F(ProbeRunnerTest, RunChecks_CountsAttemptTimeAgainstBake) {
  transport_.set_attempt_cost(absl::Milliseconds(400));
  ASSERT_TRUE(runner_.RunChecks({TcpCheck("h:1")}, ctx_, absl::Seconds(3)).ok());
  // 0 (ends 0.4), 1.4 (ends 1.8), 2.8 (ends 3.2): the bake is over.
  EXPECT_THAT(transport_.CallTimes(), ElementsAre(absl::ZeroDuration(), absl::Milliseconds(1400),
                                                  absl::Milliseconds(2800)));
}

TEST_F(ProbeRunnerTest, RunChecks_ReturnsFirstFailureAndStops) {
  transport_.set_respond([](const FakeTransport::Call& call, int i) {
    if (call.target == "h:1" && i >= 4) return Fail(absl::StrCat("refused #", i));
    return ProbeAttempt{true, "", ""};
  });
  absl::Status st = runner_.RunChecks({TcpCheck("h:1", 1, 1000), TcpCheck("h:2", 1, 1000)}, ctx_,
                                      absl::Seconds(60));
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  // Round 3 starts at 2 s with call 4; its retry is call 5, one second later.
  EXPECT_EQ(st.message(), "refused #5 (2 attempts)");
  EXPECT_EQ(transport_.calls().size(), 6u);
  EXPECT_EQ(clock_.Elapsed(), absl::Seconds(3));
}

TEST_F(ProbeRunnerTest, RunChecks_KeepsRoundsApartWhenIntervalIsZero) {
  ASSERT_TRUE(runner_.RunChecks({TcpCheck("h:1", 2, 0)}, ctx_, absl::Seconds(1)).ok());
  EXPECT_EQ(transport_.calls().size(), 11u);
}

TEST_F(ProbeRunnerTest, RunChecks_SucceedsAtOnceWithoutChecks) {
  EXPECT_TRUE(runner_.RunChecks({}, ctx_, absl::Seconds(30)).ok());
  EXPECT_EQ(clock_.Elapsed(), absl::ZeroDuration());
}

TEST_F(ProbeRunnerTest, RunChecks_ReturnsCancelledWhenCancelledBeforeStart) {
  std::atomic<bool> cancelled{true};
  absl::Status st = runner_.RunChecks({TcpCheck("h:1")}, ctx_, absl::Seconds(10), &cancelled);
  EXPECT_EQ(st.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(transport_.calls().empty());
}

TEST_F(ProbeRunnerTest, RunChecks_CancelEndsBakeBetweenAttempts) {
  std::atomic<bool> cancelled{false};
  transport_.set_respond([&](const FakeTransport::Call&, int i) {
    if (i == 2) cancelled = true;
    return ProbeAttempt{true, "", ""};
  });
  absl::Status st =
      runner_.RunChecks({TcpCheck("h:1"), TcpCheck("h:2")}, ctx_, absl::Seconds(60), &cancelled);
  EXPECT_EQ(st.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(transport_.calls().size(), 3u);
}

TEST_F(ProbeRunnerTest, RunChecks_CancelInterruptsLongInterval) {
  std::atomic<bool> cancelled{false};
  clock_.set_on_sleep([&] { cancelled = true; });
  absl::Status st =
      runner_.RunChecks({TcpCheck("h:1", 2, 60000)}, ctx_, absl::Minutes(10), &cancelled);
  EXPECT_EQ(st.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(transport_.calls().size(), 1u);
  EXPECT_LT(clock_.Elapsed(), absl::Seconds(1));
}

TEST_F(ProbeRunnerTest, RunChecks_CancelStopsRetries) {
  std::atomic<bool> cancelled{false};
  transport_.set_respond([&](const FakeTransport::Call&, int) {
    cancelled = true;
    return Fail("refused");
  });
  absl::Status st =
      runner_.RunChecks({TcpCheck("h:1", 5, 1000)}, ctx_, absl::Seconds(10), &cancelled);
  EXPECT_EQ(st.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(transport_.calls().size(), 1u);
}

// A loopback listener that never accepts: connects complete in the kernel
// but nobody ever answers.
class SilentListener {
 public:
  explicit SilentListener(int family = AF_INET, int backlog = 16) {
    fd_ = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_storage addr{};
    socklen_t len;
    if (family == AF_INET6) {
      auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
      a6->sin6_family = AF_INET6;
      a6->sin6_addr = in6addr_loopback;
      len = sizeof(*a6);
    } else {
      auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
      a4->sin_family = AF_INET;
      a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*a4);
    }
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        listen(fd_, backlog) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                     : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  }
  ~SilentListener() {
    for (int fd : fillers_) close(fd);
    if (fd_ >= 0) close(fd_);
  }
  int port() const { return port_; }  // 0 when the socket could not listen

  // Connects until the accept queue is full, so that the next SYN is
  // dropped and a connect hangs. False when the queue never filled.
  bool FillBacklog() {
    for (int i = 0; i < 64; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(port_));
      fillers_.push_back(fd);
      if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) continue;
      pollfd pfd{fd, POLLOUT, 0};
      if (poll(&pfd, 1, 200) == 0) return true;
    }
    return false;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

// A tiny HTTP server on 127.0.0.1 with a fixed set of routes.
class TestHttpServer {
 public:
  TestHttpServer() {
    server_.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    server_.Get("/broken", [](const httplib::Request&, httplib::Response& res) {
      res.status = 502;
      res.set_content("bad gateway\n", "text/plain");
    });
    server_.Get("/empty",
                [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
    server_.Get("/moved", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect("/healthz");
    });
    server_.Get("/big", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(1 << 20, 'x'), "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~TestHttpServer() {
    server_.stop();
    thread_.join();
  }
  std::string Url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

class RealProbeTransportTest : public ::testing::Test {
 protected:
  RealProbeTransport transport_{DefaultProcessRunner()};
};

TEST_F(RealProbeTransportTest, Http_SucceedsOnExpectedStatus) {
  TestHttpServer server;
  ProbeAttempt attempt = transport_.Http(server.Url("/healthz"), 200, absl::Seconds(5));
  EXPECT_TRUE(attempt.ok) << attempt.reason;
}

TEST_F(RealProbeTransportTest, Http_ReportsStatusWhenUnexpected) {
  TestHttpServer server;
  ProbeAttempt attempt = transport_.Http(server.Url("/broken"), 200, absl::Seconds(5));
  EXPECT_FALSE(attempt.ok);
  EXPECT_EQ(attempt.reason, absl::StrCat("GET ", server.Url("/broken"), " returned 502"));
}

TEST_F(RealProbeTransportTest, Http_AcceptsConfiguredStatus) {
  TestHttpServer server;
  EXPECT_TRUE(transport_.Http(server.Url("/empty"), 204, absl::Seconds(5)).ok);
  EXPECT_FALSE(transport_.Http(server.Url("/healthz"), 204, absl::Seconds(5)).ok);
}

TEST_F(RealProbeTransportTest, Http_DoesNotFollowRedirects) {
  TestHttpServer server;
  ProbeAttempt attempt = transport_.Http(server.Url("/moved"), 200, absl::Seconds(5));
  EXPECT_FALSE(attempt.ok);
  EXPECT_EQ(attempt.reason, absl::StrCat("GET ", server.Url("/moved"), " returned 302"));
}

TEST_F(RealProbeTransportTest, Http_ReadsStatusOfLargeBody) {
  TestHttpServer server;
  ProbeAttempt attempt = transport_.Http(server.Url("/big"), 200, absl::Seconds(5));
  EXPECT_TRUE(attempt.ok) << attempt.reason;
}

TEST_F(RealProbeTransportTest, Http_IgnoresProxyEnvironment) {
  TestHttpServer server;
  int dead_port = fleet::testing::FreePort();
  std::string proxy = absl::StrCat("http://127.0.0.1:", dead_port);
  ASSERT_EQ(setenv("http_proxy", proxy.c_str(), 1), 0);
  ASSERT_EQ(setenv("HTTP_PROXY", proxy.c_str(), 1), 0);
  ProbeAttempt attempt = transport_.Http(server.Url("/healthz"), 200, absl::Seconds(5));
  unsetenv("http_proxy");
  unsetenv("HTTP_PROXY");
  EXPECT_TRUE(attempt.ok) << attempt.reason;
}

TEST_F(RealProbeTransportTest, Http_ReportsConnectionRefused) {
  std::string url = absl::StrCat("http://127.0.0.1:", fleet::testing::FreePort(), "/healthz");
  ProbeAttempt attempt = transport_.Http(url, 200, absl::Seconds(5));
  EXPECT_FALSE(attempt.ok);
  EXPECT_EQ(attempt.reason, absl::StrCat("GET ", url, " failed: Couldn't connect to server"));
}

TEST_F(RealProbeTransportTest, Http_TimesOutWhenServerNeverAnswers) {
  SilentListener listener;
  ASSERT_NE(listener.port(), 0);
  std::string url = absl::StrCat("http://127.0.0.1:", listener.port(), "/healthz");
  absl::Time start = absl::Now();
  ProbeAttempt attempt = transport_.Http(url, 200, absl::Milliseconds(300));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_FALSE(attempt.ok);
  EXPECT_EQ(attempt.reason, absl::StrCat("GET ", url, " timed out after 300ms"));
}

TEST_F(RealProbeTransportTest, Tcp_SucceedsAgainstListener) {
  SilentListener listener;
  ASSERT_NE(listener.port(), 0);
  ProbeAttempt attempt =
      transport_.Tcp(absl::StrCat("127.0.0.1:", listener.port()), absl::Seconds(2));
  EXPECT_TRUE(attempt.ok) << attempt.reason;
}

TEST_F(RealProbeTransportTest, Tcp_ResolvesHostName) {
  SilentListener listener;
  ASSERT_NE(listener.port(), 0);
  // "localhost" may resolve to ::1 first, where nothing listens.
  ProbeAttempt attempt =
      transport_.Tcp(absl::StrCat("localhost:", listener.port()), absl::Seconds(2));
  EXPECT_TRUE(attempt.ok) << attempt.reason;
}

TEST_F(RealProbeTransportTest, Tcp_ConnectsToBracketedIpv6) {
  SilentListener listener(AF_INET6);
  if (listener.port() == 0) GTEST_SKIP() << "no IPv6 loopback here";
  ProbeAttempt attempt = transport_.Tcp(absl::StrCat("[::1]:", listener.port()), absl::Seconds(2));
  EXPECT_TRUE(attempt.ok) << attempt.reason;
}

TEST_F(RealProbeTransportTest, Tcp_ReportsConnectionRefused) {
  std::string target = absl::StrCat("127.0.0.1:", fleet::testing::FreePort());
  ProbeAttempt attempt = transport_.Tcp(target, absl::Seconds(2));
  EXPECT_FALSE(attempt.ok);
  EXPECT_EQ(attempt.reason, absl::StrCat("TCP connect to ", target, " failed: Connection refused"));
}

TEST_F(RealProbeTransportTest, Tcp_TimesOutWhenConnectHangs) {
  SilentListener listener(AF_INET, 0);
  ASSERT_NE(listener.port(), 0);
  if (!listener.FillBacklog()) GTEST_SKIP() << "kernel accepted every connect";
  std::string target = absl::StrCat("127.0.0.1:", listener.port());
  absl::Time start = absl::Now();
  ProbeAttempt attempt = transport_.Tcp(target, absl::Milliseconds(300));
  absl::Duration took = absl::Now() - start;
  EXPECT_FALSE(attempt.ok);
  EXPECT_EQ(attempt.reason, absl::StrCat("TCP connect to ", target, " timed out after 300ms"));
  EXPECT_GE(took, absl::Milliseconds(290));
  EXPECT_LT(took, absl::Seconds(3));
}

TEST_F(RealProbeTransportTest, Tcp_RejectsMalformedTarget) {
  for (const std::string target :
       {"::1:80", "no-port", "host:", "host:0", "host:70000", "[::1]80"}) {
    ProbeAttempt attempt = transport_.Tcp(target, absl::Seconds(1));
    EXPECT_FALSE(attempt.ok) << target;
    EXPECT_EQ(attempt.reason,
              absl::StrCat("TCP connect to ", target, " failed: not HOST:PORT or [IPv6]:PORT"));
  }
}

TEST_F(RealProbeTransportTest, Exec_ReportsStatusAndLastOutputLine) {
  ProbeAttempt attempt =
      transport_.Exec("echo checking; echo db down >&2; exit 1", {}, absl::Seconds(5));
  EXPECT_FALSE(attempt.ok);
  EXPECT_EQ(attempt.reason,
            "exec 'echo checking; echo db down >&2; exit 1' exited with status 1: db down");
}

TEST_F(RealProbeTransportTest, Exec_RunsInContextDirWithEnvironment) {
  fleet::testing::TempDir dir;
  fleet::testing::WriteTextFile(dir.Sub("bin/check"), "#!/bin/sh\ntest \"$FLEET_APP\" = web\n",
                                0755);
  ProbeContext ctx;
  ctx.cwd = dir.path();
  ctx.env = {{"FLEET_APP", "web"}};
  ProbeAttempt attempt = transport_.Exec("bin/check", ctx, absl::Seconds(5));
  EXPECT_TRUE(attempt.ok) << attempt.reason;
  ctx.env["FLEET_APP"] = "api";
  EXPECT_EQ(transport_.Exec("bin/check", ctx, absl::Seconds(5)).reason,
            "exec 'bin/check' exited with status 1");
}

TEST_F(RealProbeTransportTest, Exec_ReportsTimeout) {
  ProbeAttempt attempt = transport_.Exec("sleep 10", {}, absl::Milliseconds(200));
  EXPECT_FALSE(attempt.ok);
  EXPECT_EQ(attempt.reason, "exec 'sleep 10' timed out after 200ms");
}

TEST_F(RealProbeTransportTest, Exec_ReportsCommandThatCannotStart) {
  fleet::testing::TempDir dir;
  ProbeContext ctx;
  ctx.cwd = dir.Sub("gone");
  ProbeAttempt attempt = transport_.Exec("true", ctx, absl::Seconds(5));
  EXPECT_FALSE(attempt.ok);
  EXPECT_EQ(attempt.reason,
            absl::StrCat("exec 'true' could not start: cannot run 'true': chdir to ",
                         dir.Sub("gone"), ": No such file or directory"));
}

TEST(ProbeRunnerRealTest, RunCheck_ReportsHttpFailureWithAttempts) {
  TestHttpServer server;
  RealProbeTransport transport(DefaultProcessRunner());
  ProbeRunner runner(&transport, DefaultClock());
  HealthCheck check = HttpCheck(server.Url("/broken"), 1, 10);
  absl::Status st = runner.RunCheck(check, {});
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(st.message(),
            absl::StrCat("GET ", server.Url("/broken"), " returned 502 (2 attempts)"));
}

}  // namespace
}  // namespace fleet::agent
