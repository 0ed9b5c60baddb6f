#include "controller/command_builder.h"

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

namespace {

void FillActivate(const fleet::v1::Rollout& r, const fleet::v1::HostTask& task, bool revert,
                  const fleet::v1::App& app, ActivateCommand* a) {
  *a->mutable_spec() = SpecForAgent(app.spec());
  a->set_version(revert ? task.from_version() : task.to_version());
  a->set_subject(r.subject());
  const bool probes_through_bake = !revert && r.kind() != fleet::v1::ROLLOUT_KIND_ROLLBACK;
  a->set_mode(probes_through_bake ? fleet::v1::ACTIVATE_MODE_DEPLOY
                                  : fleet::v1::ACTIVATE_MODE_ROLLBACK);
  if (probes_through_bake) {
    a->set_bake_ms(r.plan().bake_ms());
    a->set_has_bake(true);
  }
  if (!task.from_version().empty()) a->add_keep(task.from_version());
  const std::string& desired = DesiredVersion(app, r.subject());
  if (!desired.empty() && desired != task.from_version()) a->add_keep(desired);
}

}  // namespace

std::optional<Command> BuildCommand(const fleet::v1::Rollout& r, const fleet::v1::HostTask& task,
                                    const CommandRef& ref, const fleet::v1::App& app,
                                    const StagePayload& stage) {
  Command cmd;
  cmd.set_id(CommandKey(ref));
  cmd.set_rollout_id(r.id());
  *cmd.mutable_ref() = ref;
  switch (ref.phase()) {
    case fleet::v1::COMMAND_PHASE_STAGE:
      *cmd.mutable_stage()->mutable_spec() = SpecForAgent(app.spec());
      if (r.subject() == fleet::v1::SUBJECT_CONFIG && stage.config) {
        *cmd.mutable_stage()->mutable_config() = *stage.config;
      } else if (r.subject() == fleet::v1::SUBJECT_RELEASE && stage.release) {
        *cmd.mutable_stage()->mutable_release() = *stage.release;
      } else {
        return std::nullopt;
      }
      return cmd;
    case fleet::v1::COMMAND_PHASE_ACTIVATE:
    case fleet::v1::COMMAND_PHASE_REVERT:
      FillActivate(r, task, ref.phase() == fleet::v1::COMMAND_PHASE_REVERT, app,
                   cmd.mutable_activate());
      return cmd;
    default:
      return std::nullopt;
  }
}

}  // namespace fleet::controller
