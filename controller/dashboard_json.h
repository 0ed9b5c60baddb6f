// Rollouts as the dashboard's API shows them (dashboard_api.h): the
// message in protobuf's JSON mapping, each task with its phase, and the
// progress counted on the server so that a page of 10,000 hosts need not
// fetch every task to show it. Pure; any thread.
#ifndef FLEET_CONTROLLER_DASHBOARD_JSON_H_
#define FLEET_CONTROLLER_DASHBOARD_JSON_H_

#include <nlohmann/json.hpp>

#include "fleet/v1/api.pb.h"

namespace fleet::controller {

// ToJson(r) with, when `r` has tasks, "progress": {"done", "failed",
// "switching", "pending", "total", "changing"} over them ("changing":
// hosts whose task moves them to another version; TaskPhaseOf for the
// rest), and with `with_tasks` its tasks, each with "phase"; without it
// "tasks" is [].
nlohmann::json RolloutJson(const fleet::v1::Rollout& r, bool with_tasks);

// An update of WatchRollout: {"snapshot", "rollout": RolloutJson(rollout,
// with its tasks), "events"}.
nlohmann::json RolloutUpdateJson(const fleet::v1::RolloutUpdate& update);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_DASHBOARD_JSON_H_
