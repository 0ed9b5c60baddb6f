// Analysis during bake: the Prometheus queries of an app spec's `analysis`
// checks, evaluated while a deploy rollout activates, which can pause or
// fail that rollout.
//
// The rollout engine decides what is due and what a result means (see
// "Analysis" in controller/rollout_engine.h); the Analyzer's own thread
// asks it what is due, runs the queries without any engine lock held, and
// reports each result back. A Prometheus that hangs delays only later
// evaluations (each query gives up after 5 s), never the engine.
#ifndef FLEET_CONTROLLER_ANALYSIS_H_
#define FLEET_CONTROLLER_ANALYSIS_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "controller/rollout_engine.h"

namespace fleet::controller {

// Evaluates PromQL instant queries.
class PrometheusClient {
 public:
  virtual ~PrometheusClient() = default;

  // Runs `query` at `url`, a Prometheus base URL such as
  // "http://127.0.0.1:9090", and returns the one finite number it yields.
  // Any other outcome is inconclusive and returned as a non-OK status whose
  // message says why, for the rollout's reason:
  //   Unavailable         Prometheus did not answer, answered an HTTP error
  //                       without a Prometheus error body, or not with JSON;
  //   FailedPrecondition  Prometheus answered, but not with one number: an
  //                       error status (bad query, timeout), no data, more
  //                       than one series, NaN or an infinity;
  //   Cancelled           Cancel() was called.
  // Thread-safe.
  virtual absl::StatusOr<double> Query(const std::string& url, const std::string& query) = 0;

  // Makes the query in flight, if any, and every later one return Cancelled
  // promptly (at shutdown). Thread-safe.
  virtual void Cancel() {}
};

// The value of the body of a Prometheus /api/v1/query answer: a scalar, or
// an instant vector with exactly one sample. Errors as for Query() (the
// messages do not name the server): FailedPrecondition for an error status
// and every shape that is not one finite number, Unavailable for a body that
// is not a Prometheus answer (not JSON, no "status").
absl::StatusOr<double> ParsePrometheusAnswer(absl::string_view body);

// True when `value` meets the check's condition `op threshold` (op is one of
// >, >=, <, <=, ==, !=), i.e. the evaluation failed. An unknown op counts
// as met: a check that cannot be read never passes.
bool MeetsFailIf(double value, absl::string_view op, double threshold);

// "0.31", "12", "1.5e-07": a query value as messages show it.
std::string FormatAnalysisValue(double value);

// `url` without user:password@, for messages and logs.
std::string RedactUrl(absl::string_view url);

// Queries Prometheus's HTTP API with libcurl:
// GET <url>/api/v1/query?query=<urlencoded query>.
class CurlPrometheusClient : public PrometheusClient {
 public:
  // `timeout` bounds one query, connecting included.
  explicit CurlPrometheusClient(absl::Duration timeout = absl::Seconds(5));

  absl::StatusOr<double> Query(const std::string& url, const std::string& query) override;
  void Cancel() override { cancelled_ = true; }

 private:
  const absl::Duration timeout_;
  std::atomic<bool> cancelled_{false};
};

struct AnalyzerOptions {
  // How often the thread asks the engine what is due. Evaluations happen at
  // most this late.
  absl::Duration poll = absl::Milliseconds(250);
};

// Runs the analysis checks the engine says are due, one at a time, on its
// own thread.
//
// Thread safety: Start() and Stop() are called from one owning thread;
// RunOnce() is for tests that drive the Analyzer without its thread.
class Analyzer {
 public:
  // Borrows `engine`, which must outlive Stop(); owns `client`.
  Analyzer(RolloutEngine* engine, std::unique_ptr<PrometheusClient> client,
           AnalyzerOptions options = {});
  // Stop().
  ~Analyzer();

  Analyzer(const Analyzer&) = delete;
  Analyzer& operator=(const Analyzer&) = delete;

  // Starts the thread; at most once.
  void Start();
  // Cancels the query in flight and joins the thread; results not reported
  // yet are dropped. Idempotent; also safe without Start().
  void Stop();

  // Asks the engine what is due, queries each check and reports every
  // result before returning. Returns how many checks it evaluated.
  int RunOnce();

 private:
  RolloutEngine* const engine_;
  const std::unique_ptr<PrometheusClient> client_;
  const AnalyzerOptions options_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_ANALYSIS_H_
