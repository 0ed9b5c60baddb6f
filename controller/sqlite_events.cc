// The audit log and Alertmanager alerts in the SQLite store (see
// sqlite_queries.h).
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "controller/sqlite_queries.h"

namespace fleet::controller {
namespace {

std::string AlertLabel(const AlertRecord& alert) {
  return absl::StrCat(alert.fingerprint, " ", alert.status, " since ", alert.starts_at);
}

}  // namespace

absl::Status SqliteQueries::AddEvent(fleet::v1::Event* event) {
  SqliteStatement stmt = db_->Prepare(
      "INSERT INTO events (at_ms, app, rollout_id, host_id, kind, actor, message) "
      "VALUES (?, ?, ?, ?, ?, ?, ?)");
  stmt.Bind(event->at_ms())
      .Bind(event->app())
      .Bind(event->rollout_id())
      .Bind(event->host_id())
      .Bind(event->kind())
      .Bind(event->actor())
      .Bind(event->message());
  FLEET_RETURN_IF_ERROR(Annotate(stmt.Run(), absl::StrCat("cannot add event '", event->kind(),
                                                          "' of app '", event->app(), "'")));
  event->set_id(db_->LastInsertRowId());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<fleet::v1::Event>> SqliteQueries::ListEvents(const std::string& app,
                                                                        int limit) {
  const std::string what =
      app.empty() ? "cannot list events" : absl::StrCat("cannot list events of app '", app, "'");
#define FLEET_EVENT_COLUMNS "id, at_ms, app, rollout_id, host_id, kind, actor, message"
  // Two statements rather than "(? = '' OR app = ?)", which would keep
  // SQLite from using events_by_app.
  SqliteStatement stmt =
      app.empty()
          ? db_->Prepare("SELECT " FLEET_EVENT_COLUMNS " FROM events ORDER BY id DESC LIMIT ?")
          : db_->Prepare("SELECT " FLEET_EVENT_COLUMNS
                         " FROM events WHERE app = ? ORDER BY id DESC LIMIT ?");
#undef FLEET_EVENT_COLUMNS
  if (!app.empty()) stmt.Bind(app);
  stmt.Bind(SqlLimit(limit));
  std::vector<fleet::v1::Event> events;
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return Annotate(row.status(), what);
    if (!*row) break;
    fleet::v1::Event& event = events.emplace_back();
    event.set_id(stmt.Int(0));
    event.set_at_ms(stmt.Int(1));
    event.set_app(stmt.Text(2));
    event.set_rollout_id(stmt.Text(3));
    event.set_host_id(stmt.Text(4));
    event.set_kind(stmt.Text(5));
    event.set_actor(stmt.Text(6));
    event.set_message(stmt.Text(7));
  }
  return events;
}

absl::Status SqliteQueries::InsertAlert(const AlertRecord& alert) {
  SqliteStatement stmt = db_->Prepare(
      "INSERT INTO alerts (fingerprint, starts_at, status, app, alertname, received_at_ms, "
      "outcome, rollout_id, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  stmt.Bind(alert.fingerprint)
      .Bind(alert.starts_at)
      .Bind(alert.status)
      .Bind(alert.app)
      .Bind(alert.alertname)
      .Bind(alert.received_at_ms)
      .Bind(AlertOutcomeName(alert.outcome))
      .Bind(alert.rollout_id)
      .Bind(alert.message);
  absl::Status st = stmt.Run();
  if (stmt.FailedOnDuplicateKey()) {
    return absl::AlreadyExistsError(
        absl::StrCat("alert ", AlertLabel(alert), " is recorded already"));
  }
  return Annotate(
      st, absl::StrCat("cannot record alert ", alert.fingerprint, " of app '", alert.app, "'"));
}

absl::StatusOr<AlertRecord> SqliteQueries::GetAlert(const std::string& fingerprint,
                                                    const std::string& starts_at,
                                                    const std::string& status) {
  AlertRecord alert;
  alert.fingerprint = fingerprint;
  alert.starts_at = starts_at;
  alert.status = status;
  const std::string what = absl::StrCat("cannot read alert ", AlertLabel(alert));
  SqliteStatement stmt = db_->Prepare(
      "SELECT app, alertname, received_at_ms, outcome, rollout_id, message FROM alerts "
      "WHERE fingerprint = ? AND starts_at = ? AND status = ?");
  stmt.Bind(fingerprint).Bind(starts_at).Bind(status);
  absl::StatusOr<bool> row = stmt.Step();
  if (!row.ok()) return Annotate(row.status(), what);
  if (!*row) return absl::NotFoundError(absl::StrCat("unknown alert ", AlertLabel(alert)));
  alert.app = stmt.Text(0);
  alert.alertname = stmt.Text(1);
  alert.received_at_ms = stmt.Int(2);
  absl::StatusOr<AlertOutcome> outcome = ParseAlertOutcome(stmt.Text(3));
  if (!outcome.ok())
    return absl::DataLossError(absl::StrCat(what, ": ", outcome.status().message()));
  alert.outcome = *outcome;
  alert.rollout_id = stmt.Text(4);
  alert.message = stmt.Text(5);
  return alert;
}

absl::Status SqliteQueries::UpdateAlert(const AlertRecord& alert) {
  SqliteStatement stmt = db_->Prepare(
      "UPDATE alerts SET outcome = ?, rollout_id = ?, message = ? "
      "WHERE fingerprint = ? AND starts_at = ? AND status = ?");
  stmt.Bind(AlertOutcomeName(alert.outcome))
      .Bind(alert.rollout_id)
      .Bind(alert.message)
      .Bind(alert.fingerprint)
      .Bind(alert.starts_at)
      .Bind(alert.status);
  FLEET_RETURN_IF_ERROR(
      Annotate(stmt.Run(), absl::StrCat("cannot update alert ", alert.fingerprint)));
  if (db_->Changes() == 0) {
    return absl::NotFoundError(absl::StrCat("unknown alert ", AlertLabel(alert)));
  }
  return absl::OkStatus();
}

}  // namespace fleet::controller
