#include "controller/dashboard_api.h"

#include <httplib.h>

#include <algorithm>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/rollout_state.h"
#include "common/status.h"
#include "common/vars.h"
#include "controller/dashboard_http.h"
#include "controller/dashboard_json.h"
#include "controller/dashboard_ui.h"
#include "controller/event_filter.h"

namespace fleet::controller {
namespace {

using fleet::v1::Rollout;

// Rollouts the fleet summary looks through for each app's running one and
// its last failure.
constexpr int kFleetRolloutWindow = 200;

// A page of a filtered list: the query's offset and limit.
struct Page {
  int offset = 0;
  int limit = kDefaultHostPage;
};

absl::StatusOr<Page> PageParams(const httplib::Request& req) {
  Page page;
  FLEET_ASSIGN_OR_RETURN(page.offset, IntParam(req, "offset", 0, 0, 1 << 30));
  FLEET_ASSIGN_OR_RETURN(page.limit, IntParam(req, "limit", kDefaultHostPage, 1, kMaxHostPage));
  return page;
}

// Which hosts a listing keeps: ?label=k=v,k2=v2 (every pair), ?q= (part of
// the id), ?connected=true|false and, for /hosts, ?app= (hosts that have it).
struct HostFilter {
  Labels selector;
  std::string id_part;
  std::string app;
  std::optional<bool> connected;

  bool Matches(const fleet::v1::Host& h) const {
    if (!id_part.empty() && !absl::StrContains(h.id(), id_part)) return false;
    if (connected && h.connected() != *connected) return false;
    Labels labels(h.labels().begin(), h.labels().end());
    labels["host"] = h.id();
    if (!SelectorMatches(selector, labels)) return false;
    if (app.empty()) return true;
    return std::any_of(h.apps().begin(), h.apps().end(),
                       [&](const fleet::v1::HostAppState& s) { return s.app() == app; });
  }
};

absl::StatusOr<HostFilter> HostFilterParams(const httplib::Request& req) {
  HostFilter filter;
  absl::StatusOr<Labels> selector = ParseSelector(req.get_param_value("label"));
  if (!selector.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("label: ", selector.status().message()));
  }
  filter.selector = *std::move(selector);
  filter.id_part = req.get_param_value("q");
  filter.app = req.get_param_value("app");
  if (req.has_param("connected")) {
    const std::string value = req.get_param_value("connected");
    if (value != "true" && value != "false") {
      return absl::InvalidArgumentError("query parameter connected must be true or false");
    }
    filter.connected = value == "true";
  }
  return filter;
}

// Answers a bad query (400) and returns false, or returns true.
bool CheckQuery(const absl::Status& st, httplib::Response& res) {
  if (st.ok()) return true;
  SendError(res, 400, st.message());
  return false;
}

// The JSON body of an action: an object, possibly empty. Answers 400 and
// returns nullopt otherwise.
std::optional<nlohmann::json> ActionBody(const httplib::Request& req, httplib::Response& res) {
  if (!CheckActionRequest(req, res)) return std::nullopt;
  if (req.body.empty()) return nlohmann::json::object();
  nlohmann::json body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) {
    SendError(res, 400, "the request body must be a JSON object");
    return std::nullopt;
  }
  return body;
}

// A string field of an action body; "" when absent. Answers 400 and returns
// false when it is there but no string.
bool BodyString(const nlohmann::json& body, const char* field, std::string* out,
                httplib::Response& res) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_string()) {
    SendError(res, 400, absl::StrCat("body field ", field, " must be a string"));
    return false;
  }
  *out = it->get<std::string>();
  return true;
}

// Who history names for an action from the page: the name typed at login
// (body field "actor") or "dashboard"; the service adds the token's id.
std::string DashboardActor(const std::string& typed) {
  return typed.empty() ? "dashboard" : absl::StrCat(typed, " via dashboard");
}

// One app of the fleet summary.
nlohmann::json AppSummary(const fleet::v1::App& app, const std::vector<fleet::v1::Host>& hosts,
                          const std::vector<Rollout>& rollouts) {
  int total = 0, connected = 0;
  for (const fleet::v1::Host& h : hosts) {
    for (const fleet::v1::HostAppState& s : h.apps()) {
      if (s.app() != app.spec().name()) continue;
      ++total;
      if (h.connected()) ++connected;
    }
  }
  nlohmann::json out = {{"name", app.spec().name()},      {"release", app.desired_version()},
                        {"config", app.desired_config()}, {"hosts_total", total},
                        {"hosts_connected", connected},   {"active_rollout", nullptr},
                        {"last_failure", nullptr}};
  for (const Rollout& r : rollouts) {
    if (r.app() != app.spec().name()) continue;
    if (!IsTerminal(r.state()) && out["active_rollout"].is_null() &&
        r.kind() != fleet::v1::ROLLOUT_KIND_CATCH_UP) {
      out["active_rollout"] = RolloutJson(r, /*with_tasks=*/false);
    }
    if ((r.state() == fleet::v1::ROLLOUT_STATE_FAILED ||
         r.state() == fleet::v1::ROLLOUT_STATE_ROLLED_BACK) &&
        out["last_failure"].is_null()) {
      out["last_failure"] = RolloutJson(r, /*with_tasks=*/false);
    }
  }
  return out;
}

}  // namespace

DashboardApi::DashboardApi(std::shared_ptr<grpc::Channel> channel, EventFeed* feed)
    : stub_(fleet::v1::FleetService::NewStub(std::move(channel))), feed_(feed) {}

DashboardApi::~DashboardApi() { Shutdown(); }

void DashboardApi::Shutdown() {
  stopping_ = true;
  feed_->Shutdown();
}

// Reads that pass a request straight through to one RPC.
void DashboardApi::RegisterReads(httplib::Server* server) {
  server->Get("/api/v1/whoami", [this](const httplib::Request& req, httplib::Response& res) {
    fleet::v1::Caller caller;
    if (CallApi(stub_.get(), &Stub::WhoAmI, req, res, fleet::v1::WhoAmIRequest(), &caller)) {
      SendJson(res, ToJson(caller));
    }
  });
  server->Get("/api/v1/apps", [this](const httplib::Request& req, httplib::Response& res) {
    fleet::v1::ListAppsResponse apps;
    if (CallApi(stub_.get(), &Stub::ListApps, req, res, fleet::v1::ListAppsRequest(), &apps)) {
      SendJson(res, ToJson(apps));
    }
  });
  server->Get(R"(/api/v1/apps/([^/]+)/releases)",
              [this](const httplib::Request& req, httplib::Response& res) {
                fleet::v1::ListReleasesRequest r;
                r.set_app(req.matches[1].str());
                fleet::v1::ListReleasesResponse out;
                if (CallApi(stub_.get(), &Stub::ListReleases, req, res, r, &out)) {
                  SendJson(res, ToJson(out));
                }
              });
  server->Get(R"(/api/v1/apps/([^/]+)/configs)",
              [this](const httplib::Request& req, httplib::Response& res) {
                fleet::v1::ListConfigsRequest r;
                r.set_app(req.matches[1].str());
                fleet::v1::ListConfigsResponse out;
                if (CallApi(stub_.get(), &Stub::ListConfigs, req, res, r, &out)) {
                  SendJson(res, ToJson(out));
                }
              });
  server->Get(R"(/api/v1/apps/([^/]+)/history)",
              [this](const httplib::Request& req, httplib::Response& res) {
                fleet::v1::GetHistoryRequest r;
                r.set_app(req.matches[1].str());
                absl::StatusOr<int> limit = IntParam(req, "limit", 20, 1, 500);
                if (!CheckQuery(limit.status(), res)) return;
                r.set_limit(*limit);
                fleet::v1::GetHistoryResponse out;
                if (!CallApi(stub_.get(), &Stub::GetHistory, req, res, r, &out)) return;
                nlohmann::json body = {{"rollouts", nlohmann::json::array()},
                                       {"events", ToJson(out)["events"]}};
                for (const Rollout& ro : out.rollouts()) {
                  body["rollouts"].push_back(RolloutJson(ro, /*with_tasks=*/false));
                }
                SendJson(res, body);
              });
  server->Get("/api/v1/rollouts", [this](const httplib::Request& req, httplib::Response& res) {
    fleet::v1::ListRolloutsRequest r;
    r.set_app(req.get_param_value("app"));
    absl::StatusOr<int> limit = IntParam(req, "limit", 50, 1, 1000);
    if (!CheckQuery(limit.status(), res)) return;
    r.set_limit(*limit);
    fleet::v1::ListRolloutsResponse out;
    if (!CallApi(stub_.get(), &Stub::ListRollouts, req, res, r, &out)) return;
    nlohmann::json body = {{"rollouts", nlohmann::json::array()}};
    for (const Rollout& ro : out.rollouts()) {
      body["rollouts"].push_back(RolloutJson(ro, /*with_tasks=*/false));
    }
    SendJson(res, body);
  });
  server->Get(R"(/api/v1/rollouts/([^/]+))",
              [this](const httplib::Request& req, httplib::Response& res) {
                fleet::v1::GetRolloutRequest r;
                r.set_id(req.matches[1].str());
                Rollout out;
                if (CallApi(stub_.get(), &Stub::GetRollout, req, res, r, &out)) {
                  SendJson(res, RolloutJson(out, /*with_tasks=*/true));
                }
              });
}

void DashboardApi::Register(httplib::Server* server) {
  AddDashboardPages(server);
  RegisterReads(server);
  auto bind = [this](void (DashboardApi::*handler)(const httplib::Request&, httplib::Response&)) {
    return [this, handler](const httplib::Request& req, httplib::Response& res) {
      (this->*handler)(req, res);
    };
  };
  server->Get("/api/v1/fleet", bind(&DashboardApi::Fleet));
  server->Get(R"(/api/v1/apps/([^/]+))", bind(&DashboardApi::AppStatus));
  server->Get("/api/v1/hosts", bind(&DashboardApi::Hosts));
  server->Get("/api/v1/events", bind(&DashboardApi::Events));
  server->Get("/api/v1/events/stream", bind(&DashboardApi::EventStream));
  server->Get(R"(/api/v1/rollouts/([^/]+)/watch)", bind(&DashboardApi::WatchRollout));
  server->Post(R"(/api/v1/apps/([^/]+)/rollback)", bind(&DashboardApi::Rollback));
  server->Post(R"(/api/v1/rollouts/([^/]+)/(pause|resume|promote|abort))",
               bind(&DashboardApi::RolloutAction));
}

void DashboardApi::Fleet(const httplib::Request& req, httplib::Response& res) {
  fleet::v1::ListAppsResponse apps;
  if (!CallApi(stub_.get(), &Stub::ListApps, req, res, fleet::v1::ListAppsRequest(), &apps)) {
    return;
  }
  fleet::v1::ListHostsResponse hosts;
  if (!CallApi(stub_.get(), &Stub::ListHosts, req, res, fleet::v1::ListHostsRequest(), &hosts)) {
    return;
  }
  fleet::v1::ListRolloutsRequest list;
  list.set_limit(kFleetRolloutWindow);
  fleet::v1::ListRolloutsResponse listed;
  if (!CallApi(stub_.get(), &Stub::ListRollouts, req, res, list, &listed)) return;
  // Running rollouts with their tasks, for their progress.
  std::vector<Rollout> rollouts(listed.rollouts().begin(), listed.rollouts().end());
  for (Rollout& r : rollouts) {
    if (IsTerminal(r.state())) continue;
    fleet::v1::GetRolloutRequest get;
    get.set_id(r.id());
    if (!CallApi(stub_.get(), &Stub::GetRollout, req, res, get, &r)) return;
  }
  const std::vector<fleet::v1::Host> all(hosts.hosts().begin(), hosts.hosts().end());
  int connected = 0;
  for (const fleet::v1::Host& h : all) connected += h.connected() ? 1 : 0;
  nlohmann::json body = {{"hosts_total", all.size()},
                         {"hosts_connected", connected},
                         {"apps", nlohmann::json::array()}};
  for (const fleet::v1::App& app : apps.apps()) {
    body["apps"].push_back(AppSummary(app, all, rollouts));
  }
  SendJson(res, body);
}

void DashboardApi::AppStatus(const httplib::Request& req, httplib::Response& res) {
  absl::StatusOr<Page> page = PageParams(req);
  if (!CheckQuery(page.status(), res)) return;
  absl::StatusOr<HostFilter> filter = HostFilterParams(req);
  if (!CheckQuery(filter.status(), res)) return;
  fleet::v1::GetAppStatusRequest get;
  get.set_app(req.matches[1].str());
  fleet::v1::AppStatus status;
  if (!CallApi(stub_.get(), &Stub::GetAppStatus, req, res, get, &status)) return;
  fleet::v1::ListHostsResponse hosts;
  if (!CallApi(stub_.get(), &Stub::ListHosts, req, res, fleet::v1::ListHostsRequest(), &hosts)) {
    return;
  }
  std::map<std::string, const fleet::v1::Host*> by_id;
  for (const fleet::v1::Host& h : hosts.hosts()) by_id[h.id()] = &h;
  nlohmann::json rows = nlohmann::json::array();
  int matched = 0, connected = 0;
  for (const fleet::v1::HostAppStatus& s : status.hosts()) {
    if (s.connected()) ++connected;
    auto it = by_id.find(s.host_id());
    fleet::v1::Host host = it != by_id.end() ? *it->second : fleet::v1::Host();
    host.set_id(s.host_id());
    host.set_connected(s.connected());
    if (!filter->Matches(host)) continue;
    if (matched++ < page->offset || static_cast<int>(rows.size()) >= page->limit) continue;
    nlohmann::json row = ToJson(s);
    row["labels"] = ToJson(host)["labels"];
    row["last_seen_ms"] = ToJson(host)["last_seen_ms"];
    rows.push_back(std::move(row));
  }
  nlohmann::json body = {{"app", ToJson(status.app())},  {"hosts_total", status.hosts_size()},
                         {"hosts_connected", connected}, {"matched", matched},
                         {"offset", page->offset},       {"hosts", std::move(rows)},
                         {"active_rollout", nullptr},    {"last_rollout", nullptr}};
  if (status.has_active_rollout()) {
    body["active_rollout"] = RolloutJson(status.active_rollout(), /*with_tasks=*/false);
  }
  if (status.has_last_rollout()) {
    body["last_rollout"] = RolloutJson(status.last_rollout(), /*with_tasks=*/false);
  }
  SendJson(res, body);
}

void DashboardApi::Hosts(const httplib::Request& req, httplib::Response& res) {
  absl::StatusOr<Page> page = PageParams(req);
  if (!CheckQuery(page.status(), res)) return;
  absl::StatusOr<HostFilter> filter = HostFilterParams(req);
  if (!CheckQuery(filter.status(), res)) return;
  fleet::v1::ListHostsResponse hosts;
  if (!CallApi(stub_.get(), &Stub::ListHosts, req, res, fleet::v1::ListHostsRequest(), &hosts)) {
    return;
  }
  nlohmann::json rows = nlohmann::json::array();
  int matched = 0, connected = 0;
  for (const fleet::v1::Host& h : hosts.hosts()) {
    if (h.connected()) ++connected;
    if (!filter->Matches(h)) continue;
    if (matched++ < page->offset || static_cast<int>(rows.size()) >= page->limit) continue;
    rows.push_back(ToJson(h));
  }
  SendJson(res, {{"hosts_total", hosts.hosts_size()},
                 {"hosts_connected", connected},
                 {"matched", matched},
                 {"offset", page->offset},
                 {"hosts", std::move(rows)}});
}

void DashboardApi::Events(const httplib::Request& req, httplib::Response& res) {
  fleet::v1::ListEventsRequest list;
  list.set_app(req.get_param_value("app"));
  list.set_actor(req.get_param_value("actor"));
  for (absl::string_view kind :
       absl::StrSplit(req.get_param_value("kind"), ',', absl::SkipWhitespace())) {
    list.add_kinds(std::string(kind));
  }
  absl::StatusOr<int> limit = IntParam(req, "limit", kDefaultListedEvents, 1, 1000);
  if (!CheckQuery(limit.status(), res)) return;
  list.set_limit(*limit);
  absl::StatusOr<int64_t> before = Int64Param(req, "before_id");
  if (!CheckQuery(before.status(), res)) return;
  list.set_before_id(*before);
  fleet::v1::ListEventsResponse out;
  if (CallApi(stub_.get(), &Stub::ListEvents, req, res, list, &out)) SendJson(res, ToJson(out));
}

void DashboardApi::Rollback(const httplib::Request& req, httplib::Response& res) {
  std::optional<nlohmann::json> body = ActionBody(req, res);
  if (!body) return;
  fleet::v1::RollbackRequest r;
  r.set_app(req.matches[1].str());
  std::string to, subject, actor;
  if (!BodyString(*body, "to_version", &to, res) || !BodyString(*body, "subject", &subject, res) ||
      !BodyString(*body, "actor", &actor, res)) {
    return;
  }
  if (subject != "" && subject != "release" && subject != "config") {
    SendError(res, 400, "body field subject must be \"release\" or \"config\"");
    return;
  }
  auto dry_run = body->find("dry_run");
  if (dry_run != body->end() && !dry_run->is_boolean()) {
    SendError(res, 400, "body field dry_run must be true or false");
    return;
  }
  r.set_to_version(to);
  r.set_subject(subject == "config" ? fleet::v1::SUBJECT_CONFIG : fleet::v1::SUBJECT_RELEASE);
  r.set_dry_run(dry_run != body->end() && dry_run->get<bool>());
  r.set_actor(DashboardActor(actor));
  Rollout out;
  if (CallApi(stub_.get(), &Stub::Rollback, req, res, r, &out)) {
    SendJson(res, RolloutJson(out, /*with_tasks=*/!r.dry_run()));
  }
}

void DashboardApi::RolloutAction(const httplib::Request& req, httplib::Response& res) {
  std::optional<nlohmann::json> body = ActionBody(req, res);
  if (!body) return;
  std::string actor;
  if (!BodyString(*body, "actor", &actor, res)) return;
  fleet::v1::RolloutActionRequest r;
  r.set_id(req.matches[1].str());
  r.set_actor(DashboardActor(actor));
  const std::string action = req.matches[2].str();
  auto method = action == "pause"     ? &Stub::PauseRollout
                : action == "resume"  ? &Stub::ResumeRollout
                : action == "promote" ? &Stub::PromoteRollout
                                      : &Stub::AbortRollout;
  Rollout out;
  if (CallApi(stub_.get(), method, req, res, r, &out)) {
    SendJson(res, RolloutJson(out, /*with_tasks=*/true));
  }
}

}  // namespace fleet::controller
