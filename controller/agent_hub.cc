#include "controller/agent_hub.h"

#include <fcntl.h>
#include <unistd.h>

#include <deque>

#include "absl/strings/str_cat.h"
#include "common/event_kind.h"
#include "common/logging.h"
#include "common/sha256.h"
#include "common/status.h"
#include "common/write_queue.h"

namespace fleet::controller {

using fleet::v1::AgentMessage;
using fleet::v1::ControllerMessage;

void ConfigureServerKeepalive(grpc::ServerBuilder* builder) {
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  // Generous: an agent host under load (or this controller, answering ten
  // thousand agents on two cores) may take seconds to answer a ping, and a
  // connection dropped for that drops every stream on it.
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
}

namespace {

// A call refused before it started: finishes with `status` at once.
template <typename Reactor>
class Refusal : public Reactor {
 public:
  explicit Refusal(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

// One agent's Connect stream. Writes go one at a time from a queue; the
// stream finishes exactly once, after the read side ended (agent gone) or
// Close() was called, and only when no write is in flight.
class AgentHub::Stream : public grpc::ServerBidiReactor<AgentMessage, ControllerMessage> {
 public:
  // `certificate`: the names of the peer's verified client certificate;
  // nullopt in development mode, where any host id is taken at its word.
  Stream(AgentHub* hub, grpc::CallbackServerContext* ctx,
         std::optional<CertificateNames> certificate)
      : hub_(hub), peer_(ctx->peer()), certificate_(std::move(certificate)) {
    StartRead(&incoming_);
  }

  void Send(ControllerMessage message) {
    if (const ControllerMessage* m = writes_.Push(std::move(message))) StartWrite(m);
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
      // Before the listener hears of it: a refused claim records nothing
      // for the host it named.
      if (certificate_ && !certificate_->Names(incoming_.hello().host_id())) {
        Close(hub_->DenyHostId("Connect", incoming_.hello().host_id(), *certificate_, peer_));
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
    } else if (incoming_.has_local_rollback()) {
      hub_->listener_->OnLocalRollback(host_id_, incoming_.local_rollback());
    } else if (incoming_.has_output_reply()) {
      if (hub_->output_reply_hook_) hub_->output_reply_hook_(host_id_, incoming_.output_reply());
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
  const std::optional<CertificateNames> certificate_;
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
}

bool AgentHub::Unregister(const std::string& host_id, Stream* stream) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(host_id);
  if (it == streams_.end() || it->second != stream) return false;
  streams_.erase(it);
  return true;
}

bool AgentHub::Send(const std::string& host_id, fleet::v1::Command command) {
  ControllerMessage msg;
  *msg.mutable_command() = std::move(command);
  return SendMessage(host_id, std::move(msg));
}

bool AgentHub::SendOutputRequest(const std::string& host_id,
                                 const fleet::v1::OutputRequest& request) {
  ControllerMessage msg;
  *msg.mutable_output_request() = request;
  return SendMessage(host_id, std::move(msg));
}

bool AgentHub::SendMessage(const std::string& host_id, ControllerMessage msg) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(host_id);
  if (it == streams_.end()) return false;
  // Stream::Send takes only the stream's lock; Unregister (under mu_) runs
  // before the stream is deleted, so the pointer is valid here.
  it->second->Send(std::move(msg));
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

void AgentHub::CloseAll() {
  absl::MutexLock lock(&mu_);
  for (auto& [host, stream] : streams_) {
    stream->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller shutting down"));
  }
}

grpc::Status AgentHub::PeerCertificate(const char* rpc, grpc::CallbackServerContext* context,
                                       std::optional<CertificateNames>* names) {
  names->reset();
  if (!require_client_certificate_) return grpc::Status::OK;
  std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  if (auth) *names = PeerCertificateNames(*auth);
  if (*names) return grpc::Status::OK;
  // Logged only: anyone who can reach the port can send these, and the
  // audit history must not be theirs to fill.
  spdlog::warn("refused {} from {}: no client certificate", rpc, context->peer());
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      "the agent protocol needs a client certificate signed by the controller's "
                      "CA (start the agent with --tls-cert, --tls-key and --tls-ca)");
}

grpc::Status AgentHub::DenyHostId(const char* rpc, const std::string& host_id,
                                  const CertificateNames& certificate, const std::string& peer) {
  const std::string message =
      absl::StrCat("host id '", host_id, "' does not match the client certificate (",
                   certificate.ToString(), ")");
  spdlog::warn("refused {} from {}: {}", rpc, peer, message);
  bool record = false;
  {
    absl::MutexLock lock(&mu_);
    // Bounded: a certificate that keeps claiming new ids cannot grow it
    // without limit; forgetting only means recording a denial again.
    if (denial_recorded_at_.size() > 1000) denial_recorded_at_.clear();
    absl::Time& last = denial_recorded_at_[absl::StrCat(certificate.ToString(), "\n", host_id)];
    const absl::Time now = clock_->Now();
    if (last == absl::Time() || now - last >= kDenialRecordInterval) {
      last = now;
      record = true;
    }
  }
  if (record && denial_hook_) {
    fleet::v1::Event event;
    event.set_at_ms(absl::ToUnixMillis(clock_->Now()));
    // The host that acted is the one its certificate proves; the id it
    // claimed is only in the message.
    event.set_host_id(certificate.common_name);
    event.set_kind(EventKindName(EventKind::kAuthDenied));
    event.set_actor(certificate.common_name);
    event.set_message(absl::StrCat(rpc, " from ", peer, ": ", message));
    denial_hook_(event);
  }
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, message);
}

grpc::ServerBidiReactor<AgentMessage, ControllerMessage>* AgentHub::Connect(
    grpc::CallbackServerContext* context) {
  std::optional<CertificateNames> certificate;
  grpc::Status st = PeerCertificate("Connect", context, &certificate);
  if (!st.ok()) return new Refusal<grpc::ServerBidiReactor<AgentMessage, ControllerMessage>>(st);
  return new Stream(this, context, std::move(certificate));
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
    grpc::CallbackServerContext* context, const fleet::v1::FetchArtifactRequest* request) {
  using ChunkRefusal = Refusal<grpc::ServerWriteReactor<fleet::v1::ArtifactChunk>>;
  std::optional<CertificateNames> certificate;
  grpc::Status st = PeerCertificate("FetchArtifact", context, &certificate);
  if (!st.ok()) return new ChunkRefusal(st);
  if (certificate && !certificate->Names(request->host_id())) {
    return new ChunkRefusal(
        DenyHostId("FetchArtifact", request->host_id(), *certificate, context->peer()));
  }
  if (!IsSha256Hex(request->sha256()) || !blobs_->Has(request->sha256())) {
    return new ChunkRefusal(grpc::Status(
        grpc::StatusCode::NOT_FOUND, absl::StrCat("no artifact with sha256 ", request->sha256())));
  }
  return new ArtifactWriter(this, blobs_->PathFor(request->sha256()), request->offset());
}

}  // namespace fleet::controller
