// Limits of the controller's two listeners, so that slow, many or hostile
// clients cannot stall them or grow the controller's memory without bound.
//
// HTTP (--http-listen: /healthz, /metrics, the Alertmanager webhook): every
// connection is served by a thread of its own, up to kHttpMaxConnections at
// once, so a client that sends half a request holds one thread and never the
// others; connections past the cap wait, accepted, for a free thread. A
// client silent for kHttpReadTimeout while a request is read (or a response
// written) is dropped; an idle keep-alive connection is closed after
// kHttpKeepAliveTimeout or kHttpKeepAliveRequests requests.
//
// gRPC (--listen): at most kGrpcMaxStreamsPerConnection concurrent streams
// per connection (a client's further calls wait on its side, as HTTP/2
// wants), a resource quota of kGrpcMemoryQuotaBytes for what connections and
// calls buffer (under pressure gRPC shrinks windows and drops new
// connections), and kGrpcHandshakeTimeout to finish a connection's handshake.
#ifndef FLEET_CONTROLLER_LISTENER_LIMITS_H_
#define FLEET_CONTROLLER_LISTENER_LIMITS_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>

#include "absl/time/time.h"

namespace httplib {
class Server;
}

namespace fleet::controller {

inline constexpr int kHttpMaxConnections = 512;
inline constexpr absl::Duration kHttpReadTimeout = absl::Seconds(5);
inline constexpr absl::Duration kHttpWriteTimeout = absl::Seconds(5);
inline constexpr absl::Duration kHttpKeepAliveTimeout = absl::Seconds(5);
inline constexpr int kHttpKeepAliveRequests = 100;
// Request bodies: the Alertmanager webhook is the only endpoint that takes
// one (its handler enforces the same bound on chunked bodies); far above
// what Alertmanager sends for one group (about 1 KiB per alert).
inline constexpr size_t kHttpMaxBodyBytes = 8 << 20;

// 64 simulated hosts share a connection (agent/simulator.h), each with its
// Connect stream and a download while staging.
inline constexpr int kGrpcMaxStreamsPerConnection = 256;
inline constexpr size_t kGrpcMemoryQuotaBytes = size_t{512} << 20;
inline constexpr absl::Duration kGrpcHandshakeTimeout = absl::Seconds(10);

// Sets the timeouts, keep-alive and body limits above on `server` and makes
// it serve each connection on a thread of its own, at most
// kHttpMaxConnections at once. Call before the server listens.
void ApplyHttpLimits(httplib::Server* server);

// Adds the stream, handshake and memory limits above to `builder`.
void ApplyGrpcLimits(grpc::ServerBuilder* builder);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_LISTENER_LIMITS_H_
