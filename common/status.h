// Helpers for absl::Status: early-return macros and the conversion to and
// from grpc::Status, which happens only at the RPC edge.
#ifndef FLEET_COMMON_STATUS_H_
#define FLEET_COMMON_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#define FLEET_CONCAT_INNER_(a, b) a##b
#define FLEET_CONCAT_(a, b) FLEET_CONCAT_INNER_(a, b)

// Returns from the calling function when `expr` is not OK.
#define FLEET_RETURN_IF_ERROR(expr)                    \
  do {                                                 \
    ::absl::Status fleet_status_ = (expr);             \
    if (!fleet_status_.ok()) return fleet_status_;     \
  } while (0)

// Declares `lhs` from a StatusOr, or returns its error.
#define FLEET_ASSIGN_OR_RETURN(lhs, expr) \
  FLEET_ASSIGN_OR_RETURN_IMPL_(FLEET_CONCAT_(fleet_statusor_, __LINE__), lhs, expr)
#define FLEET_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

namespace fleet {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// A Status that keeps the code of `status` with `prefix: ` before its message.
absl::Status Annotate(const absl::Status& status, absl::string_view prefix);

}  // namespace fleet

#endif  // FLEET_COMMON_STATUS_H_
