// Analysis during bake: Prometheus answers read into one number or an
// inconclusive reason (as text and over real HTTP), fail_if evaluation, and
// the engine's side driven through the Analyzer with a fake Prometheus and
// a fake clock over a real Store: when checks are due, how passes hold and
// release a wave, and how failures and inconclusive results fail or pause
// the rollout.
#include "controller/analysis.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
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
using fleet::v1::Rollout;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kQuery[] = "sum(rate(errors[1m]))";

TEST(ParsePrometheusAnswerTest, Parse_ReadsAScalar) {
  absl::StatusOr<double> value = ParsePrometheusAnswer(
      R"({"status":"success","data":{"resultType":"scalar","result":[1714564800.5,"0.25"]}})");
  ASSERT_OK(value);
  EXPECT_DOUBLE_EQ(*value, 0.25);
}

TEST(ParsePrometheusAnswerTest, Parse_ReadsAVectorOfOneSample) {
  absl::StatusOr<double> value =
      ParsePrometheusAnswer(R"({"status":"success","data":{"resultType":"vector","result":[)"
                            R"({"metric":{"job":"hello"},"value":[1714564800.5,"1.5e-3"]}]}})");
  ASSERT_OK(value);
  EXPECT_DOUBLE_EQ(*value, 0.0015);
}

TEST(ParsePrometheusAnswerTest, Parse_EmptyVectorIsNoData) {
  EXPECT_THAT(
      ParsePrometheusAnswer(R"({"status":"success","data":{"resultType":"vector","result":[]}})"),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no data")));
}

TEST(ParsePrometheusAnswerTest, Parse_SeveralSeriesMustBeAggregated) {
  EXPECT_THAT(
      ParsePrometheusAnswer(R"({"status":"success","data":{"resultType":"vector","result":[)"
                            R"({"metric":{"instance":"a"},"value":[1,"1"]},)"
                            R"({"metric":{"instance":"b"},"value":[1,"2"]}]}})"),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               "2 series; aggregate to one, e.g. with sum(...)"));
}

TEST(ParsePrometheusAnswerTest, Parse_NaNAndInfinitiesAreInconclusive) {
  for (const char* text : {"NaN", "+Inf", "-Inf"}) {
    EXPECT_THAT(ParsePrometheusAnswer(
                    absl::StrCat(R"({"status":"success","data":{"resultType":"vector","result":[)",
                                 R"({"metric":{},"value":[1,")", text, R"("]}]}})")),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("the query returned")))
        << text;
  }
  EXPECT_THAT(ParsePrometheusAnswer(
                  R"({"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}})"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("NaN")));
}

TEST(ParsePrometheusAnswerTest, Parse_ErrorStatusCarriesPrometheusReason) {
  EXPECT_THAT(ParsePrometheusAnswer(R"({"status":"error","errorType":"bad_data",)"
                                    R"("error":"1:5: parse error: unexpected end of input"})"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "the query failed (bad_data): 1:5: parse error: unexpected end of input"));
}

TEST(ParsePrometheusAnswerTest, Parse_BodyThatIsNoPrometheusAnswerIsUnavailable) {
  EXPECT_THAT(ParsePrometheusAnswer("<html>502 Bad Gateway</html>"),
              StatusIs(absl::StatusCode::kUnavailable, "the body is not JSON"));
  EXPECT_THAT(ParsePrometheusAnswer(R"({"data":{}})"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no \"status\"")));
}

TEST(ParsePrometheusAnswerTest, Parse_RangeVectorIsRefused) {
  EXPECT_THAT(
      ParsePrometheusAnswer(R"({"status":"success","data":{"resultType":"matrix","result":[]}})"),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               HasSubstr("returned a matrix; it must return one sample")));
}

TEST(MeetsFailIfTest, MeetsFailIf_EvaluatesEveryOperator) {
  EXPECT_TRUE(MeetsFailIf(0.31, ">", 0.05));
  EXPECT_FALSE(MeetsFailIf(0.05, ">", 0.05));
  EXPECT_TRUE(MeetsFailIf(0.05, ">=", 0.05));
  EXPECT_FALSE(MeetsFailIf(0.04, ">=", 0.05));
  EXPECT_TRUE(MeetsFailIf(0.9, "<", 0.99));
  EXPECT_FALSE(MeetsFailIf(0.99, "<", 0.99));
  EXPECT_TRUE(MeetsFailIf(0.99, "<=", 0.99));
  EXPECT_FALSE(MeetsFailIf(1, "<=", 0.99));
  EXPECT_TRUE(MeetsFailIf(0, "==", 0));
  EXPECT_FALSE(MeetsFailIf(1, "==", 0));
  EXPECT_TRUE(MeetsFailIf(1, "!=", 0));
  EXPECT_FALSE(MeetsFailIf(0, "!=", 0));
  // A check that cannot be read never passes.
  EXPECT_TRUE(MeetsFailIf(0, "=~", 0));
}

TEST(RedactUrlTest, RedactUrl_DropsCredentialsOnly) {
  EXPECT_EQ(RedactUrl("http://user:pw@prom:9090/x"), "http://prom:9090/x");
  EXPECT_EQ(RedactUrl("https://prom.example/?a=b@c"), "https://prom.example/?a=b@c");
  EXPECT_EQ(RedactUrl("http://127.0.0.1:9090"), "http://127.0.0.1:9090");
}

// CurlPrometheusClient against a real HTTP server on a loopback port that
// answers /api/v1/query like Prometheus.
class CurlPrometheusClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Get("/api/v1/query", [this](const httplib::Request& req, httplib::Response& res) {
      {
        absl::MutexLock lock(&mu_);
        queries_.push_back(req.get_param_value("query"));
      }
      res.status = status_;
      res.set_content(body_, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string Url() const { return absl::StrCat("http://127.0.0.1:", port_); }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  int status_ = 200;
  std::string body_;
  absl::Mutex mu_;
  std::vector<std::string> queries_ ABSL_GUARDED_BY(mu_);
};

TEST_F(CurlPrometheusClientTest, Query_SendsTheEncodedQueryAndReadsTheSample) {
  body_ = R"({"status":"success","data":{"resultType":"vector","result":[)"
          R"({"metric":{},"value":[1714564800,"0.31"]}]}})";
  CurlPrometheusClient client;
  const std::string query = R"(sum(rate(hello_requests_total{code="500"}[5s])) / 2 + 1)";
  absl::StatusOr<double> value = client.Query(Url() + "/", query);
  ASSERT_OK(value);
  EXPECT_DOUBLE_EQ(*value, 0.31);
  absl::MutexLock lock(&mu_);
  EXPECT_THAT(queries_, ElementsAre(query));
}

TEST_F(CurlPrometheusClientTest, Query_PrometheusErrorWith400IsInconclusiveWithItsReason) {
  status_ = 400;
  body_ = R"({"status":"error","errorType":"bad_data","error":"unknown function rat"})";
  CurlPrometheusClient client;
  EXPECT_THAT(client.Query(Url(), "rat(x[1m])"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "the query failed (bad_data): unknown function rat"));
}

TEST_F(CurlPrometheusClientTest, Query_HttpErrorWithoutPrometheusBodyNamesTheStatus) {
  status_ = 404;
  body_ = "404 page not found";
  CurlPrometheusClient client;
  EXPECT_THAT(
      client.Query(Url(), "up"),
      StatusIs(absl::StatusCode::kUnavailable,
               absl::StrCat("Prometheus at ", Url(), " answered HTTP 404: the body is not JSON")));
}

TEST(CurlPrometheusClientNoServerTest, Query_ClosedPortDidNotAnswer) {
  const int port = fleet::testing::FreePort();
  CurlPrometheusClient client(absl::Seconds(2));
  EXPECT_THAT(client.Query(absl::StrCat("http://user:secret@127.0.0.1:", port), "up"),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr(absl::StrCat("Prometheus at http://127.0.0.1:", port,
                                              " did not answer: "))));
}

TEST(CurlPrometheusClientNoServerTest, Query_AfterCancelReturnsCancelled) {
  CurlPrometheusClient client;
  client.Cancel();
  EXPECT_THAT(client.Query("http://127.0.0.1:1", "up"), StatusIs(absl::StatusCode::kCancelled));
}

// 2024-05-01 12:00:00 UTC.
const absl::Time kNow = absl::FromUnixSeconds(1714564800);
constexpr absl::Duration kInterval = absl::Seconds(10);

using ::fleet::testing::FakeClock;

// Answers every query with the answer last set, and records the queries.
// After BlockUntilCancel(), Query() waits for Cancel() and returns Cancelled.
class FakePrometheus : public PrometheusClient {
 public:
  absl::StatusOr<double> Query(const std::string& url, const std::string& query) override {
    absl::MutexLock lock(&mu_);
    calls_.push_back(absl::StrCat(url, " ", query));
    if (block_until_cancel_) {
      started_.Notify();
      mu_.Await(absl::Condition(&cancelled_));
      return absl::CancelledError("stopping");
    }
    return answer_;
  }
  void Cancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }

  void Answer(absl::StatusOr<double> answer) {
    absl::MutexLock lock(&mu_);
    answer_ = std::move(answer);
  }
  void BlockUntilCancel() {
    absl::MutexLock lock(&mu_);
    block_until_cancel_ = true;
  }
  std::vector<std::string> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  absl::Notification started_;

 private:
  absl::Mutex mu_;
  absl::StatusOr<double> answer_ ABSL_GUARDED_BY(mu_) = absl::InternalError("no answer set");
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  bool block_until_cancel_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

// A real engine over a real Store, no agents connected: rollouts are put
// into the store as they would be mid-flight and the engine advances them.
class AnalysisEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(dir_.Sub("fleet.db"));
    ASSERT_OK(store);
    store_ = std::move(*store);
    blobs_ = std::make_unique<BlobStore>(dir_.Sub("blobs"));
    hub_ = std::make_unique<AgentHub>(blobs_.get(), &clock_);
    NewEngine(EngineOptions{});
  }

  void NewEngine(EngineOptions options) {
    analyzer_.reset();
    engine_ = std::make_unique<RolloutEngine>(store_.get(), hub_.get(), &clock_, options);
    hub_->set_listener(engine_.get());
    auto prometheus = std::make_unique<FakePrometheus>();
    prometheus_ = prometheus.get();
    analyzer_ = std::make_unique<Analyzer>(engine_.get(), std::move(prometheus));
  }

  // App "web" with one check "error rate": kQuery > 0.05 every 10s.
  void AddApp(int failure_limit = 0, bool fail_on_inconclusive = false,
              const std::string& prometheus_url = "http://prom:9090") {
    fleet::v1::App app;
    app.mutable_spec()->set_name("web");
    app.mutable_spec()->set_prometheus_url(prometheus_url);
    fleet::v1::AnalysisCheck* check = app.mutable_spec()->add_analysis();
    check->set_name("error rate");
    check->set_query(kQuery);
    check->set_fail_if("> 0.05");
    check->set_op(">");
    check->set_threshold(0.05);
    check->set_interval_ms(absl::ToInt64Milliseconds(kInterval));
    check->set_failure_limit(failure_limit);
    check->set_fail_on_inconclusive(fail_on_inconclusive);
    app.set_desired_version("v1");
    ASSERT_OK(store_->UpsertApp(app, nullptr));
  }

  // A deploy (or rollback) of web to v2 in wave 1 of 2, started at kNow:
  // web-01 (wave 1) in `first`, web-02 (wave 2) staged.
  std::string AddRollout(fleet::v1::TaskState first,
                         fleet::v1::RolloutKind kind = fleet::v1::ROLLOUT_KIND_DEPLOY) {
    Rollout r;
    r.set_app("web");
    r.set_version("v2");
    r.set_from_version("v1");
    r.set_kind(kind);
    r.set_state(fleet::v1::ROLLOUT_STATE_ACTIVATING);
    r.set_created_by("ci");
    r.set_created_at_ms(absl::ToUnixMillis(kNow));
    r.set_current_wave(0);
    for (int w = 0; w < 2; ++w) {
      fleet::v1::Wave* wave = r.mutable_plan()->add_waves();
      wave->set_index(w);
      wave->set_hosts(w + 1);
      wave->set_target(w == 0 ? "1" : "100%");
    }
    r.mutable_plan()->mutable_waves(0)->set_started_at_ms(absl::ToUnixMillis(kNow));
    r.mutable_plan()->set_bake_ms(1000);
    for (int i = 0; i < 2; ++i) {
      fleet::v1::HostTask* t = r.add_tasks();
      t->set_host_id(absl::StrCat("web-0", i + 1));
      t->set_wave(i);
      t->set_state(i == 0 ? first : fleet::v1::TASK_STATE_STAGED);
      t->set_from_version("v1");
      t->set_to_version("v2");
      t->set_updated_at_ms(absl::ToUnixMillis(kNow));
    }
    EXPECT_OK(store_->CreateRollout(&r));
    engine_->Tick();  // what the controller's ticker does
    return r.id();
  }

  Rollout Get(const std::string& id) {
    absl::StatusOr<Rollout> r = store_->GetRollout(id);
    EXPECT_OK(r);
    return r.ok() ? *r : Rollout();
  }
  std::vector<fleet::v1::Event> Events(const std::string& kind) {
    absl::StatusOr<std::vector<fleet::v1::Event>> all = store_->ListEvents("web", 0);
    EXPECT_OK(all);
    std::vector<fleet::v1::Event> out;
    for (const fleet::v1::Event& e : all.ok() ? *all : std::vector<fleet::v1::Event>{}) {
      if (e.kind() == kind) out.push_back(e);
    }
    return out;
  }
  // Lets the interval pass and runs what is due.
  int EvaluateAfter(absl::Duration d = kInterval) {
    clock_.Advance(d);
    return analyzer_->RunOnce();
  }

  fleet::testing::TempDir dir_;
  FakeClock clock_{kNow};
  std::unique_ptr<Store> store_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<AgentHub> hub_;
  std::unique_ptr<RolloutEngine> engine_;
  std::unique_ptr<Analyzer> analyzer_;    // declared after the engine: stops first
  FakePrometheus* prometheus_ = nullptr;  // owned by analyzer_
};

TEST_F(AnalysisEngineTest, AnalysisDue_FirstEvaluationComesOneIntervalAfterTheWaveStarted) {
  AddApp();
  std::string id = AddRollout(fleet::v1::TASK_STATE_ACTIVATING);
  EXPECT_THAT(engine_->AnalysisDue(), IsEmpty());
  clock_.Advance(kInterval - absl::Milliseconds(1));
  EXPECT_THAT(engine_->AnalysisDue(), IsEmpty());
  clock_.Advance(absl::Milliseconds(1));
  std::vector<AnalysisEvaluation> due = engine_->AnalysisDue();
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].rollout_id, id);
  EXPECT_EQ(due[0].app, "web");
  EXPECT_EQ(due[0].wave, 0);
  EXPECT_EQ(due[0].check_index, 0);
  EXPECT_EQ(due[0].check.name(), "error rate");
  EXPECT_EQ(due[0].prometheus_url, "http://prom:9090");

  prometheus_->Answer(0.01);
  EXPECT_EQ(analyzer_->RunOnce(), 1);
  EXPECT_THAT(prometheus_->calls(), ElementsAre(absl::StrCat("http://prom:9090 ", kQuery)));
  // The next one is an interval after the last evaluation.
  EXPECT_THAT(engine_->AnalysisDue(), IsEmpty());
  EXPECT_EQ(EvaluateAfter(), 1);
}

TEST_F(AnalysisEngineTest, WaveOfHealthyHosts_FinishesOnlyAfterAPassingEvaluation) {
  AddApp();
  std::string id = AddRollout(fleet::v1::TASK_STATE_HEALTHY);
  clock_.Advance(absl::Seconds(5));
  engine_->Tick();
  EXPECT_EQ(Get(id).current_wave(), 0) << "the bake ended, analysis has not passed yet";
  EXPECT_THAT(Events("wave.finished"), IsEmpty());

  prometheus_->Answer(0.01);
  EXPECT_EQ(EvaluateAfter(absl::Seconds(5)), 1);
  Rollout r = Get(id);
  EXPECT_EQ(r.state(), fleet::v1::ROLLOUT_STATE_ACTIVATING);
  EXPECT_EQ(r.current_wave(), 1);
  EXPECT_EQ(Events("wave.finished").size(), 1u);
  // The new wave needs its own pass, an interval after it started.
  std::vector<AnalysisEvaluation> due = engine_->AnalysisDue();
  EXPECT_THAT(due, IsEmpty());
  clock_.Advance(kInterval);
  due = engine_->AnalysisDue();
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].wave, 1);
}

TEST_F(AnalysisEngineTest, FailedEvaluationsPastTheLimit_RollTheRolloutBack) {
  AddApp(/*failure_limit=*/1);
  std::string id = AddRollout(fleet::v1::TASK_STATE_HEALTHY);
  prometheus_->Answer(0.31);

  EXPECT_EQ(EvaluateAfter(), 1);
  EXPECT_EQ(Get(id).state(), fleet::v1::ROLLOUT_STATE_ACTIVATING) << "one failure is tolerated";
  ASSERT_EQ(Events("analysis.check_failed").size(), 1u);
  EXPECT_THAT(Events("analysis.check_failed")[0].message(),
              HasSubstr("sum(rate(errors[1m])) = 0.31, fail_if > 0.05 (1 failed evaluation)"));

  EXPECT_EQ(EvaluateAfter(), 1);
  Rollout r = Get(id);
  EXPECT_EQ(r.state(), fleet::v1::ROLLOUT_STATE_ROLLING_BACK);
  EXPECT_EQ(r.reason(),
            "analysis 'error rate' failed: sum(rate(errors[1m])) = 0.31, fail_if > 0.05 "
            "(2 failed evaluations)");
  // Every switched host goes back, as for failures past the threshold.
  EXPECT_EQ(r.tasks(0).state(), fleet::v1::TASK_STATE_REVERTING);
  EXPECT_EQ(r.tasks(1).state(), fleet::v1::TASK_STATE_CANCELLED);
  ASSERT_EQ(Events("analysis.failed").size(), 1u);
  EXPECT_EQ(Events("analysis.failed")[0].actor(), kAnalysisActor);
  EXPECT_EQ(Events("analysis.failed")[0].message(), r.reason());
  EXPECT_EQ(Events("rollout.failed").size(), 1u);
  // Nothing is evaluated for a rollout that is rolling back.
  EXPECT_EQ(EvaluateAfter(), 0);
}

TEST_F(AnalysisEngineTest, InconclusiveEvaluation_PausesUntilResumedAndEvaluatesAfresh) {
  AddApp();
  std::string id = AddRollout(fleet::v1::TASK_STATE_HEALTHY);
  prometheus_->Answer(absl::UnavailableError(
      "Prometheus at http://prom:9090 did not answer: Couldn't connect to server"));
  EXPECT_EQ(EvaluateAfter(), 1);
  Rollout r = Get(id);
  EXPECT_EQ(r.state(), fleet::v1::ROLLOUT_STATE_PAUSED);
  EXPECT_EQ(r.paused_by(), kAnalysisActor);
  EXPECT_EQ(r.reason(),
            "analysis 'error rate' inconclusive: Prometheus at http://prom:9090 did not answer: "
            "Couldn't connect to server");
  ASSERT_EQ(Events("analysis.inconclusive").size(), 1u);
  EXPECT_THAT(Events("analysis.inconclusive")[0].message(),
              HasSubstr(absl::StrCat("paused until: fleetctl rollout resume ", id)));
  EXPECT_EQ(EvaluateAfter(), 0) << "nothing is evaluated while paused";

  fleet::v1::RolloutActionRequest resume;
  resume.set_id(id);
  resume.set_actor("tester");
  ASSERT_OK(engine_->Act(resume, RolloutAction::kResume));
  r = Get(id);
  EXPECT_EQ(r.state(), fleet::v1::ROLLOUT_STATE_ACTIVATING);
  EXPECT_EQ(r.reason(), "");
  EXPECT_EQ(r.current_wave(), 0) << "the wave still needs a pass";
  EXPECT_THAT(engine_->AnalysisDue(), IsEmpty()) << "an interval after the resume";
  prometheus_->Answer(0.0);
  EXPECT_EQ(EvaluateAfter(), 1);
  EXPECT_EQ(Get(id).current_wave(), 1);
}

TEST_F(AnalysisEngineTest, ResumeAfterControllerRestart_EvaluatesAnIntervalAfterTheResume) {
  AddApp();
  std::string id = AddRollout(fleet::v1::TASK_STATE_HEALTHY);
  prometheus_->Answer(absl::UnavailableError("down"));
  EXPECT_EQ(EvaluateAfter(), 1);
  ASSERT_EQ(Get(id).state(), fleet::v1::ROLLOUT_STATE_PAUSED);

  NewEngine(EngineOptions{});  // analysis state is in memory only
  engine_->Tick();
  clock_.Advance(absl::Minutes(1));
  fleet::v1::RolloutActionRequest resume;
  resume.set_id(id);
  resume.set_actor("tester");
  ASSERT_OK(engine_->Act(resume, RolloutAction::kResume));
  EXPECT_THAT(engine_->AnalysisDue(), IsEmpty()) << "not at once, though the wave started long ago";
  clock_.Advance(kInterval);
  EXPECT_EQ(engine_->AnalysisDue().size(), 1u);
}

TEST_F(AnalysisEngineTest, InconclusiveWithOnInconclusiveFail_FailsTheRollout) {
  AddApp(/*failure_limit=*/5, /*fail_on_inconclusive=*/true);
  std::string id = AddRollout(fleet::v1::TASK_STATE_HEALTHY);
  prometheus_->Answer(absl::FailedPreconditionError(
      "no data: the query returned an empty vector (no series matched)"));
  EXPECT_EQ(EvaluateAfter(), 1);
  Rollout r = Get(id);
  EXPECT_EQ(r.state(), fleet::v1::ROLLOUT_STATE_ROLLING_BACK);
  EXPECT_EQ(r.reason(),
            "analysis 'error rate' inconclusive: no data: the query returned an empty vector "
            "(no series matched)");
  EXPECT_EQ(Events("analysis.failed").size(), 1u);
}

TEST_F(AnalysisEngineTest, ResultOfAnEarlierWindow_IsDropped) {
  AddApp();
  std::string id = AddRollout(fleet::v1::TASK_STATE_ACTIVATING);
  clock_.Advance(kInterval);
  std::vector<AnalysisEvaluation> due = engine_->AnalysisDue();
  ASSERT_EQ(due.size(), 1u);
  // Paused and resumed while the query ran: its window is over.
  fleet::v1::RolloutActionRequest req;
  req.set_id(id);
  req.set_actor("tester");
  ASSERT_OK(engine_->Act(req, RolloutAction::kPause));
  ASSERT_OK(engine_->Act(req, RolloutAction::kResume));
  engine_->OnAnalysisResult(due[0], absl::UnavailableError("late"));
  EXPECT_EQ(Get(id).state(), fleet::v1::ROLLOUT_STATE_ACTIVATING);
  EXPECT_THAT(Events("analysis.inconclusive"), IsEmpty());
}

TEST_F(AnalysisEngineTest, Rollback_IsNotAnalysed) {
  AddApp();
  AddRollout(fleet::v1::TASK_STATE_ACTIVATING, fleet::v1::ROLLOUT_KIND_ROLLBACK);
  clock_.Advance(kInterval * 3);
  EXPECT_THAT(engine_->AnalysisDue(), IsEmpty());
}

TEST_F(AnalysisEngineTest, NoPrometheusUrlAnywhere_IsInconclusiveNotAPass) {
  // The spec lost its URL after the rollout started.
  AddApp(0, false, /*prometheus_url=*/"");
  std::string id = AddRollout(fleet::v1::TASK_STATE_HEALTHY);
  EXPECT_EQ(EvaluateAfter(), 1);
  EXPECT_THAT(prometheus_->calls(), IsEmpty());
  Rollout r = Get(id);
  EXPECT_EQ(r.state(), fleet::v1::ROLLOUT_STATE_PAUSED);
  EXPECT_THAT(r.reason(), HasSubstr("no Prometheus to ask"));
}

TEST_F(AnalysisEngineTest, ControllerPrometheusUrl_IsUsedWhenTheSpecHasNone) {
  EngineOptions options;
  options.prometheus_url = "http://central:9090";
  NewEngine(options);
  AddApp(0, false, /*prometheus_url=*/"");
  AddRollout(fleet::v1::TASK_STATE_ACTIVATING);
  clock_.Advance(kInterval);
  std::vector<AnalysisEvaluation> due = engine_->AnalysisDue();
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].prometheus_url, "http://central:9090");
}

TEST_F(AnalysisEngineTest, StartRollout_RefusesAnalysisWithoutAnyPrometheusUrl) {
  AddApp(0, false, /*prometheus_url=*/"");
  fleet::v1::StartRolloutRequest req;
  req.set_app("web");
  req.set_version("v2");
  EXPECT_THAT(engine_->StartRollout(req),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app web has analysis but no prometheus_url (spec) or --prometheus-url "
                       "(controller)"));

  EngineOptions options;
  options.prometheus_url = "http://central:9090";
  NewEngine(options);
  // Past that check: there is no release v2.
  EXPECT_THAT(engine_->StartRollout(req), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(AnalysisEngineTest, Stop_CancelsTheQueryInFlightWithoutAVerdict) {
  AddApp();
  std::string id = AddRollout(fleet::v1::TASK_STATE_HEALTHY);
  clock_.Advance(kInterval);
  prometheus_->BlockUntilCancel();
  analyzer_->Start();
  ASSERT_TRUE(prometheus_->started_.WaitForNotificationWithTimeout(absl::Seconds(10)));
  analyzer_->Stop();
  Rollout r = Get(id);
  EXPECT_EQ(r.state(), fleet::v1::ROLLOUT_STATE_ACTIVATING);
  EXPECT_EQ(r.current_wave(), 0);
}

}  // namespace
}  // namespace fleet::controller
