// Logging setup shared by the binaries (spdlog to stderr).
#ifndef FLEET_COMMON_LOGGING_H_
#define FLEET_COMMON_LOGGING_H_

#include <string>

#include <spdlog/spdlog.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

// Debian's Abseil has its own string_view type; let spdlog format it (and
// Status messages) like std::string_view.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename Context>
  auto format(absl::string_view s, Context& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};

namespace fleet {

// Sets the default logger's name and level ("debug", "info", "warn", "error").
absl::Status InitLogging(const std::string& name, const std::string& level);

}  // namespace fleet

#endif  // FLEET_COMMON_LOGGING_H_
