#include "cli/connection.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/address.h"
#include "common/tls.h"
#include "fleet/v1/api.grpc.pb.h"

namespace fleet::cli {
namespace {

void DiscardGrpcLog(gpr_log_func_args* /*args*/) {}

std::string HostOf(const std::string& address) {
  std::string host;
  int port = 0;
  return SplitHostPort(address, &host, &port).ok() ? host : address;
}

// The gRPC message of one call on a channel that failed to connect, which
// says why the last attempt failed.
std::string LastConnectError(grpc::Channel* channel) {
  auto stub = fleet::v1::FleetService::NewStub(
      std::shared_ptr<grpc::Channel>(channel, [](grpc::Channel*) {}));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  fleet::v1::ListAppsResponse ignored;
  return stub->ListApps(&ctx, {}, &ignored).error_message();
}

}  // namespace

std::string DescribeConnectError(const std::string& address, const std::string& tls_ca,
                                 const std::string& grpc_message) {
  const std::string lower = absl::AsciiStrToLower(grpc_message);
  const std::string hint = " (set --controller or FLEET_CONTROLLER)";
  if (absl::StrContains(lower, "connection refused")) {
    return absl::StrCat("cannot reach the controller at ", address,
                        ": connection refused; is fleet-controller running there?", hint);
  }
  if (absl::StrContains(lower, "dns resolution failed") ||
      absl::StrContains(lower, "domain name not found") ||
      absl::StrContains(lower, "name or service not known")) {
    return absl::StrCat("cannot reach the controller at ", address, ": unknown host name '",
                        HostOf(address), "'", hint);
  }
  const size_t handshake = lower.find("handshake failed");
  if (!tls_ca.empty() && handshake != std::string::npos) {
    const size_t start = grpc_message.rfind(": ", handshake);
    const std::string detail =
        start == std::string::npos ? grpc_message : grpc_message.substr(start + 2);
    return absl::StrCat("TLS handshake with the controller at ", address,
                        " failed: its certificate must chain to a CA in --tls-ca ", tls_ca,
                        " and name ", HostOf(address), ", and it must serve TLS (", detail, ")");
  }
  if (tls_ca.empty() && absl::StrContains(lower, "socket closed")) {
    return absl::StrCat("cannot reach the controller at ", address,
                        " (it closed a plaintext connection; is it TLS? pass --tls-ca or set "
                        "FLEET_TLS_CA)");
  }
  return "";
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToController(const std::string& address,
                                                                   const std::string& tls_ca,
                                                                   absl::Duration timeout) {
  if (!tls_ca.empty()) {
    if (absl::Status st = ValidateCaFile("--tls-ca", tls_ca); !st.ok()) {
      return absl::InvalidArgumentError(st.message());
    }
  }
  // Failed handshakes are reported once, here, not by gRPC's log on every
  // retry (GRPC_VERBOSITY brings its log back).
  if (getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function(DiscardGrpcLog);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  // A watch that outlives its controller notices a dead connection within
  // seconds, and reconnects at its own pace (RolloutStream), not after
  // gRPC's own backoff grew to minutes.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);  // a long bake sends no data
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      address,
      tls_ca.empty() ? grpc::InsecureChannelCredentials()
                     : TlsChannelCredentials({"", "", tls_ca}, kDefaultTlsReloadInterval),
      args);
  // Watch the channel rather than wait for READY: the first failed attempt
  // (refused, unknown name, handshake) says all there is to say.
  const absl::Time deadline = absl::Now() + timeout;
  grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE) {
      const std::string message = LastConnectError(channel.get());
      std::string described = DescribeConnectError(address, tls_ca, message);
      if (!described.empty()) return absl::UnavailableError(described);
      // A failure that does not say why (e.g. a reset): keep trying until
      // the deadline, like a silent network.
    }
    if (!channel->WaitForStateChange(state, absl::ToChronoTime(deadline))) {
      return absl::UnavailableError(absl::StrCat(
          "no answer from the controller at ", address, " within ", absl::FormatDuration(timeout),
          " (set --controller or FLEET_CONTROLLER; a firewall that drops packets looks like this)"));
    }
    state = channel->GetState(/*try_to_connect=*/true);
  }
  return channel;
}

}  // namespace fleet::cli
