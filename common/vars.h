// Label selectors and ${name} expansion.
#ifndef FLEET_COMMON_VARS_H_
#define FLEET_COMMON_VARS_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace fleet {

using Labels = std::map<std::string, std::string>;

// Parses "k=v,k2=v2" (spaces around items allowed; "" = match everything).
absl::StatusOr<Labels> ParseSelector(const std::string& selector);

// Whether every pair of `selector` is in `labels`.
bool SelectorMatches(const Labels& selector, const Labels& labels);

// Parses one KEY=VALUE flag value (labels, --var). KEY must be
// [A-Za-z_][A-Za-z0-9_.-]*.
absl::Status ParseKeyValue(const std::string& text, std::string* key, std::string* value);

// Replaces every ${name} in `text` with vars[name]. An unknown name is an
// InvalidArgument error naming it; "$" not followed by "{" is kept as is.
absl::StatusOr<std::string> ExpandVars(const std::string& text, const Labels& vars);

}  // namespace fleet

#endif  // FLEET_COMMON_VARS_H_
