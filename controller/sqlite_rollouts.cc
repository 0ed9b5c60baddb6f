// Rollouts and their tasks in the SQLite store (see sqlite_queries.h).
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status.h"
#include "controller/sqlite_queries.h"

namespace fleet::controller {
namespace {

using fleet::v1::HostTask;
using fleet::v1::Rollout;

// Rollout ids are INTEGER in SQLite and decimal strings in the protos.
bool ParseRolloutId(const std::string& id, int64_t* out) {
  return absl::SimpleAtoi(id, out) && *out > 0;
}

absl::Status UnknownRollout(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("unknown rollout '", id, "'"));
}

// Column lists are macros so that each statement is one literal: the text
// is the key of the connection's statement cache.
#define FLEET_ROLLOUT_COLUMNS                                                          \
  "id, app, version, from_version, kind, state, selector, created_by, created_at_ms, " \
  "finished_at_ms, reason, plan, current_wave, awaiting_promote, paused_by, subject, " \
  "fleet_release, fleet_config, pause_reason"

Rollout ReadRollout(const SqliteStatement& stmt) {
  Rollout rollout;
  rollout.set_id(absl::StrCat(stmt.Int(0)));
  rollout.set_app(stmt.Text(1));
  rollout.set_version(stmt.Text(2));
  rollout.set_from_version(stmt.Text(3));
  rollout.set_kind(static_cast<fleet::v1::RolloutKind>(stmt.Int(4)));
  rollout.set_state(static_cast<fleet::v1::RolloutState>(stmt.Int(5)));
  rollout.set_selector(stmt.Text(6));
  rollout.set_created_by(stmt.Text(7));
  rollout.set_created_at_ms(stmt.Int(8));
  rollout.set_finished_at_ms(stmt.Int(9));
  rollout.set_reason(stmt.Text(10));
  // A plan that does not parse leaves the defaults (one wave, no gates).
  (void)rollout.mutable_plan()->ParseFromString(stmt.Blob(11));
  rollout.set_current_wave(static_cast<int32_t>(stmt.Int(12)));
  rollout.set_awaiting_promote(stmt.Int(13) != 0);
  rollout.set_paused_by(stmt.Text(14));
  rollout.set_subject(static_cast<fleet::v1::Subject>(stmt.Int(15)));
  rollout.set_release(stmt.Text(16));
  rollout.set_config(stmt.Text(17));
  rollout.set_pause_reason(static_cast<fleet::v1::PauseReason>(stmt.Int(18)));
  return rollout;
}

// Reads rollouts from a prepared, bound query over FLEET_ROLLOUT_COLUMNS.
absl::StatusOr<std::vector<Rollout>> ReadRollouts(SqliteStatement& stmt) {
  std::vector<Rollout> rollouts;
  while (true) {
    FLEET_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    rollouts.push_back(ReadRollout(stmt));
  }
  return rollouts;
}

absl::Status InsertTasks(SqliteConnection* db, int64_t id, const Rollout& rollout,
                         const std::string& what) {
  SqliteStatement stmt = db->Prepare(
      "INSERT INTO rollout_tasks (rollout_id, host_id, wave, state, from_release, to_release, "
      "reason, command_id, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const HostTask& task : rollout.tasks()) {
    stmt.Reset();
    stmt.Bind(id)
        .Bind(task.host_id())
        .Bind(task.wave())
        .Bind(static_cast<int>(task.state()))
        .Bind(task.from_version())
        .Bind(task.to_version())
        .Bind(task.reason())
        .Bind(task.command_id())
        .Bind(task.updated_at_ms());
    absl::Status st = stmt.Run();
    if (stmt.FailedOnDuplicateKey()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": host '", task.host_id(), "' has two tasks"));
    }
    FLEET_RETURN_IF_ERROR(
        Annotate(st, absl::StrCat(what, ": task of host '", task.host_id(), "'")));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SqliteQueries::CreateRollout(Rollout* rollout) {
  const std::string what =
      absl::StrCat("cannot create rollout of ", rollout->app(), "@", rollout->version());
  SqliteStatement insert = db_->Prepare(
      "INSERT INTO rollouts (app, version, from_version, kind, state, selector, created_by, "
      "created_at_ms, finished_at_ms, reason, plan, current_wave, awaiting_promote, paused_by, "
      "subject, fleet_release, fleet_config, pause_reason) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  insert.Bind(rollout->app())
      .Bind(rollout->version())
      .Bind(rollout->from_version())
      .Bind(static_cast<int>(rollout->kind()))
      .Bind(static_cast<int>(rollout->state()))
      .Bind(rollout->selector())
      .Bind(rollout->created_by())
      .Bind(rollout->created_at_ms())
      .Bind(rollout->finished_at_ms())
      .Bind(rollout->reason())
      .BindBlob(rollout->plan().SerializeAsString())
      .Bind(rollout->current_wave())
      .Bind(rollout->awaiting_promote())
      .Bind(rollout->paused_by())
      .Bind(static_cast<int>(rollout->subject()))
      .Bind(rollout->release())
      .Bind(rollout->config())
      .Bind(static_cast<int>(rollout->pause_reason()));
  absl::Status st = insert.Run();
  if (insert.FailedOnForeignKey()) {
    return absl::NotFoundError(absl::StrCat(what, ": unknown app '", rollout->app(), "'"));
  }
  FLEET_RETURN_IF_ERROR(Annotate(st, what));
  const int64_t id = db_->LastInsertRowId();
  FLEET_RETURN_IF_ERROR(InsertTasks(db_, id, *rollout, what));
  rollout->set_id(absl::StrCat(id));
  return absl::OkStatus();
}

absl::Status SqliteQueries::UpdateRollout(const Rollout& rollout) {
  int64_t id = 0;
  if (!ParseRolloutId(rollout.id(), &id)) return UnknownRollout(rollout.id());
  SqliteStatement stmt = db_->Prepare(
      "UPDATE rollouts SET state = ?, reason = ?, finished_at_ms = ?, from_version = ?, "
      "plan = ?, current_wave = ?, awaiting_promote = ?, paused_by = ?, pause_reason = ? "
      "WHERE id = ?");
  stmt.Bind(static_cast<int>(rollout.state()))
      .Bind(rollout.reason())
      .Bind(rollout.finished_at_ms())
      .Bind(rollout.from_version())
      .BindBlob(rollout.plan().SerializeAsString())
      .Bind(rollout.current_wave())
      .Bind(rollout.awaiting_promote())
      .Bind(rollout.paused_by())
      .Bind(static_cast<int>(rollout.pause_reason()))
      .Bind(id);
  FLEET_RETURN_IF_ERROR(
      Annotate(stmt.Run(), absl::StrCat("cannot update rollout '", rollout.id(), "'")));
  if (db_->Changes() == 0) return UnknownRollout(rollout.id());
  return absl::OkStatus();
}

absl::Status SqliteQueries::WriteTask(SqliteStatement& stmt, int64_t rollout_id,
                                      const std::string& rollout_label, const HostTask& task) {
  stmt.Reset();
  stmt.Bind(task.wave())
      .Bind(static_cast<int>(task.state()))
      .Bind(task.from_version())
      .Bind(task.to_version())
      .Bind(task.reason())
      .Bind(task.command_id())
      .Bind(task.updated_at_ms())
      .Bind(rollout_id)
      .Bind(task.host_id());
  FLEET_RETURN_IF_ERROR(
      Annotate(stmt.Run(), absl::StrCat("cannot update task of host '", task.host_id(),
                                        "' in rollout '", rollout_label, "'")));
  if (db_->Changes() == 0) {
    return absl::NotFoundError(absl::StrCat("unknown task of host '", task.host_id(),
                                            "' in rollout '", rollout_label, "'"));
  }
  return absl::OkStatus();
}

absl::Status SqliteQueries::UpdateTask(const std::string& rollout_id, const HostTask& task) {
  return UpdateTasks(rollout_id, {task});
}

absl::Status SqliteQueries::UpdateTasks(const std::string& rollout_id,
                                        const std::vector<HostTask>& tasks) {
  if (tasks.empty()) return absl::OkStatus();
  int64_t id = 0;
  if (!ParseRolloutId(rollout_id, &id)) {
    return absl::NotFoundError(absl::StrCat("unknown task of host '", tasks.front().host_id(),
                                            "' in rollout '", rollout_id, "'"));
  }
  // One statement for every task: prepared once, bound per row.
  SqliteStatement stmt = db_->Prepare(
      "UPDATE rollout_tasks SET wave = ?, state = ?, from_release = ?, to_release = ?, "
      "reason = ?, command_id = ?, updated_at_ms = ? WHERE rollout_id = ? AND host_id = ?");
  for (const HostTask& task : tasks) {
    FLEET_RETURN_IF_ERROR(WriteTask(stmt, id, rollout_id, task));
  }
  return absl::OkStatus();
}

absl::Status SqliteQueries::LoadTasks(std::vector<Rollout>* rollouts) {
  SqliteStatement stmt = db_->Prepare(
      "SELECT host_id, wave, state, from_release, to_release, reason, command_id, "
      "updated_at_ms FROM rollout_tasks WHERE rollout_id = ? ORDER BY wave, host_id");
  for (Rollout& rollout : *rollouts) {
    int64_t id = 0;
    ParseRolloutId(rollout.id(), &id);
    stmt.Reset();
    stmt.Bind(id);
    while (true) {
      FLEET_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      HostTask* task = rollout.add_tasks();
      task->set_host_id(stmt.Text(0));
      task->set_wave(static_cast<int32_t>(stmt.Int(1)));
      task->set_state(static_cast<fleet::v1::TaskState>(stmt.Int(2)));
      task->set_from_version(stmt.Text(3));
      task->set_to_version(stmt.Text(4));
      task->set_reason(stmt.Text(5));
      task->set_command_id(stmt.Text(6));
      task->set_updated_at_ms(stmt.Int(7));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Rollout> SqliteQueries::GetRollout(const std::string& id) {
  int64_t numeric_id = 0;
  if (!ParseRolloutId(id, &numeric_id)) return UnknownRollout(id);
  const std::string what = absl::StrCat("cannot read rollout '", id, "'");
  SqliteStatement stmt =
      db_->Prepare("SELECT " FLEET_ROLLOUT_COLUMNS " FROM rollouts WHERE id = ?");
  stmt.Bind(numeric_id);
  absl::StatusOr<std::vector<Rollout>> rollouts = ReadRollouts(stmt);
  if (!rollouts.ok()) return Annotate(rollouts.status(), what);
  if (rollouts->empty()) return UnknownRollout(id);
  FLEET_RETURN_IF_ERROR(Annotate(LoadTasks(&*rollouts), what));
  return std::move(rollouts->front());
}

absl::StatusOr<std::vector<Rollout>> SqliteQueries::ListRollouts(const std::string& app, int limit,
                                                                 bool with_tasks) {
  const std::string what = app.empty() ? "cannot list rollouts"
                                       : absl::StrCat("cannot list rollouts of app '", app, "'");
  // Two statements rather than "(? = '' OR app = ?)", which would keep
  // SQLite from using rollouts_by_app.
  SqliteStatement stmt =
      app.empty()
          ? db_->Prepare("SELECT " FLEET_ROLLOUT_COLUMNS " FROM rollouts ORDER BY id DESC LIMIT ?")
          : db_->Prepare("SELECT " FLEET_ROLLOUT_COLUMNS
                         " FROM rollouts WHERE app = ? ORDER BY id DESC LIMIT ?");
  if (!app.empty()) stmt.Bind(app);
  stmt.Bind(SqlLimit(limit));
  absl::StatusOr<std::vector<Rollout>> rollouts = ReadRollouts(stmt);
  if (!rollouts.ok()) return Annotate(rollouts.status(), what);
  if (with_tasks) FLEET_RETURN_IF_ERROR(Annotate(LoadTasks(&*rollouts), what));
  return rollouts;
}

absl::StatusOr<std::vector<Rollout>> SqliteQueries::ListActiveRollouts() {
  constexpr absl::string_view kWhat = "cannot list active rollouts";
  // The terminal states, as IsTerminal defines them.
  SqliteStatement stmt = db_->Prepare("SELECT " FLEET_ROLLOUT_COLUMNS
                                      " FROM rollouts WHERE state NOT IN (?, ?, ?) ORDER BY id");
  stmt.Bind(static_cast<int>(fleet::v1::ROLLOUT_STATE_SUCCEEDED))
      .Bind(static_cast<int>(fleet::v1::ROLLOUT_STATE_ROLLED_BACK))
      .Bind(static_cast<int>(fleet::v1::ROLLOUT_STATE_FAILED));
  absl::StatusOr<std::vector<Rollout>> rollouts = ReadRollouts(stmt);
  if (!rollouts.ok()) return Annotate(rollouts.status(), kWhat);
  FLEET_RETURN_IF_ERROR(Annotate(LoadTasks(&*rollouts), kWhat));
  return rollouts;
}

}  // namespace fleet::controller
