// Break-glass rollback on the host (Deployer::RollBackLocally, see
// deployer.h): the same rollback-mode activation the controller sends, run
// from the app's record when the controller cannot be asked.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/deployer.h"
#include "agent/deployer_internal.h"
#include "common/fs.h"
#include "common/logging.h"

namespace fleet::agent {

using fleet::v1::AgentAppRecord;
using fleet::v1::LocalRollback;
using fleet::v1::LocalRollbackReply;
using fleet::v1::LocalRollbackRequest;

void Deployer::RememberSpec(const fleet::v1::AppSpec& spec) {
  AgentAppRecord record = state_.LoadApp(spec.name());
  if (record.spec().SerializeAsString() == spec.SerializeAsString()) return;
  *record.mutable_spec() = spec;
  absl::Status st = state_.SaveApp(record);
  if (!st.ok()) spdlog::warn("cannot keep the spec of {}: {}", spec.name(), st.message());
}

absl::StatusOr<std::string> Deployer::LocalRollbackTarget(const AppLayout& layout,
                                                          const AgentAppRecord& record,
                                                          const std::string& current) const {
  const std::vector<std::string> on_disk = layout.ListStaged(fleet::v1::SUBJECT_RELEASE);
  for (const std::string* candidate :
       {&record.previous_release(), &record.rollback_target(), &record.last_known_good()}) {
    if (candidate->empty() || *candidate == current) continue;
    if (std::find(on_disk.begin(), on_disk.end(), *candidate) != on_disk.end()) return *candidate;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "no earlier release of ", layout.app(), " on disk on host ", options_.host_id,
      " to roll back to (current: ", current.empty() ? "none" : current,
      "; on disk: ", on_disk.empty() ? "none" : absl::StrJoin(on_disk, ", "),
      "); name one with --to VERSION"));
}

LocalRollbackReply Deployer::RollBackLocally(const LocalRollbackRequest& req,
                                             const std::string& actor) {
  LocalRollbackReply reply;
  if (!IsSafeName(req.app())) {
    reply.set_message(absl::StrCat("invalid app name '", req.app(), "'"));
    return reply;
  }
  if (!req.to_version().empty() && !IsSafeName(req.to_version())) {
    reply.set_message(absl::StrCat("invalid version '", req.to_version(), "'"));
    return reply;
  }
  absl::MutexLock app_lock(AppMutex(req.app()));
  AgentAppRecord record = state_.LoadApp(req.app());
  AppLayout layout(options_.apps_root, req.app());
  if (!record.has_spec()) {
    reply.set_message(absl::StrCat(
        "app ", req.app(), " has no spec on host ", options_.host_id,
        ": this agent never ran a command of it (apps here: ",
        absl::StrJoin(ListAppDirs(options_.apps_root), ", "), ")"));
    return reply;
  }
  const std::string current = layout.CurrentRelease().value_or("");
  std::string target = req.to_version();
  if (target.empty()) {
    absl::StatusOr<std::string> found = LocalRollbackTarget(layout, record, current);
    if (!found.ok()) {
      reply.set_message(std::string(found.status().message()));
      return reply;
    }
    target = *found;
  }
  if (target == current) {
    reply.set_message(absl::StrCat(req.app(), " already runs ", target, " on host ",
                                   options_.host_id, "; nothing changed"));
    return reply;
  }
  const int64_t at_ms = absl::ToUnixMillis(clock_->Now());
  fleet::v1::Command command;
  command.set_id(absl::StrCat("local-", req.app(), "-", at_ms));
  fleet::v1::ActivateCommand* a = command.mutable_activate();
  *a->mutable_spec() = record.spec();
  a->set_version(target);
  a->set_mode(fleet::v1::ACTIVATE_MODE_ROLLBACK);
  a->set_subject(fleet::v1::SUBJECT_RELEASE);
  // Retention keeps what the host ran and what the fleet would roll back to.
  if (!current.empty()) a->add_keep(current);
  a->set_rollback_target(record.rollback_target());
  spdlog::warn("{}: break-glass rollback of {} from {} to {} by {}{}", options_.host_id,
               req.app(), current.empty() ? "(none)" : current, target, actor,
               req.reason().empty() ? "" : absl::StrCat(": ", req.reason()));
  fleet::v1::CommandResult result =
      ExecuteLocked(command, req.app(), [&](fleet::v1::ProgressStep step, const std::string& m) {
        spdlog::info("{}: {} {}", command.id(), ProgressStepName(step), m);
      });
  if (result.current_version() != target) {
    // Refused before the switch (not on disk, incomplete, untrusted, ...).
    reply.set_message(absl::StrCat("nothing changed: ", result.reason()));
    return reply;
  }
  LocalRollback* lr = reply.mutable_rollback();
  lr->set_id(command.id());
  lr->set_app(req.app());
  lr->set_from_version(current);
  lr->set_to_version(target);
  lr->set_reason(req.reason());
  lr->set_actor(actor);
  lr->set_at_ms(at_ms);
  lr->set_ok(result.ok());
  lr->set_failure(result.ok() ? "" : result.reason());
  *lr->mutable_state() = result.state();
  record = state_.LoadApp(req.app());
  *record.mutable_local_rollback() = *lr;
  record.mutable_local_rollback()->clear_state();  // the hello carries the state itself
  absl::Status saved = state_.SaveApp(record);
  if (!saved.ok()) {
    spdlog::error("cannot record the break-glass rollback of {}: {}", req.app(), saved.message());
  }
  reply.set_ok(result.ok());
  reply.set_message(
      result.ok()
          ? absl::StrCat(req.app(), " on host ", options_.host_id, " rolled back from ",
                         current.empty() ? "(none)" : current, " to ", target,
                         "; reload and probes passed")
          : absl::StrCat(req.app(), " on host ", options_.host_id, " switched from ",
                         current.empty() ? "(none)" : current, " to ", target,
                         " but it is unhealthy: ", result.reason()));
  return reply;
}

std::vector<LocalRollback> Deployer::LocalRollbacks() {
  std::vector<LocalRollback> out;
  for (const std::string& app : ListAppDirs(options_.apps_root)) {
    AgentAppRecord record = state_.LoadApp(app);
    if (record.has_local_rollback()) out.push_back(record.local_rollback());
  }
  return out;
}

}  // namespace fleet::agent
