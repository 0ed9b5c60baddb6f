// hello: the example service Fleet deploys in the demo and the e2e tests.
//
//   hello --port N [--release-dir DIR]
//
// Serves on 127.0.0.1:N only. DIR (default: the directory above the one
// holding the binary, i.e. the release directory) provides:
//   VERSION     the version string, served by GET /version and GET /
//   hello.conf  optional `key=value` lines: healthz_status (default 200),
//               greeting (default "hello"), error_share (default 0; 0..1,
//               the share of GET / answered 500); `#` starts a comment line.
//   config/hello.properties
//               the same keys from the app's config release (Fleet links
//               config -> ../../config into every release); they override
//               hello.conf, so a config rollout changes the greeting or
//               makes /healthz fail without a new release.
// Endpoints: GET /healthz -> healthz_status with "ok\n" (2xx) or "unhealthy\n",
//            GET /version -> VERSION + "\n",
//            GET /        -> greeting + " from " + VERSION + "\n", or 500
//                            "error\n" for error_share of the requests:
//                            request n fails when floor(n * share) grows,
//                            so the share is exact and deterministic,
//            GET /metrics -> Prometheus text format: the counter
//                            hello_requests_total{code="200"|"500"} of
//                            GET / answers, both present from the start.
// /healthz ignores error_share: a release that fails only its users passes
// its probes, which is what Fleet's analysis (Prometheus queries) catches.
// SIGTERM and SIGINT stop the server cleanly (exit 0).

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

namespace {

constexpr char kBindHost[] = "127.0.0.1";

struct Flags {
  int port = 0;
  std::string release_dir;
};

struct HelloConfig {
  std::string version;
  int healthz_status = 200;
  std::string greeting = "hello";
  double error_share = 0;
};

// Answers to GET /, shared by the server's threads.
struct RequestCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> failed{0};
};

void PrintUsage() {
  std::cerr << "usage: hello --port N [--release-dir DIR]\n";
}

std::string Trim(const std::string& s) {
  const char* kSpace = " \t\r\n";
  const size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string::npos) return "";
  const size_t end = s.find_last_not_of(kSpace);
  return s.substr(begin, end - begin + 1);
}

std::optional<int> ParseInt(const std::string& s, int min, int max) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || value < min || value > max) {
    return std::nullopt;
  }
  return static_cast<int>(value);
}

// The release directory is the parent of the binary's bin/ directory. Going
// through /proc/self/exe gives the same answer as realpath(argv[0]) and also
// works when the binary was found through PATH; it resolves the `current`
// symlink, so the server keeps reading its own release after a switch.
std::optional<std::string> DefaultReleaseDir() {
  std::error_code ec;
  const std::filesystem::path exe =
      std::filesystem::canonical("/proc/self/exe", ec);
  if (ec) return std::nullopt;
  return exe.parent_path().parent_path().string();
}

// Returns false (after printing why) when the command line is unusable.
bool ParseFlags(int argc, char** argv, Flags* flags) {
  std::optional<std::string> port_text;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_inline_value = false;
    if (const size_t eq = arg.find('=');
        arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_inline_value = true;
    }
    if (arg != "--port" && arg != "--release-dir") {
      std::cerr << "hello: unknown argument " << argv[i] << "\n";
      return false;
    }
    if (!has_inline_value) {
      if (i + 1 >= argc) {
        std::cerr << "hello: " << arg << " needs a value\n";
        return false;
      }
      value = argv[++i];
    }
    if (arg == "--port") {
      port_text = value;
    } else {
      flags->release_dir = value;
    }
  }
  if (!port_text) {
    std::cerr << "hello: --port is required\n";
    return false;
  }
  const std::optional<int> port = ParseInt(*port_text, 1, 65535);
  if (!port) {
    std::cerr << "hello: --port must be a number in 1..65535, got '"
              << *port_text << "'\n";
    return false;
  }
  flags->port = *port;
  if (flags->release_dir.empty()) {
    const std::optional<std::string> dir = DefaultReleaseDir();
    if (!dir) {
      std::cerr << "hello: cannot locate the binary to derive the release "
                   "directory; pass --release-dir\n";
      return false;
    }
    flags->release_dir = *dir;
  }
  return true;
}

std::optional<double> ParseShare(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(s.c_str(), &end);
  // !(value >= 0) also refuses NaN.
  if (errno != 0 || *end != '\0' || !(value >= 0) || value > 1) {
    return std::nullopt;
  }
  return value;
}

bool ReadKeyValues(const std::string& conf_path, HelloConfig* config);

// Returns false (after printing why) when VERSION is missing or hello.conf
// or config/hello.properties holds a bad value. Missing files mean defaults.
bool LoadConfig(const std::string& release_dir, HelloConfig* config) {
  const std::string version_path = release_dir + "/VERSION";
  std::ifstream version_file(version_path);
  if (!version_file) {
    std::cerr << "hello: cannot read " << version_path << ": "
              << std::strerror(errno) << "\n";
    return false;
  }
  std::stringstream version_text;
  version_text << version_file.rdbuf();
  config->version = Trim(version_text.str());
  if (config->version.empty()) {
    std::cerr << "hello: " << version_path << " is empty\n";
    return false;
  }

  return ReadKeyValues(release_dir + "/hello.conf", config) &&
         ReadKeyValues(release_dir + "/config/hello.properties", config);
}

// Applies the key=value lines of `conf_path` to *config. A missing file
// changes nothing; a bad value returns false after printing why.
bool ReadKeyValues(const std::string& conf_path, HelloConfig* config) {
  std::ifstream conf_file(conf_path);
  if (!conf_file) return true;
  std::string line;
  for (int line_no = 1; std::getline(conf_file, line); ++line_no) {
    line = Trim(line);
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) {
      std::cerr << "hello: " << conf_path << ":" << line_no
                << ": expected key=value\n";
      return false;
    }
    const std::string key = Trim(line.substr(0, eq));
    const std::string value = Trim(line.substr(eq + 1));
    if (key == "healthz_status") {
      const std::optional<int> status = ParseInt(value, 100, 599);
      if (!status) {
        std::cerr << "hello: " << conf_path << ":" << line_no
                  << ": healthz_status must be an HTTP status 100..599, got '"
                  << value << "'\n";
        return false;
      }
      config->healthz_status = *status;
    } else if (key == "greeting") {
      config->greeting = value;
    } else if (key == "error_share") {
      const std::optional<double> share = ParseShare(value);
      if (!share) {
        std::cerr << "hello: " << conf_path << ":" << line_no
                  << ": error_share must be a number in 0..1, got '" << value << "'\n";
        return false;
      }
      config->error_share = *share;
    } else {
      std::cerr << "hello: " << conf_path << ":" << line_no
                << ": ignoring unknown key '" << key << "'\n";
    }
  }
  return true;
}

// True when request number `n` (1-based) of GET / is to fail: the
// failures so far are floor(n * share), so exactly that share fails.
bool FailsRequest(uint64_t n, double share) {
  return static_cast<uint64_t>(static_cast<double>(n) * share) !=
         static_cast<uint64_t>(static_cast<double>(n - 1) * share);
}

void InstallRoutes(const HelloConfig& config, RequestCounters* counters, httplib::Server* server) {
  server->Get("/healthz",
              [config](const httplib::Request&, httplib::Response& res) {
                const bool healthy =
                    config.healthz_status >= 200 && config.healthz_status < 300;
                res.status = config.healthz_status;
                res.set_content(healthy ? "ok\n" : "unhealthy\n", "text/plain");
              });
  server->Get("/version",
              [config](const httplib::Request&, httplib::Response& res) {
                res.set_content(config.version + "\n", "text/plain");
              });
  server->Get("/", [config, counters](const httplib::Request&, httplib::Response& res) {
    const uint64_t n = ++counters->requests;
    if (FailsRequest(n, config.error_share)) {
      ++counters->failed;
      res.status = 500;
      res.set_content("error\n", "text/plain");
      return;
    }
    ++counters->ok;
    res.set_content(config.greeting + " from " + config.version + "\n", "text/plain");
  });
  server->Get("/metrics", [counters](const httplib::Request&, httplib::Response& res) {
    std::ostringstream text;
    text << "# HELP hello_requests_total Answers to GET /, by "
            "HTTP status.\n"
         << "# TYPE hello_requests_total counter\n"
         << "hello_requests_total{code=\"200\"} " << counters->ok.load() << "\n"
         << "hello_requests_total{code=\"500\"} " << counters->failed.load() << "\n";
    res.set_content(text.str(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) {
    PrintUsage();
    return 2;
  }
  HelloConfig config;
  if (!LoadConfig(flags.release_dir, &config)) return 1;

  // Block the stop signals before any thread exists so every thread inherits
  // the mask and only the watcher below receives them, via sigwait. That keeps
  // Server::stop() out of a signal handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // A client that hangs up must not kill us.

  httplib::Server server;
  // stop() does not interrupt a worker waiting on an idle keep-alive
  // connection, so these bound how long shutdown can take (restart allows
  // 5 s before SIGKILL).
  server.set_keep_alive_timeout(1);
  server.set_read_timeout(2);
  RequestCounters counters;
  InstallRoutes(config, &counters, &server);
  if (!server.bind_to_port(kBindHost, flags.port)) {
    std::cerr << "hello: cannot listen on " << kBindHost << ":" << flags.port
              << ": " << std::strerror(errno) << "\n";
    return 1;
  }

  std::atomic<bool> listen_returned{false};
  std::atomic<bool> stopped_by_signal{false};
  std::thread watcher([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (listen_returned) return;  // Woken by main after the server ended.
    stopped_by_signal = true;
    std::cerr << "hello: received signal " << sig << ", stopping\n";
    // stop() is a no-op until the accept loop runs, so a signal that lands
    // between bind and listen must wait for it.
    while (!listen_returned) {
      if (server.is_running()) {
        server.stop();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });

  std::cerr << "hello " << config.version << " listening on " << kBindHost << ":" << flags.port
            << " (release dir " << flags.release_dir << ", healthz_status " << config.healthz_status
            << ", error_share " << config.error_share << ")\n";
  const bool listen_ok = server.listen_after_bind();
  listen_returned = true;
  pthread_kill(watcher.native_handle(), SIGTERM);  // Ends a pending sigwait.
  watcher.join();

  if (stopped_by_signal) {
    std::cerr << "hello: stopped\n";
    return 0;
  }
  std::cerr << "hello: server on " << kBindHost << ":" << flags.port
            << " ended unexpectedly" << (listen_ok ? "" : " with an error")
            << "\n";
  return 1;
}
