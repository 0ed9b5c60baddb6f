#include "common/event_kind.h"

#include <iterator>

namespace fleet {
namespace {

struct KindName {
  EventKind kind;
  const char* name;
};

// Every kind once, in enum order.
constexpr KindName kKindNames[] = {
    {EventKind::kRolloutStarted, "rollout.started"},
    {EventKind::kRolloutPaused, "rollout.paused"},
    {EventKind::kRolloutResumed, "rollout.resumed"},
    {EventKind::kRolloutPromoted, "rollout.promoted"},
    {EventKind::kRolloutWaiting, "rollout.waiting"},
    {EventKind::kRolloutAborted, "rollout.aborted"},
    {EventKind::kRolloutSucceeded, "rollout.succeeded"},
    {EventKind::kRolloutFailed, "rollout.failed"},
    {EventKind::kRolloutRolledBack, "rollout.rolled_back"},
    {EventKind::kRolloutRollbackIncomplete, "rollout.rollback_incomplete"},
    {EventKind::kWaveStarted, "wave.started"},
    {EventKind::kWaveFinished, "wave.finished"},
    {EventKind::kRollbackStarted, "rollback.started"},
    {EventKind::kRollbackSucceeded, "rollback.succeeded"},
    {EventKind::kRollbackFailed, "rollback.failed"},
    {EventKind::kHostStaged, "host.staged"},
    {EventKind::kHostStageFailed, "host.stage_failed"},
    {EventKind::kHostHealthy, "host.healthy"},
    {EventKind::kHostFailed, "host.failed"},
    {EventKind::kHostSwitchedBack, "host.switched_back"},
    {EventKind::kHostLost, "host.lost"},
    {EventKind::kHostReverted, "host.reverted"},
    {EventKind::kHostRevertFailed, "host.revert_failed"},
    {EventKind::kHostConnected, "host.connected"},
    {EventKind::kHostDisconnected, "host.disconnected"},
    {EventKind::kHostCatchUp, "host.catch_up"},
    {EventKind::kHostReconcile, "host.reconcile"},
    {EventKind::kHostReconciled, "host.reconciled"},
    {EventKind::kHostReconcileFailed, "host.reconcile_failed"},
    {EventKind::kHostLocalRollback, "host.local_rollback"},
    {EventKind::kHostHoldReleased, "host.hold_released"},
    {EventKind::kAnalysisCheckFailed, "analysis.check_failed"},
    {EventKind::kAnalysisFailed, "analysis.failed"},
    {EventKind::kAnalysisInconclusive, "analysis.inconclusive"},
    {EventKind::kAlertRollback, "alert.rollback"},
    {EventKind::kAlertFailed, "alert.failed"},
    {EventKind::kAlertIgnored, "alert.ignored"},
    {EventKind::kNotifyDelivered, "notify.delivered"},
    {EventKind::kNotifyFailed, "notify.failed"},
    {EventKind::kAppCreated, "app.created"},
    {EventKind::kAppUpdated, "app.updated"},
    {EventKind::kReleasePushed, "release.pushed"},
    {EventKind::kConfigPushed, "config.pushed"},
    {EventKind::kTokenCreated, "token.created"},
    {EventKind::kTokenRevoked, "token.revoked"},
    {EventKind::kAuthDenied, "auth.denied"},
};

}  // namespace

std::vector<std::string> EventKindNames() {
  std::vector<std::string> names;
  for (const KindName& k : kKindNames) names.push_back(k.name);
  return names;
}

const char* EventKindName(EventKind kind) {
  const auto index = static_cast<size_t>(kind);
  return index < std::size(kKindNames) ? kKindNames[index].name : "unknown";
}

std::optional<EventKind> ParseEventKind(absl::string_view name) {
  for (const KindName& k : kKindNames) {
    if (name == k.name) return k.kind;
  }
  return std::nullopt;
}

}  // namespace fleet
