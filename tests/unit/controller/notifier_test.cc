#include "controller/notifier.h"

#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/event_kind.h"
#include "controller/sqlite_store.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::controller {
namespace {

using ::fleet::testing::StatusIs;
using ::fleet::testing::TempDir;
using ::fleet::testing::WaitFor;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr absl::Duration kWait = absl::Seconds(20);

using ::fleet::testing::FakeClock;

struct Request {
  std::string path;
  std::map<std::string, std::string> params;
  std::string content_type;
  std::string body;
};

// A real HTTP server on 127.0.0.1 that records every POST and answers
// each path with a scripted sequence of responses (the last one repeats;
// 200 "{}" by default). A path can be held: its requests wait until
// Release().
class Receiver {
 public:
  Receiver() {
    server_.Post(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      std::pair<int, std::string> answer{200, "{}"};
      bool hold = false;
      {
        absl::MutexLock lock(&mu_);
        Request r{req.path, {}, req.get_header_value("Content-Type"), req.body};
        for (const auto& [k, v] : req.params) r.params[k] = v;
        requests_.push_back(std::move(r));
        auto& script = scripts_[req.path];
        if (!script.empty()) {
          answer = script.front();
          if (script.size() > 1) script.erase(script.begin());
        }
        hold = held_.count(req.path) > 0;
        if (hold) ++entered_held_;
      }
      if (hold) release_.WaitForNotification();
      res.status = answer.first;
      res.set_content(answer.second, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Receiver() {
    if (!release_.HasBeenNotified()) release_.Notify();
    server_.stop();
    thread_.join();
  }

  std::string Url(const std::string& path_and_query) const {
    return absl::StrCat("http://127.0.0.1:", port_, path_and_query);
  }
  void Script(const std::string& path, std::vector<std::pair<int, std::string>> answers) {
    absl::MutexLock lock(&mu_);
    scripts_[path] = std::move(answers);
  }
  void Hold(const std::string& path) {
    absl::MutexLock lock(&mu_);
    held_.insert(path);
  }
  void Release() { release_.Notify(); }
  int entered_held() {
    absl::MutexLock lock(&mu_);
    return entered_held_;
  }
  std::vector<Request> Requests(const std::string& path) {
    absl::MutexLock lock(&mu_);
    std::vector<Request> out;
    for (const Request& r : requests_) {
      if (r.path == path) out.push_back(r);
    }
    return out;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  absl::Notification release_;
  absl::Mutex mu_;
  std::vector<Request> requests_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<std::pair<int, std::string>>> scripts_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> held_ ABSL_GUARDED_BY(mu_);
  int entered_held_ ABSL_GUARDED_BY(mu_) = 0;
};

fleet::v1::NotifySink Sink(const std::string& type, const std::string& url,
                           const std::string& secret = "") {
  fleet::v1::NotifySink sink;
  sink.set_type(type);
  sink.set_url(url);
  sink.set_secret(secret);
  return sink;
}

// The kind named `name`, which must exist.
EventKind KindNamed(const std::string& name) {
  std::optional<EventKind> kind = ParseEventKind(name);
  EXPECT_TRUE(kind.has_value()) << name;
  return kind.value_or(EventKind::kRolloutStarted);
}

// An event as the engine publishes it: rollout 7 of web@v2 failed on web-03.
EngineEvent Failed(const std::string& app = "web") {
  EngineEvent e;
  e.event.set_id(41);
  e.event.set_at_ms(1714564800000);  // 2024-05-01 12:00:00 UTC
  e.event.set_app(app);
  e.event.set_rollout_id("7");
  e.event.set_host_id("web-03");
  e.event_kind = EventKind::kRolloutFailed;
  e.event.set_kind(EventKindName(e.event_kind));
  e.event.set_actor("alice");
  e.event.set_message("GET http://127.0.0.1:8080/healthz returned 502 on web-03");
  e.subject = fleet::v1::SUBJECT_RELEASE;
  e.version = "v2";
  e.kind = fleet::v1::ROLLOUT_KIND_DEPLOY;
  return e;
}

EngineEvent OfKind(const std::string& kind, const std::string& app = "web") {
  EngineEvent e = Failed(app);
  e.event_kind = KindNamed(kind);
  e.event.set_kind(kind);
  e.event.set_message(absl::StrCat(kind, " message"));
  return e;
}

std::string Base64HmacSha256(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  unsigned char out[128];
  int n = EVP_EncodeBlock(out, mac, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(out), n);
}

class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(dir_.Sub("fleet.db"));
    ASSERT_OK(store);
    store_ = std::move(*store);
  }

  // Stores app `name` with `sinks`.
  void AddApp(const std::string& name, std::vector<fleet::v1::NotifySink> sinks) {
    fleet::v1::App app;
    app.mutable_spec()->set_name(name);
    for (auto& s : sinks) *app.mutable_spec()->add_notify() = std::move(s);
    bool created = false;
    ASSERT_OK(store_->UpsertApp(app, &created));
  }

  Notifier* StartNotifier(NotifierOptions options = {}) {
    notifier_ = std::make_unique<Notifier>(store_.get(), &clock_, options);
    notifier_->Start();
    return notifier_.get();
  }

  // The notify.* audit events, oldest first.
  std::vector<fleet::v1::Event> NotifyEvents() {
    auto events = store_->ListEvents("", 0);
    EXPECT_OK(events);
    std::vector<fleet::v1::Event> out;
    if (!events.ok()) return out;
    for (auto it = events->rbegin(); it != events->rend(); ++it) {
      if (it->kind().rfind("notify.", 0) == 0) out.push_back(*it);
    }
    return out;
  }
  bool WaitForNotifyEvents(size_t n) {
    return WaitFor([&] { return NotifyEvents().size() >= n; }, kWait);
  }

  // Declared first, destroyed last: the notifier stops before the server.
  Receiver receiver_;
  TempDir dir_;
  FakeClock clock_{absl::Now()};
  std::unique_ptr<Store> store_;
  std::unique_ptr<Notifier> notifier_;
};

TEST(NotificationTextTest, SummaryNamesAppRolloutVersionAndReason) {
  EXPECT_EQ(NotificationTitle(Failed()), "web: rollout 7 of v2 failed");
  EXPECT_EQ(NotificationSummary(Failed()),
            "web: rollout 7 of v2 failed: GET http://127.0.0.1:8080/healthz returned 502 on "
            "web-03");

  EngineEvent back = OfKind("host.switched_back");
  back.event.set_message("/healthz returned 502");
  EXPECT_EQ(NotificationSummary(back),
            "web: rollout 7 of v2: web-03 switched itself back: /healthz returned 502");

  EngineEvent rollback = OfKind("rollback.succeeded");
  rollback.kind = fleet::v1::ROLLOUT_KIND_ROLLBACK;
  rollback.subject = fleet::v1::SUBJECT_CONFIG;
  rollback.version = "c3";
  EXPECT_EQ(NotificationTitle(rollback), "web: rollback 7 to config c3 succeeded");
}

TEST(NotificationTextTest, OnlyListedKindsNotify) {
  for (const char* kind : {"rollout.started", "wave.finished", "rollout.succeeded",
                           "rollout.failed", "rollout.rolled_back", "rollout.rollback_incomplete",
                           "host.switched_back", "rollback.started", "rollback.succeeded",
                           "rollback.failed", "rollout.aborted", "alert.rollback"}) {
    EXPECT_TRUE(IsNotifiedKind(KindNamed(kind))) << kind;
  }
  for (const char* kind : {"wave.started", "host.healthy", "host.failed", "rollout.paused",
                           "host.connected", "notify.failed", "notify.delivered"}) {
    EXPECT_FALSE(IsNotifiedKind(KindNamed(kind))) << kind;
  }
}

TEST(NotificationTextTest, BuildPayloadRejectsUnknownSinkType) {
  EXPECT_THAT(BuildPayload("email", Failed()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown notify sink type")));
}

TEST(DingTalkSignatureTest, AddsTimestampAndUrlEncodedSignToTheQuery) {
  const std::string sig = DingTalkSignature("SECabc", 1700000000000);
  EXPECT_EQ(sig, Base64HmacSha256("SECabc", "1700000000000\nSECabc"));
  char* escaped = curl_easy_escape(nullptr, sig.data(), static_cast<int>(sig.size()));
  const std::string sign = escaped;
  curl_free(escaped);

  EXPECT_EQ(
      SignDingTalkUrl("https://oapi.dingtalk.com/robot/send?access_token=t", "SECabc",
                      1700000000000),
      "https://oapi.dingtalk.com/robot/send?access_token=t&timestamp=1700000000000&sign=" + sign);
  EXPECT_EQ(SignDingTalkUrl("https://h/send", "SECabc", 1700000000000),
            "https://h/send?timestamp=1700000000000&sign=" + sign);
  EXPECT_EQ(SignDingTalkUrl("https://h/send?a=b#frag", "SECabc", 1700000000000),
            "https://h/send?a=b&timestamp=1700000000000&sign=" + sign + "#frag");
}

TEST(UrlHostTest, KeepsOnlyTheHost) {
  EXPECT_EQ(UrlHost("https://oapi.dingtalk.com/robot/send?access_token=abc"), "oapi.dingtalk.com");
  EXPECT_EQ(UrlHost("http://user:pw@127.0.0.1:8080/x?key=1"), "127.0.0.1");
  EXPECT_EQ(UrlHost("not a url"), "(invalid url)");
}

TEST_F(NotifierTest, DingTalk_PostsMarkdownWithTitleSummaryAndDetails) {
  AddApp("web", {Sink("dingtalk", receiver_.Url("/ding?access_token=tok"))});
  StartNotifier()->OnEvents({Failed()});
  ASSERT_TRUE(WaitForNotifyEvents(1));

  auto requests = receiver_.Requests("/ding");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].content_type, "application/json");
  EXPECT_EQ(requests[0].params.at("access_token"), "tok");
  EXPECT_EQ(requests[0].params.count("sign"), 0u) << "no secret, no signature";
  json body = json::parse(requests[0].body);
  EXPECT_EQ(body["msgtype"], "markdown");
  EXPECT_EQ(body["markdown"]["title"], "web: rollout 7 of v2 failed");
  const std::string text = body["markdown"]["text"];
  EXPECT_THAT(text, StartsWith("**web: rollout 7 of v2 failed**\n\n"
                               "GET http://127.0.0.1:8080/healthz returned 502 on web-03\n"));
  for (const char* detail :
       {"- app: web\n", "- release: v2\n", "- rollout: 7 (deploy)\n", "- host: web-03\n",
        "- actor: alice\n", "- event: rollout.failed\n", "- time: 2024-05-01 12:00:00 UTC"}) {
    EXPECT_THAT(text, HasSubstr(detail));
  }
  EXPECT_EQ(body.size(), 2u);
}

TEST_F(NotifierTest, DingTalk_SignsWithHmacSha256OfTimestampAndSecret) {
  const std::string secret = "SEC0123456789abcdef";
  AddApp("web", {Sink("dingtalk", receiver_.Url("/ding?access_token=tok"), secret)});
  StartNotifier()->OnEvents({Failed()});
  ASSERT_TRUE(WaitForNotifyEvents(1));

  auto requests = receiver_.Requests("/ding");
  ASSERT_EQ(requests.size(), 1u);
  const auto& params = requests[0].params;
  EXPECT_EQ(params.at("access_token"), "tok");
  const std::string timestamp = params.at("timestamp");
  // The notifier's clock gives the timestamp, and that clock started at the
  // real time: DingTalk refuses timestamps more than an hour away.
  EXPECT_EQ(timestamp, absl::StrCat(absl::ToUnixMillis(clock_.Now())));
  EXPECT_LT(absl::AbsDuration(absl::FromUnixMillis(std::stoll(timestamp)) - absl::Now()),
            absl::Minutes(5));
  // httplib decodes the query: this is the base64 signature itself.
  EXPECT_EQ(params.at("sign"), Base64HmacSha256(secret, timestamp + "\n" + secret));
}

TEST_F(NotifierTest, WeCom_PostsMarkdownContent) {
  AddApp("web", {Sink("wecom", receiver_.Url("/wecom?key=k"))});
  StartNotifier()->OnEvents({Failed()});
  ASSERT_TRUE(WaitForNotifyEvents(1));

  auto requests = receiver_.Requests("/wecom");
  ASSERT_EQ(requests.size(), 1u);
  json body = json::parse(requests[0].body);
  EXPECT_EQ(body["msgtype"], "markdown");
  ASSERT_TRUE(body["markdown"].is_object());
  EXPECT_EQ(body["markdown"].size(), 1u);
  const std::string content = body["markdown"]["content"];
  EXPECT_THAT(content, StartsWith("**web: rollout 7 of v2 failed**"));
  EXPECT_THAT(content, HasSubstr("- host: web-03\n"));
}

TEST_F(NotifierTest, Slack_PostsSummaryTextAndOneMrkdwnSection) {
  AddApp("web", {Sink("slack", receiver_.Url("/services/T0/B0/x"))});
  EngineEvent e = Failed();
  e.event.set_message("probe said <bad> & worse");
  StartNotifier()->OnEvents({e});
  ASSERT_TRUE(WaitForNotifyEvents(1));

  auto requests = receiver_.Requests("/services/T0/B0/x");
  ASSERT_EQ(requests.size(), 1u);
  json body = json::parse(requests[0].body);
  EXPECT_EQ(body["text"], "web: rollout 7 of v2 failed: probe said &lt;bad&gt; &amp; worse");
  ASSERT_TRUE(body["blocks"].is_array());
  ASSERT_EQ(body["blocks"].size(), 1u);
  EXPECT_EQ(body["blocks"][0]["type"], "section");
  EXPECT_EQ(body["blocks"][0]["text"]["type"], "mrkdwn");
  const std::string text = body["blocks"][0]["text"]["text"];
  EXPECT_THAT(text, StartsWith("*web: rollout 7 of v2 failed*\n\nprobe said &lt;bad&gt;"));
  EXPECT_THAT(text, HasSubstr("- rollout: 7 (deploy)\n"));
}

TEST_F(NotifierTest, Webhook_PostsEveryFieldWithEmptyStringsForWhatDoesNotApply) {
  AddApp("web", {Sink("webhook", receiver_.Url("/hook"))});
  EngineEvent config = OfKind("rollback.started");
  config.event.clear_host_id();
  config.subject = fleet::v1::SUBJECT_CONFIG;
  config.version = "c3";
  config.kind = fleet::v1::ROLLOUT_KIND_ROLLBACK;
  StartNotifier()->OnEvents({Failed(), config});
  ASSERT_TRUE(WaitForNotifyEvents(2));

  auto requests = receiver_.Requests("/hook");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(json::parse(requests[0].body), json({{"event", "rollout.failed"},
                                                 {"app", "web"},
                                                 {"subject", "release"},
                                                 {"release", "v2"},
                                                 {"rollout_id", "7"},
                                                 {"host", "web-03"},
                                                 {"reason", Failed().event.message()},
                                                 {"actor", "alice"},
                                                 {"at_ms", 1714564800000}}));
  EXPECT_EQ(json::parse(requests[1].body), json({{"event", "rollback.started"},
                                                 {"app", "web"},
                                                 {"subject", "config"},
                                                 {"release", "c3"},
                                                 {"rollout_id", "7"},
                                                 {"host", ""},
                                                 {"reason", "rollback.started message"},
                                                 {"actor", "alice"},
                                                 {"at_ms", 1714564800000}}));
}

TEST_F(NotifierTest, RetriesAfterServerErrorAndRecordsDeliveryOnAttempt2) {
  receiver_.Script("/hook", {{500, "oops"}, {200, "{}"}});
  AddApp("web", {Sink("webhook", receiver_.Url("/hook?token=abc"))});
  StartNotifier()->OnEvents({Failed()});
  ASSERT_TRUE(WaitForNotifyEvents(1));

  EXPECT_EQ(receiver_.Requests("/hook").size(), 2u);
  auto events = NotifyEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind(), "notify.delivered");
  EXPECT_EQ(events[0].message(),
            "webhook to 127.0.0.1: rollout.failed delivered (HTTP 200, attempt 2)");
  EXPECT_EQ(events[0].app(), "web");
  EXPECT_EQ(events[0].rollout_id(), "7");
  EXPECT_EQ(events[0].actor(), "controller");
  // The default 1 s backoff, waited on the injected clock.
  EXPECT_EQ(clock_.slept(), absl::Seconds(1));
}

TEST_F(NotifierTest, SinkThatAlwaysFailsIsRecordedAsFailedAfterEveryAttempt) {
  receiver_.Script("/hook", {{500, "oops"}});
  AddApp("web", {Sink("webhook", receiver_.Url("/hook"))});
  StartNotifier()->OnEvents({Failed()});
  ASSERT_TRUE(WaitForNotifyEvents(1));

  EXPECT_EQ(receiver_.Requests("/hook").size(), 3u);
  auto events = NotifyEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind(), "notify.failed");
  EXPECT_EQ(events[0].message(),
            "webhook to 127.0.0.1: rollout.failed failed after 3 attempts: HTTP 500");
  // Backoff 1 s, then doubled to 2 s; none after the last attempt.
  EXPECT_EQ(clock_.slept(), absl::Seconds(3));
}

TEST_F(NotifierTest, DingTalkErrcodeInA200IsAFailure) {
  receiver_.Script("/ding", {{200, R"({"errcode":310000,"errmsg":"sign not match"})"}});
  AddApp("web", {Sink("dingtalk", receiver_.Url("/ding?access_token=tok"))});
  NotifierOptions options;
  options.attempts = 1;
  StartNotifier(options)->OnEvents({Failed()});
  ASSERT_TRUE(WaitForNotifyEvents(1));

  auto events = NotifyEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind(), "notify.failed");
  EXPECT_EQ(events[0].message(),
            "dingtalk to 127.0.0.1: rollout.failed failed after 1 attempt: HTTP 200, errcode "
            "310000: sign not match");
}

TEST_F(NotifierTest, UnreachableSinkFailsWithCurlsReason) {
  // A port that was free a moment ago: nothing listens there.
  const int port = ::fleet::testing::FreePort();
  AddApp("web", {Sink("slack", absl::StrCat("http://127.0.0.1:", port, "/x"))});
  NotifierOptions options;
  options.attempts = 2;
  StartNotifier(options)->OnEvents({Failed()});
  ASSERT_TRUE(WaitForNotifyEvents(1));

  auto events = NotifyEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].message(),
            "slack to 127.0.0.1: rollout.failed failed after 2 attempts: Couldn't connect to "
            "server");
}

TEST_F(NotifierTest, KindsNotInTheListAndAppsWithoutSinksSendNothing) {
  AddApp("web", {Sink("webhook", receiver_.Url("/hook"))});
  AddApp("quiet", {});
  Notifier* notifier = StartNotifier();
  notifier->OnEvents({OfKind("host.healthy"), OfKind("wave.started"), OfKind("rollout.paused"),
                      OfKind("notify.failed"), Failed("quiet")});
  // One worker delivers in order: once this one is through, the earlier
  // ones were handled.
  notifier->OnEvents({OfKind("rollout.succeeded")});
  ASSERT_TRUE(WaitForNotifyEvents(1));

  auto requests = receiver_.Requests("/hook");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(json::parse(requests[0].body)["event"], "rollout.succeeded");
  auto events = NotifyEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].app(), "web");
}

TEST_F(NotifierTest, OnEventsDoesNotWaitForAHangingSink) {
  receiver_.Hold("/slow");
  AddApp("slow", {Sink("webhook", receiver_.Url("/slow"))});
  AddApp("fast", {Sink("webhook", receiver_.Url("/fast"))});
  NotifierOptions options;
  options.request_timeout = absl::Minutes(5);  // hangs until released
  Notifier* notifier = StartNotifier(options);

  notifier->OnEvents({Failed("slow")});
  ASSERT_TRUE(WaitFor([&] { return receiver_.entered_held() == 1; }, kWait));
  // The worker is inside the hanging request. Had OnEvents waited for
  // delivery, it would never return: the handler is released only below.
  notifier->OnEvents({Failed("fast")});
  EXPECT_EQ(receiver_.Requests("/fast").size(), 0u) << "queued behind the slow sink";

  receiver_.Release();
  ASSERT_TRUE(WaitForNotifyEvents(2));
  auto events = NotifyEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].app(), "slow");
  EXPECT_EQ(events[0].kind(), "notify.delivered");
  EXPECT_EQ(events[1].app(), "fast");
  EXPECT_EQ(events[1].kind(), "notify.delivered");
}

TEST_F(NotifierTest, StopCutsAHangingRequestShortAndDropsQueuedEvents) {
  receiver_.Hold("/slow");
  AddApp("web", {Sink("webhook", receiver_.Url("/slow"))});
  NotifierOptions options;
  options.request_timeout = absl::Minutes(5);
  Notifier* notifier = StartNotifier(options);
  notifier->OnEvents({Failed(), OfKind("rollout.rolled_back")});
  ASSERT_TRUE(WaitFor([&] { return receiver_.entered_held() == 1; }, kWait));

  notifier->Stop();  // returns although the handler still holds the request
  notifier->Stop();
  notifier->OnEvents({OfKind("rollout.started")});
  receiver_.Release();

  EXPECT_EQ(receiver_.Requests("/slow").size(), 1u);
  EXPECT_TRUE(NotifyEvents().empty()) << "a delivery cut short by Stop is not recorded";
}

TEST_F(NotifierTest, FullQueueDropsNewEvents) {
  AddApp("web", {Sink("webhook", receiver_.Url("/hook"))});
  NotifierOptions options;
  options.max_queue = 2;
  notifier_ = std::make_unique<Notifier>(store_.get(), &clock_, options);
  // Not started yet: the queue only fills.
  notifier_->OnEvents({OfKind("rollout.started"), OfKind("wave.finished"),
                       OfKind("rollout.succeeded"), OfKind("rollout.failed")});
  notifier_->Start();
  ASSERT_TRUE(WaitForNotifyEvents(2));
  notifier_->OnEvents({OfKind("rollout.aborted")});
  ASSERT_TRUE(WaitForNotifyEvents(3));

  std::vector<std::string> kinds;
  for (const Request& r : receiver_.Requests("/hook")) {
    kinds.push_back(json::parse(r.body)["event"]);
  }
  EXPECT_THAT(kinds, ::testing::ElementsAre("rollout.started", "wave.finished", "rollout.aborted"));
}

TEST_F(NotifierTest, StoredEventsNeverHoldTheUrlQueryOrTheSecret) {
  const std::string token = "TOKEN-8f2c1d9e";
  const std::string secret = "SEC-5b7a3e0f";
  receiver_.Script(
      "/bad",
      {{200, absl::StrCat(R"({"errcode":300001,"errmsg":"token )", token, R"( is invalid"})")}});
  AddApp("web", {Sink("dingtalk", receiver_.Url("/ding?access_token=" + token), secret),
                 Sink("dingtalk", receiver_.Url("/bad?access_token=" + token), secret),
                 Sink("wecom", receiver_.Url("/wecom?key=" + token))});
  NotifierOptions options;
  options.attempts = 1;
  StartNotifier(options)->OnEvents({Failed()});
  ASSERT_TRUE(WaitForNotifyEvents(3));

  auto events = NotifyEvents();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].message(),
            "dingtalk to 127.0.0.1: rollout.failed failed after 1 attempt: HTTP 200, errcode "
            "300001: token *** is invalid");
  for (const fleet::v1::Event& e : events) {
    EXPECT_THAT(e.message(), Not(HasSubstr(token)));
    EXPECT_THAT(e.message(), Not(HasSubstr(secret)));
    EXPECT_THAT(e.message(), Not(HasSubstr("?")));
    EXPECT_THAT(e.message(), Not(HasSubstr("sign=")));
  }
}

}  // namespace
}  // namespace fleet::controller
