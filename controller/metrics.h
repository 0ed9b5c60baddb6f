// The controller's Prometheus metrics, served as text on GET /metrics.
//
// Counters and the rollback histogram follow what the rollout engine
// records (Metrics is an EngineObserver); the gauges are read at scrape
// time from the AgentHub (connected hosts) and the store (running rollouts),
// so they are never stale.
//
// Families:
//   fleet_agents_connected                  gauge
//   fleet_rollouts{state}                   gauge: running rollouts by state
//   fleet_rollouts_finished_total{kind,subject,state}    counter
//   fleet_host_deployments_total{result}    counter, from host.* events
//   fleet_rollbacks_total{subject,state}    counter
//   fleet_rollback_duration_seconds{subject}   histogram, created to finished
//   fleet_probe_failures_total{app}         counter: host.failed and
//                                           host.switched_back events
//   fleet_artifact_bytes_served_total       counter
#ifndef FLEET_CONTROLLER_METRICS_H_
#define FLEET_CONTROLLER_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "controller/agent_hub.h"
#include "controller/rollout_engine.h"
#include "controller/store.h"

namespace fleet::controller {

// The content type of Render()'s output (Prometheus text format 0.0.4).
inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4";

// Thread-safe: the observer methods run on the engine's threads (with the
// engine's lock held; they only bump in-memory metrics and never block),
// AddArtifactBytesServed on gRPC threads and Render on HTTP threads, all at
// the same time.
class Metrics : public EngineObserver {
 public:
  // `store` and `hub` are borrowed and must outlive this object; they are
  // only read by Render().
  Metrics(Store* store, AgentHub* hub);

  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // EngineObserver.
  void OnEvents(const std::vector<EngineEvent>& events) override;
  void OnRolloutFinished(const fleet::v1::Rollout& rollout) override;

  // Counts `bytes` of artifact data written to an agent. For
  // AgentHub::set_bytes_served_hook; cheap (one atomic add).
  void AddArtifactBytesServed(int64_t bytes);

  // Every family in the Prometheus text format, with the gauges read from
  // the hub and the store now, and fleet_probe_failures_total at 0 for
  // every app the store knows and that never failed. On error (the store
  // cannot list the running rollouts or the apps) returns that error and
  // nothing is rendered: a scrape with wrong numbers is worse than a failed
  // one.
  absl::StatusOr<std::string> Render();

 private:
  Store* const store_;
  AgentHub* const hub_;
  // Owns every family; the references below point into it.
  std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Gauge& agents_connected_;
  prometheus::Family<prometheus::Gauge>& rollouts_;
  prometheus::Family<prometheus::Counter>& rollouts_finished_;
  prometheus::Family<prometheus::Counter>& host_deployments_;
  prometheus::Family<prometheus::Counter>& rollbacks_;
  prometheus::Family<prometheus::Histogram>& rollback_duration_;
  prometheus::Family<prometheus::Counter>& probe_failures_;
  prometheus::Counter& artifact_bytes_served_;

  // Render() sets the scrape-time gauges and then collects; one scrape at a
  // time, so that concurrent scrapes never see each other's half-set gauges.
  absl::Mutex render_mu_;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_METRICS_H_
