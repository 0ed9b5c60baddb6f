// The kinds of audit events, shared by the controller's engine, audit log,
// notifier and metrics and by fleetctl. An event is stored and sent with its
// kind's name ("rollout.started"); code compares the enum, never the text.
#ifndef FLEET_COMMON_EVENT_KIND_H_
#define FLEET_COMMON_EVENT_KIND_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace fleet {

enum class EventKind {
  // A deploy rollout.
  kRolloutStarted,
  kRolloutPaused,
  kRolloutResumed,
  kRolloutPromoted,
  kRolloutWaiting,  // a wave is done and the rollout waits for promote
  kRolloutAborted,
  kRolloutSucceeded,
  kRolloutFailed,
  kRolloutRolledBack,
  kRolloutRollbackIncomplete,
  kWaveStarted,
  kWaveFinished,
  // A rollback.
  kRollbackStarted,
  kRollbackSucceeded,
  kRollbackFailed,
  // One host's part.
  kHostStaged,
  kHostStageFailed,
  kHostHealthy,
  kHostFailed,
  kHostSwitchedBack,
  kHostLost,
  kHostReverted,
  kHostRevertFailed,
  kHostConnected,
  kHostDisconnected,
  kHostCatchUp,       // a host that missed the fleet's version is brought to it
  kHostReconcile,     // ... switching it to a version already on its disk
  kHostReconciled,    // ... and now runs it
  kHostReconcileFailed,
  kHostLocalRollback,   // someone rolled the host back on the host itself
  kHostHoldReleased,    // ... and the controller may bring it back now
  // Analysis and alerts.
  kAnalysisCheckFailed,
  kAnalysisFailed,
  kAnalysisInconclusive,
  kAlertRollback,
  kAlertFailed,
  kAlertIgnored,
  // Notifications, the catalog and access.
  kNotifyDelivered,
  kNotifyFailed,
  kAppCreated,
  kAppUpdated,
  kReleasePushed,
  kConfigPushed,
  kTokenCreated,
  kTokenRevoked,
  kAuthDenied,
};

// "rollout.started", "host.switched_back", ...: the name stored and sent.
const char* EventKindName(EventKind kind);

// Every kind's name, in enum order.
std::vector<std::string> EventKindNames();

// The kind named `name`; nullopt for a name no kind has (an event written
// by a newer controller).
std::optional<EventKind> ParseEventKind(absl::string_view name);

}  // namespace fleet

#endif  // FLEET_COMMON_EVENT_KIND_H_
