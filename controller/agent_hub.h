// The controller's side of the agent protocol: one reactor per connected
// agent's Connect stream, the registry of those streams, and the artifact
// download RPC.
#ifndef FLEET_CONTROLLER_AGENT_HUB_H_
#define FLEET_CONTROLLER_AGENT_HUB_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/tls.h"
#include "controller/blob_store.h"
#include "fleet/v1/agent.grpc.pb.h"
#include "fleet/v1/api.pb.h"

namespace fleet::controller {

// Receives what agents say. Called from gRPC threads, never with the hub's
// lock held.
class AgentListener {
 public:
  virtual ~AgentListener() = default;
  // The agent's Hello. Returning an error ends its stream with that error.
  virtual absl::Status OnHello(const fleet::v1::Hello& hello, const std::string& peer) = 0;
  // The host's stream is registered: Send() reaches it from now on.
  virtual void OnConnected(const std::string& host_id) = 0;
  virtual void OnProgress(const std::string& host_id, const fleet::v1::CommandProgress& p) = 0;
  virtual void OnResult(const std::string& host_id, const fleet::v1::CommandResult& result) = 0;
  virtual void OnDisconnected(const std::string& host_id) = 0;
  // A break-glass rollback the agent ran while connected.
  virtual void OnLocalRollback(const std::string& /*host_id*/,
                               const fleet::v1::LocalRollback& /*rollback*/) {}
};

class AgentHub final : public fleet::v1::AgentService::CallbackService {
 public:
  // Connection times are stamped with `clock` (borrowed), the engine's clock.
  AgentHub(BlobStore* blobs, Clock* clock) : blobs_(blobs), clock_(clock) {}
  // Must be set before the server starts.
  void set_listener(AgentListener* listener) { listener_ = listener; }
  // Called with the size of every artifact chunk an agent received
  // (FetchArtifact), on gRPC threads, concurrently: it must be cheap and
  // thread-safe. Optional; must be set before the server starts.
  void set_bytes_served_hook(std::function<void(int64_t bytes)> hook) {
    bytes_served_hook_ = std::move(hook);
  }
  // With TLS: every call must come with a client certificate that the
  // handshake verified (else UNAUTHENTICATED), and the host id a Hello or
  // FetchArtifact names must be the certificate's CN or one of its DNS SANs
  // (else PERMISSION_DENIED), so that host A can never act as host B.
  // Without (development mode) any peer may claim any host id. Must be set
  // before the server starts.
  void set_require_client_certificate(bool required) { require_client_certificate_ = required; }
  // Receives an "auth.denied" audit event for each refused host id claim
  // (at most one per certificate and claimed id every kDenialRecordInterval,
  // so a misconfigured agent's retries do not flood the history), on gRPC
  // threads. Optional; must be set before the server starts.
  void set_denial_hook(std::function<void(const fleet::v1::Event& event)> hook) {
    denial_hook_ = std::move(hook);
  }
  static constexpr absl::Duration kDenialRecordInterval = absl::Minutes(5);
  // Receives every OutputReply an agent sends (OutputFetch::OnReply), on
  // gRPC threads. Optional; must be set before the server starts.
  void set_output_reply_hook(
      std::function<void(const std::string& host_id, const fleet::v1::OutputReply& reply)> hook) {
    output_reply_hook_ = std::move(hook);
  }

  // Queues a command to a connected host. False when the host has no stream.
  bool Send(const std::string& host_id, fleet::v1::Command command);
  // Queues a request for kept command output. False when the host has no
  // stream.
  bool SendOutputRequest(const std::string& host_id, const fleet::v1::OutputRequest& request);
  bool IsConnected(const std::string& host_id);
  // The number of hosts with a registered stream now. Thread-safe.
  int ConnectedHostCount();
  // Ends every stream (at shutdown).
  void CloseAll();

  grpc::ServerBidiReactor<fleet::v1::AgentMessage, fleet::v1::ControllerMessage>* Connect(
      grpc::CallbackServerContext* context) override;
  grpc::ServerWriteReactor<fleet::v1::ArtifactChunk>* FetchArtifact(
      grpc::CallbackServerContext* context,
      const fleet::v1::FetchArtifactRequest* request) override;

 private:
  class Stream;
  class ArtifactWriter;
  friend class Stream;

  // Queues `msg` to a connected host. False when the host has no stream.
  bool SendMessage(const std::string& host_id, fleet::v1::ControllerMessage msg);
  // Registers `stream` for `host_id`, replacing (and closing) an older one.
  void Register(const std::string& host_id, Stream* stream);
  // Removes the stream if it is still the registered one. True if it was.
  bool Unregister(const std::string& host_id, Stream* stream);
  // The refusal of `rpc` from `peer` whose certificate does not name
  // `host_id`: logged, recorded through denial_hook_, returned to send.
  grpc::Status DenyHostId(const char* rpc, const std::string& host_id,
                          const CertificateNames& certificate, const std::string& peer);
  // The names in the verified client certificate of `context`'s peer; with
  // require_client_certificate_ and no certificate, UNAUTHENTICATED (logged).
  // nullopt and OK in development mode.
  grpc::Status PeerCertificate(const char* rpc, grpc::CallbackServerContext* context,
                               std::optional<CertificateNames>* names);

  BlobStore* blobs_;
  Clock* clock_;
  AgentListener* listener_ = nullptr;
  std::function<void(int64_t)> bytes_served_hook_;            // fixed before the server starts
  bool require_client_certificate_ = false;                   // fixed before the server starts
  std::function<void(const fleet::v1::Event&)> denial_hook_;  // fixed before the server starts
  // Fixed before the server starts.
  std::function<void(const std::string&, const fleet::v1::OutputReply&)> output_reply_hook_;
  absl::Mutex mu_;
  std::map<std::string, Stream*> streams_ ABSL_GUARDED_BY(mu_);
  // When a denial was last recorded, by "<certificate names>\n<claimed id>".
  std::map<std::string, absl::Time> denial_recorded_at_ ABSL_GUARDED_BY(mu_);
};

// Server arguments: keepalive so a dead agent (or network) is noticed within
// 30 s even when no call is active.
void ConfigureServerKeepalive(grpc::ServerBuilder* builder);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_AGENT_HUB_H_
