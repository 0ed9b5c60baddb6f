#include "controller/dashboard_json.h"

#include "common/rollout_state.h"
#include "controller/dashboard_http.h"

namespace fleet::controller {

nlohmann::json RolloutJson(const fleet::v1::Rollout& r, bool with_tasks) {
  nlohmann::json out = ToJson(r);
  nlohmann::json tasks = nlohmann::json::array();
  if (r.tasks_size() > 0) {
    nlohmann::json progress = {{"done", 0},    {"failed", 0}, {"switching", 0},
                               {"pending", 0}, {"total", 0},  {"changing", 0}};
    const nlohmann::json& listed = out["tasks"];
    for (int i = 0; i < r.tasks_size(); ++i) {
      const fleet::v1::HostTask& t = r.tasks(i);
      const char* phase = TaskPhaseName(TaskPhaseOf(t.state()));
      progress[phase] = progress[phase].get<int>() + 1;
      if (t.from_version() != t.to_version()) {
        progress["changing"] = progress["changing"].get<int>() + 1;
      }
      if (with_tasks) {
        nlohmann::json task = listed[i];
        task["phase"] = phase;
        tasks.push_back(std::move(task));
      }
    }
    progress["total"] = r.tasks_size();
    out["progress"] = std::move(progress);
  }
  out["tasks"] = std::move(tasks);
  return out;
}

nlohmann::json RolloutUpdateJson(const fleet::v1::RolloutUpdate& update) {
  nlohmann::json out = ToJson(update);
  out["rollout"] = RolloutJson(update.rollout(), /*with_tasks=*/true);
  // A partial update's counts cover only the tasks it carries.
  if (!update.snapshot()) out["rollout"].erase("progress");
  return out;
}

}  // namespace fleet::controller
