#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/rollout_text.h"
#include "cli/suggest.h"
#include "common/event_kind.h"
#include "common/rollout_state.h"

namespace fleet::cli {
namespace {

using fleet::v1::Rollout;

struct StatusArgs {
  std::string app;
  std::vector<std::string> kinds;  // history --kind
};

void Status(Session* session, const StatusArgs& args) {
  fleet::v1::GetAppStatusRequest req;
  req.set_app(args.app);
  fleet::v1::AppStatus resp;
  auto* api = session->Api();
  grpc::Status st = api->GetAppStatus(session->Context().get(), req, &resp);
  if (!st.ok()) FailRpc(st);
  ExitWithJsonIfAsked(session, resp);
  const bool color = ColorEnabled();
  std::cout << "app " << resp.app().spec().name() << ": fleet release "
            << OrDash(resp.app().desired_version()) << ", config "
            << OrDash(resp.app().desired_config()) << "\n";
  std::vector<std::vector<std::string>> rows = {
      {"HOST", "CONNECTED", "RELEASE", "CONFIG", "LAST GOOD", "PREVIOUS", "ON DISK", "CONFIGS",
       "HELD"}};
  std::vector<std::string> holds;
  for (const auto& h : resp.hosts()) {
    const auto& s = h.state();
    // LAST GOOD and PREVIOUS show "release/config".
    rows.push_back({h.host_id(), h.connected() ? "yes" : "no", OrDash(s.current_release()),
                    OrDash(s.current_config()),
                    absl::StrCat(OrDash(s.last_known_good()), "/", OrDash(s.last_good_config())),
                    absl::StrCat(OrDash(s.previous_release()), "/", OrDash(s.previous_config())),
                    absl::StrJoin(s.releases(), ","), absl::StrJoin(s.configs(), ","),
                    h.held() ? "held" : "-"});
    if (h.held()) {
      const auto& hold = h.hold();
      holds.push_back(absl::StrCat(
          "held: ", h.host_id(), " was rolled back on the host to ", hold.version(), " by ",
          hold.actor(), " at ", FormatMs(hold.since_ms()),
          hold.reason().empty() ? "" : absl::StrCat(" (", hold.reason(), ")"),
          "; fleetctl host release ", h.host_id(), " ", resp.app().spec().name(),
          " ends the hold"));
    }
  }
  PrintTable(rows, color);
  for (const std::string& line : holds) std::cout << line << "\n";
  for (const Rollout* r : {&resp.active_rollout(), &resp.last_rollout()}) {
    if (r->id().empty()) continue;
    std::cout << (r == &resp.active_rollout() ? "running: " : "last: ") << KindName(*r) << " "
              << r->id() << " " << OrDash(r->from_version()) << " -> " << r->version() << " "
              << Paint(RolloutStateName(r->state()), color) << (r->reason().empty() ? "" : ": ")
              << r->reason() << "\n";
    if (r->awaiting_promote()) std::cout << PromoteHint(*r) << "\n";
  }
  Exit(0);
}

void Hosts(Session* session) {
  fleet::v1::ListHostsResponse resp;
  auto* api = session->Api();
  grpc::Status st = api->ListHosts(session->Context().get(), {}, &resp);
  if (!st.ok()) FailRpc(st);
  ExitWithJsonIfAsked(session, resp);
  std::vector<std::vector<std::string>> rows = {
      {"HOST", "CONNECTED", "LAST SEEN", "LABELS", "APPS"}};
  for (const auto& h : resp.hosts()) {
    std::vector<std::string> labels, apps;
    std::set<std::string> held;
    for (const auto& hold : h.holds()) held.insert(hold.app());
    for (const auto& [k, v] :
         std::map<std::string, std::string>(h.labels().begin(), h.labels().end())) {
      labels.push_back(k + "=" + v);
    }
    for (const auto& a : h.apps()) {
      apps.push_back(absl::StrCat(a.app(), "@", OrDash(a.current_release()),
                                  a.current_config().empty() ? "" : "+" + a.current_config(),
                                  held.count(a.app()) ? " (held)" : ""));
    }
    rows.push_back({h.id(), h.connected() ? "yes" : "no", FormatMs(h.last_seen_ms()),
                    absl::StrJoin(labels, ","), absl::StrJoin(apps, ",")});
  }
  PrintTable(rows, ColorEnabled());
  Exit(0);
}

// --kind values, each a kind ("rollout.started"), a group ("host" or
// "host.*") or several of them comma-separated; Fail()s on a name no kind
// has, suggesting the closest.
std::vector<std::string> KindFilters(const std::vector<std::string>& given) {
  const std::vector<std::string> names = EventKindNames();
  std::vector<std::string> known = names;
  for (const std::string& name : names) {
    const std::string group = name.substr(0, name.find('.'));
    if (std::find(known.begin(), known.end(), group) == known.end()) known.push_back(group);
  }
  std::vector<std::string> filters;
  for (const std::string& value : given) {
    for (absl::string_view part : absl::StrSplit(value, ',', absl::SkipEmpty())) {
      std::string filter(part);
      if (absl::EndsWith(filter, ".*")) filter.resize(filter.size() - 2);
      if (std::find(known.begin(), known.end(), filter) == known.end()) {
        const std::string close = ClosestMatch(filter, known);
        Fail(absl::StrCat("unknown event kind '", part, "'",
                          close.empty() ? "" : absl::StrCat("; did you mean '", close, "'?"),
                          close.empty() ? "; see fleetctl history --help" : ""));
      }
      filters.push_back(filter);
    }
  }
  return filters;
}

bool KindMatches(const std::string& kind, const std::vector<std::string>& filters) {
  if (filters.empty()) return true;
  for (const std::string& f : filters) {
    if (kind == f || absl::StartsWith(kind, f + ".")) return true;
  }
  return false;
}

void History(Session* session, const StatusArgs& args) {
  const std::vector<std::string> filters = KindFilters(args.kinds);
  fleet::v1::GetHistoryRequest req;
  req.set_app(args.app);
  fleet::v1::GetHistoryResponse resp;
  auto* api = session->Api();
  grpc::Status st = api->GetHistory(session->Context().get(), req, &resp);
  if (!st.ok()) FailRpc(st);
  fleet::v1::GetHistoryResponse shown;
  *shown.mutable_rollouts() = resp.rollouts();
  for (const auto& e : resp.events()) {
    if (KindMatches(e.kind(), filters)) *shown.add_events() = e;
  }
  ExitWithJsonIfAsked(session, shown);
  const bool color = ColorEnabled();
  if (filters.empty()) {
    // RELEASE and CONFIG: the pair the fleet runs when it succeeded.
    std::vector<std::vector<std::string>> rows = {
        {"ID", "WHEN", "KIND", "VERSION", "FROM", "RELEASE", "CONFIG", "RESULT", "BY", "REASON"}};
    for (const auto& r : shown.rollouts()) {
      rows.push_back({r.id(), FormatMs(r.created_at_ms()), KindName(r), r.version(),
                      OrDash(r.from_version()), OrDash(r.release()), OrDash(r.config()),
                      RolloutStateName(r.state()), r.created_by(), r.reason()});
    }
    PrintTable(rows, color);
    std::cout << "\n";
  }
  std::vector<std::vector<std::string>> rows = {
      {"WHEN", "EVENT", "ROLLOUT", "HOST", "BY", "MESSAGE"}};
  for (const auto& e : shown.events()) {
    rows.push_back({FormatMs(e.at_ms()), e.kind(), OrDash(e.rollout_id()), OrDash(e.host_id()),
                    OrDash(e.actor()), e.message()});
  }
  PrintTable(rows);
  Exit(0);
}

}  // namespace

void AddStatusCommands(CLI::App* app, Session* session) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* status =
      app->add_subcommand("status", "an app's hosts, releases, configs and rollouts");
  status->add_option("app", args->app)->required();
  status->callback([session, args] { Status(session, *args); });
  app->add_subcommand("hosts", "list hosts")->callback([session] { Hosts(session); });
  CLI::App* history = app->add_subcommand(
      "history", "an app's rollouts and every event: pushes, app changes, rollouts, hosts");
  history->add_option("app", args->app)->required();
  history->add_option("--kind", args->kinds,
                      "only events of these kinds: a kind (rollout.paused), a group (host, "
                      "host.*), or several, comma-separated or repeated");
  history->callback([session, args] { History(session, *args); });
}

}  // namespace fleet::cli
