#include "controller/rollback_targets.h"

#include <vector>

#include "common/logging.h"
#include "controller/rollout_planner.h"

namespace fleet::controller {

std::string RollbackTargets::Get(const fleet::v1::App& app, fleet::v1::Subject subject) {
  const std::string& name = app.spec().name();
  Key key{name, subject, DesiredVersion(app, subject)};
  if (auto it = known_.find(key); it != known_.end()) return it->second;
  absl::StatusOr<std::vector<fleet::v1::Rollout>> history =
      store_->ListRollouts(name, 0, /*with_tasks=*/false);
  if (!history.ok()) {
    spdlog::warn("cannot read the history of {} for its rollback target: {}", name,
                 history.status().message());
    return "";
  }
  absl::StatusOr<std::string> target = DefaultRollbackTarget(app, subject, *history);
  // No target (nothing before the desired version) is an answer too.
  return known_[key] = target.ok() ? *target : "";
}

void RollbackTargets::Forget(const std::string& app) {
  for (auto it = known_.begin(); it != known_.end();) {
    it = std::get<0>(it->first) == app ? known_.erase(it) : std::next(it);
  }
}

}  // namespace fleet::controller
