#include "controller/alerts.h"

#include <httplib.h>
#include <openssl/crypto.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/rollout_state.h"
#include "common/sha256.h"
#include "common/status.h"
#include "controller/listener_limits.h"

namespace fleet::controller {
namespace {

using fleet::v1::Rollout;
using json = nlohmann::json;

constexpr char kFiring[] = "firing";
constexpr char kResolved[] = "resolved";

// Outcomes answered in the summary besides AlertOutcomeName's, which are
// stored too: these are not.
constexpr char kDuplicate[] = "duplicate";
constexpr char kSkipped[] = "skipped";

// Strings from the payload are dumped as JSON: quoted, escaped, one line.
std::string Dump(const json& value) {
  std::string s = value.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 80 ? absl::StrCat(s.substr(0, 77), "...") : s;
}

absl::Status Invalid(absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("not an Alertmanager webhook payload (version 4): ", why));
}

// Reads parent[key], an object of strings, into *out.
absl::Status ReadStringMap(const json& parent, const char* key, const std::string& where,
                           bool required, std::map<std::string, std::string>* out) {
  auto it = parent.find(key);
  const std::string name = absl::StrCat(where, ".", key);
  if (it == parent.end() || it->is_null()) {
    return required ? Invalid(absl::StrCat(name, " is missing")) : absl::OkStatus();
  }
  if (!it->is_object()) return Invalid(absl::StrCat(name, " is not an object"));
  for (const auto& item : it->items()) {
    if (!item.value().is_string()) {
      return Invalid(absl::StrCat(name, ".", item.key(), " is not a string"));
    }
    (*out)[item.key()] = item.value().get<std::string>();
  }
  return absl::OkStatus();
}

std::string Label(const WebhookAlert& alert, const std::string& name) {
  auto it = alert.labels.find(name);
  return it == alert.labels.end() ? "" : it->second;
}

// "alert HighErrorRate (5xx above 5%) firing", for events.
std::string DescribeAlert(const WebhookAlert& alert) {
  std::string name = Label(alert, "alertname");
  std::string out = absl::StrCat("alert ", name.empty() ? alert.fingerprint : name);
  auto summary = alert.annotations.find("summary");
  if (summary != alert.annotations.end() && !summary->second.empty()) {
    absl::StrAppend(&out, " (", absl::StrReplaceAll(summary->second, {{"\n", " "}}), ")");
  }
  absl::StrAppend(&out, " ", alert.status);
  return out;
}

// "release v2" or "config c2".
std::string Subject(const Rollout& r) {
  return absl::StrCat(r.subject() == fleet::v1::SUBJECT_CONFIG ? "config " : "release ",
                      r.version());
}

std::string FormatAgo(int64_t ms) {
  return absl::FormatDuration(absl::Trunc(absl::Milliseconds(ms), absl::Seconds(1)));
}

std::string TokenDigest(absl::string_view token) {
  Sha256 sha;
  sha.Update(token);
  return sha.HexDigest();
}

// Whether `authorization` is "Bearer <token>" for the token of `digest`.
// The digests have a fixed length, so neither the comparison's time nor
// its length tells anything about the token.
bool Authorized(absl::string_view authorization, const std::string& digest) {
  constexpr absl::string_view kScheme = "bearer ";
  if (!absl::StartsWithIgnoreCase(authorization, kScheme)) return false;
  std::string given = TokenDigest(absl::StripAsciiWhitespace(authorization.substr(kScheme.size())));
  return given.size() == digest.size() &&
         CRYPTO_memcmp(given.data(), digest.data(), digest.size()) == 0;
}

}  // namespace

absl::StatusOr<std::vector<WebhookAlert>> ParseAlertmanagerWebhook(absl::string_view body) {
  json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Invalid("the body is not JSON");
  if (!doc.is_object()) return Invalid("the body is not a JSON object");
  auto version = doc.find("version");
  if (version == doc.end()) return Invalid("version is missing; expected \"4\"");
  if (!version->is_string() || *version != "4") {
    return Invalid(absl::StrCat("version is ", Dump(*version), "; expected \"4\""));
  }
  auto alerts = doc.find("alerts");
  if (alerts == doc.end() || !alerts->is_array()) return Invalid("alerts is not a list");

  std::vector<WebhookAlert> out;
  out.reserve(alerts->size());
  for (size_t i = 0; i < alerts->size(); ++i) {
    const json& a = (*alerts)[i];
    const std::string where = absl::StrCat("alerts[", i, "]");
    if (!a.is_object()) return Invalid(absl::StrCat(where, " is not an object"));
    WebhookAlert& alert = out.emplace_back();

    auto status = a.find("status");
    if (status == a.end()) return Invalid(absl::StrCat(where, ".status is missing"));
    if (!status->is_string() || (*status != kFiring && *status != kResolved)) {
      return Invalid(
          absl::StrCat(where, ".status is ", Dump(*status), ", not \"firing\" or \"resolved\""));
    }
    alert.status = status->get<std::string>();
    FLEET_RETURN_IF_ERROR(ReadStringMap(a, "labels", where, /*required=*/true, &alert.labels));
    FLEET_RETURN_IF_ERROR(
        ReadStringMap(a, "annotations", where, /*required=*/false, &alert.annotations));

    auto starts_at = a.find("startsAt");
    if (starts_at == a.end()) return Invalid(absl::StrCat(where, ".startsAt is missing"));
    absl::Time start;
    std::string error;
    if (!starts_at->is_string() ||
        !absl::ParseTime(absl::RFC3339_full, starts_at->get<std::string>(), &start, &error)) {
      return Invalid(
          absl::StrCat(where, ".startsAt is ", Dump(*starts_at), ", not an RFC 3339 time"));
    }
    // One spelling per instant: Alertmanager writes nanoseconds in webhooks
    // and milliseconds in its API, and any zone offset is allowed.
    alert.starts_at =
        absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", absl::FromUnixMillis(absl::ToUnixMillis(start)),
                         absl::UTCTimeZone());

    auto fingerprint = a.find("fingerprint");
    if (fingerprint != a.end() && !fingerprint->is_null() && !fingerprint->is_string()) {
      return Invalid(absl::StrCat(where, ".fingerprint is not a string"));
    }
    if (fingerprint != a.end() && fingerprint->is_string()) {
      alert.fingerprint = fingerprint->get<std::string>();
    }
    if (alert.fingerprint.empty()) {
      // json objects are ordered by key, so equal label sets dump equally.
      alert.fingerprint = absl::StrCat("labels:", TokenDigest(json(alert.labels).dump()));
    }
  }
  return out;
}

absl::StatusOr<Rollout> EngineAlertActions::Abort(const std::string& rollout_id,
                                                  const std::string& actor) {
  fleet::v1::RolloutActionRequest req;
  req.set_id(rollout_id);
  req.set_actor(actor);
  return engine_->Act(req, RolloutAction::kAbort);
}

absl::StatusOr<Rollout> EngineAlertActions::Rollback(const std::string& app,
                                                     fleet::v1::Subject subject,
                                                     const std::string& actor) {
  fleet::v1::RollbackRequest req;
  req.set_app(app);
  req.set_subject(subject);
  req.set_actor(actor);
  return engine_->Rollback(req);
}

struct AlertHandler::Decision {
  enum class Kind { kIgnore, kAbort, kRollback };
  Kind kind = Kind::kIgnore;
  // kAbort: the rollout to abort. kRollback: the deploy to roll back.
  // kIgnore: the rollout the reason is about, if any.
  Rollout rollout;
  std::string reason;  // kIgnore: why
};

struct AlertHandler::Outcome {
  std::string outcome;
  std::string rollout_id;
  std::string message;
};

AlertHandler::AlertHandler(Store* store, RolloutEngine* engine, AuditLog* audit, Clock* clock)
    : store_(store),
      owned_actions_(std::make_unique<EngineAlertActions>(engine)),
      actions_(owned_actions_.get()),
      audit_(audit),
      clock_(clock) {}

AlertHandler::AlertHandler(Store* store, AlertActions* actions, AuditLog* audit, Clock* clock)
    : store_(store), actions_(actions), audit_(audit), clock_(clock) {}

absl::StatusOr<std::string> AlertHandler::Handle(absl::string_view body) {
  FLEET_ASSIGN_OR_RETURN(std::vector<WebhookAlert> alerts, ParseAlertmanagerWebhook(body));
  absl::MutexLock lock(&mu_);
  json summary = json::array();
  for (const WebhookAlert& alert : alerts) {
    FLEET_ASSIGN_OR_RETURN(Outcome outcome, HandleAlert(alert));
    summary.push_back({{"alertname", Label(alert, "alertname")},
                       {"app", Label(alert, "fleet_app")},
                       {"fingerprint", alert.fingerprint},
                       {"status", alert.status},
                       {"outcome", outcome.outcome},
                       {"rollout_id", outcome.rollout_id},
                       {"message", outcome.message}});
  }
  return json{{"alerts", std::move(summary)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

absl::StatusOr<AlertHandler::Outcome> AlertHandler::HandleAlert(const WebhookAlert& alert) {
  const std::string app = Label(alert, "fleet_app");
  if (app.empty()) return Outcome{kSkipped, "", "no fleet_app label"};
  const int64_t now_ms = absl::ToUnixMillis(clock_->Now());
  const std::string what = DescribeAlert(alert);
  AlertRecord record;
  record.fingerprint = alert.fingerprint;
  record.starts_at = alert.starts_at;
  record.status = alert.status;
  record.app = app;
  record.alertname = Label(alert, "alertname");
  record.received_at_ms = now_ms;

  Decision decision;
  std::vector<EngineEvent> events;
  FLEET_ASSIGN_OR_RETURN(std::optional<Outcome> duplicate,
                         RecordDecision(alert, now_ms, &record, &decision, &events));
  if (duplicate.has_value()) return *std::move(duplicate);
  if (decision.kind == Decision::Kind::kIgnore) {
    spdlog::info("{} for {}: ignored: {}", what, app, decision.reason);
    audit_->Publish(events);
    return Outcome{std::string(AlertOutcomeName(record.outcome)), record.rollout_id,
                   record.message};
  }

  bool abort = decision.kind == Decision::Kind::kAbort;
  absl::StatusOr<Rollout> done =
      abort ? actions_->Abort(decision.rollout.id(), kAlertActor)
            : actions_->Rollback(app, decision.rollout.subject(), kAlertActor);
  if (abort && absl::IsFailedPrecondition(done.status())) {
    // The rollout ended between the decision and the abort: decide again,
    // once, on what is there now.
    absl::StatusOr<Decision> again = Decide(*store_, alert, app, now_ms);
    if (again.ok() && again->kind == Decision::Kind::kRollback) {
      decision = *std::move(again);
      abort = false;
      done = actions_->Rollback(app, decision.rollout.subject(), kAlertActor);
    }
  }
  const EventKind kind = DescribeAction(decision.rollout, abort, done, now_ms, &record);
  if (done.ok()) {
    spdlog::info("{} for {}: {}", what, app, record.message);
  } else {
    spdlog::warn("{} for {}: {}", what, app, record.message);
  }
  events = {MakeEvent(kind, app, record.rollout_id, done.ok() ? &*done : nullptr,
                      absl::StrCat(what, ": ", record.message))};
  Outcome out{std::string(AlertOutcomeName(record.outcome)), record.rollout_id, record.message};
  // The action happened (or failed) either way; a failure to record it is
  // logged and answered, not retried.
  absl::Status st = RecordAction(record, &events);
  if (!st.ok()) {
    spdlog::error("cannot record the outcome of {} for {}: {}", what, app, st.message());
    absl::StrAppend(&out.message, " (not recorded: ", st.message(), ")");
    return out;
  }
  audit_->Publish(events);
  return out;
}

absl::StatusOr<std::optional<AlertHandler::Outcome>> AlertHandler::RecordDecision(
    const WebhookAlert& alert, int64_t now_ms, AlertRecord* record, Decision* decision,
    std::vector<EngineEvent>* events) {
  const std::string& app = record->app;
  const std::string what = DescribeAlert(alert);
  FLEET_ASSIGN_OR_RETURN(std::unique_ptr<StoreTransaction> txn, store_->Begin());
  absl::StatusOr<AlertRecord> first =
      txn->GetAlert(alert.fingerprint, alert.starts_at, alert.status);
  // An alert whose action failed (hosts away, a busy database) is tried
  // again at its next delivery instead of being lost.
  const bool retry = first.ok() && first->outcome == AlertOutcome::kFailed;
  if (first.ok() && !retry) {
    spdlog::debug("{} for {}: duplicate of the delivery at {} ms", what, app,
                  first->received_at_ms);
    return Outcome{kDuplicate, first->rollout_id,
                   absl::StrCat("delivered before, at ",
                                absl::FormatTime(absl::FromUnixMillis(first->received_at_ms)), ": ",
                                AlertOutcomeName(first->outcome), ": ", first->message)};
  }
  if (!first.ok() && !absl::IsNotFound(first.status())) return first.status();
  FLEET_ASSIGN_OR_RETURN(*decision, Decide(*txn, alert, app, now_ms));
  if (decision->kind == Decision::Kind::kIgnore) {
    record->outcome = AlertOutcome::kIgnored;
    record->rollout_id = decision->rollout.id();
    record->message = decision->reason;
    EngineEvent event = MakeEvent(EventKind::kAlertIgnored, app, record->rollout_id, nullptr,
                                  absl::StrCat(what, ": ignored: ", decision->reason));
    // Stamped as the alert's record is.
    event.event.set_at_ms(now_ms);
    *events = {std::move(event)};
    FLEET_RETURN_IF_ERROR(audit_->Write(txn.get(), events));
  } else {
    const bool abort = decision->kind == Decision::Kind::kAbort;
    record->outcome = AlertOutcome::kActing;
    record->rollout_id = abort ? decision->rollout.id() : "";
    record->message = abort ? absl::StrCat("aborting rollout ", decision->rollout.id())
                            : absl::StrCat("rolling back ", Subject(decision->rollout));
  }
  FLEET_RETURN_IF_ERROR(retry ? txn->UpdateAlert(*record) : txn->InsertAlert(*record));
  FLEET_RETURN_IF_ERROR(txn->Commit());
  return std::nullopt;
}

EventKind AlertHandler::DescribeAction(const Rollout& subject, bool abort,
                                       const absl::StatusOr<Rollout>& done, int64_t now_ms,
                                       AlertRecord* record) {
  const std::string& app = record->app;
  if (done.ok() && abort) {
    record->outcome = AlertOutcome::kAbort;
    record->rollout_id = done->id();
    record->message = absl::StrCat("aborted rollout ", done->id(), " of ", app, " (",
                                   Subject(*done), "); every host it switched goes back");
    return EventKind::kAlertRollback;
  }
  if (done.ok()) {
    record->outcome = AlertOutcome::kRollback;
    record->rollout_id = done->id();
    record->message =
        absl::StrCat("rolling back ", Subject(subject), " of ", app, " (deployed by rollout ",
                     subject.id(), ", finished ", FormatAgo(now_ms - subject.finished_at_ms()),
                     " ago): rollback ", done->id(), " goes to ", done->version());
    return EventKind::kAlertRollback;
  }
  record->outcome = AlertOutcome::kFailed;
  record->message = abort ? absl::StrCat("cannot abort rollout ", subject.id(), " of ", app, ": ",
                                         done.status().message())
                          : absl::StrCat("cannot roll back ", Subject(subject), " of ", app, ": ",
                                         done.status().message());
  return EventKind::kAlertFailed;
}

EngineEvent AlertHandler::MakeEvent(EventKind kind, const std::string& app,
                                    const std::string& rollout_id, const Rollout* about,
                                    const std::string& message) const {
  EngineEvent e = audit_->Make(kind, about, app, /*host=*/"", kAlertActor, message);
  // The event is about the alert's app, and an ignored or failed alert may
  // name a rollout without being about it.
  e.event.set_app(app);
  e.event.set_rollout_id(rollout_id);
  return e;
}

absl::Status AlertHandler::RecordAction(const AlertRecord& record,
                                        std::vector<EngineEvent>* events) {
  FLEET_ASSIGN_OR_RETURN(std::unique_ptr<StoreTransaction> txn, store_->Begin());
  FLEET_RETURN_IF_ERROR(txn->UpdateAlert(record));
  FLEET_RETURN_IF_ERROR(audit_->Write(txn.get(), events));
  return txn->Commit();
}

absl::StatusOr<AlertHandler::Decision> AlertHandler::Decide(StoreReader& store,
                                                            const WebhookAlert& alert,
                                                            const std::string& app,
                                                            int64_t now_ms) {
  Decision d;
  if (alert.status == kResolved) {
    d.reason = "resolved alerts change nothing";
    return d;
  }
  absl::StatusOr<fleet::v1::App> spec = store.GetApp(app);
  if (spec.status().code() == absl::StatusCode::kNotFound) {
    d.reason = absl::StrCat("unknown app '", app, "'");
    return d;
  }
  if (!spec.ok()) return spec.status();

  FLEET_ASSIGN_OR_RETURN(std::vector<Rollout> active, store.ListActiveRollouts());
  // A deploy that goes on is aborted, whatever else runs beside it (a
  // rollback of the other subject); a rollback or a deploy already rolling
  // back is left to finish.
  bool running = false;
  for (Rollout& r : active) {
    if (r.app() != app) continue;
    if (r.kind() == fleet::v1::ROLLOUT_KIND_DEPLOY &&
        r.state() != fleet::v1::ROLLOUT_STATE_ROLLING_BACK) {
      d.rollout = std::move(r);
      d.kind = Decision::Kind::kAbort;
      return d;
    }
    if (!running) {
      running = true;
      d.rollout = r;
      d.reason = r.kind() == fleet::v1::ROLLOUT_KIND_ROLLBACK
                     ? absl::StrCat("rollback ", r.id(), " of ", app, " is running already")
                     : absl::StrCat("rollout ", r.id(), " of ", app, " is rolling back already");
    }
  }
  if (running) return d;

  const int64_t within_ms = spec->spec().rollback_on_alert_within_ms();
  if (within_ms <= 0) {
    d.reason = absl::StrCat("rollback_on_alert is not set for ", app, " and no rollout is running");
    return d;
  }
  FLEET_ASSIGN_OR_RETURN(std::vector<Rollout> latest,
                         store.ListRollouts(app, 1, /*with_tasks=*/false));
  if (latest.empty()) {
    d.reason = absl::StrCat(app, " has no rollout to roll back");
    return d;
  }
  d.rollout = std::move(latest.front());
  const Rollout& r = d.rollout;
  const std::string which =
      absl::StrCat("the latest rollout of ", app, " (", r.id(), ", ", Subject(r), ")");
  if (r.kind() != fleet::v1::ROLLOUT_KIND_DEPLOY) {
    d.reason = absl::StrCat(which, " is a rollback, not a deploy");
  } else if (r.state() != fleet::v1::ROLLOUT_STATE_SUCCEEDED) {
    d.reason = absl::StrCat(which, " did not succeed (", RolloutStateName(r.state()), ")");
  } else if (now_ms - r.finished_at_ms() > within_ms) {
    d.reason = absl::StrCat(which, " finished ", FormatAgo(now_ms - r.finished_at_ms()),
                            " ago, outside the rollback_on_alert window of ", FormatAgo(within_ms));
  } else if (absl::Time starts;
             absl::ParseTime(absl::RFC3339_full, alert.starts_at, &starts, nullptr) &&
             absl::ToUnixMillis(starts) < r.created_at_ms()) {
    d.reason = absl::StrCat("the alert fired at ", alert.starts_at, ", before ", which,
                            " started; it did not cause it");
  } else {
    d.kind = Decision::Kind::kRollback;
  }
  return d;
}

absl::StatusOr<std::string> ReadAlertToken(const std::string& path) {
  FLEET_ASSIGN_OR_RETURN(std::string content, ReadFile(path));
  std::string token(absl::StripAsciiWhitespace(content));
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("alert token file ", path, " is empty; put a shared secret in it"));
  }
  return token;
}

namespace {

// 401 for a webhook call without the right token. Its body is left unread,
// so the connection is closed after the answer.
void RefuseUnauthorized(const httplib::Request& req, httplib::Response& res) {
  spdlog::warn("alert webhook: request from {} without the right bearer token", req.remote_addr);
  res.status = 401;
  res.set_header("WWW-Authenticate", "Bearer");
  res.set_header("Connection", "close");
  res.set_content(
      "missing or wrong bearer token: send Authorization: Bearer <the token of "
      "--alert-token-file>\n",
      "text/plain");
}

// Handles an authenticated webhook body and answers with the summary.
void Answer(AlertHandler& handler, const std::string& peer, const std::string& body,
            httplib::Response& res) {
  absl::StatusOr<std::string> summary = handler.Handle(body);
  if (!summary.ok()) {
    const bool bad = summary.status().code() == absl::StatusCode::kInvalidArgument;
    if (bad) {
      spdlog::warn("alert webhook from {}: {}", peer, summary.status().message());
    } else {
      spdlog::error("alert webhook: {}", summary.status().message());
    }
    res.status = bad ? 400 : 500;
    res.set_content(absl::StrCat(summary.status().message(), "\n"), "text/plain");
    return;
  }
  res.set_content(*std::move(summary), "application/json");
}

}  // namespace

void AddAlertmanagerWebhook(httplib::Server* server, std::shared_ptr<AlertHandler> handler,
                            const std::string& token) {
  if (handler == nullptr) {
    server->Post(kAlertmanagerWebhookPath, [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_content("alert webhook disabled: start the controller with --alert-token-file\n",
                      "text/plain");
    });
    return;
  }
  // A content-reader handler runs once the headers are in: the token is
  // checked before a byte of the body is read, and the body is read up to
  // kHttpMaxBodyBytes whatever its framing (httplib bounds only Content-Length
  // bodies itself, not chunked ones).
  server->Post(kAlertmanagerWebhookPath,
               [handler = std::move(handler), digest = TokenDigest(token)](
                   const httplib::Request& req, httplib::Response& res,
                   const httplib::ContentReader& content_reader) {
                 if (!Authorized(req.get_header_value("Authorization"), digest)) {
                   RefuseUnauthorized(req, res);
                   return;
                 }
                 std::string body;
                 bool too_big = false;
                 const bool read = content_reader([&](const char* data, size_t length) {
                   too_big = body.size() + length > kHttpMaxBodyBytes;
                   if (!too_big) body.append(data, length);
                   return !too_big;
                 });
                 if (too_big) {
                   res.status = 413;
                   res.set_header("Connection", "close");
                   res.set_content(absl::StrCat("webhook body is over the ", kHttpMaxBodyBytes,
                                                " byte limit\n"),
                                   "text/plain");
                   return;
                 }
                 if (!read) {
                   res.status = 400;
                   res.set_content("cannot read the request body\n", "text/plain");
                   return;
                 }
                 Answer(*handler, req.remote_addr, body, res);
               });
}

}  // namespace fleet::controller
