// Alertmanager's webhook turned into rollbacks:
// POST /api/v1/alerts/alertmanager with Alertmanager's webhook payload
// (version "4"), authenticated by a shared bearer token.
//
// For each alert labelled fleet_app=APP (alerts without that label are
// skipped and recorded nowhere):
//   - resolved, or APP unknown: an `alert.ignored` event; nothing changes.
//   - firing while a deploy rollout of APP runs: that rollout is aborted, so
//     every host it switched goes back.
//   - firing while a rollback of APP runs, or the running rollout is rolling
//     back already: ignored, the fleet is on its way back.
//   - firing with nothing running, when APP's spec sets rollback_on_alert
//     and APP's latest rollout is a deploy that succeeded no longer than that
//     window ago: its subject (release or config) is rolled back to the
//     previous successful version.
//   - otherwise ignored, with the reason.
// What was done is recorded as an `alert.rollback` event (rollout_id: the
// rollout aborted or the rollback started), an engine error as
// `alert.failed`; every event has actor "alertmanager" and a message naming
// the alertname, its summary annotation and the decision.
//
// At most once: each alert is keyed by (fingerprint, startsAt, status) in the
// store's alerts table, inserted before the controller acts (in the same
// transaction as the event when nothing is done). A repeated delivery of a
// key changes nothing and records no event (Alertmanager repeats firing
// alerts every repeat_interval, which would flood the history); the answer
// lists it as "duplicate" with the first delivery's outcome. An engine error
// is not retried on a later delivery. If the controller stops between
// storing the key and the engine's answer, the alert is not acted on again.
#ifndef FLEET_CONTROLLER_ALERTS_H_
#define FLEET_CONTROLLER_ALERTS_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/event_kind.h"
#include "controller/audit_log.h"
#include "controller/rollout_engine.h"
#include "controller/store.h"
#include "fleet/v1/api.pb.h"

namespace httplib {
class Server;
}

namespace fleet::controller {

inline constexpr char kAlertmanagerWebhookPath[] = "/api/v1/alerts/alertmanager";
// The actor of everything an alert does.
inline constexpr char kAlertActor[] = "alertmanager";

// One alert of a webhook payload.
struct WebhookAlert {
  std::string status;  // "firing" or "resolved"
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  // startsAt in UTC to the millisecond: "2024-05-01T11:59:00.000Z".
  std::string starts_at;
  // As sent; when the payload has none, "labels:" and the sha256 of the
  // labels, so that the key stays stable across deliveries.
  std::string fingerprint;
};

// Parses an Alertmanager webhook payload. InvalidArgument with a one-line
// reason ("alerts[1].status is \"pending\", not \"firing\" or \"resolved\"")
// when `body` is not JSON, its version is not "4", or an alert lacks status,
// labels (an object of strings) or startsAt (an RFC 3339 time).
absl::StatusOr<std::vector<WebhookAlert>> ParseAlertmanagerWebhook(absl::string_view body);

// What the handler asks of the rollout engine: an interface so that tests
// can record the calls. EngineAlertActions forwards to a RolloutEngine.
class AlertActions {
 public:
  virtual ~AlertActions() = default;
  // Aborts a running rollout: RolloutEngine::Act(kAbort).
  virtual absl::StatusOr<fleet::v1::Rollout> Abort(const std::string& rollout_id,
                                                   const std::string& actor) = 0;
  // Rolls `subject` of `app` back to its default target:
  // RolloutEngine::Rollback.
  virtual absl::StatusOr<fleet::v1::Rollout> Rollback(const std::string& app,
                                                      fleet::v1::Subject subject,
                                                      const std::string& actor) = 0;
};

class EngineAlertActions : public AlertActions {
 public:
  // `engine` is borrowed and must outlive this object.
  explicit EngineAlertActions(RolloutEngine* engine) : engine_(engine) {}
  absl::StatusOr<fleet::v1::Rollout> Abort(const std::string& rollout_id,
                                           const std::string& actor) override;
  absl::StatusOr<fleet::v1::Rollout> Rollback(const std::string& app, fleet::v1::Subject subject,
                                              const std::string& actor) override;

 private:
  RolloutEngine* engine_;
};

// Decides and acts on webhook payloads (see the top of this file).
//
// Thread safety: Handle() may be called from any thread; calls are
// serialized on the handler's own lock, which is taken before the engine's
// and the store's (the engine never calls back). No store transaction is
// held while the engine is called.
class AlertHandler {
 public:
  // Everything is borrowed and must outlive the handler. The alert.* events
  // are built, stored and published through `audit`: its observers are told
  // after the events are committed, on the thread that called Handle(), not
  // serialized with the engine's calls to its observers (an observer of both
  // must be thread-safe). `clock` gives the "now" of the rollback_on_alert
  // window and of the alerts table.
  AlertHandler(Store* store, RolloutEngine* engine, AuditLog* audit, Clock* clock);
  AlertHandler(Store* store, AlertActions* actions, AuditLog* audit, Clock* clock);
  AlertHandler(const AlertHandler&) = delete;
  AlertHandler& operator=(const AlertHandler&) = delete;

  // Handles one webhook body. On success returns a JSON summary,
  //   {"alerts":[{"alertname":..., "app":..., "fingerprint":..., "status":...,
  //               "outcome":"abort|rollback|ignored|duplicate|failed|skipped",
  //               "rollout_id":..., "message":...}, ...]}
  // in payload order; engine errors are outcomes ("failed"), not errors.
  // InvalidArgument when the body is not a v4 payload (nothing is recorded).
  // Another error when the store fails: the alerts before it were handled,
  // the failing one was not, and a redelivery handles it (the others are
  // duplicates then).
  absl::StatusOr<std::string> Handle(absl::string_view body);

 private:
  struct Decision;
  struct Outcome;
  absl::StatusOr<Outcome> HandleAlert(const WebhookAlert& alert) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads `store`: the transaction that stores the key, or the store.
  absl::StatusOr<Decision> Decide(StoreReader& store, const WebhookAlert& alert,
                                  const std::string& app, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // In one transaction: answers a duplicate delivery of `alert` (returned,
  // nothing stored), or decides (*decision) and stores `record` with the
  // decision, and with its event (*events, to publish once committed) when
  // that is to do nothing.
  absl::StatusOr<std::optional<Outcome>> RecordDecision(const WebhookAlert& alert, int64_t now_ms,
                                                        AlertRecord* record, Decision* decision,
                                                        std::vector<EngineEvent>* events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets outcome, rollout_id and message of *record from what the engine
  // answered (`done`) to an abort or a rollback of `subject`, and returns
  // the kind of the event to record.
  static EventKind DescribeAction(const fleet::v1::Rollout& subject, bool abort,
                                  const absl::StatusOr<fleet::v1::Rollout>& done, int64_t now_ms,
                                  AlertRecord* record);
  // An alert event of `kind` about `app` and rollout `rollout_id` ("" for
  // none); with the subject, version and kind of `about` (the rollout the
  // engine answered) when there is one.
  EngineEvent MakeEvent(EventKind kind, const std::string& app, const std::string& rollout_id,
                        const fleet::v1::Rollout* about, const std::string& message) const;
  // Stores the outcome of `record` and its event in one transaction.
  absl::Status RecordAction(const AlertRecord& record, std::vector<EngineEvent>* events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Store* store_;
  std::unique_ptr<AlertActions> owned_actions_;  // set by the RolloutEngine constructor
  AlertActions* actions_;
  AuditLog* audit_;
  Clock* clock_;
  absl::Mutex mu_;
};

// The bearer token in `path`: its content without surrounding whitespace.
// InvalidArgument when that is empty; the read error (naming the file)
// when it cannot be read.
absl::StatusOr<std::string> ReadAlertToken(const std::string& path);

// Serves POST kAlertmanagerWebhookPath on `server`:
//   503 "alert webhook disabled: ..." when `handler` is null,
//   401 unless the request carries "Authorization: Bearer <token>" (compared
//       in constant time),
//   400 with a one-line reason for a body that is not a v4 payload,
//   500 when the store fails (Alertmanager retries; see Handle()),
//   200 with Handle()'s JSON summary otherwise.
// `token` must not be empty when `handler` is set. The handler is shared
// with the server's handler threads, so it lives as long as `server`; the
// store and engine behind it must outlive the server's threads.
void AddAlertmanagerWebhook(httplib::Server* server, std::shared_ptr<AlertHandler> handler,
                            const std::string& token);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_ALERTS_H_
