#include "common/rollout_state.h"

#include "absl/strings/ascii.h"

namespace fleet {
namespace {

std::string WithoutPrefix(const std::string& name, size_t prefix) {
  return absl::AsciiStrToLower(name.substr(prefix));
}

}  // namespace

std::string RolloutStateName(fleet::v1::RolloutState state) {
  return WithoutPrefix(fleet::v1::RolloutState_Name(state), sizeof("ROLLOUT_STATE_") - 1);
}

std::string TaskStateName(fleet::v1::TaskState state) {
  return WithoutPrefix(fleet::v1::TaskState_Name(state), sizeof("TASK_STATE_") - 1);
}

bool IsTerminal(fleet::v1::RolloutState state) {
  return state == fleet::v1::ROLLOUT_STATE_SUCCEEDED ||
         state == fleet::v1::ROLLOUT_STATE_ROLLED_BACK || state == fleet::v1::ROLLOUT_STATE_FAILED;
}

TaskPhase TaskPhaseOf(fleet::v1::TaskState state) {
  switch (state) {
    case fleet::v1::TASK_STATE_HEALTHY:
    case fleet::v1::TASK_STATE_REVERTED:
      return TaskPhase::kDone;
    case fleet::v1::TASK_STATE_FAILED:
    case fleet::v1::TASK_STATE_LOST:
    case fleet::v1::TASK_STATE_REVERT_FAILED:
      return TaskPhase::kFailed;
    case fleet::v1::TASK_STATE_ACTIVATING:
    case fleet::v1::TASK_STATE_REVERTING:
      return TaskPhase::kSwitching;
    default:
      return TaskPhase::kPending;
  }
}

const char* TaskPhaseName(TaskPhase phase) {
  switch (phase) {
    case TaskPhase::kDone:
      return "done";
    case TaskPhase::kFailed:
      return "failed";
    case TaskPhase::kSwitching:
      return "switching";
    case TaskPhase::kPending:
      return "pending";
  }
  return "pending";
}

}  // namespace fleet
