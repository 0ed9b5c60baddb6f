// Helpers the dashboard's HTTP handlers share (dashboard_api.cc,
// dashboard_stream.cc, dashboard_ui.cc): answers, errors, the gRPC call a
// request becomes, and query parameters. Pure or per-request; any thread.
#ifndef FLEET_CONTROLLER_DASHBOARD_HTTP_H_
#define FLEET_CONTROLLER_DASHBOARD_HTTP_H_

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fleet::controller {

// How long a unary call of the gateway may take.
inline constexpr absl::Duration kGatewayCallDeadline = absl::Seconds(30);

// The HTTP status that stands for a gRPC status code: 400, 401, 403, 404,
// 409, 503 or 500.
int HttpStatusOf(grpc::StatusCode code);

// Answers `status` with one JSON line {"error": message}.
void SendError(httplib::Response& res, int status, absl::string_view message);
void SendGrpcError(httplib::Response& res, const grpc::Status& status);

// `message` in protobuf's JSON mapping: proto field names, every field,
// enums by name.
nlohmann::json ToJson(const google::protobuf::Message& message);
// Answers 200 with `body` as JSON, never cached.
void SendJson(httplib::Response& res, const nlohmann::json& body);

// Who sent an HTTP request, as its gRPC calls pass it on.
struct GatewayCaller {
  std::optional<std::string> authorization;  // the Authorization header
  std::string peer;                          // "127.0.0.1:50412"
};
GatewayCaller CallerOf(const httplib::Request& req);

// The context of a gRPC call for `caller`: its Authorization header as the
// call's metadata, its address as kHttpPeerMetadata, and `deadline` from
// now (none when infinite).
std::unique_ptr<grpc::ClientContext> GatewayContext(const GatewayCaller& caller,
                                                    absl::Duration deadline);

// Query parameter `name` as an int in [min, max]; `fallback` when absent.
// InvalidArgument naming it otherwise.
absl::StatusOr<int> IntParam(const httplib::Request& req, const char* name, int fallback, int min,
                             int max);
absl::StatusOr<int64_t> Int64Param(const httplib::Request& req, const char* name);

// Calls `method` of `stub` for `req`, as the HTTP request `http`; on error
// answers it (SendGrpcError) and returns false.
template <typename Stub, typename Req, typename Resp>
bool CallApi(Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
             const httplib::Request& http, httplib::Response& res, const Req& req, Resp* resp) {
  std::unique_ptr<grpc::ClientContext> ctx = GatewayContext(CallerOf(http), kGatewayCallDeadline);
  grpc::Status st = (stub->*method)(ctx.get(), req, resp);
  if (!st.ok()) {
    SendGrpcError(res, st);
    return false;
  }
  return true;
}

// Whether an action request may go on: a JSON body (Content-Type:
// application/json, so that no cross-site form can send it) from no other
// origin than this server. Otherwise answers 415 or 403 and returns false.
bool CheckActionRequest(const httplib::Request& req, httplib::Response& res);

// Headers every dashboard answer carries: no framing, no sniffing, no
// referrer.
void AddSecurityHeaders(httplib::Response& res);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_DASHBOARD_HTTP_H_
