// The filters and paging of the ListEvents RPC, applied to events read from
// the store. Pure; any thread.
#ifndef FLEET_CONTROLLER_EVENT_FILTER_H_
#define FLEET_CONTROLLER_EVENT_FILTER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "fleet/v1/api.pb.h"

namespace fleet::controller {

// Events ListEvents answers at most, and without a limit.
inline constexpr int kMaxListedEvents = 1000;
inline constexpr int kDefaultListedEvents = 100;
// How many of the newest events (of the app, or of all) ListEvents searches.
inline constexpr int kEventSearchWindow = 20000;

// Whether `kind` is one of `filters`: a kind ("rollout.paused") or a group
// ("rollout", also written "rollout.*"). No filters match every kind.
bool EventKindMatches(absl::string_view kind, const std::vector<std::string>& filters);

// InvalidArgument naming the first filter that is no kind and no group of
// kinds (common/event_kind.h), or a negative limit or before_id.
absl::Status CheckEventFilters(const fleet::v1::ListEventsRequest& req);

// The events of `newest_first` that req's kinds, actor and before_id let
// through, at most req's limit (kDefaultListedEvents when 0, capped at
// kMaxListedEvents), with `more` set when further ones matched.
fleet::v1::ListEventsResponse FilterEvents(std::vector<fleet::v1::Event> newest_first,
                                           const fleet::v1::ListEventsRequest& req);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_EVENT_FILTER_H_
