// End-to-end: the controller's two listeners against slow, many and hostile
// clients (controller/listener_limits.h): half requests on the HTTP port, a
// chunked flood at the Alertmanager webhook, idle HTTP/2 streams on the gRPC
// port, and names far longer than any name.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"

namespace fleet {
namespace {

using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;
using ::testing::HasSubstr;
using ::testing::Lt;
using ::testing::StartsWith;

// A TCP connection to 127.0.0.1:`port`, closed on destruction; sends and
// receives give up after 10 s.
class Connection {
 public:
  explicit Connection(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Connection() { close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool connected() const { return connected_; }
  // Sends all of `data`; false once the peer is gone or stalls.
  bool Send(const std::string& data) {
    absl::MutexLock lock(&send_mu_);
    for (size_t done = 0; done < data.size();) {
      ssize_t n = send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  // Exactly `n` bytes, or "" when the connection ends first.
  std::string ReadExactly(size_t n) {
    std::string out(n, '\0');
    for (size_t done = 0; done < n;) {
      ssize_t got = recv(fd_, out.data() + done, n - done, 0);
      if (got <= 0) return "";
      done += static_cast<size_t>(got);
    }
    return out;
  }
  // What arrives until the peer closes or 10 s of silence.
  std::string ReadAll() {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = recv(fd_, buf, sizeof(buf), 0)) > 0;) out.append(buf, n);
    return out;
  }

 private:
  const int fd_;
  bool connected_ = false;
  absl::Mutex send_mu_;
};

// One agent, and the webhook's token in a file under `dir`.
ClusterOptions OneAgentWithAlertToken(const std::string& dir) {
  std::string path = dir + "/alert.token";
  testing::WriteTextFile(path, "the-alert-token\n", 0600);
  ClusterOptions options;
  options.agents = 1;
  options.controller_args = {"--alert-token-file", path};
  return options;
}

class E2EListenerTest : public ::testing::Test {
 protected:
  E2EListenerTest() : cluster_(OneAgentWithAlertToken(token_dir_.path())) {}

  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(1)) << cluster_.ControllerLog();
  }

  long ControllerKiB(const char* field) {
    return testing::ProcStatusKiB(cluster_.ControllerPid(), field);
  }

  // POSTs `total` bytes of chunked body to the webhook with `headers`;
  // returns what the controller answered and sets `*sent` to the bytes
  // it took before it closed the connection.
  std::string ChunkedPost(const std::string& headers, size_t total, size_t* sent) {
    Connection c(cluster_.HttpPort());
    EXPECT_TRUE(c.connected());
    c.Send(absl::StrCat("POST /api/v1/alerts/alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                        headers, "Content-Type: application/json\r\n",
                        "Transfer-Encoding: chunked\r\n\r\n"));
    const std::string chunk =
        absl::StrCat(absl::StrFormat("%x", 1 << 20), "\r\n", std::string(1 << 20, '['), "\r\n");
    *sent = 0;
    while (*sent < total && c.Send(chunk)) *sent += 1 << 20;
    if (*sent >= total) c.Send("0\r\n\r\n");
    return c.ReadAll();
  }

  testing::TempDir token_dir_;
  Cluster cluster_;
};

TEST_F(E2EListenerTest, SlowHttpClients_HealthzAnswersWhile200HalfRequestsHang) {
  std::vector<std::unique_ptr<Connection>> slow;
  for (int i = 0; i < 200; ++i) {
    auto c = std::make_unique<Connection>(cluster_.HttpPort());
    ASSERT_TRUE(c->connected()) << i;
    ASSERT_TRUE(c->Send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: "));
    slow.push_back(std::move(c));
  }
  httplib::Client client("127.0.0.1", cluster_.HttpPort());
  client.set_connection_timeout(10);
  client.set_read_timeout(10);
  const absl::Time start = absl::Now();
  httplib::Result res = client.Get("/healthz");
  const absl::Duration took = absl::Now() - start;
  std::printf("/healthz with 200 slow clients connected: %.1f ms\n",
              absl::ToDoubleMilliseconds(took));
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok\n");
}

TEST_F(E2EListenerTest, ChunkedWebhookFlood_RefusedWithoutTokenBeforeTheBodyIsRead) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "memory bounds are not measurable with AddressSanitizer's shadow and quarantine";
#endif
  const long rss_before = ControllerKiB("VmRSS");
  size_t sent = 0;
  std::string answer = ChunkedPost("", size_t{100} << 20, &sent);
  const long rss_after = ControllerKiB("VmRSS");
  const long hwm_after = ControllerKiB("VmHWM");
  std::printf("chunked POST without token: %zu MiB sent before the close; controller RSS %ld -> "
              "%ld KiB, peak %ld KiB\n",
              sent >> 20, rss_before, rss_after, hwm_after);
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 401"));
  EXPECT_THAT(hwm_after - rss_before, Lt(64 * 1024));

  // With the token the body is read, but not past the 8 MiB limit.
  answer = ChunkedPost("Authorization: Bearer the-alert-token\r\n", size_t{100} << 20, &sent);
  std::printf("chunked POST with token: %zu MiB sent before the close; controller peak %ld KiB\n",
              sent >> 20, ControllerKiB("VmHWM"));
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 413"));
  EXPECT_THAT(answer, HasSubstr("webhook body is over the 8388608 byte limit"));
  EXPECT_THAT(ControllerKiB("VmHWM") - rss_before, Lt(96 * 1024));
  CommandOutput hosts = cluster_.Fleetctl({"hosts"});
  EXPECT_EQ(hosts.exit_code, 0) << hosts.err;
}

// A raw HTTP/2 client that opens streams with a HEADERS frame and never
// sends their message. It answers SETTINGS and PING like any client, so the
// controller's stream limit is in force.
class IdleStreamClient {
 public:
  explicit IdleStreamClient(int port) : c_(port) {
    c_.Send(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24) + Frame(4, 0, 0, ""));
    reader_ = std::thread([this] { Read(); });
  }
  ~IdleStreamClient() {
    stop_ = true;
    shutdown_ = true;
    reader_.join();
  }

  bool WaitForSettings() {
    for (int i = 0; i < 100 && !settled_; ++i) absl::SleepFor(absl::Milliseconds(50));
    return settled_;
  }
  // Opens `n` streams; returns how many HEADERS frames went out.
  int Open(int n) {
    int opened = 0;
    std::string batch;
    for (int i = 0; i < n; ++i, next_id_ += 2) {
      batch += Frame(1, 0x4, next_id_, HeaderBlock());
      if (batch.size() > 64 * 1024 || i + 1 == n) {
        if (!c_.Send(batch)) break;
        opened = i + 1;
        batch.clear();
      }
    }
    return opened;
  }
  int refused() const { return refused_; }
  bool goaway() const { return goaway_; }

 private:
  static std::string Frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& body) {
    std::string f;
    const uint32_t len = static_cast<uint32_t>(body.size());
    f += static_cast<char>(len >> 16);
    f += static_cast<char>(len >> 8);
    f += static_cast<char>(len);
    f += static_cast<char>(type);
    f += static_cast<char>(flags);
    for (int shift = 24; shift >= 0; shift -= 8) f += static_cast<char>(stream >> shift);
    return f + body;
  }
  // HPACK: :method POST, :scheme http, :path, :authority, content-type,
  // te, all literal without indexing.
  static std::string HeaderBlock() {
    std::string b = "\x83\x86";
    auto literal = [&b](const std::string& name_index, const std::string& value) {
      b += name_index;
      b += static_cast<char>(value.size());
      b += value;
    };
    literal("\x04", "/fleet.v1.FleetService/WatchRollout");
    literal("\x01", "127.0.0.1");
    literal("\x0f\x10", "application/grpc");
    literal(std::string("\x00\x02te", 4), "trailers");
    return b;
  }
  void Read() {
    while (!stop_) {
      std::string header = c_.ReadExactly(9);
      if (header.size() != 9) return;
      const size_t len = (static_cast<uint8_t>(header[0]) << 16) |
                         (static_cast<uint8_t>(header[1]) << 8) | static_cast<uint8_t>(header[2]);
      const uint8_t type = static_cast<uint8_t>(header[3]);
      const uint8_t flags = static_cast<uint8_t>(header[4]);
      std::string body = len > 0 ? c_.ReadExactly(len) : "";
      if (len > 0 && body.empty()) return;
      if (type == 4 && !(flags & 1)) {
        c_.Send(Frame(4, 1, 0, ""));  // SETTINGS ACK
        settled_ = true;
      } else if (type == 6 && !(flags & 1)) {
        c_.Send(Frame(6, 1, 0, body));  // PING ACK
      } else if (type == 3) {
        ++refused_;
      } else if (type == 7) {
        goaway_ = true;
      }
    }
  }

  Connection c_;
  std::thread reader_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> shutdown_{false};
  std::atomic<bool> settled_{false};
  std::atomic<int> refused_{0};
  std::atomic<bool> goaway_{false};
  uint32_t next_id_ = 1;
};

TEST_F(E2EListenerTest, IdleHttp2Streams_AreBoundedPerConnection) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "memory bounds are not measurable with AddressSanitizer's shadow and quarantine";
#endif
  const long rss_before = ControllerKiB("VmRSS");
  std::vector<std::unique_ptr<IdleStreamClient>> clients;
  int opened = 0;
  const std::string port = cluster_.address().substr(cluster_.address().rfind(':') + 1);
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<IdleStreamClient>(std::stoi(port)));
    ASSERT_TRUE(clients.back()->WaitForSettings()) << "no SETTINGS from the controller";
    opened += clients.back()->Open(20000);
  }
  absl::SleepFor(absl::Seconds(2));
  const long rss_during = ControllerKiB("VmRSS");
  int refused = 0;
  for (const auto& c : clients) refused += c->refused();
  std::printf("%d idle HTTP/2 streams sent on 5 connections, %d refused; controller RSS %ld -> "
              "%ld KiB\n",
              opened, refused, rss_before, rss_during);
  EXPECT_THAT(rss_during - rss_before, Lt(128 * 1024));
  // The controller still serves its own clients.
  CommandOutput hosts = cluster_.Fleetctl({"hosts"}, absl::Seconds(30));
  EXPECT_EQ(hosts.exit_code, 0) << hosts.err;
}

TEST_F(E2EListenerTest, LongNames_AreRefusedInOneShortLine) {
  const std::string long_name(10 * 1024, 'v');
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"rollout", "hello", long_name},
        std::vector<std::string>{"rollback", "hello", "--to", long_name},
        std::vector<std::string>{"rollout", "status", long_name}}) {
    CommandOutput out = cluster_.Fleetctl(args);
    EXPECT_EQ(out.exit_code, 1) << args[0];
    EXPECT_THAT(out.err.size(), Lt(1200u)) << out.err.substr(0, 200);
    EXPECT_EQ(std::count(out.err.begin(), out.err.end(), '\n'), 1) << out.err.substr(0, 200);
    EXPECT_THAT(out.err, ::testing::Not(HasSubstr("metadata"))) << out.err.substr(0, 200);
  }
  CommandOutput out = cluster_.Fleetctl({"rollout", "hello", long_name});
  EXPECT_THAT(out.err, HasSubstr("version is 10240 bytes long; names have at most 128"));
}

}  // namespace
}  // namespace fleet
