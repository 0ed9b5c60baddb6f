// fleetctl's channel to the controller, and why it could not be opened.
#ifndef FLEET_CLI_CONNECTION_H_
#define FLEET_CLI_CONNECTION_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fleet::cli {

inline constexpr absl::Duration kConnectTimeout = absl::Seconds(5);

// Opens a channel to `address` (HOST:PORT): TLS when `tls_ca` names a CA
// bundle (the controller's certificate must chain to it and name HOST),
// plaintext when it is "". Returns the connected channel, or Unavailable
// with one line that says what went wrong, as soon as it is known:
//   - "... connection refused" the moment the first attempt is refused,
//   - "unknown host name 'x' ..." when HOST does not resolve,
//   - "TLS handshake with ... failed: ..." when the handshake fails,
//   - "... is it TLS? ..." when a plaintext channel meets a TLS server,
//   - "no answer from the controller at ... within 5s" only when nothing
//     answered at all (a silent network) until `timeout`.
// InvalidArgument when `tls_ca` is not a readable CA bundle.
absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToController(
    const std::string& address, const std::string& tls_ca,
    absl::Duration timeout = kConnectTimeout);

// One line for a gRPC error message about a failed connection to
// `address` (as ConnectToController words it), or "" when the message does
// not say why (refused, unknown name, TLS).
std::string DescribeConnectError(const std::string& address, const std::string& tls_ca,
                                 const std::string& grpc_message);

}  // namespace fleet::cli

#endif  // FLEET_CLI_CONNECTION_H_
