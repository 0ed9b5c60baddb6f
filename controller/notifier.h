// Notifications about rollouts: DingTalk, WeCom, Slack and generic JSON
// webhooks, configured per app (AppSpec.notify).
//
// The rollout engine's and the controller's audit logs tell the Notifier
// what they recorded (EngineObserver); the Notifier keeps the events that
// people want to hear about and queues them. One worker thread reads the
// app's sinks from the store and POSTs to each sink in turn, retrying with
// exponential backoff. Every outcome is stored as an audit event
// (`notify.delivered` / `notify.failed`). A slow or hanging sink delays only
// later notifications, never a rollout.
//
// Sink URLs carry access tokens: events and logs name a sink by its type and
// host only, and a DingTalk signing secret is never written anywhere.
#ifndef FLEET_CONTROLLER_NOTIFIER_H_
#define FLEET_CONTROLLER_NOTIFIER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/event_kind.h"
#include "controller/rollout_engine.h"
#include "controller/store.h"
#include "fleet/v1/types.pb.h"

namespace fleet::controller {

struct NotifierOptions {
  // Attempts per sink and event, the first one included.
  int attempts = 3;
  // Wait before the second attempt; it doubles before each later one.
  absl::Duration initial_backoff = absl::Seconds(1);
  // Limit on one POST, connecting included.
  absl::Duration request_timeout = absl::Seconds(5);
  // Events waiting for delivery; events beyond are dropped with a warning.
  size_t max_queue = 10000;
};

// True for the event kinds that are sent to an app's sinks (rollout.started,
// wave.finished, rollout.failed, host.switched_back, rollback.*, ...).
bool IsNotifiedKind(EventKind kind);

// "web: rollout 7 of v2 failed": which app, rollout and version, and what
// happened; short enough for a message title.
std::string NotificationTitle(const EngineEvent& event);
// The title, then ": " and the event's message (the reason) when it has
// one: "web: rollout 7 of v2 failed: GET http://…/healthz returned 502 on web-03".
std::string NotificationSummary(const EngineEvent& event);

// The JSON bodies POSTed to each kind of sink.
//   dingtalk: {"msgtype":"markdown","markdown":{"title":TITLE,"text":MARKDOWN}}
//   wecom:    {"msgtype":"markdown","markdown":{"content":MARKDOWN}}
//   slack:    {"text":SUMMARY,"blocks":[{"type":"section",
//               "text":{"type":"mrkdwn","text":MARKDOWN}}]}
//   webhook:  {"event":KIND,"app":..,"subject":"release"|"config",
//              "release":VERSION (of the subject),"rollout_id":..,"host":..,
//              "reason":MESSAGE,"actor":..,"at_ms":..}  ("" when it does not apply)
// MARKDOWN is the title in bold, the message, and a list of details (app,
// version, rollout, host, actor, event kind, time in UTC).
std::string DingTalkPayload(const EngineEvent& event);
std::string WeComPayload(const EngineEvent& event);
std::string SlackPayload(const EngineEvent& event);
std::string WebhookPayload(const EngineEvent& event);
// The payload for a sink of `type`; InvalidArgument for an unknown type.
absl::StatusOr<std::string> BuildPayload(absl::string_view type, const EngineEvent& event);

// DingTalk's signature of a message sent at `timestamp_ms`:
// base64(HMAC-SHA256(key = secret, data = timestamp_ms + "\n" + secret)),
// not yet URL-encoded.
std::string DingTalkSignature(absl::string_view secret, int64_t timestamp_ms);
// `url` with "timestamp=<ms>&sign=<url-encoded signature>" added to its
// query (after "&", or "?" when it has none; before any "#fragment").
std::string SignDingTalkUrl(const std::string& url, absl::string_view secret, int64_t timestamp_ms);
// The host of `url` ("oapi.dingtalk.com"), which is what events and logs
// may say about a sink; "(invalid url)" when it cannot be parsed.
std::string UrlHost(const std::string& url);

// Thread safety: OnEvents and OnRolloutFinished may be called from any
// thread, concurrently with each other. Start() and Stop() are called from
// one owning thread.
class Notifier : public EngineObserver {
 public:
  // Borrows `store` and `clock`, which must outlive the Notifier. The clock
  // times the backoff between attempts, the DingTalk timestamp and the
  // audit events.
  Notifier(Store* store, Clock* clock, NotifierOptions options = {});
  // Stop().
  ~Notifier() override;

  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Starts the delivery thread; at most once. Events queued before are
  // delivered then.
  void Start();
  // Stops the delivery thread: a request in flight and a backoff wait are
  // cut short (not recorded), and queued events are dropped. Later events
  // are ignored. Idempotent; also safe without Start().
  void Stop();

  // EngineObserver. Only queues (never blocks on delivery or the store);
  // drops the events with a warning when the queue is full.
  void OnEvents(const std::vector<EngineEvent>& events) override;
  // Nothing to do: the events of a finished rollout say it all.
  void OnRolloutFinished(const fleet::v1::Rollout& rollout) override;

 private:
  // The result of one POST.
  struct Attempt {
    bool ok = false;
    // "HTTP 200", "HTTP 500", "HTTP 200, errcode 310000: sign not match",
    // or curl's error ("Timeout was reached"). Never the URL.
    std::string outcome;
  };

  void WorkerLoop();
  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends `event` to every sink of its app.
  void Notify(const EngineEvent& event);
  // Sends `event` to `sink` with retries and stores the outcome.
  void Deliver(const fleet::v1::NotifySink& sink, const EngineEvent& event);
  Attempt Post(const fleet::v1::NotifySink& sink, const std::string& url, const std::string& body);
  // Waits `d` on the clock. False when Stop() cut it short.
  bool Backoff(absl::Duration d);
  // Stores a notify.* event of `kind` about `about`'s app and rollout.
  void Record(const EngineEvent& about, EventKind kind, const std::string& message);

  Store* const store_;
  Clock* const clock_;
  const NotifierOptions options_;

  absl::Mutex mu_;
  std::deque<EngineEvent> queue_ ABSL_GUARDED_BY(mu_);
  // Written under mu_ (so that waiters on mu_ see it); also read without it
  // by curl's progress callback and the backoff wait.
  std::atomic<bool> stopping_{false};
  std::thread worker_;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_NOTIFIER_H_
