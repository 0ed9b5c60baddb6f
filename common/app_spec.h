// Parsing and validation of app specs (YAML, DESIGN.md "App spec").
#ifndef FLEET_COMMON_APP_SPEC_H_
#define FLEET_COMMON_APP_SPEC_H_

#include <string>

#include "absl/status/statusor.h"
#include "fleet/v1/types.pb.h"

namespace fleet {

inline constexpr int kDefaultKeepReleases = 5;
inline constexpr int kMinKeepReleases = 3;
inline constexpr int64_t kMaxProbeTimeoutMs = 10000;

// Parses `yaml` into an AppSpec with every default filled in. `source` names
// the file in errors, which read "SOURCE:LINE: FIELD: problem", for example
// "app.yaml:9: health[0].timeout: 20s is more than the 10s maximum".
// Unknown fields are errors, so a typo never silently disables a check.
absl::StatusOr<fleet::v1::AppSpec> ParseAppSpec(const std::string& yaml,
                                                const std::string& source);

}  // namespace fleet

#endif  // FLEET_COMMON_APP_SPEC_H_
