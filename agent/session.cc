#include "agent/session.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/write_queue.h"

namespace fleet::agent {

using fleet::v1::AgentMessage;
using fleet::v1::Command;
using fleet::v1::ControllerMessage;

grpc::ChannelArguments AgentChannelArguments() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  // Generous: a controller answering thousands of agents may take seconds
  // to answer a ping; a dead one is still noticed within 30 s.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Reconnection pacing is ours (Backoff); keep gRPC's own short.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(16 << 20);
  return args;
}

// One Connect stream. The reactor keeps a hold from Start() until the read
// side has ended and no write is in flight, so OnDone (after which gRPC is
// done with the object) cannot run while Write() may still start a write.
class AgentSession::Stream
    : public grpc::ClientBidiReactor<AgentMessage, ControllerMessage> {
 public:
  explicit Stream(AgentSession* session) : session_(session) {}

  void Start(const AgentMessage& hello) {
    session_->stub_->async()->Connect(&ctx_, this);
    AddHold();
    StartRead(&incoming_);
    Write(hello);
    StartCall();
  }

  void Write(const AgentMessage& message) {
    if (const AgentMessage* m = writes_.Push(message)) StartWrite(m);
  }

  void Cancel() { ctx_.TryCancel(); }
  const grpc::Status& status() const { return status_; }

  void OnReadDone(bool ok) override {
    if (!ok) {
      bool idle = false;
      if (writes_.Close(&idle) && idle) RemoveHold();
      return;
    }
    if (incoming_.has_command()) {
      session_->OnCommand(incoming_.command());
    } else if (incoming_.has_output_request()) {
      session_->OnOutputRequest(incoming_.output_request());
    }
    StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    if (ok && !said_connected_) {  // the hello went out: the stream is up
      said_connected_ = true;
      spdlog::info("connected to the controller");
    }
    auto next = writes_.Done(ok);
    if (next.write != nullptr) {
      StartWrite(next.write);
    } else if (next.idle_and_closed) {
      RemoveHold();
    }
  }

  void OnDone(const grpc::Status& status) override {
    status_ = status;
    session_->StreamEnded(this);
  }

 private:
  AgentSession* session_;
  grpc::ClientContext ctx_;
  ControllerMessage incoming_;
  WriteQueue<AgentMessage> writes_;
  grpc::Status status_;
  bool said_connected_ = false;  // the reactor's callbacks are serialized
};

AgentSession::AgentSession(std::shared_ptr<grpc::Channel> channel, Deployer* deployer,
                           Backoff backoff)
    : channel_(std::move(channel)),
      stub_(fleet::v1::AgentService::NewStub(channel_)),
      deployer_(deployer),
      backoff_(backoff) {}

AgentSession::~AgentSession() {
  Shutdown();
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [app, worker] : workers_) threads.push_back(std::move(worker.thread));
  }
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
}

void AgentSession::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  if (stream_ != nullptr) stream_->Cancel();
}

void AgentSession::Run() {
  const AgentOptions& opts = deployer_->options();
  int attempt = 0;
  while (true) {
    AgentMessage hello;
    auto* h = hello.mutable_hello();
    h->set_host_id(opts.host_id);
    h->mutable_labels()->insert(opts.labels.begin(), opts.labels.end());
    h->set_agent_version(FLEET_VERSION);
    for (auto& state : deployer_->AppStates()) *h->add_apps() = std::move(state);
    for (auto& lr : deployer_->LocalRollbacks()) *h->add_local_rollbacks() = std::move(lr);

    auto stream = std::make_unique<Stream>(this);
    {
      absl::MutexLock lock(&mu_);
      if (shutdown_) return;
      stream_done_ = false;
    }
    absl::Time started = absl::Now();
    // Published for Send() only once the reactor is bound and Hello is
    // queued: nothing may be written before that, and nothing before Hello.
    stream->Start(hello);
    {
      absl::MutexLock lock(&mu_);
      if (!stream_done_) stream_ = stream.get();
      if (shutdown_ && stream_ != nullptr) stream_->Cancel();
      mu_.Await(absl::Condition(&stream_done_));
      if (shutdown_) return;
    }
    absl::Duration lasted = absl::Now() - started;
    // A stream that stayed up a while was a real connection: start over.
    attempt = lasted > absl::Seconds(5) ? 0 : attempt + 1;
    absl::Duration delay = backoff_.Delay(attempt);
    const std::string hint = failure_hint_ ? failure_hint_(stream->status()) : "";
    spdlog::warn("{}: connection to controller ended after {}: {}{}; reconnecting in {}",
                 opts.host_id, absl::FormatDuration(lasted), stream->status().error_message(),
                 hint.empty() ? "" : absl::StrCat(" (", hint, ")"), absl::FormatDuration(delay));
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&shutdown_), delay)) return;
  }
}

void AgentSession::StreamEnded(Stream* stream) {
  absl::MutexLock lock(&mu_);
  if (stream_ == stream) stream_ = nullptr;
  stream_done_ = true;
}

void AgentSession::Send(const AgentMessage& message) {
  absl::MutexLock lock(&mu_);
  // Without a stream the result stays stored; the controller resends the
  // command after reconnecting and gets the stored result.
  if (stream_ != nullptr) stream_->Write(message);
}

void AgentSession::ReportLocalRollback(const fleet::v1::LocalRollback& rollback) {
  AgentMessage msg;
  *msg.mutable_local_rollback() = rollback;
  Send(msg);
}

void AgentSession::OnOutputRequest(const fleet::v1::OutputRequest& request) {
  AgentMessage msg;
  fleet::v1::OutputReply* reply = msg.mutable_output_reply();
  reply->set_request_id(request.request_id());
  absl::StatusOr<std::vector<fleet::v1::ActivationOutput>> activations =
      deployer_->output_log().Read(request.app(), request.rollout_id(),
                                   std::max(request.activations(), 1), request.max_bytes());
  if (activations.ok()) {
    for (auto& a : *activations) *reply->add_activations() = std::move(a);
  } else {
    reply->set_error(std::string(activations.status().message()));
  }
  Send(msg);
}

void AgentSession::OnCommand(const Command& command) {
  std::string app = command.has_stage() ? command.stage().spec().name()
                                        : command.activate().spec().name();
  absl::MutexLock lock(&mu_);
  if (shutdown_) return;
  if (!in_flight_.insert(command.id()).second) {
    spdlog::debug("command {} is already running", command.id());
    return;
  }
  Worker& worker = workers_[app];
  // A new activation while one of the same subject is baking means the
  // controller changed its mind (a rollback took over): stop baking the old
  // one. Code and config are rolled out independently, so an activation of
  // the other subject waits for the bake instead.
  if (command.has_activate()) {
    auto running = activating_.find(app);
    if (running != activating_.end() && running->second == command.activate().subject()) {
      deployer_->CancelActivation(app);
    }
  }
  worker.queue.push_back(command);
  if (!worker.thread.joinable()) {
    worker.thread = std::thread([this, app] { WorkerLoop(app); });
  }
}

void AgentSession::WorkerLoop(const std::string& app) {
  while (true) {
    Command command;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this, &app]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return shutdown_ || !workers_[app].queue.empty();
      };
      mu_.Await(absl::Condition(&has_work));
      if (shutdown_) return;
      command = std::move(workers_[app].queue.front());
      workers_[app].queue.pop_front();
      // Reset here, under mu_, so that a cancel OnCommand sends for this
      // command (also under mu_) cannot be lost.
      if (command.has_activate()) {
        activating_[app] = command.activate().subject();
        deployer_->ResetCancel(app);
      }
    }
    spdlog::info("running command {}", command.id());
    auto progress = [this, &command](fleet::v1::ProgressStep step, const std::string& message) {
      spdlog::info("{}: {} {}", command.id(), ProgressStepName(step), message);
      AgentMessage msg;
      auto* p = msg.mutable_progress();
      p->set_command_id(command.id());
      *p->mutable_ref() = command.ref();
      p->set_step(step);
      p->set_message(message);
      Send(msg);
    };
    fleet::v1::CommandResult result = deployer_->Execute(command, progress);
    if (result.ok()) {
      spdlog::info("command {} succeeded", command.id());
    } else {
      spdlog::warn("command {} failed: {}", command.id(), result.reason());
    }
    AgentMessage msg;
    *msg.mutable_result() = std::move(result);
    Send(msg);
    absl::MutexLock lock(&mu_);
    in_flight_.erase(command.id());
    activating_.erase(app);
  }
}

}  // namespace fleet::agent
