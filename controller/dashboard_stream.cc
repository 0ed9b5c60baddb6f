// The dashboard API's server-sent event streams (dashboard_api.h): a
// rollout's WatchRollout call, and the audit events of EventFeed.
#include <httplib.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "controller/dashboard_api.h"
#include "controller/dashboard_http.h"
#include "controller/dashboard_json.h"
#include "controller/redaction.h"

namespace fleet::controller {
namespace {

// How often a stream looks whether the controller is stopping.
constexpr absl::Duration kStreamPoll = absl::Seconds(1);
// How often an event stream checks that its token is still valid.
constexpr absl::Duration kStreamRecheck = absl::Minutes(1);

// One WatchRollout call on the in-process channel, read by the HTTP
// thread that streams it. Reads one update at a time: the next read starts
// when the previous update was taken, so while the page's connection is
// slow the service merges what comes meanwhile (rollout_watch.h). A hold
// keeps the call from finishing (OnDone) before this object lets it go, so
// that a read may be started whenever an update was taken.
class WatchReader final : public grpc::ClientReadReactor<fleet::v1::RolloutUpdate> {
 public:
  enum class Next { kUpdate, kNothingYet, kEnded };

  WatchReader(fleet::v1::FleetService::Stub* stub, grpc::ClientContext* ctx, const std::string& id)
      : ctx_(ctx) {
    req_.set_id(id);
    stub->async()->WatchRollout(ctx_, &req_, this);
    StartRead(&incoming_);
    AddHold();
    StartCall();
  }

  // Cancels the call unless it ended, and waits for OnDone: the reactor
  // must outlive it.
  ~WatchReader() override {
    bool ended = false;
    {
      absl::MutexLock lock(&mu_);
      ended = reads_ended_;
    }
    if (!ended) ctx_->TryCancel();
    Finish();
  }

  void OnReadDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    if (ok) {
      ready_ = std::move(incoming_);
      has_ready_ = true;
    } else {
      reads_ended_ = true;
    }
  }

  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    done_ = true;
  }

  // The next update (into *update), waiting up to `timeout` for one; kEnded
  // once the stream ended and every update was taken (then Finish() says
  // how it ended).
  Next Take(absl::Duration timeout, fleet::v1::RolloutUpdate* update) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return has_ready_ || reads_ended_; };
      mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
      if (!has_ready_) return reads_ended_ ? Next::kEnded : Next::kNothingYet;
      *update = std::move(ready_);
      has_ready_ = false;
    }
    // Outside the lock: gRPC may run OnReadDone on this thread.
    StartRead(&incoming_);
    return Next::kUpdate;
  }

  // Lets the call finish and waits for its status. Idempotent.
  grpc::Status Finish() {
    if (!released_) {
      released_ = true;
      RemoveHold();
    }
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    return status_;
  }

 private:
  grpc::ClientContext* ctx_;
  fleet::v1::WatchRolloutRequest req_;
  fleet::v1::RolloutUpdate incoming_;  // written by gRPC while a read is pending
  bool released_ = false;              // the hold; used by the owning thread only
  absl::Mutex mu_;
  fleet::v1::RolloutUpdate ready_ ABSL_GUARDED_BY(mu_);
  bool has_ready_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_ended_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

// One server-sent event; `id` 0 for none. JSON keeps `data` on one line.
std::string SseEvent(const char* name, const nlohmann::json& data, int64_t id = 0) {
  std::string out = id > 0 ? absl::StrCat("id: ", id, "\n") : "";
  absl::StrAppend(&out, "event: ", name,
                  "\ndata: ", data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "\n\n");
  return out;
}

bool Write(httplib::DataSink& sink, const std::string& text) {
  return sink.write(text.data(), text.size());
}

// The last event of a stream: {"error": ""} when it ended as it should, else
// the reason, with the HTTP status that stands for it.
std::string EndEvent(const grpc::Status& status) {
  if (status.ok()) return SseEvent("end", {{"error", ""}});
  return SseEvent(
      "end", {{"error", status.error_message()}, {"status", HttpStatusOf(status.error_code())}});
}

void StartStream(httplib::Response& res) {
  res.set_header("Cache-Control", "no-store");
  // Proxies that buffer (nginx) would hold the events back.
  res.set_header("X-Accel-Buffering", "no");
}

}  // namespace

void DashboardApi::WatchRollout(const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1].str();
  // Admitted, and the rollout found, before the stream starts, so that a
  // refusal is an HTTP status rather than an event.
  fleet::v1::GetRolloutRequest get;
  get.set_id(id);
  fleet::v1::Rollout found;
  if (!CallApi(stub_.get(), &Stub::GetRollout, req, res, get, &found)) return;
  std::shared_ptr<grpc::ClientContext> ctx =
      GatewayContext(CallerOf(req), absl::InfiniteDuration());
  StartStream(res);
  res.set_chunked_content_provider("text/event-stream", [this, ctx, id](size_t,
                                                                        httplib::DataSink& sink) {
    WatchReader reader(stub_.get(), ctx.get(), id);
    absl::Time last_write = absl::Now();
    fleet::v1::RolloutUpdate update;
    while (!stopping_) {
      WatchReader::Next next = reader.Take(kStreamPoll, &update);
      if (next == WatchReader::Next::kEnded) {
        Write(sink, EndEvent(reader.Finish()));
        break;
      }
      if (next == WatchReader::Next::kUpdate) {
        if (!Write(sink, SseEvent("update", RolloutUpdateJson(update)))) return false;
        last_write = absl::Now();
      } else if (absl::Now() - last_write >= kStreamKeepAlive) {
        if (!Write(sink, ": keep-alive\n\n")) return false;
        last_write = absl::Now();
      }
    }
    if (stopping_) {
      Write(sink,
            EndEvent(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the controller is stopping")));
    }
    sink.done();
    return true;
  });
}

void DashboardApi::EventStream(const httplib::Request& req, httplib::Response& res) {
  // Read like ListEvents: every valid token may follow every app's events.
  fleet::v1::Caller caller;
  if (!CallApi(stub_.get(), &Stub::WhoAmI, req, res, fleet::v1::WhoAmIRequest(), &caller)) return;
  absl::StatusOr<int64_t> after = Int64Param(req, "after");
  if (!after.ok()) {
    SendError(res, 400, after.status().message());
    return;
  }
  // Without ?after= only what happens from now on.
  const int64_t start = req.has_param("after") ? *after : feed_->last_id();
  const std::string app = req.get_param_value("app");
  StartStream(res);
  res.set_chunked_content_provider("text/event-stream", [this, caller = CallerOf(req), start, app](
                                                            size_t, httplib::DataSink& sink) {
    int64_t seen = start;
    absl::Time last_write = absl::Now(), last_check = absl::Now();
    while (!stopping_) {
      EventFeed::Batch batch = feed_->Wait(seen, kStreamPoll);
      if (batch.shut_down) break;
      for (fleet::v1::Event& e : batch.events) {
        seen = e.id();
        if (!app.empty() && e.app() != app) continue;
        RedactMessage(&e);
        if (!Write(sink, SseEvent("event", ToJson(e), e.id()))) return false;
        last_write = absl::Now();
      }
      if (absl::Now() - last_check >= kStreamRecheck) {
        // A token revoked meanwhile ends the stream.
        std::unique_ptr<grpc::ClientContext> ctx = GatewayContext(caller, kGatewayCallDeadline);
        fleet::v1::Caller again;
        grpc::Status st = stub_->WhoAmI(ctx.get(), fleet::v1::WhoAmIRequest(), &again);
        if (!st.ok()) {
          Write(sink, EndEvent(st));
          sink.done();
          return true;
        }
        last_check = absl::Now();
      }
      if (absl::Now() - last_write >= kStreamKeepAlive) {
        if (!Write(sink, ": keep-alive\n\n")) return false;
        last_write = absl::Now();
      }
    }
    Write(sink,
          EndEvent(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the controller is stopping")));
    sink.done();
    return true;
  });
}

}  // namespace fleet::controller
