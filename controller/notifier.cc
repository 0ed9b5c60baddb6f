#include "controller/notifier.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/curl.h"
#include "common/logging.h"

namespace fleet::controller {
namespace {

using nlohmann::json;

// What is kept of a sink's answer: enough for DingTalk's and WeCom's
// {"errcode":..,"errmsg":..}.
constexpr size_t kMaxResponseBody = 64 << 10;
// How much of a sink's errmsg goes into an event.
constexpr size_t kMaxErrmsg = 200;

// The kinds that are sent, and how a title says what happened.
struct NotifiedKind {
  EventKind kind;
  const char* verb;
};
constexpr NotifiedKind kNotifiedKinds[] = {
    {EventKind::kRolloutStarted, "started"},
    {EventKind::kWaveFinished, "finished a wave"},
    {EventKind::kRolloutSucceeded, "succeeded"},
    {EventKind::kRolloutFailed, "failed"},
    {EventKind::kRolloutRolledBack, "was rolled back"},
    {EventKind::kRolloutRollbackIncomplete, "could not roll back every host"},
    {EventKind::kHostSwitchedBack, "had a host switch itself back"},
    {EventKind::kRollbackStarted, "started"},
    {EventKind::kRollbackSucceeded, "succeeded"},
    {EventKind::kRollbackFailed, "failed"},
    {EventKind::kRolloutAborted, "was aborted"},
    {EventKind::kAlertRollback, "was rolled back on an alert"},
    {EventKind::kAlertFailed, "could not be rolled back on an alert"},
    {EventKind::kRolloutWaiting, "waits for promote"},
    {EventKind::kAnalysisInconclusive, "paused: its analysis is inconclusive"},
};

// Cuts `text` to at most `max` bytes without splitting a UTF-8 character.
std::string TruncateUtf8(std::string text, size_t max) {
  if (text.size() <= max) return text;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text + "…";
}

// Each platform refuses longer messages: WeCom markdown 4096 bytes, Slack
// section text 3000 characters. A long agent reason must not make the
// failure notification itself fail.
constexpr size_t kMaxMarkdownBytes = 2800;

const NotifiedKind* FindKind(EventKind kind) {
  for (const NotifiedKind& k : kNotifiedKinds) {
    if (kind == k.kind) return &k;
  }
  return nullptr;
}

bool IsConfig(const EngineEvent& e) { return e.subject == fleet::v1::SUBJECT_CONFIG; }

// "v2", or "config c3".
std::string VersionLabel(const EngineEvent& e) {
  return IsConfig(e) ? absl::StrCat("config ", e.version) : e.version;
}

// "rollout 7 of v2", "rollback 8 to v1", "rollout 7", or "".
std::string RolloutLabel(const EngineEvent& e) {
  const fleet::v1::Event& ev = e.event;
  if (ev.rollout_id().empty()) return "";
  const bool rollback = e.kind == fleet::v1::ROLLOUT_KIND_ROLLBACK;
  std::string label = absl::StrCat(rollback ? "rollback " : "rollout ", ev.rollout_id());
  if (!e.version.empty()) absl::StrAppend(&label, rollback ? " to " : " of ", VersionLabel(e));
  return label;
}

std::string FormatTime(int64_t at_ms) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(at_ms),
                          absl::UTCTimeZone());
}

// Slack's mrkdwn treats these three as control characters.
std::string SlackEscape(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}});
}

// The title in bold, the message, then the details as a list. `bold` is
// "**" for DingTalk and WeCom markdown, "*" for Slack's mrkdwn.
std::string Markdown(const EngineEvent& e, absl::string_view bold) {
  const fleet::v1::Event& ev = e.event;
  std::string text = absl::StrCat(bold, NotificationTitle(e), bold, "\n\n");
  if (!ev.message().empty()) {
    absl::StrAppend(&text, TruncateUtf8(ev.message(), kMaxMarkdownBytes - 400), "\n\n");
  }
  absl::StrAppend(&text, "- app: ", ev.app(), "\n");
  if (!e.version.empty()) {
    absl::StrAppend(&text, "- ", IsConfig(e) ? "config" : "release", ": ", e.version, "\n");
  }
  if (!ev.rollout_id().empty()) {
    absl::StrAppend(&text, "- rollout: ", ev.rollout_id(),
                    e.kind == fleet::v1::ROLLOUT_KIND_ROLLBACK ? " (rollback)" : " (deploy)", "\n");
  }
  if (!ev.host_id().empty()) absl::StrAppend(&text, "- host: ", ev.host_id(), "\n");
  if (!ev.actor().empty()) absl::StrAppend(&text, "- actor: ", ev.actor(), "\n");
  absl::StrAppend(&text, "- event: ", ev.kind(), "\n");
  absl::StrAppend(&text, "- time: ", FormatTime(ev.at_ms()));
  return text;
}

// Messages come from agents and may hold invalid UTF-8: replace it rather
// than throw.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

struct CurlUrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};

size_t KeepBody(char* data, size_t size, size_t nmemb, void* userdata) {
  std::string* body = static_cast<std::string*>(userdata);
  size_t n = size * nmemb;
  // The rest of an oversized answer is read and ignored: its status counts.
  if (body->size() < kMaxResponseBody) {
    body->append(data, std::min(n, kMaxResponseBody - body->size()));
  }
  return n;
}

int AbortWhenStopping(void* clientp, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  // Non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK).
  return static_cast<std::atomic<bool>*>(clientp)->load() ? 1 : 0;
}

// `text` without anything of the sink that must stay private: the URL, its
// query values and the secret. A sink's error message could echo them.
std::string Redact(std::string text, const fleet::v1::NotifySink& sink) {
  std::vector<std::string> secrets = {sink.url(), sink.secret()};
  if (size_t q = sink.url().find('?'); q != std::string::npos) {
    for (absl::string_view pair : absl::StrSplit(sink.url().substr(q + 1), '&')) {
      std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
      secrets.push_back(kv.second);
    }
  }
  for (const std::string& s : secrets) {
    if (s.size() >= 4) absl::StrReplaceAll({{s, "***"}}, &text);
  }
  return text;
}

}  // namespace

bool IsNotifiedKind(EventKind kind) { return FindKind(kind) != nullptr; }

std::string NotificationTitle(const EngineEvent& e) {
  const fleet::v1::Event& ev = e.event;
  const NotifiedKind* k = FindKind(e.event_kind);
  std::string rollout = RolloutLabel(e);
  if (e.event_kind == EventKind::kHostSwitchedBack && !ev.host_id().empty()) {
    return absl::StrCat(ev.app(), ": ", rollout.empty() ? "" : absl::StrCat(rollout, ": "),
                        ev.host_id(), " switched itself back");
  }
  if (e.event_kind == EventKind::kAlertRollback) {
    if (rollout.empty()) return absl::StrCat(ev.app(), ": an alert triggered a rollback");
    return absl::StrCat(ev.app(), ": an alert triggered ", rollout);
  }
  // Every notified kind but alert.rollback is about a rollout; say at
  // least what happened otherwise.
  if (rollout.empty() || k == nullptr) return absl::StrCat(ev.app(), ": ", ev.kind());
  return absl::StrCat(ev.app(), ": ", rollout, " ", k->verb);
}

std::string NotificationSummary(const EngineEvent& e) {
  std::string summary = NotificationTitle(e);
  if (!e.event.message().empty()) absl::StrAppend(&summary, ": ", e.event.message());
  return summary;
}

std::string DingTalkPayload(const EngineEvent& e) {
  return Dump({{"msgtype", "markdown"},
               {"markdown", {{"title", NotificationTitle(e)}, {"text", Markdown(e, "**")}}}});
}

std::string WeComPayload(const EngineEvent& e) {
  return Dump({{"msgtype", "markdown"}, {"markdown", {{"content", Markdown(e, "**")}}}});
}

std::string SlackPayload(const EngineEvent& e) {
  json section = {{"type", "section"},
                  {"text", {{"type", "mrkdwn"}, {"text", SlackEscape(Markdown(e, "*"))}}}};
  return Dump({{"text", SlackEscape(NotificationSummary(e))}, {"blocks", json::array({section})}});
}

std::string WebhookPayload(const EngineEvent& e) {
  const fleet::v1::Event& ev = e.event;
  return Dump({{"event", ev.kind()},
               {"app", ev.app()},
               {"subject", IsConfig(e) ? "config" : "release"},
               {"release", e.version},
               {"rollout_id", ev.rollout_id()},
               {"host", ev.host_id()},
               {"reason", ev.message()},
               {"actor", ev.actor()},
               {"at_ms", ev.at_ms()}});
}

absl::StatusOr<std::string> BuildPayload(absl::string_view type, const EngineEvent& event) {
  if (type == "dingtalk") return DingTalkPayload(event);
  if (type == "wecom") return WeComPayload(event);
  if (type == "slack") return SlackPayload(event);
  if (type == "webhook") return WebhookPayload(event);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown notify sink type '", type, "': use dingtalk, wecom, slack or webhook"));
}

std::string DingTalkSignature(absl::string_view secret, int64_t timestamp_ms) {
  std::string to_sign = absl::StrCat(timestamp_ms, "\n", secret);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(to_sign.data()), to_sign.size(), mac, &mac_len);
  // 4 output characters per 3 input bytes, and a NUL.
  unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  int n = EVP_EncodeBlock(b64, mac, static_cast<int>(mac_len));
  return std::string(reinterpret_cast<const char*>(b64), n);
}

std::string SignDingTalkUrl(const std::string& url, absl::string_view secret,
                            int64_t timestamp_ms) {
  std::string signature = DingTalkSignature(secret, timestamp_ms);
  // curl_easy_escape ignores its handle (since 7.82; before, it was used
  // only for EBCDIC conversions).
  char* escaped = curl_easy_escape(nullptr, signature.data(), static_cast<int>(signature.size()));
  std::string sign = escaped != nullptr ? escaped : "";
  curl_free(escaped);
  size_t hash = url.find('#');
  std::string base = url.substr(0, hash);
  std::string fragment = hash == std::string::npos ? "" : url.substr(hash);
  return absl::StrCat(base, absl::StrContains(base, '?') ? "&" : "?", "timestamp=", timestamp_ms,
                      "&sign=", sign, fragment);
}

std::string UrlHost(const std::string& url) {
  std::unique_ptr<CURLU, CurlUrlDeleter> u(curl_url());
  char* host = nullptr;
  if (u == nullptr || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK ||
      curl_url_get(u.get(), CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    return "(invalid url)";
  }
  std::string result = host;
  curl_free(host);
  return result;
}

Notifier::Notifier(Store* store, Clock* clock, NotifierOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {}

Notifier::~Notifier() { Stop(); }

void Notifier::Start() {
  InitCurlOnce();
  worker_ = std::thread([this] { WorkerLoop(); });
}

void Notifier::Stop() {
  size_t dropped = 0;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped = queue_.size();
    queue_.clear();
  }
  if (worker_.joinable()) worker_.join();
  if (dropped > 0) spdlog::warn("notifier stopped; {} queued notifications dropped", dropped);
}

void Notifier::OnEvents(const std::vector<EngineEvent>& events) {
  size_t dropped = 0;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    for (const EngineEvent& e : events) {
      if (!IsNotifiedKind(e.event_kind)) continue;
      if (queue_.size() >= options_.max_queue) {
        ++dropped;
        continue;
      }
      queue_.push_back(e);
    }
  }
  if (dropped > 0) {
    spdlog::warn("notification queue full ({} waiting); dropped {} notifications",
                 options_.max_queue, dropped);
  }
}

void Notifier::OnRolloutFinished(const fleet::v1::Rollout& /*rollout*/) {}

bool Notifier::HasWorkOrStopping() const { return stopping_ || !queue_.empty(); }

void Notifier::WorkerLoop() {
  while (true) {
    EngineEvent event;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Notifier::HasWorkOrStopping));
      if (stopping_) return;
      event = std::move(queue_.front());
      queue_.pop_front();
    }
    Notify(event);
  }
}

void Notifier::Notify(const EngineEvent& event) {
  const std::string& app_name = event.event.app();
  absl::StatusOr<fleet::v1::App> app = store_->GetApp(app_name);
  if (!app.ok()) {
    // An app deleted since, or a store error: nobody to tell either way.
    if (!absl::IsNotFound(app.status())) {
      spdlog::warn("notify: cannot read app {} for {} of rollout {}: {}", app_name,
                   event.event.kind(), event.event.rollout_id(), app.status().message());
    }
    return;
  }
  for (const fleet::v1::NotifySink& sink : app->spec().notify()) {
    if (stopping_) return;
    Deliver(sink, event);
  }
}

void Notifier::Deliver(const fleet::v1::NotifySink& sink, const EngineEvent& event) {
  const fleet::v1::Event& ev = event.event;
  const std::string where = absl::StrCat(sink.type(), " to ", UrlHost(sink.url()));
  absl::StatusOr<std::string> body = BuildPayload(sink.type(), event);
  if (!body.ok()) {
    Record(event, EventKind::kNotifyFailed,
           absl::StrCat(where, ": ", ev.kind(), " not sent: ", body.status().message()));
    return;
  }
  const int attempts = std::max(1, options_.attempts);
  absl::Duration backoff = options_.initial_backoff;
  Attempt result;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    std::string url = sink.url();
    // Signed per attempt: DingTalk refuses old timestamps.
    if (sink.type() == "dingtalk" && !sink.secret().empty()) {
      url = SignDingTalkUrl(url, sink.secret(), absl::ToUnixMillis(clock_->Now()));
    }
    result = Post(sink, url, *body);
    if (result.ok) {
      spdlog::info("notify: {} of app {} rollout {}: {} delivered ({}, attempt {})", ev.kind(),
                   ev.app(), ev.rollout_id(), where, result.outcome, attempt);
      Record(event, EventKind::kNotifyDelivered,
             absl::StrCat(where, ": ", ev.kind(), " delivered (", result.outcome, ", attempt ",
                          attempt, ")"));
      return;
    }
    if (stopping_) {
      spdlog::info("notify: {} of app {} rollout {}: {} cut short by shutdown", ev.kind(), ev.app(),
                   ev.rollout_id(), where);
      return;
    }
    if (attempt == attempts) break;
    spdlog::warn("notify: {} of app {} rollout {}: {} attempt {} failed: {}; retrying in {}",
                 ev.kind(), ev.app(), ev.rollout_id(), where, attempt, result.outcome,
                 absl::FormatDuration(backoff));
    if (!Backoff(backoff)) return;
    backoff *= 2;
  }
  spdlog::warn("notify: {} of app {} rollout {}: {} failed after {} attempts: {}", ev.kind(),
               ev.app(), ev.rollout_id(), where, attempts, result.outcome);
  Record(event, EventKind::kNotifyFailed,
         absl::StrCat(where, ": ", ev.kind(), " failed after ", attempts,
                      attempts == 1 ? " attempt: " : " attempts: ", result.outcome));
}

Notifier::Attempt Notifier::Post(const fleet::v1::NotifySink& sink, const std::string& url,
                                 const std::string& body) {
  Attempt attempt;
  // A redirect is not followed: it would resend the token to wherever it
  // points, so it is a failure.
  CurlHandle curl = NewHttpHandle(options_.request_timeout, "fleet-controller/" FLEET_VERSION);
  if (curl == nullptr) {
    attempt.outcome = "cannot create a curl handle";
    return attempt;
  }
  CURL* h = curl.get();
  curl_slist* raw_headers = curl_slist_append(nullptr, "Content-Type: application/json");
  // No "100 Continue" round trip for these small bodies.
  raw_headers = curl_slist_append(raw_headers, "Expect:");
  CurlHeaders headers(raw_headers);
  std::string response;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, KeepBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &response);
  // Lets Stop() cut a hanging request short (curl calls it at least once a
  // second).
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, AbortWhenStopping);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &stopping_);

  CURLcode code = curl_easy_perform(h);
  if (code != CURLE_OK) {
    // curl's own messages name no URL.
    attempt.outcome = curl_easy_strerror(code);
    return attempt;
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  attempt.outcome = absl::StrCat("HTTP ", status);
  if (status < 200 || status > 299) return attempt;
  if (sink.type() == "dingtalk" || sink.type() == "wecom") {
    // Both answer 200 to every request they understood and put the verdict
    // (bad token, bad signature, rate limit) in errcode.
    json answer = json::parse(response, nullptr, /*allow_exceptions=*/false);
    if (answer.is_object() && answer.contains("errcode") && answer["errcode"].is_number() &&
        answer["errcode"].get<int64_t>() != 0) {
      std::string errmsg =
          answer.value("errmsg", json("")).is_string() ? answer["errmsg"].get<std::string>() : "";
      errmsg = TruncateUtf8(std::move(errmsg), kMaxErrmsg);
      absl::StrAppend(&attempt.outcome, ", errcode ", answer["errcode"].get<int64_t>(),
                      errmsg.empty() ? "" : ": ", Redact(errmsg, sink));
      return attempt;
    }
  }
  attempt.ok = true;
  return attempt;
}

bool Notifier::Backoff(absl::Duration d) {
  const absl::Time deadline = clock_->Now() + d;
  // Clock has no interruptible sleep: short slices keep Stop() prompt.
  for (absl::Time now = clock_->Now(); now < deadline; now = clock_->Now()) {
    if (stopping_) return false;
    clock_->SleepFor(std::min(deadline - now, absl::Milliseconds(100)));
  }
  return !stopping_;
}

void Notifier::Record(const EngineEvent& about, EventKind kind, const std::string& message) {
  fleet::v1::Event e;
  e.set_at_ms(absl::ToUnixMillis(clock_->Now()));
  e.set_app(about.event.app());
  e.set_rollout_id(about.event.rollout_id());
  e.set_kind(EventKindName(kind));
  e.set_actor("controller");
  e.set_message(message);
  // Stored only, never published: an observer must not write audit events
  // through the audit log, and nobody is told about deliveries.
  absl::Status st = store_->AddEvent(&e);
  if (!st.ok()) {
    spdlog::warn("notify: cannot record {} for app {} rollout {}: {}", EventKindName(kind),
                 about.event.app(), about.event.rollout_id(), st.message());
  }
}

}  // namespace fleet::controller
