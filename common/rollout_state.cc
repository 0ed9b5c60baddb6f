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

}  // namespace fleet
