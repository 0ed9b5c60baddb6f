// Health probes: http (libcurl), tcp and exec, with per-check timeout,
// retries and interval, repeated through the bake time.
#ifndef FLEET_AGENT_PROBE_H_
#define FLEET_AGENT_PROBE_H_

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/output_log.h"
#include "common/clock.h"
#include "common/process.h"
#include "fleet/v1/types.pb.h"

namespace fleet::agent {

// The environment a check runs in: working dir and environment for exec
// checks. http/tcp targets arrive already expanded.
struct ProbeContext {
  std::string cwd;
  std::map<std::string, std::string> env;
  // Exec probes run as this user (the spec's `user:`); unset = the agent's.
  std::optional<RunAs> run_as;
  // What the probes are about, for the log ("app=web release=v2 host=web-01
  // rollout=7"); every attempt's result is logged with it. "" = no log.
  std::string log_context;
  // Where every attempt is recorded (with an exec check's output); null =
  // nowhere.
  ActivationRecorder* recorder = nullptr;
};

// Result of one attempt of one check.
struct ProbeAttempt {
  bool ok = false;
  std::string reason;  // e.g. "GET http://127.0.0.1:18081/healthz returned 502"
  std::string output;  // what an exec check printed
};

// The transport of a single attempt, behind an interface for tests.
class ProbeTransport {
 public:
  virtual ~ProbeTransport() = default;
  virtual ProbeAttempt Http(const std::string& url, int expect_status,
                            absl::Duration timeout) = 0;
  virtual ProbeAttempt Tcp(const std::string& host_port, absl::Duration timeout) = 0;
  virtual ProbeAttempt Exec(const std::string& command, const ProbeContext& ctx,
                            absl::Duration timeout) = 0;
};

// libcurl for http, a non-blocking connect for tcp, ProcessRunner for exec.
class RealProbeTransport : public ProbeTransport {
 public:
  explicit RealProbeTransport(ProcessRunner* runner) : runner_(runner) {}
  ProbeAttempt Http(const std::string& url, int expect_status,
                    absl::Duration timeout) override;
  ProbeAttempt Tcp(const std::string& host_port, absl::Duration timeout) override;
  ProbeAttempt Exec(const std::string& command, const ProbeContext& ctx,
                    absl::Duration timeout) override;

 private:
  ProcessRunner* runner_;
};

// Runs a set of checks. Timeouts are clamped to 10 s whatever the spec says.
class ProbeRunner {
 public:
  ProbeRunner(ProbeTransport* transport, Clock* clock)
      : transport_(transport), clock_(clock) {}

  // Runs one check: up to 1 + retries attempts, interval_ms apart, until one
  // succeeds. Returns OK, or Unavailable with the reason of the last attempt,
  // e.g. "GET http://127.0.0.1:18081/healthz returned 502 (3 attempts)".
  absl::Status RunCheck(const fleet::v1::HealthCheck& check, const ProbeContext& ctx);

  // Runs every check once (a round), then repeats rounds until `bake` has
  // elapsed since the start, sleeping the smallest interval between rounds.
  // At least one round always runs. Returns the first failure. `cancelled`,
  // when set, is polled between attempts and ends the bake early with
  // Cancelled.
  absl::Status RunChecks(const std::vector<fleet::v1::HealthCheck>& checks,
                         const ProbeContext& ctx, absl::Duration bake,
                         const std::atomic<bool>* cancelled = nullptr);

  static constexpr absl::Duration kMaxTimeout = absl::Seconds(10);

 private:
  ProbeTransport* transport_;
  Clock* clock_;
};

}  // namespace fleet::agent

#endif  // FLEET_AGENT_PROBE_H_
