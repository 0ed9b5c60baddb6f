#include "controller/store.h"

#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fleet::controller {
namespace {

// The one table of outcome names: stored in the alerts table and answered
// by the webhook, so a name never changes once shipped.
constexpr std::pair<AlertOutcome, absl::string_view> kAlertOutcomeNames[] = {
    {AlertOutcome::kActing, "acting"},     {AlertOutcome::kAbort, "abort"},
    {AlertOutcome::kRollback, "rollback"}, {AlertOutcome::kIgnored, "ignored"},
    {AlertOutcome::kFailed, "failed"},
};

}  // namespace

absl::string_view AlertOutcomeName(AlertOutcome outcome) {
  for (const auto& [value, name] : kAlertOutcomeNames) {
    if (value == outcome) return name;
  }
  return "unknown";
}

absl::StatusOr<AlertOutcome> ParseAlertOutcome(absl::string_view name) {
  for (const auto& [value, known] : kAlertOutcomeNames) {
    if (known == name) return value;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown alert outcome '", name, "'"));
}

}  // namespace fleet::controller
