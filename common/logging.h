// Logging setup shared by the binaries (spdlog to stderr).
#ifndef FLEET_COMMON_LOGGING_H_
#define FLEET_COMMON_LOGGING_H_

#include <string>

#include "absl/status/status.h"

namespace fleet {

// Sets the default logger's name and level ("debug", "info", "warn", "error").
absl::Status InitLogging(const std::string& name, const std::string& level);

}  // namespace fleet

#endif  // FLEET_COMMON_LOGGING_H_
