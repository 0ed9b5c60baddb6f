#include "cli/rollout_stream.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/rollout_state.h"

namespace fleet::cli {
namespace {

// How a controller restart or a lost connection ends a call.
bool IsConnectionLoss(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::UNKNOWN:  // "Stream removed"
      return true;
    default:
      return false;
  }
}

absl::Status ToAbslStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// `d` shortened by a random share of up to half, so that many clients that
// lost the same controller do not call back in step.
absl::Duration Jittered(absl::Duration d) {
  thread_local std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return d * jitter(rng);
}

}  // namespace

void FollowedRollout::Apply(const fleet::v1::RolloutUpdate& update) {
  if (update.snapshot()) {
    rollout_ = update.rollout();
    index_.clear();
    for (int i = 0; i < rollout_.tasks_size(); ++i) index_[rollout_.tasks(i).host_id()] = i;
    return;
  }
  google::protobuf::RepeatedPtrField<fleet::v1::HostTask> tasks;
  tasks.Swap(rollout_.mutable_tasks());
  rollout_ = update.rollout();
  rollout_.mutable_tasks()->Swap(&tasks);
  for (const fleet::v1::HostTask& t : update.rollout().tasks()) {
    auto [it, added] = index_.emplace(t.host_id(), rollout_.tasks_size());
    if (added) {
      *rollout_.add_tasks() = t;
    } else {
      *rollout_.mutable_tasks(it->second) = t;
    }
  }
}

RolloutStream::RolloutStream(fleet::v1::FleetService::StubInterface* api, ContextFactory contexts,
                             std::string id, ReconnectPolicy policy)
    : api_(api), contexts_(std::move(contexts)), id_(std::move(id)), policy_(policy) {
  thread_ = std::thread([this] { Run(); });
}

RolloutStream::~RolloutStream() {
  stop_.Notify();
  {
    absl::MutexLock lock(&mu_);
    if (call_ != nullptr) call_->TryCancel();
  }
  thread_.join();
}

std::optional<StreamEvent> RolloutStream::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !events_.empty(); };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) return std::nullopt;
  StreamEvent event = std::move(events_.front());
  events_.pop_front();
  return event;
}

void RolloutStream::Report(StreamEvent event) {
  absl::MutexLock lock(&mu_);
  events_.push_back(std::move(event));
}

grpc::Status RolloutStream::Call(bool* delivered, bool* terminal, absl::Duration* give_up) {
  std::unique_ptr<grpc::ClientContext> ctx = contexts_();
  {
    absl::MutexLock lock(&mu_);
    if (stop_.HasBeenNotified()) return grpc::Status::CANCELLED;
    call_ = ctx.get();
  }
  fleet::v1::WatchRolloutRequest req;
  req.set_id(id_);
  std::unique_ptr<grpc::ClientReaderInterface<fleet::v1::RolloutUpdate>> reader =
      api_->WatchRollout(ctx.get(), req);
  StreamEvent event;
  while (reader->Read(&event.update)) {
    const fleet::v1::Rollout& r = event.update.rollout();
    *delivered = true;
    *terminal = IsTerminal(r.state());
    if (event.update.snapshot()) {
      *give_up = std::max(*give_up, 3 * absl::Milliseconds(r.plan().host_timeout_ms()));
    }
    Report(std::move(event));
    event = StreamEvent();
  }
  grpc::Status status = reader->Finish();
  absl::MutexLock lock(&mu_);
  call_ = nullptr;
  return status;
}

void RolloutStream::Run() {
  absl::Duration backoff = policy_.initial_backoff;
  absl::Duration give_up = policy_.give_up_after;
  std::optional<absl::Time> lost_at;  // since when no call got through
  while (!stop_.HasBeenNotified()) {
    bool delivered = false;
    bool terminal = false;
    grpc::Status status = Call(&delivered, &terminal, &give_up);
    if (stop_.HasBeenNotified()) return;
    // The end is known even when the call broke right after showing it.
    if (terminal) {
      Report({StreamEvent::Kind::kEnded, {}, absl::OkStatus()});
      return;
    }
    if (!status.ok() && !IsConnectionLoss(status)) {
      Report({StreamEvent::Kind::kEnded, {}, ToAbslStatus(status)});
      return;
    }
    if (status.ok()) {
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the watch ended before the rollout");
    }
    if (delivered) lost_at.reset();  // it got through: a new outage starts now
    if (!lost_at) {
      lost_at = absl::Now();
      backoff = policy_.initial_backoff;
      Report({StreamEvent::Kind::kReconnecting, {}, ToAbslStatus(status)});
    } else if (absl::Now() - *lost_at > give_up) {
      Report({StreamEvent::Kind::kEnded,
              {},
              absl::UnavailableError(absl::StrCat(
                  "controller unreachable for ", absl::FormatDuration(give_up), " (",
                  status.error_message(), "); rollout ", id_,
                  " may still be running: follow it with fleetctl rollout watch ", id_))});
      return;
    }
    stop_.WaitForNotificationWithTimeout(Jittered(backoff));
    backoff = std::min(backoff * 2, policy_.max_backoff);
  }
}

}  // namespace fleet::cli
