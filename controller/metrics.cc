#include "controller/metrics.h"

#include <prometheus/text_serializer.h>

#include <map>

#include "common/event_kind.h"
#include "common/rollout_state.h"
#include "common/status.h"

namespace fleet::controller {
namespace {

// The event kinds that end a host's part in a rollout, and their `result`
// label (the kind's name without "host.").
struct HostResult {
  EventKind kind;
  const char* label;
};
constexpr HostResult kHostResults[] = {
    {EventKind::kHostHealthy, "healthy"},
    {EventKind::kHostFailed, "failed"},
    {EventKind::kHostSwitchedBack, "switched_back"},
    {EventKind::kHostLost, "lost"},
    {EventKind::kHostReverted, "reverted"},
    {EventKind::kHostRevertFailed, "revert_failed"},
    {EventKind::kHostStageFailed, "stage_failed"},
};

// What the `state` label of fleet_rollouts can be: the non-terminal states.
constexpr fleet::v1::RolloutState kRunningStates[] = {
    fleet::v1::ROLLOUT_STATE_STAGING,
    fleet::v1::ROLLOUT_STATE_ACTIVATING,
    fleet::v1::ROLLOUT_STATE_PAUSED,
    fleet::v1::ROLLOUT_STATE_ROLLING_BACK,
};

constexpr fleet::v1::RolloutState kFinishedStates[] = {
    fleet::v1::ROLLOUT_STATE_SUCCEEDED,
    fleet::v1::ROLLOUT_STATE_ROLLED_BACK,
    fleet::v1::ROLLOUT_STATE_FAILED,
};

constexpr fleet::v1::Subject kSubjects[] = {fleet::v1::SUBJECT_RELEASE, fleet::v1::SUBJECT_CONFIG};

prometheus::Histogram::BucketBoundaries RollbackBuckets() {
  return {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}

std::string SubjectLabel(fleet::v1::Subject subject) {
  return subject == fleet::v1::SUBJECT_CONFIG ? "config" : "release";
}

// "rollout" (a deploy), "rollback" or "catch_up" (a host brought to the
// fleet's release when it reconnected).
std::string KindLabel(fleet::v1::RolloutKind kind) {
  switch (kind) {
    case fleet::v1::ROLLOUT_KIND_ROLLBACK:
      return "rollback";
    case fleet::v1::ROLLOUT_KIND_CATCH_UP:
      return "catch_up";
    default:
      return "rollout";
  }
}

// The `result` label of `kind`; nullptr when it does not end a host's part.
const char* HostResultLabel(EventKind kind) {
  for (const HostResult& r : kHostResults) {
    if (kind == r.kind) return r.label;
  }
  return nullptr;
}

}  // namespace

Metrics::Metrics(Store* store, AgentHub* hub)
    : store_(store),
      hub_(hub),
      registry_(std::make_shared<prometheus::Registry>()),
      agents_connected_(prometheus::BuildGauge()
                            .Name("fleet_agents_connected")
                            .Help("Hosts whose agent has a stream to the controller now.")
                            .Register(*registry_)
                            .Add({})),
      rollouts_(prometheus::BuildGauge()
                    .Name("fleet_rollouts")
                    .Help("Running rollouts and rollbacks by state.")
                    .Register(*registry_)),
      rollouts_finished_(prometheus::BuildCounter()
                             .Name("fleet_rollouts_finished_total")
                             .Help("Rollouts and rollbacks that reached a final state.")
                             .Register(*registry_)),
      host_deployments_(prometheus::BuildCounter()
                            .Name("fleet_host_deployments_total")
                            .Help("Hosts that finished their part of a rollout, by result.")
                            .Register(*registry_)),
      rollbacks_(prometheus::BuildCounter()
                     .Name("fleet_rollbacks_total")
                     .Help("Rollbacks that reached a final state.")
                     .Register(*registry_)),
      rollback_duration_(prometheus::BuildHistogram()
                             .Name("fleet_rollback_duration_seconds")
                             .Help("Time from a rollback's creation to its final state.")
                             .Register(*registry_)),
      probe_failures_(prometheus::BuildCounter()
                          .Name("fleet_probe_failures_total")
                          .Help("Hosts whose probes or hooks failed during activation, by app.")
                          .Register(*registry_)),
      artifact_bytes_served_(prometheus::BuildCounter()
                                 .Name("fleet_artifact_bytes_served_total")
                                 .Help("Artifact bytes streamed to agents.")
                                 .Register(*registry_)
                                 .Add({})) {
  // Every series with a fixed label set exists from the start, at 0, so
  // that rate() and alerts see the first increment.
  for (fleet::v1::RolloutState state : kRunningStates) {
    rollouts_.Add({{"state", RolloutStateName(state)}});
  }
  for (const HostResult& result : kHostResults) host_deployments_.Add({{"result", result.label}});
  for (fleet::v1::Subject subject : kSubjects) {
    const std::string s = SubjectLabel(subject);
    rollback_duration_.Add({{"subject", s}}, RollbackBuckets());
    for (fleet::v1::RolloutState state : kFinishedStates) {
      const std::string st = RolloutStateName(state);
      rollbacks_.Add({{"subject", s}, {"state", st}});
      for (fleet::v1::RolloutKind kind :
           {fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_KIND_ROLLBACK,
            fleet::v1::ROLLOUT_KIND_CATCH_UP}) {
        rollouts_finished_.Add({{"kind", KindLabel(kind)}, {"subject", s}, {"state", st}});
      }
    }
  }
}

void Metrics::OnEvents(const std::vector<EngineEvent>& events) {
  // Family::Add returns the existing series for known labels; it and
  // Increment are thread-safe and take only prometheus-cpp's short locks.
  for (const EngineEvent& e : events) {
    const char* result = HostResultLabel(e.event_kind);
    if (result == nullptr) continue;
    host_deployments_.Add({{"result", result}}).Increment();
    // host.failed also covers a host that timed out before it switched; the
    // event does not say which phase failed, and such a host is rare.
    if (e.event_kind == EventKind::kHostFailed || e.event_kind == EventKind::kHostSwitchedBack) {
      probe_failures_.Add({{"app", e.event.app()}}).Increment();
    }
  }
}

void Metrics::OnRolloutFinished(const fleet::v1::Rollout& rollout) {
  const std::string subject = SubjectLabel(rollout.subject());
  const std::string state = RolloutStateName(rollout.state());
  rollouts_finished_
      .Add({{"kind", KindLabel(rollout.kind())}, {"subject", subject}, {"state", state}})
      .Increment();
  if (rollout.kind() != fleet::v1::ROLLOUT_KIND_ROLLBACK) return;
  rollbacks_.Add({{"subject", subject}, {"state", state}}).Increment();
  if (rollout.finished_at_ms() >= rollout.created_at_ms()) {
    rollback_duration_.Add({{"subject", subject}}, RollbackBuckets())
        .Observe(static_cast<double>(rollout.finished_at_ms() - rollout.created_at_ms()) / 1000.0);
  }
}

void Metrics::AddArtifactBytesServed(int64_t bytes) {
  if (bytes > 0) artifact_bytes_served_.Increment(static_cast<double>(bytes));
}

absl::StatusOr<std::string> Metrics::Render() {
  auto active = store_->ListActiveRollouts();
  if (!active.ok()) return Annotate(active.status(), "cannot list the running rollouts");
  auto apps = store_->ListApps();
  if (!apps.ok()) return Annotate(apps.status(), "cannot list the apps");
  std::map<std::string, int> running;
  for (fleet::v1::RolloutState state : kRunningStates) running[RolloutStateName(state)] = 0;
  for (const fleet::v1::Rollout& r : *active) {
    auto it = running.find(RolloutStateName(r.state()));
    if (it != running.end()) ++it->second;
  }

  absl::MutexLock lock(&render_mu_);
  agents_connected_.Set(hub_->ConnectedHostCount());
  for (const auto& [state, count] : running) rollouts_.Add({{"state", state}}).Set(count);
  // An app's first probe failure then shows as an increase from 0.
  for (const fleet::v1::App& app : *apps) probe_failures_.Add({{"app", app.spec().name()}});
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace fleet::controller
