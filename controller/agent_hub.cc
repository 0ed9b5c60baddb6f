#include "controller/agent_hub.h"

#include <fcntl.h>
#include <unistd.h>

#include <deque>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/sha256.h"
#include "common/status.h"
#include "common/write_queue.h"

namespace fleet::controller {

using fleet::v1::AgentMessage;
using fleet::v1::ControllerMessage;

void ConfigureServerKeepalive(grpc::ServerBuilder* builder) {
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
}

// One agent's Connect stream. Writes go one at a time from a queue; the
// stream finishes exactly once, after the read side ended (agent gone) or
// Close() was called, and only when no write is in flight.
class AgentHub::Stream : public grpc::ServerBidiReactor<AgentMessage, ControllerMessage> {
 public:
  Stream(AgentHub* hub, grpc::CallbackServerContext* ctx) : hub_(hub), peer_(ctx->peer()) {
    StartRead(&incoming_);
  }

  void Send(const ControllerMessage& message) {
    if (const ControllerMessage* m = writes_.Push(message)) StartWrite(m);
  }

  // Finishes the stream with `status` (once), after the write in flight.
  void Close(const grpc::Status& status) {
    bool idle = false;
    {
      absl::MutexLock lock(&finish_mu_);
      if (finish_status_set_) return;
      finish_status_set_ = true;
      finish_status_ = status;
    }
    if (writes_.Close(&idle) && idle) Finish(status);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Close(grpc::Status::OK);
      return;
    }
    if (host_id_.empty()) {
      if (!incoming_.has_hello() || incoming_.hello().host_id().empty()) {
        Close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                           "the first message on Connect must be Hello with a host id"));
        return;
      }
      absl::Status st = hub_->listener_->OnHello(incoming_.hello(), peer_);
      if (!st.ok()) {
        Close(ToGrpcStatus(st));
        return;
      }
      host_id_ = incoming_.hello().host_id();
      hub_->Register(host_id_, this);
      hub_->listener_->OnConnected(host_id_);
    } else if (incoming_.has_result()) {
      hub_->listener_->OnResult(host_id_, incoming_.result());
    } else if (incoming_.has_progress()) {
      hub_->listener_->OnProgress(host_id_, incoming_.progress());
    }
    StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    auto next = writes_.Done(ok);
    if (next.write != nullptr) {
      StartWrite(next.write);
    } else if (next.idle_and_closed) {
      Finish(FinishStatus());
    } else if (!ok) {
      Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write to agent failed"));
    }
  }

  void OnDone() override {
    if (!host_id_.empty() && hub_->Unregister(host_id_, this)) {
      hub_->listener_->OnDisconnected(host_id_);
    }
    delete this;
  }

  void OnCancel() override { Close(grpc::Status::CANCELLED); }

 private:
  grpc::Status FinishStatus() {
    absl::MutexLock lock(&finish_mu_);
    return finish_status_;
  }

  AgentHub* hub_;
  std::string peer_;
  std::string host_id_;  // set by the first read; then only read
  AgentMessage incoming_;
  WriteQueue<ControllerMessage> writes_;
  absl::Mutex finish_mu_;
  bool finish_status_set_ ABSL_GUARDED_BY(finish_mu_) = false;
  grpc::Status finish_status_ ABSL_GUARDED_BY(finish_mu_);
};

void AgentHub::Register(const std::string& host_id, Stream* stream) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(host_id);
  if (it != streams_.end()) {
    // Closed under mu_: once it is out of the map, the old stream's OnDone
    // may delete it as soon as Unregister can take mu_.
    spdlog::warn("host {} connected again; closing its older stream", host_id);
    it->second->Close(grpc::Status(grpc::StatusCode::ABORTED, "replaced by a newer connection"));
  }
  streams_[host_id] = stream;
  connected_at_[host_id] = absl::Now();
}

bool AgentHub::Unregister(const std::string& host_id, Stream* stream) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(host_id);
  if (it == streams_.end() || it->second != stream) return false;
  streams_.erase(it);
  disconnected_at_[host_id] = absl::Now();
  return true;
}

bool AgentHub::Send(const std::string& host_id, const fleet::v1::Command& command) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(host_id);
  if (it == streams_.end()) return false;
  ControllerMessage msg;
  *msg.mutable_command() = command;
  // Stream::Send takes only the stream's lock; Unregister (under mu_) runs
  // before the stream is deleted, so the pointer is valid here.
  it->second->Send(msg);
  return true;
}

bool AgentHub::IsConnected(const std::string& host_id) {
  absl::MutexLock lock(&mu_);
  return streams_.count(host_id) > 0;
}

int AgentHub::ConnectedHostCount() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(streams_.size());
}

absl::Time AgentHub::ConnectedSince(const std::string& host_id) {
  absl::MutexLock lock(&mu_);
  if (streams_.count(host_id) == 0) return absl::InfinitePast();
  return connected_at_[host_id];
}

absl::Time AgentHub::DisconnectedSince(const std::string& host_id) {
  absl::MutexLock lock(&mu_);
  auto it = disconnected_at_.find(host_id);
  return it == disconnected_at_.end() ? started_ : it->second;
}

void AgentHub::CloseAll() {
  absl::MutexLock lock(&mu_);
  for (auto& [host, stream] : streams_) {
    stream->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller shutting down"));
  }
}

grpc::ServerBidiReactor<AgentMessage, ControllerMessage>* AgentHub::Connect(
    grpc::CallbackServerContext* context) {
  return new Stream(this, context);
}

// Streams a blob file from an offset, one 256 KiB chunk in flight.
class AgentHub::ArtifactWriter : public grpc::ServerWriteReactor<fleet::v1::ArtifactChunk> {
 public:
  ArtifactWriter(AgentHub* hub, const std::string& path, int64_t offset) : hub_(hub) {
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "artifact blob is missing"));
      return;
    }
    total_ = lseek(fd_, 0, SEEK_END);
    if (offset < 0 || offset > total_) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "offset beyond the artifact"));
      return;
    }
    offset_ = offset;
    Next();
  }
  ~ArtifactWriter() override {
    if (fd_ >= 0) close(fd_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "artifact write failed"));
      return;
    }
    if (hub_->bytes_served_hook_) {
      hub_->bytes_served_hook_(static_cast<int64_t>(chunk_.data().size()));
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (offset_ >= total_) {
      Finish(grpc::Status::OK);
      return;
    }
    std::string buf(std::min<int64_t>(kChunk, total_ - offset_), '\0');
    ssize_t n = pread(fd_, buf.data(), buf.size(), offset_);
    if (n <= 0) {
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, "cannot read artifact blob"));
      return;
    }
    buf.resize(static_cast<size_t>(n));
    chunk_.set_offset(offset_);
    chunk_.set_total_size(total_);
    *chunk_.mutable_data() = std::move(buf);
    offset_ += n;
    StartWrite(&chunk_);
  }

  static constexpr int64_t kChunk = 256 << 10;
  AgentHub* hub_;
  int fd_ = -1;
  int64_t total_ = 0;
  int64_t offset_ = 0;
  fleet::v1::ArtifactChunk chunk_;
};

grpc::ServerWriteReactor<fleet::v1::ArtifactChunk>* AgentHub::FetchArtifact(
    grpc::CallbackServerContext* /*context*/, const fleet::v1::FetchArtifactRequest* request) {
  if (!IsSha256Hex(request->sha256()) || !blobs_->Has(request->sha256())) {
    class Refusal : public grpc::ServerWriteReactor<fleet::v1::ArtifactChunk> {
     public:
      explicit Refusal(const std::string& sha) {
        Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                            absl::StrCat("no artifact with sha256 ", sha)));
      }
      void OnDone() override { delete this; }
    };
    return new Refusal(request->sha256());
  }
  return new ArtifactWriter(this, blobs_->PathFor(request->sha256()), request->offset());
}

}  // namespace fleet::controller
