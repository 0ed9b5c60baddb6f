#include "controller/dashboard_http.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "controller/api_service.h"

namespace fleet::controller {

int HttpStatusOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 503;
    default:
      return 500;
  }
}

void SendError(httplib::Response& res, int status, absl::string_view message) {
  res.status = status;
  nlohmann::json body = {{"error", std::string(message)}};
  res.set_header("Cache-Control", "no-store");
  // dump() escapes control characters: the answer stays one line.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                  "application/json");
}

void SendGrpcError(httplib::Response& res, const grpc::Status& status) {
  SendError(res, HttpStatusOf(status.error_code()), status.error_message());
}

nlohmann::json ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  // Only fails for messages that are not well-formed, which ours are.
  if (!google::protobuf::util::MessageToJsonString(message, &text, options).ok()) {
    return nlohmann::json::object();
  }
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

void SendJson(httplib::Response& res, const nlohmann::json& body) {
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

GatewayCaller CallerOf(const httplib::Request& req) {
  GatewayCaller caller;
  if (req.has_header("Authorization")) caller.authorization = req.get_header_value("Authorization");
  caller.peer = absl::StrCat(req.remote_addr, ":", req.remote_port);
  return caller;
}

std::unique_ptr<grpc::ClientContext> GatewayContext(const GatewayCaller& caller,
                                                    absl::Duration deadline) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (caller.authorization) ctx->AddMetadata("authorization", *caller.authorization);
  ctx->AddMetadata(kHttpPeerMetadata, caller.peer);
  ctx->AddMetadata(kGatewayKeyMetadata, GatewayKey());
  if (deadline != absl::InfiniteDuration()) {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  }
  return ctx;
}

absl::StatusOr<int> IntParam(const httplib::Request& req, const char* name, int fallback, int min,
                             int max) {
  if (!req.has_param(name)) return fallback;
  int value = 0;
  if (!absl::SimpleAtoi(req.get_param_value(name), &value) || value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("query parameter ", name, " must be a number from ", min, " to ", max));
  }
  return value;
}

absl::StatusOr<int64_t> Int64Param(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return 0;
  int64_t value = 0;
  if (!absl::SimpleAtoi(req.get_param_value(name), &value) || value < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("query parameter ", name, " must be a non-negative number"));
  }
  return value;
}

bool CheckActionRequest(const httplib::Request& req, httplib::Response& res) {
  if (req.has_header("Origin")) {
    // "https://host:port" must name the server the request came to.
    const std::string header = req.get_header_value("Origin");
    absl::string_view origin = header;
    if (!absl::ConsumePrefix(&origin, "https://")) absl::ConsumePrefix(&origin, "http://");
    if (!absl::EqualsIgnoreCase(origin, req.get_header_value("Host"))) {
      SendError(res, 403,
                "cross-origin requests are refused: use the dashboard of this controller");
      return false;
    }
  }
  const std::string type = absl::AsciiStrToLower(req.get_header_value("Content-Type"));
  if (!absl::StartsWith(type, "application/json")) {
    SendError(res, 415, "actions take a JSON body (Content-Type: application/json)");
    return false;
  }
  return true;
}

void AddSecurityHeaders(httplib::Response& res) {
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
}

}  // namespace fleet::controller
