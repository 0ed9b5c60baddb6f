// Builds the commands the engine sends to agents from a rollout's task:
// one builder for stage and for activate (deploy, revert, rollback and
// catch-up alike), and the one function that turns a command's typed ref
// into the opaque key agents answer idempotently.
#ifndef FLEET_CONTROLLER_COMMAND_BUILDER_H_
#define FLEET_CONTROLLER_COMMAND_BUILDER_H_

#include <optional>
#include <string>

#include "fleet/v1/agent.pb.h"
#include "fleet/v1/api.pb.h"

namespace fleet::controller {

// "<rollout>/<host>/<phase>": unique per rollout, host and phase, so an agent
// that completed it answers with its stored result. Never parsed back:
// results carry the ref itself.
std::string CommandKey(const fleet::v1::CommandRef& ref);

// What a stage command ships: the release, or the config release.
struct StagePayload {
  std::optional<fleet::v1::Release> release;
  std::optional<fleet::v1::ConfigRelease> config;
};

// The commands of one rollout `r` of app `app`, for any of its tasks; the
// spec the agents get (SpecForAgent) is made once, not once per host.
class CommandBuilder {
 public:
  // `r` and `app` are borrowed and must outlive the builder.
  // `rollback_target` is the version of r's subject that `fleetctl
  // rollback` would go to now (RollbackTargets), "" for none.
  CommandBuilder(const fleet::v1::Rollout& r, const fleet::v1::App& app, StagePayload stage,
                 std::string rollback_target = "");

  // The command for `ref` of task `task`:
  //  - STAGE: download and unpack the rollout's version (the stage payload
  //    must hold it);
  //  - ACTIVATE: switch to task.to_version; a deploy or catch-up probes
  //    through the bake and switches back on failure, a rollback switches
  //    and probes once;
  //  - REVERT: switch back to task.from_version (rollback mode).
  // Retention keeps the task's from_version, the app's desired version and
  // the rollback target, which activations also name (rollback_target).
  // nullopt when the payload the phase needs is missing.
  std::optional<fleet::v1::Command> Build(const fleet::v1::HostTask& task,
                                          const fleet::v1::CommandRef& ref) const;

 private:
  void FillActivate(const fleet::v1::HostTask& task, bool revert,
                    fleet::v1::ActivateCommand* a) const;

  const fleet::v1::Rollout& r_;
  const fleet::v1::App& app_;
  const StagePayload stage_;
  const fleet::v1::AppSpec spec_;  // SpecForAgent of the app's
  const std::string rollback_target_;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_COMMAND_BUILDER_H_
