// Rollouts and their tasks in the PostgreSQL store (see pg_queries.h).
#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status.h"
#include "controller/pg_queries.h"

namespace fleet::controller {
namespace {

using fleet::v1::HostTask;
using fleet::v1::Rollout;

// Rollout ids are BIGINT in the database and decimal strings in the protos.
bool ParseRolloutId(const std::string& id, int64_t* out) {
  return absl::SimpleAtoi(id, out) && *out > 0;
}

absl::Status UnknownRollout(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("unknown rollout '", id, "'"));
}

// Column lists are macros so that each statement is one literal: the text
// is the key of the connection's prepared statements.
#define FLEET_ROLLOUT_COLUMNS                                                          \
  "id, app, version, from_version, kind, state, selector, created_by, created_at_ms, " \
  "finished_at_ms, reason, plan, current_wave, awaiting_promote, paused_by, subject, " \
  "fleet_release, fleet_config, pause_reason"

std::vector<Rollout> ReadRollouts(const PgResult& r) {
  std::vector<Rollout> rollouts;
  for (int row = 0; row < r.rows(); ++row) {
    Rollout& rollout = rollouts.emplace_back();
    rollout.set_id(absl::StrCat(r.Int(row, 0)));
    rollout.set_app(r.Text(row, 1));
    rollout.set_version(r.Text(row, 2));
    rollout.set_from_version(r.Text(row, 3));
    rollout.set_kind(static_cast<fleet::v1::RolloutKind>(r.Int(row, 4)));
    rollout.set_state(static_cast<fleet::v1::RolloutState>(r.Int(row, 5)));
    rollout.set_selector(r.Text(row, 6));
    rollout.set_created_by(r.Text(row, 7));
    rollout.set_created_at_ms(r.Int(row, 8));
    rollout.set_finished_at_ms(r.Int(row, 9));
    rollout.set_reason(r.Text(row, 10));
    // A plan that does not parse leaves the defaults (one wave, no gates).
    (void)rollout.mutable_plan()->ParseFromString(r.Bytes(row, 11));
    rollout.set_current_wave(static_cast<int32_t>(r.Int(row, 12)));
    rollout.set_awaiting_promote(r.Bool(row, 13));
    rollout.set_paused_by(r.Text(row, 14));
    rollout.set_subject(static_cast<fleet::v1::Subject>(r.Int(row, 15)));
    rollout.set_release(r.Text(row, 16));
    rollout.set_config(r.Text(row, 17));
    rollout.set_pause_reason(static_cast<fleet::v1::PauseReason>(r.Int(row, 18)));
  }
  return rollouts;
}

absl::Status InsertTasks(PgConnection* db, int64_t id, const Rollout& rollout,
                         const std::string& what) {
  for (const HostTask& task : rollout.tasks()) {
    PgParams params;
    params.Add(id)
        .Add(task.host_id())
        .Add(task.wave())
        .Add(static_cast<int>(task.state()))
        .Add(task.from_version())
        .Add(task.to_version())
        .Add(task.reason())
        .Add(task.command_id())
        .Add(task.updated_at_ms());
    absl::Status st =
        db->Query(
              "INSERT INTO rollout_tasks (rollout_id, host_id, wave, state, from_release, "
              "to_release, reason, command_id, updated_at_ms) "
              "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
              params)
            .status();
    if (db->FailedWith(kPgUniqueViolation)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": host '", task.host_id(), "' has two tasks"));
    }
    FLEET_RETURN_IF_ERROR(
        Annotate(st, absl::StrCat(what, ": task of host '", task.host_id(), "'")));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PgQueries::CreateRollout(Rollout* rollout) {
  const std::string what =
      absl::StrCat("cannot create rollout of ", rollout->app(), "@", rollout->version());
  PgParams params;
  params.Add(rollout->app())
      .Add(rollout->version())
      .Add(rollout->from_version())
      .Add(static_cast<int>(rollout->kind()))
      .Add(static_cast<int>(rollout->state()))
      .Add(rollout->selector())
      .Add(rollout->created_by())
      .Add(rollout->created_at_ms())
      .Add(rollout->finished_at_ms())
      .Add(rollout->reason())
      .AddBytes(rollout->plan().SerializeAsString())
      .Add(rollout->current_wave())
      .Add(rollout->awaiting_promote())
      .Add(rollout->paused_by())
      .Add(static_cast<int>(rollout->subject()))
      .Add(rollout->release())
      .Add(rollout->config())
      .Add(static_cast<int>(rollout->pause_reason()));
  absl::StatusOr<PgResult> r = db_->Query(
      "INSERT INTO rollouts (app, version, from_version, kind, state, selector, created_by, "
      "created_at_ms, finished_at_ms, reason, plan, current_wave, awaiting_promote, paused_by, "
      "subject, fleet_release, fleet_config, pause_reason) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) "
      "RETURNING id",
      params);
  if (db_->FailedWith(kPgForeignKeyViolation)) {
    return absl::NotFoundError(absl::StrCat(what, ": unknown app '", rollout->app(), "'"));
  }
  if (!r.ok()) return Annotate(r.status(), what);
  const int64_t id = r->Int(0, 0);
  FLEET_RETURN_IF_ERROR(InsertTasks(db_, id, *rollout, what));
  rollout->set_id(absl::StrCat(id));
  return absl::OkStatus();
}

absl::Status PgQueries::UpdateRollout(const Rollout& rollout) {
  int64_t id = 0;
  if (!ParseRolloutId(rollout.id(), &id)) return UnknownRollout(rollout.id());
  PgParams params;
  params.Add(static_cast<int>(rollout.state()))
      .Add(rollout.reason())
      .Add(rollout.finished_at_ms())
      .Add(rollout.from_version())
      .AddBytes(rollout.plan().SerializeAsString())
      .Add(rollout.current_wave())
      .Add(rollout.awaiting_promote())
      .Add(rollout.paused_by())
      .Add(static_cast<int>(rollout.pause_reason()))
      .Add(id);
  absl::StatusOr<PgResult> r = db_->Query(
      "UPDATE rollouts SET state = $1, reason = $2, finished_at_ms = $3, from_version = $4, "
      "plan = $5, current_wave = $6, awaiting_promote = $7, paused_by = $8, pause_reason = $9 "
      "WHERE id = $10",
      params);
  if (!r.ok())
    return Annotate(r.status(), absl::StrCat("cannot update rollout '", rollout.id(), "'"));
  if (r->affected() == 0) return UnknownRollout(rollout.id());
  return absl::OkStatus();
}

absl::Status PgQueries::UpdateTask(const std::string& rollout_id, const HostTask& task) {
  return UpdateTasks(rollout_id, {task});
}

absl::Status PgQueries::UpdateTasks(const std::string& rollout_id,
                                    const std::vector<HostTask>& tasks) {
  if (tasks.empty()) return absl::OkStatus();
  int64_t id = 0;
  if (!ParseRolloutId(rollout_id, &id)) {
    return absl::NotFoundError(absl::StrCat("unknown task of host '", tasks.front().host_id(),
                                            "' in rollout '", rollout_id, "'"));
  }
  for (const HostTask& task : tasks) {
    PgParams params;
    params.Add(task.wave())
        .Add(static_cast<int>(task.state()))
        .Add(task.from_version())
        .Add(task.to_version())
        .Add(task.reason())
        .Add(task.command_id())
        .Add(task.updated_at_ms())
        .Add(id)
        .Add(task.host_id());
    // One prepared statement for every task, bound per row.
    absl::StatusOr<PgResult> r = db_->Query(
        "UPDATE rollout_tasks SET wave = $1, state = $2, from_release = $3, to_release = $4, "
        "reason = $5, command_id = $6, updated_at_ms = $7 WHERE rollout_id = $8 AND host_id = $9",
        params);
    if (!r.ok()) {
      return Annotate(r.status(), absl::StrCat("cannot update task of host '", task.host_id(),
                                               "' in rollout '", rollout_id, "'"));
    }
    if (r->affected() == 0) {
      return absl::NotFoundError(absl::StrCat("unknown task of host '", task.host_id(),
                                              "' in rollout '", rollout_id, "'"));
    }
  }
  return absl::OkStatus();
}

absl::Status PgQueries::LoadTasks(std::vector<Rollout>* rollouts) {
  if (rollouts->empty()) return absl::OkStatus();
  // One query for all of them: the ids as an array.
  std::map<int64_t, Rollout*> by_id;
  std::string ids = "{";
  for (Rollout& rollout : *rollouts) {
    int64_t id = 0;
    if (!ParseRolloutId(rollout.id(), &id)) continue;
    by_id[id] = &rollout;
    absl::StrAppend(&ids, ids.size() > 1 ? "," : "", id);
  }
  ids += "}";
  PgParams params;
  params.Add(ids);
  FLEET_ASSIGN_OR_RETURN(
      PgResult r, db_->Query("SELECT rollout_id, host_id, wave, state, from_release, to_release, "
                             "reason, command_id, updated_at_ms FROM rollout_tasks "
                             "WHERE rollout_id = ANY($1::bigint[]) "
                             "ORDER BY rollout_id, wave, host_id COLLATE \"C\"",
                             params));
  for (int row = 0; row < r.rows(); ++row) {
    auto it = by_id.find(r.Int(row, 0));
    if (it == by_id.end()) continue;
    HostTask* task = it->second->add_tasks();
    task->set_host_id(r.Text(row, 1));
    task->set_wave(static_cast<int32_t>(r.Int(row, 2)));
    task->set_state(static_cast<fleet::v1::TaskState>(r.Int(row, 3)));
    task->set_from_version(r.Text(row, 4));
    task->set_to_version(r.Text(row, 5));
    task->set_reason(r.Text(row, 6));
    task->set_command_id(r.Text(row, 7));
    task->set_updated_at_ms(r.Int(row, 8));
  }
  return absl::OkStatus();
}

absl::StatusOr<Rollout> PgQueries::GetRollout(const std::string& id) {
  int64_t numeric_id = 0;
  if (!ParseRolloutId(id, &numeric_id)) return UnknownRollout(id);
  const std::string what = absl::StrCat("cannot read rollout '", id, "'");
  PgParams params;
  params.Add(numeric_id);
  absl::StatusOr<PgResult> r =
      db_->Query("SELECT " FLEET_ROLLOUT_COLUMNS " FROM rollouts WHERE id = $1", params);
  if (!r.ok()) return Annotate(r.status(), what);
  std::vector<Rollout> rollouts = ReadRollouts(*r);
  if (rollouts.empty()) return UnknownRollout(id);
  FLEET_RETURN_IF_ERROR(Annotate(LoadTasks(&rollouts), what));
  return std::move(rollouts.front());
}

absl::StatusOr<std::vector<Rollout>> PgQueries::ListRollouts(const std::string& app, int limit,
                                                             bool with_tasks) {
  const std::string what = app.empty() ? "cannot list rollouts"
                                       : absl::StrCat("cannot list rollouts of app '", app, "'");
  PgParams params;
  if (!app.empty()) params.Add(app);
  params.Add(PgLimit(limit));
  // Two statements rather than "($1 = '' OR app = $1)", which would keep
  // the planner from using rollouts_by_app.
  absl::StatusOr<PgResult> r =
      app.empty()
          ? db_->Query("SELECT " FLEET_ROLLOUT_COLUMNS " FROM rollouts ORDER BY id DESC LIMIT $1",
                       params)
          : db_->Query("SELECT " FLEET_ROLLOUT_COLUMNS
                       " FROM rollouts WHERE app = $1 ORDER BY id DESC LIMIT $2",
                       params);
  if (!r.ok()) return Annotate(r.status(), what);
  std::vector<Rollout> rollouts = ReadRollouts(*r);
  if (with_tasks) FLEET_RETURN_IF_ERROR(Annotate(LoadTasks(&rollouts), what));
  return rollouts;
}

absl::StatusOr<std::vector<Rollout>> PgQueries::ListActiveRollouts() {
  constexpr absl::string_view kWhat = "cannot list active rollouts";
  // The terminal states, as IsTerminal defines them.
  PgParams params;
  params.Add(static_cast<int>(fleet::v1::ROLLOUT_STATE_SUCCEEDED))
      .Add(static_cast<int>(fleet::v1::ROLLOUT_STATE_ROLLED_BACK))
      .Add(static_cast<int>(fleet::v1::ROLLOUT_STATE_FAILED));
  absl::StatusOr<PgResult> r = db_->Query("SELECT " FLEET_ROLLOUT_COLUMNS
                                          " FROM rollouts WHERE state NOT IN ($1, $2, $3) "
                                          "ORDER BY id",
                                          params);
  if (!r.ok()) return Annotate(r.status(), kWhat);
  std::vector<Rollout> rollouts = ReadRollouts(*r);
  FLEET_RETURN_IF_ERROR(Annotate(LoadTasks(&rollouts), kWhat));
  return rollouts;
}

}  // namespace fleet::controller
