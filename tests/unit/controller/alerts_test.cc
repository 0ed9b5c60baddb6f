// AlertHandler: Alertmanager webhook payloads turned into aborts and
// rollbacks, each alert acted on at most once, over a real Store, and the
// thin HTTP glue in front of it.
#include "controller/alerts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/event_kind.h"
#include "common/rollout_state.h"
#include "controller/agent_hub.h"
#include "controller/blob_store.h"
#include "controller/rollout_engine.h"
#include "controller/sqlite_store.h"
#include "controller/store.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::controller {
namespace {

using ::fleet::testing::StatusIs;
using fleet::v1::Event;
using fleet::v1::Rollout;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using json = nlohmann::json;

// 2024-05-01 12:00:00 UTC.
const absl::Time kNow = absl::FromUnixSeconds(1714564800);

using ::fleet::testing::FakeClock;

int64_t MsBefore(absl::Duration d) { return absl::ToUnixMillis(kNow - d); }

// Records what the handler asked for; answers with `result` or a rollout.
class RecordingActions : public AlertActions {
 public:
  absl::StatusOr<Rollout> Abort(const std::string& rollout_id, const std::string& actor) override {
    aborted.push_back(rollout_id);
    actors.push_back(actor);
    if (!error.ok()) return error;
    Rollout r;
    r.set_id(rollout_id);
    r.set_app("web");
    r.set_version("v3");
    r.set_kind(fleet::v1::ROLLOUT_KIND_DEPLOY);
    r.set_state(fleet::v1::ROLLOUT_STATE_ROLLING_BACK);
    return r;
  }
  absl::StatusOr<Rollout> Rollback(const std::string& app, fleet::v1::Subject subject,
                                   const std::string& actor) override {
    rolled_back.push_back(app);
    subjects.push_back(subject);
    actors.push_back(actor);
    if (before_rollback) before_rollback();
    if (!error.ok()) return error;
    Rollout r;
    r.set_id("99");
    r.set_app(app);
    r.set_version("v1");
    r.set_subject(subject);
    r.set_kind(fleet::v1::ROLLOUT_KIND_ROLLBACK);
    r.set_state(fleet::v1::ROLLOUT_STATE_ACTIVATING);
    return r;
  }

  std::vector<std::string> aborted;
  std::vector<std::string> rolled_back;
  std::vector<fleet::v1::Subject> subjects;
  std::vector<std::string> actors;
  absl::Status error;
  std::function<void()> before_rollback;
};

class RecordingObserver : public EngineObserver {
 public:
  void OnEvents(const std::vector<EngineEvent>& got) override {
    events.insert(events.end(), got.begin(), got.end());
  }
  void OnRolloutFinished(const Rollout&) override {}
  std::vector<EngineEvent> events;
};

json Alert(const std::string& status, const std::string& app,
           const std::string& fingerprint = "f00d",
           const std::string& starts_at = "2024-05-01T11:59:00Z") {
  json labels = {{"alertname", "HighErrorRate"}, {"severity", "page"}};
  if (!app.empty()) labels["fleet_app"] = app;
  return {{"status", status},
          {"labels", labels},
          {"annotations", {{"summary", "5xx above 5%"}}},
          {"startsAt", starts_at},
          {"endsAt", "0001-01-01T00:00:00Z"},
          {"generatorURL", "http://prometheus/graph"},
          {"fingerprint", fingerprint}};
}

std::string Payload(std::vector<json> alerts) {
  return json{{"version", "4"},
              {"groupKey", "{}:{alertname=\"HighErrorRate\"}"},
              {"truncatedAlerts", 0},
              {"status", "firing"},
              {"receiver", "fleet"},
              {"groupLabels", {{"alertname", "HighErrorRate"}}},
              {"commonLabels", json::object()},
              {"commonAnnotations", json::object()},
              {"externalURL", "http://alertmanager:9093"},
              {"alerts", alerts}}
      .dump();
}

// The summary entries of a Handle() answer.
std::vector<json> Entries(const absl::StatusOr<std::string>& answer) {
  EXPECT_OK(answer);
  if (!answer.ok()) return {};
  json doc = json::parse(*answer);
  return doc.at("alerts").get<std::vector<json>>();
}

class AlertHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OpenStore();
    // Every test app but "plain" rolls back on alerts within 30m.
    AddApp("web", absl::Minutes(30));
    AddApp("plain", absl::ZeroDuration());
    handler_ = std::make_unique<AlertHandler>(store_.get(), &actions_, &audit_, &clock_);
  }

  void OpenStore() {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(dir_.Sub("fleet.db"));
    ASSERT_OK(store);
    store_ = std::move(*store);
  }

  void AddApp(const std::string& name, absl::Duration within) {
    fleet::v1::App app;
    app.mutable_spec()->set_name(name);
    app.mutable_spec()->set_rollback_on_alert_within_ms(absl::ToInt64Milliseconds(within));
    app.set_desired_version("v2");
    ASSERT_OK(store_->UpsertApp(app, nullptr));
  }

  // A rollout of app@version in `state`; finished `ago` before kNow when
  // the state is terminal.
  std::string AddRollout(const std::string& app, const std::string& version,
                         fleet::v1::RolloutKind kind, fleet::v1::RolloutState state,
                         absl::Duration ago = absl::Minutes(5)) {
    Rollout r;
    r.set_app(app);
    r.set_version(version);
    r.set_from_version("v1");
    r.set_kind(kind);
    r.set_state(state);
    r.set_created_by("ci");
    r.set_created_at_ms(MsBefore(ago + absl::Minutes(1)));
    if (IsTerminal(state)) r.set_finished_at_ms(MsBefore(ago));
    fleet::v1::HostTask* task = r.add_tasks();
    task->set_host_id("web-01");
    task->set_state(IsTerminal(state) ? fleet::v1::TASK_STATE_HEALTHY
                                      : fleet::v1::TASK_STATE_ACTIVATING);
    task->set_from_version("v1");
    task->set_to_version(version);
    EXPECT_OK(store_->CreateRollout(&r));
    return r.id();
  }

  std::vector<Event> Events(const std::string& app = "") {
    absl::StatusOr<std::vector<Event>> events = store_->ListEvents(app, 0);
    EXPECT_OK(events);
    return events.ok() ? *events : std::vector<Event>{};
  }
  std::vector<std::string> EventKinds(const std::string& app = "") {
    std::vector<std::string> kinds;
    for (const Event& e : Events(app)) kinds.push_back(e.kind());
    return kinds;
  }

  fleet::testing::TempDir dir_;
  FakeClock clock_{kNow};
  AuditLog audit_{&clock_};
  RecordingActions actions_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AlertHandler> handler_;
};

TEST(ParseAlertmanagerWebhookTest, Parse_RejectsBodyThatIsNotJson) {
  EXPECT_THAT(ParseAlertmanagerWebhook("{\"version\": \"4\", "),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "not an Alertmanager webhook payload (version 4): the body is not JSON"));
  EXPECT_THAT(ParseAlertmanagerWebhook("[1, 2]"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a JSON object")));
}

TEST(ParseAlertmanagerWebhookTest, Parse_RejectsOtherVersions) {
  EXPECT_THAT(
      ParseAlertmanagerWebhook(R"({"version":"3","alerts":[]})"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("version is \"3\"; expected \"4\"")));
  EXPECT_THAT(ParseAlertmanagerWebhook(R"({"version":4,"alerts":[]})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("version is 4;")));
  EXPECT_THAT(ParseAlertmanagerWebhook(R"({"alerts":[]})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("version is missing")));
}

TEST(ParseAlertmanagerWebhookTest, Parse_NamesTheBadFieldOfTheBadAlert) {
  json bad_status = Alert("pending", "web");
  EXPECT_THAT(
      ParseAlertmanagerWebhook(Payload({Alert("firing", "web"), bad_status})),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("alerts[1].status is \"pending\", not \"firing\" or \"resolved\"")));
  json no_labels = Alert("firing", "web");
  no_labels.erase("labels");
  EXPECT_THAT(
      ParseAlertmanagerWebhook(Payload({no_labels})),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("alerts[0].labels is missing")));
  json number_label = Alert("firing", "web");
  number_label["labels"]["fleet_app"] = 7;
  EXPECT_THAT(ParseAlertmanagerWebhook(Payload({number_label})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("alerts[0].labels.fleet_app is not a string")));
  json no_start = Alert("firing", "web");
  no_start.erase("startsAt");
  EXPECT_THAT(
      ParseAlertmanagerWebhook(Payload({no_start})),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("alerts[0].startsAt is missing")));
  json bad_start = Alert("firing", "web", "f00d", "yesterday");
  EXPECT_THAT(ParseAlertmanagerWebhook(Payload({bad_start})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("alerts[0].startsAt is \"yesterday\", not an RFC 3339 time")));
  EXPECT_THAT(ParseAlertmanagerWebhook(R"({"version":"4","alerts":{}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("alerts is not a list")));
}

TEST(ParseAlertmanagerWebhookTest, Parse_ReadsAlertsAndDerivesAStableFingerprintWhenMissing) {
  json without = Alert("resolved", "web");
  without.erase("fingerprint");
  absl::StatusOr<std::vector<WebhookAlert>> first =
      ParseAlertmanagerWebhook(Payload({Alert("firing", "web"), without}));
  ASSERT_OK(first);
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].status, "firing");
  EXPECT_EQ((*first)[0].fingerprint, "f00d");
  EXPECT_EQ((*first)[0].starts_at, "2024-05-01T11:59:00.000Z");
  EXPECT_EQ((*first)[0].labels.at("fleet_app"), "web");
  EXPECT_EQ((*first)[0].annotations.at("summary"), "5xx above 5%");
  EXPECT_EQ((*first)[1].status, "resolved");
  EXPECT_THAT((*first)[1].fingerprint, HasSubstr("labels:"));

  absl::StatusOr<std::vector<WebhookAlert>> again = ParseAlertmanagerWebhook(Payload({without}));
  ASSERT_OK(again);
  EXPECT_EQ((*again)[0].fingerprint, (*first)[1].fingerprint);
}

TEST_F(AlertHandlerTest, Handle_BadPayloadIsInvalidArgumentAndRecordsNothing) {
  EXPECT_THAT(handler_->Handle(R"({"version":"2","alerts":[]})"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Events(), IsEmpty());
}

TEST_F(AlertHandlerTest, Handle_FiringAlertRollsBackDeployThatSucceededWithinTheWindow) {
  std::string deploy = AddRollout("web", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY,
                                  fleet::v1::ROLLOUT_STATE_SUCCEEDED, absl::Minutes(29));
  std::vector<json> entries = Entries(handler_->Handle(Payload({Alert("firing", "web")})));

  EXPECT_THAT(actions_.rolled_back, ElementsAre("web"));
  EXPECT_THAT(actions_.subjects, ElementsAre(fleet::v1::SUBJECT_RELEASE));
  EXPECT_THAT(actions_.actors, ElementsAre("alertmanager"));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["outcome"], "rollback");
  EXPECT_EQ(entries[0]["rollout_id"], "99");
  std::vector<Event> events = Events("web");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind(), "alert.rollback");
  EXPECT_EQ(events[0].rollout_id(), "99");
  EXPECT_EQ(events[0].actor(), "alertmanager");
  EXPECT_EQ(events[0].message(),
            absl::StrCat("alert HighErrorRate (5xx above 5%) firing: rolling back release v2 of "
                         "web (deployed by rollout ",
                         deploy, ", finished 29m ago): rollback 99 goes to v1"));
}

TEST_F(AlertHandlerTest, Handle_RollsBackTheSubjectOfTheLatestDeploy) {
  std::string deploy =
      AddRollout("web", "c2", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  // AddRollout writes releases; make this one a config rollout.
  absl::StatusOr<Rollout> r = store_->GetRollout(deploy);
  ASSERT_OK(r);
  Rollout config = *r;
  config.set_id("");
  config.set_subject(fleet::v1::SUBJECT_CONFIG);
  ASSERT_OK(store_->CreateRollout(&config));

  Entries(handler_->Handle(Payload({Alert("firing", "web")})));
  EXPECT_THAT(actions_.subjects, ElementsAre(fleet::v1::SUBJECT_CONFIG));
}

TEST_F(AlertHandlerTest, Handle_RepeatedDeliveryTriggersOneRollbackAndNoEvent) {
  AddRollout("web", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  const std::string body = Payload({Alert("firing", "web")});
  Entries(handler_->Handle(body));
  clock_.SleepFor(absl::Minutes(1));
  std::vector<json> again = Entries(handler_->Handle(body));

  EXPECT_THAT(actions_.rolled_back, ElementsAre("web"));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0]["outcome"], "duplicate");
  EXPECT_EQ(again[0]["rollout_id"], "99");
  EXPECT_THAT(again[0]["message"].get<std::string>(), HasSubstr("rollback: rolling back"));
  EXPECT_THAT(EventKinds("web"), ElementsAre("alert.rollback"));
}

TEST_F(AlertHandlerTest, Handle_RepeatedDeliveryIsRecognizedAfterStoreReopen) {
  AddRollout("web", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  const std::string body = Payload({Alert("firing", "web")});
  Entries(handler_->Handle(body));
  handler_.reset();
  store_.reset();
  OpenStore();
  handler_ = std::make_unique<AlertHandler>(store_.get(), &actions_, &audit_, &clock_);

  std::vector<json> again = Entries(handler_->Handle(body));
  EXPECT_THAT(actions_.rolled_back, ElementsAre("web"));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0]["outcome"], "duplicate");
}

TEST_F(AlertHandlerTest, Handle_SameAlertFiringAgainLaterIsANewAlert) {
  AddRollout("web", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  Entries(handler_->Handle(Payload({Alert("firing", "web", "f00d", "2024-05-01T11:59:00Z")})));
  Entries(handler_->Handle(Payload({Alert("firing", "web", "f00d", "2024-05-01T11:59:30Z")})));
  EXPECT_THAT(actions_.rolled_back, ElementsAre("web", "web"));
}

TEST_F(AlertHandlerTest, Handle_SameStartSpelledAnotherWayIsADuplicate) {
  AddRollout("web", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  // Alertmanager's webhook writes nanoseconds, its API milliseconds.
  Entries(handler_->Handle(
      Payload({Alert("firing", "web", "f00d", "2024-05-01T11:59:00.123456789Z")})));
  std::vector<json> again = Entries(
      handler_->Handle(Payload({Alert("firing", "web", "f00d", "2024-05-01T13:59:00.123+02:00")})));
  EXPECT_THAT(actions_.rolled_back, ElementsAre("web"));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0]["outcome"], "duplicate");
}

TEST_F(AlertHandlerTest, Handle_StoresTheAlertBeforeActing) {
  AddRollout("web", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  absl::StatusOr<AlertRecord> during = absl::UnknownError("not called");
  actions_.before_rollback = [&] {
    during = store_->GetAlert("f00d", "2024-05-01T11:59:00.000Z", "firing");
  };
  Entries(handler_->Handle(Payload({Alert("firing", "web")})));

  ASSERT_OK(during);
  EXPECT_EQ(during->outcome, AlertOutcome::kActing);
  EXPECT_EQ(during->app, "web");
  EXPECT_EQ(during->alertname, "HighErrorRate");
  absl::StatusOr<AlertRecord> after =
      store_->GetAlert("f00d", "2024-05-01T11:59:00.000Z", "firing");
  ASSERT_OK(after);
  EXPECT_EQ(after->outcome, AlertOutcome::kRollback);
  EXPECT_EQ(after->rollout_id, "99");
  EXPECT_EQ(after->received_at_ms, absl::ToUnixMillis(kNow));
}

TEST_F(AlertHandlerTest, Handle_DeployOutsideTheWindowIsIgnored) {
  std::string deploy = AddRollout("web", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY,
                                  fleet::v1::ROLLOUT_STATE_SUCCEEDED, absl::Minutes(31));
  std::vector<json> entries = Entries(handler_->Handle(Payload({Alert("firing", "web")})));

  EXPECT_THAT(actions_.rolled_back, IsEmpty());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["outcome"], "ignored");
  std::vector<Event> events = Events("web");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind(), "alert.ignored");
  EXPECT_EQ(events[0].actor(), "alertmanager");
  EXPECT_EQ(events[0].rollout_id(), deploy);
  EXPECT_EQ(events[0].message(),
            absl::StrCat("alert HighErrorRate (5xx above 5%) firing: ignored: the latest rollout "
                         "of web (",
                         deploy,
                         ", release v2) finished 31m ago, outside the rollback_on_alert window "
                         "of 30m"));
}

TEST_F(AlertHandlerTest, Handle_AppWithoutRollbackOnAlertIsIgnored) {
  AddRollout("plain", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  Entries(handler_->Handle(Payload({Alert("firing", "plain")})));
  EXPECT_THAT(actions_.rolled_back, IsEmpty());
  std::vector<Event> events = Events("plain");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind(), "alert.ignored");
  EXPECT_THAT(events[0].message(), HasSubstr("rollback_on_alert is not set for plain"));
}

TEST_F(AlertHandlerTest, Handle_LatestRolloutThatIsARollbackOrFailedIsNotRolledBack) {
  AddRollout("web", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  AddRollout("web", "v1", fleet::v1::ROLLOUT_KIND_ROLLBACK, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  Entries(handler_->Handle(Payload({Alert("firing", "web", "a1")})));
  AddRollout("web", "v3", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
  Entries(handler_->Handle(Payload({Alert("firing", "web", "a2")})));

  EXPECT_THAT(actions_.rolled_back, IsEmpty());
  std::vector<Event> events = Events("web");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_THAT(events[1].message(), HasSubstr("is a rollback, not a deploy"));
  EXPECT_THAT(events[0].message(), HasSubstr("did not succeed (rolled_back)"));
}

TEST_F(AlertHandlerTest, Handle_ResolvedAlertAndUnknownAppAreRecordedAndChangeNothing) {
  AddRollout("web", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  std::vector<json> entries = Entries(
      handler_->Handle(Payload({Alert("resolved", "web", "r1"), Alert("firing", "nope", "u1")})));

  EXPECT_THAT(actions_.rolled_back, IsEmpty());
  EXPECT_THAT(actions_.aborted, IsEmpty());
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0]["outcome"], "ignored");
  EXPECT_EQ(entries[1]["outcome"], "ignored");
  std::vector<Event> web = Events("web");
  ASSERT_EQ(web.size(), 1u);
  EXPECT_EQ(web[0].kind(), "alert.ignored");
  EXPECT_EQ(web[0].message(),
            "alert HighErrorRate (5xx above 5%) resolved: ignored: resolved alerts change nothing");
  std::vector<Event> nope = Events("nope");
  ASSERT_EQ(nope.size(), 1u);
  EXPECT_EQ(nope[0].kind(), "alert.ignored");
  EXPECT_THAT(nope[0].message(), HasSubstr("ignored: unknown app 'nope'"));
}

TEST_F(AlertHandlerTest, Handle_AlertWithoutFleetAppLabelIsSkippedWithoutEvent) {
  std::vector<json> entries = Entries(handler_->Handle(Payload({Alert("firing", "")})));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["outcome"], "skipped");
  EXPECT_THAT(Events(), IsEmpty());
}

TEST_F(AlertHandlerTest, Handle_RunningDeployIsAborted) {
  // A running deploy takes precedence over the window: even an app without
  // rollback_on_alert gets its running rollout aborted.
  std::string running = AddRollout("plain", "v3", fleet::v1::ROLLOUT_KIND_DEPLOY,
                                   fleet::v1::ROLLOUT_STATE_ACTIVATING);
  std::vector<json> entries = Entries(handler_->Handle(Payload({Alert("firing", "plain")})));

  EXPECT_THAT(actions_.aborted, ElementsAre(running));
  EXPECT_THAT(actions_.rolled_back, IsEmpty());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["outcome"], "abort");
  std::vector<Event> events = Events("plain");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind(), "alert.rollback");
  EXPECT_EQ(events[0].rollout_id(), running);
  EXPECT_THAT(events[0].message(), HasSubstr(absl::StrCat("aborted rollout ", running)));
}

TEST_F(AlertHandlerTest, Handle_RunningRollbackIsLeftAlone) {
  AddRollout("web", "v1", fleet::v1::ROLLOUT_KIND_ROLLBACK, fleet::v1::ROLLOUT_STATE_ACTIVATING);
  AddRollout("plain", "v3", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_ROLLING_BACK);
  Entries(handler_->Handle(Payload({Alert("firing", "web", "w"), Alert("firing", "plain", "p")})));

  EXPECT_THAT(actions_.aborted, IsEmpty());
  EXPECT_THAT(actions_.rolled_back, IsEmpty());
  ASSERT_EQ(Events("web").size(), 1u);
  EXPECT_THAT(Events("web")[0].message(), HasSubstr("is running already"));
  ASSERT_EQ(Events("plain").size(), 1u);
  EXPECT_THAT(Events("plain")[0].message(), HasSubstr("is rolling back already"));
}

TEST_F(AlertHandlerTest, Handle_EngineErrorIsAnsweredRecordedAndRetriedAtTheNextDelivery) {
  AddRollout("web", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  actions_.error = absl::FailedPreconditionError("no connected host has web");
  const std::string body = Payload({Alert("firing", "web")});
  std::vector<json> entries = Entries(handler_->Handle(body));

  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["outcome"], "failed");
  EXPECT_EQ(entries[0]["message"], "cannot roll back release v2 of web: no connected host has web");
  EXPECT_THAT(EventKinds("web"), ElementsAre("alert.failed"));

  // Alertmanager delivers a firing alert again: this time it works, once.
  actions_.error = absl::OkStatus();
  entries = Entries(handler_->Handle(body));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["outcome"], "rollback");
  EXPECT_EQ(actions_.rolled_back.size(), 2u);
  entries = Entries(handler_->Handle(body));
  EXPECT_EQ(entries[0]["outcome"], "duplicate");
  EXPECT_EQ(actions_.rolled_back.size(), 2u);
  EXPECT_THAT(EventKinds("web"), ElementsAre("alert.rollback", "alert.failed"));
}

TEST_F(AlertHandlerTest, Handle_AlertFiringSinceBeforeTheRolloutDoesNotRollItBack) {
  // The rollout started at 11:54; this alert fires since 11:50.
  AddRollout("web", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  std::vector<json> entries =
      Entries(handler_->Handle(Payload({Alert("firing", "web", "beef", "2024-05-01T11:50:00Z")})));

  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["outcome"], "ignored");
  EXPECT_THAT(entries[0]["message"].get<std::string>(), HasSubstr("it did not cause it"));
  EXPECT_THAT(actions_.rolled_back, ElementsAre());
}

TEST_F(AlertHandlerTest, Handle_TellsObserversAboutTheRollback) {
  RecordingObserver observer;
  audit_.AddObserver(&observer);
  AddRollout("web", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  Entries(handler_->Handle(Payload({Alert("firing", "web")})));

  ASSERT_EQ(observer.events.size(), 1u);
  EXPECT_EQ(observer.events[0].event_kind, EventKind::kAlertRollback);
  EXPECT_EQ(observer.events[0].event.kind(), "alert.rollback");
  EXPECT_EQ(observer.events[0].event.rollout_id(), "99");
  EXPECT_EQ(observer.events[0].version, "v1");
  EXPECT_EQ(observer.events[0].kind, fleet::v1::ROLLOUT_KIND_ROLLBACK);
}

TEST_F(AlertHandlerTest, Handle_TellsObserversAboutAnIgnoredAlertWithItsTypedKind) {
  RecordingObserver observer;
  audit_.AddObserver(&observer);
  Entries(handler_->Handle(Payload({Alert("resolved", "web")})));

  ASSERT_EQ(observer.events.size(), 1u);
  EXPECT_EQ(observer.events[0].event_kind, EventKind::kAlertIgnored);
  EXPECT_EQ(observer.events[0].event.kind(), "alert.ignored");
  EXPECT_EQ(observer.events[0].event.actor(), kAlertActor);
  EXPECT_EQ(observer.events[0].event.at_ms(), absl::ToUnixMillis(kNow));
  EXPECT_THAT(EventKinds("web"), ElementsAre("alert.ignored"));
}

// The same decisions through the real engine (no agents connected).
class AlertHandlerEngineTest : public AlertHandlerTest {
 protected:
  void SetUp() override {
    AlertHandlerTest::SetUp();
    blobs_ = std::make_unique<BlobStore>(dir_.Sub("blobs"));
    hub_ = std::make_unique<AgentHub>(blobs_.get(), &clock_);
    engine_ = std::make_unique<RolloutEngine>(store_.get(), hub_.get(), &clock_, EngineOptions{});
    hub_->set_listener(engine_.get());
    engine_handler_ = std::make_unique<AlertHandler>(store_.get(), engine_.get(), &audit_, &clock_);
  }

  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<AgentHub> hub_;
  std::unique_ptr<RolloutEngine> engine_;
  std::unique_ptr<AlertHandler> engine_handler_;
};

TEST_F(AlertHandlerEngineTest, Handle_AbortsRunningRolloutThroughTheEngine) {
  std::string running =
      AddRollout("web", "v3", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_ACTIVATING);
  std::vector<json> entries = Entries(engine_handler_->Handle(Payload({Alert("firing", "web")})));

  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["outcome"], "abort") << entries[0].dump();
  absl::StatusOr<Rollout> r = store_->GetRollout(running);
  ASSERT_OK(r);
  EXPECT_EQ(r->state(), fleet::v1::ROLLOUT_STATE_ROLLING_BACK);
  EXPECT_EQ(r->reason(), "aborted by alertmanager");
  EXPECT_THAT(EventKinds("web"), ElementsAre("alert.rollback", "rollout.aborted"));
}

TEST_F(AlertHandlerEngineTest, Handle_ReportsTheEnginesRefusalToRollBack) {
  AddRollout("web", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  AddRollout("web", "v1", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  std::vector<json> entries = Entries(engine_handler_->Handle(Payload({Alert("firing", "web")})));

  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["outcome"], "failed");
  // No agent is connected, so there is no host to switch.
  EXPECT_THAT(entries[0]["message"].get<std::string>(),
              HasSubstr("cannot roll back release v1 of web: no connected host has web"));
}

TEST(AlertTokenTest, ReadAlertToken_TrimsAndRefusesEmptyFiles) {
  fleet::testing::TempDir dir;
  fleet::testing::WriteTextFile(dir.Sub("token"), "  s3cret\n", 0600);
  fleet::testing::WriteTextFile(dir.Sub("empty"), " \n", 0600);
  absl::StatusOr<std::string> token = ReadAlertToken(dir.Sub("token"));
  ASSERT_OK(token);
  EXPECT_EQ(*token, "s3cret");
  EXPECT_THAT(ReadAlertToken(dir.Sub("empty")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is empty")));
  EXPECT_THAT(ReadAlertToken(dir.Sub("missing")), StatusIs(absl::StatusCode::kNotFound));
}

// The HTTP glue on a real httplib server on a loopback port.
class AlertWebhookHttpTest : public AlertHandlerTest {
 protected:
  void Serve(std::shared_ptr<AlertHandler> handler) {
    AddAlertmanagerWebhook(&server_, std::move(handler), "s3cret");
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  httplib::Result Post(const std::string& body, const std::string& authorization) {
    httplib::Client client("127.0.0.1", port_);
    httplib::Headers headers;
    if (!authorization.empty()) headers.emplace("Authorization", authorization);
    return client.Post(kAlertmanagerWebhookPath, headers, body, "application/json");
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(AlertWebhookHttpTest, Webhook_WithoutTokenFileAnswers503) {
  Serve(nullptr);
  httplib::Result res = Post(Payload({}), "Bearer s3cret");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->body, "alert webhook disabled: start the controller with --alert-token-file\n");
}

TEST_F(AlertWebhookHttpTest, Webhook_RefusesMissingOrWrongTokenWith401) {
  Serve(std::make_shared<AlertHandler>(store_.get(), &actions_, &audit_, &clock_));
  AddRollout("web", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  const std::string body = Payload({Alert("firing", "web")});
  for (const std::string& auth :
       {std::string(), std::string("Bearer wrong"), std::string("Bearer s3cre"),
        std::string("Basic s3cret"), std::string("Bearer s3cret2")}) {
    httplib::Result res = Post(body, auth);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401) << auth;
  }
  EXPECT_THAT(actions_.rolled_back, IsEmpty());
  EXPECT_THAT(Events(), IsEmpty());
}

TEST_F(AlertWebhookHttpTest, Webhook_AnswersBadPayloadWith400AndGoodOneWithSummary) {
  Serve(std::make_shared<AlertHandler>(store_.get(), &actions_, &audit_, &clock_));
  AddRollout("web", "v2", fleet::v1::ROLLOUT_KIND_DEPLOY, fleet::v1::ROLLOUT_STATE_SUCCEEDED);

  httplib::Result bad = Post("not json", "Bearer s3cret");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(bad->body, "not an Alertmanager webhook payload (version 4): the body is not JSON\n");

  // The scheme is case-insensitive (RFC 7235).
  httplib::Result good = Post(Payload({Alert("firing", "web")}), "bearer s3cret");
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200) << good->body;
  EXPECT_EQ(good->get_header_value("Content-Type"), "application/json");
  std::vector<json> entries = Entries(good->body);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["outcome"], "rollback");
  EXPECT_THAT(actions_.rolled_back, ElementsAre("web"));
}

}  // namespace
}  // namespace fleet::controller
