#include "agent/probe.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/curl.h"
#include "common/logging.h"

namespace fleet::agent {
namespace {

// Bake rounds never come closer than this, so that a check with
// interval 0 (retry at once) does not turn the bake into a busy loop.
constexpr absl::Duration kMinRoundGap = absl::Milliseconds(100);
// Sleeps are cut into slices this long so that cancellation is noticed
// promptly even with long intervals.
constexpr absl::Duration kCancelSlice = absl::Milliseconds(200);
// An http probe reads at most this much body before it stops listening;
// only the status matters, and a streaming endpoint must not hold it.
constexpr size_t kMaxBody = 64 * 1024;

bool IsCancelled(const std::atomic<bool>* cancelled) {
  return cancelled != nullptr && cancelled->load(std::memory_order_relaxed);
}

// Sleeps `d` on `clock`, waking early when `cancelled` is set. Returns
// false when cancelled.
bool SleepUnlessCancelled(Clock* clock, absl::Duration d, const std::atomic<bool>* cancelled) {
  if (cancelled == nullptr) {
    if (d > absl::ZeroDuration()) clock->SleepFor(d);
    return true;
  }
  while (d > absl::ZeroDuration()) {
    if (IsCancelled(cancelled)) return false;
    absl::Duration step = std::min(d, kCancelSlice);
    clock->SleepFor(step);
    d -= step;
  }
  return !IsCancelled(cancelled);
}

absl::Duration CheckTimeout(const fleet::v1::HealthCheck& check) {
  if (check.timeout_ms() <= 0) return ProbeRunner::kMaxTimeout;
  return std::min(absl::Milliseconds(check.timeout_ms()), ProbeRunner::kMaxTimeout);
}

absl::Duration CheckInterval(const fleet::v1::HealthCheck& check) {
  return absl::Milliseconds(std::max<int64_t>(check.interval_ms(), 0));
}

absl::Status Cancelled() { return absl::CancelledError("health probing cancelled"); }

// What a check checks, for logs and records: its URL, address or command.
const std::string& Target(const fleet::v1::HealthCheck& check) {
  return !check.http().empty() ? check.http() : (!check.tcp().empty() ? check.tcp() : check.exec());
}

// Logs and records one attempt. Failures are logged at warning; successes
// at debug, but for the check's first one of a probing (`*said_ok` false),
// which is what an operator looks for after a switch.
void Report(const fleet::v1::HealthCheck& check, const ProbeContext& ctx, const ProbeAttempt& a,
            absl::Time started, absl::Time ended, int attempt, int attempts, bool* said_ok) {
  const std::string& target = Target(check);
  if (!ctx.log_context.empty()) {
    if (!a.ok) {
      spdlog::warn("probe {} {}: {} (attempt {}/{})", ctx.log_context, target, a.reason, attempt,
                   attempts);
    } else if (!*said_ok) {
      spdlog::info("probe {} {}: ok (attempt {}/{})", ctx.log_context, target, attempt, attempts);
    } else {
      spdlog::debug("probe {} {}: ok (attempt {}/{})", ctx.log_context, target, attempt, attempts);
    }
  }
  if (a.ok) *said_ok = true;
  if (ctx.recorder == nullptr) return;
  fleet::v1::CommandRun run;
  run.set_step(!check.http().empty() ? "probe http" : !check.tcp().empty() ? "probe tcp" : "probe exec");
  run.set_command(target);
  run.set_started_at_ms(absl::ToUnixMillis(started));
  run.set_elapsed_ms(absl::ToInt64Milliseconds(ended - started));
  run.set_ok(a.ok);
  run.set_status(a.ok ? "ok" : a.reason);
  run.set_output(a.output);
  ctx.recorder->Record(run);
}

// RunCheck with cancellation polled between attempts.
absl::Status RunOneCheck(ProbeTransport* transport, Clock* clock,
                         const fleet::v1::HealthCheck& check, const ProbeContext& ctx,
                         const std::atomic<bool>* cancelled, bool* said_ok) {
  int kinds = !check.http().empty() + !check.tcp().empty() + !check.exec().empty();
  if (kinds != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("health check needs exactly one of http, tcp or exec, has ", kinds));
  }
  const absl::Duration timeout = CheckTimeout(check);
  const int attempts = 1 + std::max(check.retries(), 0);
  const int expect_status = check.expect_status() > 0 ? check.expect_status() : 200;
  ProbeAttempt last;
  for (int i = 0; i < attempts; ++i) {
    if (i > 0 && !SleepUnlessCancelled(clock, CheckInterval(check), cancelled)) {
      return Cancelled();
    }
    if (IsCancelled(cancelled)) return Cancelled();
    const absl::Time started = clock->Now();
    if (!check.http().empty()) {
      last = transport->Http(check.http(), expect_status, timeout);
    } else if (!check.tcp().empty()) {
      last = transport->Tcp(check.tcp(), timeout);
    } else {
      last = transport->Exec(check.exec(), ctx, timeout);
    }
    Report(check, ctx, last, started, clock->Now(), i + 1, attempts, said_ok);
    if (last.ok) return absl::OkStatus();
  }
  return absl::UnavailableError(
      absl::StrCat(last.reason, " (", attempts, attempts == 1 ? " attempt)" : " attempts)"));
}

size_t DiscardBody(char* /*data*/, size_t size, size_t nmemb, void* userdata) {
  size_t* total = static_cast<size_t*>(userdata);
  *total += size * nmemb;
  // Returning less than given aborts the transfer with CURLE_WRITE_ERROR.
  return *total > kMaxBody ? 0 : size * nmemb;
}

// HOST:PORT or [V6]:PORT, split. False when malformed.
bool SplitHostPort(const std::string& host_port, std::string* host, std::string* port) {
  size_t colon;
  if (!host_port.empty() && host_port[0] == '[') {
    size_t close = host_port.find(']');
    if (close == std::string::npos || close + 1 >= host_port.size() ||
        host_port[close + 1] != ':') {
      return false;
    }
    *host = host_port.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = host_port.rfind(':');
    if (colon == std::string::npos) return false;
    *host = host_port.substr(0, colon);
    // A bare IPv6 address needs brackets to tell its colons from the port's.
    if (host->find(':') != std::string::npos) return false;
  }
  *port = host_port.substr(colon + 1);
  int number;
  return !host->empty() && absl::SimpleAtoi(*port, &number) && number > 0 && number < 65536;
}

// Connects to one address before `deadline`. Returns 0 on success, the
// errno of the failure, or ETIMEDOUT.
int ConnectOne(const addrinfo* ai, absl::Time deadline) {
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) return errno;
  int error = 0;
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    error = errno;
    while (error == EINPROGRESS || error == EINTR) {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        error = ETIMEDOUT;
        break;
      }
      pollfd pfd{fd, POLLOUT, 0};
      int ready = poll(
          &pfd, 1,
          static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)))));
      if (ready < 0) {
        error = errno == EINTR ? EINPROGRESS : errno;
        continue;
      }
      if (ready == 0) continue;  // the loop notices the deadline
      socklen_t len = sizeof(error);
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
      break;
    }
  }
  close(fd);
  return error;
}

}  // namespace

ProbeAttempt RealProbeTransport::Http(const std::string& url, int expect_status,
                                      absl::Duration timeout) {
  ProbeAttempt attempt;
  CurlHandle curl = NewHttpHandle(timeout, "fleet-agent/" FLEET_VERSION);
  if (curl == nullptr) {
    attempt.reason = absl::StrCat("GET ", url, " failed: cannot create a curl handle");
    return attempt;
  }
  CURL* h = curl.get();
  size_t body_bytes = 0;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  // The service is probed directly, never through an http_proxy from the
  // agent's environment. A redirect is not followed: expect_status decides
  // about it.
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, DiscardBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body_bytes);

  CURLcode code = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  // A body cut short by DiscardBody still carries its status.
  bool cut_short = code == CURLE_WRITE_ERROR && body_bytes > kMaxBody && status > 0;
  if (code == CURLE_OPERATION_TIMEDOUT) {
    attempt.reason = absl::StrCat("GET ", url, " timed out after ", absl::FormatDuration(timeout));
    return attempt;
  }
  if (code != CURLE_OK && !cut_short) {
    attempt.reason = absl::StrCat("GET ", url, " failed: ", curl_easy_strerror(code));
    return attempt;
  }
  if (status != expect_status) {
    attempt.reason = absl::StrCat("GET ", url, " returned ", status);
    return attempt;
  }
  attempt.ok = true;
  return attempt;
}

ProbeAttempt RealProbeTransport::Tcp(const std::string& host_port, absl::Duration timeout) {
  ProbeAttempt attempt;
  const absl::Time deadline = absl::Now() + timeout;
  std::string host, port;
  if (!SplitHostPort(host_port, &host, &port)) {
    attempt.reason =
        absl::StrCat("TCP connect to ", host_port, " failed: not HOST:PORT or [IPv6]:PORT");
    return attempt;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
  addrinfo* found = nullptr;
  // getaddrinfo does not honour the timeout; names are expected to be local
  // (/etc/hosts) or numeric for health checks.
  int gai = getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (gai != 0) {
    attempt.reason =
        absl::StrCat("TCP connect to ", host_port,
                     " failed: ", gai == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(gai));
    return attempt;
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, &freeaddrinfo);
  int error = ETIMEDOUT;
  // Every address in turn ("localhost" may give ::1 before 127.0.0.1);
  // the first refusal must not hide a listener on the next one.
  for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    error = ConnectOne(ai, deadline);
    if (error == 0) {
      attempt.ok = true;
      return attempt;
    }
    if (error == ETIMEDOUT && absl::Now() >= deadline) break;
  }
  if (error == ETIMEDOUT) {
    attempt.reason = absl::StrCat("TCP connect to ", host_port, " timed out after ",
                                  absl::FormatDuration(timeout));
  } else {
    attempt.reason = absl::StrCat("TCP connect to ", host_port, " failed: ", std::strerror(error));
  }
  return attempt;
}

ProbeAttempt RealProbeTransport::Exec(const std::string& command, const ProbeContext& ctx,
                                      absl::Duration timeout) {
  ProbeAttempt attempt;
  ProcessSpec spec;
  spec.command = command;
  spec.cwd = ctx.cwd;
  spec.env = ctx.env;
  spec.run_as = ctx.run_as;
  spec.timeout = timeout;
  absl::StatusOr<ProcessResult> result = runner_->Run(spec);
  if (!result.ok()) {
    attempt.reason =
        absl::StrCat("exec '", command, "' could not start: ", result.status().message());
    return attempt;
  }
  attempt.output = result->output;
  if (!result->ok()) {
    attempt.reason = absl::StrCat("exec '", command, "' ", result->Describe());
    return attempt;
  }
  attempt.ok = true;
  return attempt;
}

absl::Status ProbeRunner::RunCheck(const fleet::v1::HealthCheck& check, const ProbeContext& ctx) {
  bool said_ok = false;
  return RunOneCheck(transport_, clock_, check, ctx, nullptr, &said_ok);
}

absl::Status ProbeRunner::RunChecks(const std::vector<fleet::v1::HealthCheck>& checks,
                                    const ProbeContext& ctx, absl::Duration bake,
                                    const std::atomic<bool>* cancelled) {
  // Without checks there is nothing to watch; waiting out the bake would
  // only delay the report.
  if (checks.empty()) return absl::OkStatus();
  const absl::Time start = clock_->Now();
  absl::Duration gap = absl::InfiniteDuration();
  for (const fleet::v1::HealthCheck& check : checks) gap = std::min(gap, CheckInterval(check));
  gap = std::max(gap, kMinRoundGap);
  // Per check: whether its first success was logged.
  std::unique_ptr<bool[]> said_ok(new bool[checks.size()]());
  for (;;) {
    for (size_t i = 0; i < checks.size(); ++i) {
      if (IsCancelled(cancelled)) return Cancelled();
      absl::Status st = RunOneCheck(transport_, clock_, checks[i], ctx, cancelled, &said_ok[i]);
      if (!st.ok()) return st;
    }
    absl::Duration left = bake - (clock_->Now() - start);
    if (left <= absl::ZeroDuration()) return absl::OkStatus();
    // The last gap is cut to what is left, so a final round runs as the
    // bake ends rather than an interval after it.
    if (!SleepUnlessCancelled(clock_, std::min(gap, left), cancelled)) return Cancelled();
  }
}

}  // namespace fleet::agent
