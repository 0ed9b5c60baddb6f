#include "controller/command_builder.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "controller/agent_spec.h"
#include "controller/rollout_planner.h"

namespace fleet::controller {

using fleet::v1::ActivateCommand;
using fleet::v1::Command;
using fleet::v1::CommandRef;

std::string CommandKey(const CommandRef& ref) {
  absl::string_view phase = fleet::v1::CommandPhase_Name(ref.phase());
  absl::ConsumePrefix(&phase, "COMMAND_PHASE_");
  return absl::StrCat(ref.rollout_id(), "/", ref.host_id(), "/", absl::AsciiStrToLower(phase));
}

CommandBuilder::CommandBuilder(const fleet::v1::Rollout& r, const fleet::v1::App& app,
                               StagePayload stage, std::string rollback_target)
    : r_(r),
      app_(app),
      stage_(std::move(stage)),
      spec_(SpecForAgent(app.spec())),
      rollback_target_(std::move(rollback_target)) {}

void CommandBuilder::FillActivate(const fleet::v1::HostTask& task, bool revert,
                                  ActivateCommand* a) const {
  *a->mutable_spec() = spec_;
  a->set_version(revert ? task.from_version() : task.to_version());
  a->set_subject(r_.subject());
  const bool probes_through_bake = !revert && r_.kind() != fleet::v1::ROLLOUT_KIND_ROLLBACK;
  a->set_mode(probes_through_bake ? fleet::v1::ACTIVATE_MODE_DEPLOY
                                  : fleet::v1::ACTIVATE_MODE_ROLLBACK);
  if (probes_through_bake) {
    a->set_bake_ms(r_.plan().bake_ms());
    a->set_has_bake(true);
  }
  if (!task.from_version().empty()) a->add_keep(task.from_version());
  const std::string& desired = DesiredVersion(app_, r_.subject());
  if (!desired.empty() && desired != task.from_version()) a->add_keep(desired);
  // The fleet's rollback target stays on every host, or a rollback after a
  // few failed rollouts finds it pruned on the hosts that tried them.
  a->set_rollback_target(rollback_target_);
}

std::optional<Command> CommandBuilder::Build(const fleet::v1::HostTask& task,
                                             const CommandRef& ref) const {
  Command cmd;
  cmd.set_id(CommandKey(ref));
  cmd.set_rollout_id(r_.id());
  *cmd.mutable_ref() = ref;
  switch (ref.phase()) {
    case fleet::v1::COMMAND_PHASE_STAGE:
      if (r_.subject() == fleet::v1::SUBJECT_CONFIG && stage_.config) {
        *cmd.mutable_stage()->mutable_config() = *stage_.config;
      } else if (r_.subject() == fleet::v1::SUBJECT_RELEASE && stage_.release) {
        *cmd.mutable_stage()->mutable_release() = *stage_.release;
      } else {
        return std::nullopt;
      }
      *cmd.mutable_stage()->mutable_spec() = spec_;
      return cmd;
    case fleet::v1::COMMAND_PHASE_ACTIVATE:
    case fleet::v1::COMMAND_PHASE_REVERT:
      FillActivate(task, ref.phase() == fleet::v1::COMMAND_PHASE_REVERT, cmd.mutable_activate());
      return cmd;
    default:
      return std::nullopt;
  }
}

}  // namespace fleet::controller
