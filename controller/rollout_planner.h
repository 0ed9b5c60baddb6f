// What a new rollout looks like before anything is stored: the plan of a
// deploy (waves, threshold, bake), the tasks of a deploy, a rollback and a
// catch-up, and the checks that refuse a rollback up front. Pure: the
// engine reads the store and the hub, calls these, then persists.
#ifndef FLEET_CONTROLLER_ROLLOUT_PLANNER_H_
#define FLEET_CONTROLLER_ROLLOUT_PLANNER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fleet/v1/api.pb.h"

namespace fleet::controller {

// Resolves the rollout plan: waves (cumulative, rounded up, each adding at
// least one host, the last covering every host), failure threshold,
// parallelism, bake and host timeout; the request overrides the app spec,
// which overrides the defaults (1,100%; 0 failures; the spec's bake).
// InvalidArgument names the bad value.
absl::StatusOr<fleet::v1::RolloutPlan> BuildRolloutPlan(const fleet::v1::StartRolloutRequest& req,
                                                        const fleet::v1::AppSpec& spec, int hosts,
                                                        absl::Duration default_host_timeout);

// The app's desired version of `subject`.
const std::string& DesiredVersion(const fleet::v1::App& app, fleet::v1::Subject subject);
// What a host runs of `subject`, and whether `version` is on its disk (or
// linked).
const std::string& HostCurrent(const fleet::v1::HostAppState& state, fleet::v1::Subject subject);
bool HostHas(const fleet::v1::HostAppState& state, fleet::v1::Subject subject,
             const std::string& version);

using IsConnectedFn = std::function<bool(const std::string& host_id)>;

// A deploy of req.version of `app` to the hosts matching req.selector
// (connected ones; *skipped gets the disconnected), planned and with tasks
// in waves, in STAGING. FailedPrecondition when no connected host matches;
// InvalidArgument for a bad selector or plan.
absl::StatusOr<fleet::v1::Rollout> PlanDeploy(const fleet::v1::StartRolloutRequest& req,
                                              const fleet::v1::App& app,
                                              const std::vector<fleet::v1::Host>& hosts,
                                              const IsConnectedFn& connected, absl::Time now,
                                              absl::Duration host_timeout,
                                              std::vector<std::string>* skipped);

// The version of `subject` a rollback goes to by default: the last
// successful one before the current, skipping versions an earlier
// rollback moved away from. `rollouts` newest first. FailedPrecondition
// when there is none.
absl::StatusOr<std::string> DefaultRollbackTarget(const fleet::v1::App& app,
                                                  fleet::v1::Subject subject,
                                                  const std::vector<fleet::v1::Rollout>& rollouts);

// Whether a rollout (deploy or rollback) of `version` of `subject`
// succeeded: a release no host ever ran is not a rollback target.
bool WasReleased(const std::vector<fleet::v1::Rollout>& rollouts, fleet::v1::Subject subject,
                 const std::string& version);

// A rollback of `app`'s `subject` to `target` on every connected host that
// has the app, in ACTIVATING with one wave. Refused up front, with nothing
// planned, when a target host lacks `target` on its disk
// (FailedPrecondition listing those hosts) or no connected host has the app.
absl::StatusOr<fleet::v1::Rollout> PlanRollback(const fleet::v1::RollbackRequest& req,
                                                const fleet::v1::App& app,
                                                const std::string& target,
                                                const std::vector<fleet::v1::Host>& hosts,
                                                const IsConnectedFn& connected, absl::Time now,
                                                absl::Duration host_timeout,
                                                std::vector<std::string>* skipped);

// A catch-up of `host`'s app `state` to the fleet's desired version of
// `subject`: one task, STAGED (then ACTIVATING) when the version is on its
// disk, else PENDING (STAGING).
fleet::v1::Rollout PlanCatchUp(const fleet::v1::App& app, fleet::v1::Subject subject,
                               const std::string& host_id, const fleet::v1::HostAppState& state,
                               absl::Time now, absl::Duration host_timeout);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_ROLLOUT_PLANNER_H_
