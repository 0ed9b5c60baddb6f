#include "controller/event_filter.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/event_kind.h"

namespace fleet::controller {
namespace {

// "host.*" and "host" are the same group.
absl::string_view GroupOf(absl::string_view filter) {
  absl::ConsumeSuffix(&filter, ".*");
  return filter;
}

}  // namespace

bool EventKindMatches(absl::string_view kind, const std::vector<std::string>& filters) {
  if (filters.empty()) return true;
  for (const std::string& f : filters) {
    const absl::string_view group = GroupOf(f);
    if (kind == group || (absl::StartsWith(kind, group) && kind.size() > group.size() &&
                          kind[group.size()] == '.')) {
      return true;
    }
  }
  return false;
}

absl::Status CheckEventFilters(const fleet::v1::ListEventsRequest& req) {
  if (req.limit() < 0) return absl::InvalidArgumentError("limit must not be negative");
  if (req.before_id() < 0) return absl::InvalidArgumentError("before_id must not be negative");
  const std::vector<std::string> names = EventKindNames();
  for (const std::string& f : req.kinds()) {
    const bool known = std::any_of(names.begin(), names.end(), [&](const std::string& name) {
      return EventKindMatches(name, {f});
    });
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown event kind '", f.substr(0, 128),
                       "': give a kind (rollout.paused) or a group (rollout, host, auth, ...)"));
    }
  }
  return absl::OkStatus();
}

fleet::v1::ListEventsResponse FilterEvents(std::vector<fleet::v1::Event> newest_first,
                                           const fleet::v1::ListEventsRequest& req) {
  const int limit =
      req.limit() == 0 ? kDefaultListedEvents : std::min(req.limit(), kMaxListedEvents);
  const std::vector<std::string> kinds(req.kinds().begin(), req.kinds().end());
  fleet::v1::ListEventsResponse resp;
  for (fleet::v1::Event& e : newest_first) {
    if (req.before_id() > 0 && e.id() >= req.before_id()) continue;
    if (!EventKindMatches(e.kind(), kinds)) continue;
    if (!req.actor().empty() && !absl::StrContains(e.actor(), req.actor())) continue;
    if (resp.events_size() == limit) {
      resp.set_more(true);
      break;
    }
    *resp.add_events() = std::move(e);
  }
  return resp;
}

}  // namespace fleet::controller
