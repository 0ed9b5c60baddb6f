// The audit log and Alertmanager alerts in the PostgreSQL store (see
// pg_queries.h).
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "controller/pg_queries.h"

namespace fleet::controller {
namespace {

std::string AlertLabel(const AlertRecord& alert) {
  return absl::StrCat(alert.fingerprint, " ", alert.status, " since ", alert.starts_at);
}

}  // namespace

absl::Status PgQueries::AddEvent(fleet::v1::Event* event) {
  PgParams params;
  params.Add(event->at_ms())
      .Add(event->app())
      .Add(event->rollout_id())
      .Add(event->host_id())
      .Add(event->kind())
      .Add(event->actor())
      .Add(event->message());
  absl::StatusOr<PgResult> r = db_->Query(
      "INSERT INTO events (at_ms, app, rollout_id, host_id, kind, actor, message) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
      params);
  if (!r.ok()) {
    return Annotate(r.status(), absl::StrCat("cannot add event '", event->kind(), "' of app '",
                                             event->app(), "'"));
  }
  event->set_id(r->Int(0, 0));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<fleet::v1::Event>> PgQueries::ListEvents(const std::string& app,
                                                                    int limit) {
  const std::string what =
      app.empty() ? "cannot list events" : absl::StrCat("cannot list events of app '", app, "'");
  PgParams params;
  if (!app.empty()) params.Add(app);
  params.Add(PgLimit(limit));
#define FLEET_EVENT_COLUMNS "id, at_ms, app, rollout_id, host_id, kind, actor, message"
  // Two statements rather than "($1 = '' OR app = $1)", which would keep
  // the planner from using events_by_app.
  absl::StatusOr<PgResult> r =
      app.empty()
          ? db_->Query("SELECT " FLEET_EVENT_COLUMNS " FROM events ORDER BY id DESC LIMIT $1",
                       params)
          : db_->Query("SELECT " FLEET_EVENT_COLUMNS
                       " FROM events WHERE app = $1 ORDER BY id DESC LIMIT $2",
                       params);
#undef FLEET_EVENT_COLUMNS
  if (!r.ok()) return Annotate(r.status(), what);
  std::vector<fleet::v1::Event> events;
  events.reserve(r->rows());
  for (int row = 0; row < r->rows(); ++row) {
    fleet::v1::Event& event = events.emplace_back();
    event.set_id(r->Int(row, 0));
    event.set_at_ms(r->Int(row, 1));
    event.set_app(r->Text(row, 2));
    event.set_rollout_id(r->Text(row, 3));
    event.set_host_id(r->Text(row, 4));
    event.set_kind(r->Text(row, 5));
    event.set_actor(r->Text(row, 6));
    event.set_message(r->Text(row, 7));
  }
  return events;
}

absl::Status PgQueries::InsertAlert(const AlertRecord& alert) {
  PgParams params;
  params.Add(alert.fingerprint)
      .Add(alert.starts_at)
      .Add(alert.status)
      .Add(alert.app)
      .Add(alert.alertname)
      .Add(alert.received_at_ms)
      .Add(AlertOutcomeName(alert.outcome))
      .Add(alert.rollout_id)
      .Add(alert.message);
  absl::Status st = db_->Query(
                           "INSERT INTO alerts (fingerprint, starts_at, status, app, alertname, "
                           "received_at_ms, outcome, rollout_id, message) "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                           params)
                        .status();
  if (db_->FailedWith(kPgUniqueViolation)) {
    return absl::AlreadyExistsError(
        absl::StrCat("alert ", AlertLabel(alert), " is recorded already"));
  }
  return Annotate(
      st, absl::StrCat("cannot record alert ", alert.fingerprint, " of app '", alert.app, "'"));
}

absl::StatusOr<AlertRecord> PgQueries::GetAlert(const std::string& fingerprint,
                                                const std::string& starts_at,
                                                const std::string& status) {
  AlertRecord alert;
  alert.fingerprint = fingerprint;
  alert.starts_at = starts_at;
  alert.status = status;
  const std::string what = absl::StrCat("cannot read alert ", AlertLabel(alert));
  PgParams params;
  params.Add(fingerprint).Add(starts_at).Add(status);
  absl::StatusOr<PgResult> r = db_->Query(
      "SELECT app, alertname, received_at_ms, outcome, rollout_id, message FROM alerts "
      "WHERE fingerprint = $1 AND starts_at = $2 AND status = $3",
      params);
  if (!r.ok()) return Annotate(r.status(), what);
  if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("unknown alert ", AlertLabel(alert)));
  alert.app = r->Text(0, 0);
  alert.alertname = r->Text(0, 1);
  alert.received_at_ms = r->Int(0, 2);
  absl::StatusOr<AlertOutcome> outcome = ParseAlertOutcome(r->Text(0, 3));
  if (!outcome.ok()) {
    return absl::DataLossError(absl::StrCat(what, ": ", outcome.status().message()));
  }
  alert.outcome = *outcome;
  alert.rollout_id = r->Text(0, 4);
  alert.message = r->Text(0, 5);
  return alert;
}

absl::Status PgQueries::UpdateAlert(const AlertRecord& alert) {
  PgParams params;
  params.Add(AlertOutcomeName(alert.outcome))
      .Add(alert.rollout_id)
      .Add(alert.message)
      .Add(alert.fingerprint)
      .Add(alert.starts_at)
      .Add(alert.status);
  absl::StatusOr<PgResult> r = db_->Query(
      "UPDATE alerts SET outcome = $1, rollout_id = $2, message = $3 "
      "WHERE fingerprint = $4 AND starts_at = $5 AND status = $6",
      params);
  if (!r.ok()) return Annotate(r.status(), absl::StrCat("cannot update alert ", alert.fingerprint));
  if (r->affected() == 0) {
    return absl::NotFoundError(absl::StrCat("unknown alert ", AlertLabel(alert)));
  }
  return absl::OkStatus();
}

}  // namespace fleet::controller
