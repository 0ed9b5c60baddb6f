// Names and classes of rollout and task states, shared by the controller
// and fleetctl so both speak of states the same way.
#ifndef FLEET_COMMON_ROLLOUT_STATE_H_
#define FLEET_COMMON_ROLLOUT_STATE_H_

#include <string>

#include "fleet/v1/types.pb.h"

namespace fleet {

// "succeeded", "rolled_back", ... (the enum name without its prefix, lowercase).
std::string RolloutStateName(fleet::v1::RolloutState state);
// "healthy", "reverted", ...
std::string TaskStateName(fleet::v1::TaskState state);

// SUCCEEDED, ROLLED_BACK and FAILED: nothing happens to the rollout any more.
bool IsTerminal(fleet::v1::RolloutState state);

// Where a host's task stands, as progress is shown (fleetctl's wave lines,
// the dashboard): done (healthy, reverted), failed (failed, lost, revert
// failed), switching (activating, reverting) or pending (everything else).
enum class TaskPhase { kDone, kFailed, kSwitching, kPending };
TaskPhase TaskPhaseOf(fleet::v1::TaskState state);
// "done", "failed", "switching", "pending".
const char* TaskPhaseName(TaskPhase phase);

}  // namespace fleet

#endif  // FLEET_COMMON_ROLLOUT_STATE_H_
