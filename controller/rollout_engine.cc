#include "controller/rollout_engine.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/rollout_state.h"
#include "common/status.h"
#include "common/vars.h"
#include "controller/analysis.h"

namespace fleet::controller {

using fleet::v1::Command;
using fleet::v1::CommandResult;
using fleet::v1::HostTask;
using fleet::v1::Rollout;
using fleet::v1::RolloutState;
using fleet::v1::TaskState;

namespace {

constexpr char kPhaseStage[] = "stage";
constexpr char kPhaseActivate[] = "activate";
constexpr char kPhaseRevert[] = "revert";

bool RolloutTransitionAllowed(RolloutState from, RolloutState to) {
  using fleet::v1::ROLLOUT_STATE_ACTIVATING;
  using fleet::v1::ROLLOUT_STATE_FAILED;
  using fleet::v1::ROLLOUT_STATE_PAUSED;
  using fleet::v1::ROLLOUT_STATE_ROLLED_BACK;
  using fleet::v1::ROLLOUT_STATE_ROLLING_BACK;
  using fleet::v1::ROLLOUT_STATE_STAGING;
  using fleet::v1::ROLLOUT_STATE_SUCCEEDED;
  switch (from) {
    case ROLLOUT_STATE_STAGING:
      return to == ROLLOUT_STATE_ACTIVATING || to == ROLLOUT_STATE_ROLLED_BACK ||
             to == ROLLOUT_STATE_ROLLING_BACK || to == ROLLOUT_STATE_PAUSED;
    case ROLLOUT_STATE_ACTIVATING:
      return to == ROLLOUT_STATE_SUCCEEDED || to == ROLLOUT_STATE_ROLLING_BACK ||
             to == ROLLOUT_STATE_FAILED || to == ROLLOUT_STATE_PAUSED ||
             to == ROLLOUT_STATE_ROLLED_BACK;
    case ROLLOUT_STATE_PAUSED:
      return to == ROLLOUT_STATE_STAGING || to == ROLLOUT_STATE_ACTIVATING ||
             to == ROLLOUT_STATE_ROLLING_BACK || to == ROLLOUT_STATE_ROLLED_BACK;
    case ROLLOUT_STATE_ROLLING_BACK:
      return to == ROLLOUT_STATE_ROLLED_BACK || to == ROLLOUT_STATE_FAILED;
    default:
      return false;
  }
}

bool TaskTransitionAllowed(TaskState from, TaskState to) {
  using namespace fleet::v1;  // NOLINT: the enum values read better bare here
  switch (from) {
    case TASK_STATE_PENDING:
      return to == TASK_STATE_STAGING || to == TASK_STATE_FAILED || to == TASK_STATE_CANCELLED;
    case TASK_STATE_STAGING:
      return to == TASK_STATE_STAGED || to == TASK_STATE_FAILED || to == TASK_STATE_CANCELLED;
    case TASK_STATE_STAGED:
      return to == TASK_STATE_ACTIVATING || to == TASK_STATE_FAILED || to == TASK_STATE_CANCELLED;
    case TASK_STATE_ACTIVATING:
      // CANCELLED: a rollback took over while the host was still baking.
      return to == TASK_STATE_HEALTHY || to == TASK_STATE_FAILED || to == TASK_STATE_LOST ||
             to == TASK_STATE_CANCELLED;
    case TASK_STATE_LOST:
      return to == TASK_STATE_REVERTING || to == TASK_STATE_CANCELLED;
    case TASK_STATE_HEALTHY:
      return to == TASK_STATE_REVERTING;
    case TASK_STATE_REVERTING:
      return to == TASK_STATE_REVERTED || to == TASK_STATE_REVERT_FAILED ||
             to == TASK_STATE_CANCELLED;
    default:
      return false;
  }
}

fleet::v1::Event MakeEvent(int64_t at_ms, const std::string& app, const std::string& rollout_id,
                           const std::string& host_id, const std::string& kind,
                           const std::string& actor, const std::string& message) {
  fleet::v1::Event e;
  e.set_at_ms(at_ms);
  e.set_app(app);
  e.set_rollout_id(rollout_id);
  e.set_host_id(host_id);
  e.set_kind(kind);
  e.set_actor(actor);
  e.set_message(message);
  return e;
}

bool IsConfig(const Rollout& r) { return r.subject() == fleet::v1::SUBJECT_CONFIG; }

// The app's desired version of `subject`.
const std::string& Desired(const fleet::v1::App& app, fleet::v1::Subject subject) {
  return subject == fleet::v1::SUBJECT_CONFIG ? app.desired_config() : app.desired_version();
}

// What a host runs of `subject`, and what it has on disk.
const std::string& HostCurrent(const fleet::v1::HostAppState& state, fleet::v1::Subject subject) {
  return subject == fleet::v1::SUBJECT_CONFIG ? state.current_config() : state.current_release();
}
const google::protobuf::RepeatedPtrField<std::string>& HostOnDisk(
    const fleet::v1::HostAppState& state, fleet::v1::Subject subject) {
  return subject == fleet::v1::SUBJECT_CONFIG ? state.configs() : state.releases();
}

// "v2" for a release, "config c2" for a config: how messages name a version.
std::string VersionLabel(fleet::v1::Subject subject, const std::string& version) {
  const std::string shown = version.empty() ? "(none)" : version;
  return subject == fleet::v1::SUBJECT_CONFIG ? absl::StrCat("config ", shown) : shown;
}

// Sets the (release, config) pair the fleet runs once `r` succeeds.
void SetPair(Rollout* r, const fleet::v1::App& app) {
  const bool config = IsConfig(*r);
  r->set_release(config ? app.desired_version() : r->version());
  r->set_config(config ? r->version() : app.desired_config());
}

// What one Advance() decided: written in one transaction, then sent.
struct Plan {
  std::set<std::string> changed_tasks;
  bool rollout_changed = false;
  std::vector<std::string> to_send;  // host ids whose task needs its command
  std::vector<fleet::v1::Event> events;
};

class Planner {
 public:
  Planner(Rollout* rollout, Plan* plan, int64_t now_ms) : r_(rollout), plan_(plan), now_(now_ms) {}

  void SetTask(HostTask* task, TaskState to, const std::string& reason = "") {
    if (!TaskTransitionAllowed(task->state(), to)) {
      spdlog::critical("rollout {} host {}: illegal task transition {} -> {}", r_->id(),
                       task->host_id(), TaskStateName(task->state()), TaskStateName(to));
      std::abort();
    }
    task->set_state(to);
    if (!reason.empty()) task->set_reason(reason);
    task->set_updated_at_ms(now_);
    plan_->changed_tasks.insert(task->host_id());
  }

  void SetRollout(RolloutState to, const std::string& reason = "") {
    if (!RolloutTransitionAllowed(r_->state(), to)) {
      spdlog::critical("rollout {}: illegal transition {} -> {}", r_->id(),
                       RolloutStateName(r_->state()), RolloutStateName(to));
      std::abort();
    }
    spdlog::info("rollout {} of {} {}: {} -> {}{}{}", r_->id(), r_->app(),
                 VersionLabel(r_->subject(), r_->version()), RolloutStateName(r_->state()),
                 RolloutStateName(to), reason.empty() ? "" : ": ", reason);
    r_->set_state(to);
    if (!reason.empty()) r_->set_reason(reason);
    if (IsTerminal(to)) r_->set_finished_at_ms(now_);
    plan_->rollout_changed = true;
  }

  // The rollout's own fields (wave, gate, timestamps) changed.
  void Changed() { plan_->rollout_changed = true; }

  void Send(HostTask* task, const std::string& phase) {
    task->set_command_id(absl::StrCat(r_->id(), "/", task->host_id(), "/", phase));
    plan_->to_send.push_back(task->host_id());
  }

  void Event(const std::string& host, const std::string& kind, const std::string& message) {
    Record(host, host.empty() ? r_->created_by() : host, kind, message);
  }

  // An event about the rollout by `actor` rather than its creator.
  void EventBy(const std::string& actor, const std::string& kind, const std::string& message) {
    Record("", actor, kind, message);
  }

 private:
  void Record(const std::string& host, const std::string& actor, const std::string& kind,
              const std::string& message) {
    // Every decision (wave started, threshold reached, rollback ordered) is
    // in the log with what it is about, not only in the store.
    spdlog::info("decision {} app={} {}={} rollout={}{}{}: {}", kind, r_->app(),
                 r_->subject() == fleet::v1::SUBJECT_CONFIG ? "config" : "release", r_->version(),
                 r_->id(), host.empty() ? "" : " host=", host, message);
    plan_->events.push_back(MakeEvent(now_, r_->app(), r_->id(), host, kind, actor, message));
  }

  Rollout* r_;
  Plan* plan_;
  int64_t now_;
};

std::string NothingEarlier(const Rollout& r) {
  return absl::StrCat("no earlier ", IsConfig(r) ? "config" : "release",
                      " on this host to go back to");
}

// Reconcile command ids: <prefix>/<host>/<app>/<version>/<ms>[/stage|/activate].
constexpr char kReconcileRelease[] = "reconcile";
constexpr char kReconcileConfig[] = "reconcile-config";

std::string FirstFailure(const Rollout& r) {
  for (const HostTask& t : r.tasks()) {
    if (t.state() == fleet::v1::TASK_STATE_FAILED || t.state() == fleet::v1::TASK_STATE_LOST) {
      return absl::StrCat(t.reason(), " on ", t.host_id());
    }
  }
  return "";
}

}  // namespace

bool IsTaskTerminal(TaskState s) {
  return s == fleet::v1::TASK_STATE_HEALTHY || s == fleet::v1::TASK_STATE_FAILED ||
         s == fleet::v1::TASK_STATE_REVERTED || s == fleet::v1::TASK_STATE_REVERT_FAILED ||
         s == fleet::v1::TASK_STATE_CANCELLED || s == fleet::v1::TASK_STATE_LOST;
}

namespace {

// "N" or "P%" (0 < P <= 100). Sets *percent for the latter.
absl::Status ParseCountOrPercent(const std::string& text, const std::string& what, double* value,
                                 bool* percent) {
  std::string t(absl::StripAsciiWhitespace(text));
  *percent = !t.empty() && t.back() == '%';
  if (*percent) t.pop_back();
  if (t.empty() || !absl::SimpleAtod(t, value) || *value < 0 || (*percent && *value > 100) ||
      (!*percent && *value != static_cast<int64_t>(*value))) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " '", text, "' must be a host count (e.g. 2) or a percentage (e.g. 25%)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<fleet::v1::RolloutPlan> BuildRolloutPlan(const fleet::v1::StartRolloutRequest& req,
                                                        const fleet::v1::AppSpec& spec, int hosts,
                                                        absl::Duration default_host_timeout) {
  fleet::v1::RolloutPlan plan;
  std::vector<std::string> targets(req.waves().begin(), req.waves().end());
  if (targets.empty()) targets.assign(spec.rollout().waves().begin(), spec.rollout().waves().end());
  if (targets.empty()) targets = {"1", "100%"};
  int cumulative = 0;
  for (const std::string& target : targets) {
    double value = 0;
    bool percent = false;
    absl::Status st = ParseCountOrPercent(target, "wave", &value, &percent);
    if (!st.ok()) return st;
    if (value <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("wave '", target, "' must be more than 0"));
    }
    int want = percent ? static_cast<int>(std::ceil(value * hosts / 100.0 - 1e-9))
                       : static_cast<int>(value);
    // Cumulative, and every wave adds at least one host.
    want = std::min(hosts, std::max(want, cumulative + 1));
    if (cumulative >= hosts) break;
    cumulative = want;
    fleet::v1::Wave* wave = plan.add_waves();
    wave->set_index(plan.waves_size() - 1);
    wave->set_target(target);
    wave->set_hosts(cumulative);
  }
  if (cumulative < hosts) {
    fleet::v1::Wave* wave = plan.add_waves();
    wave->set_index(plan.waves_size() - 1);
    wave->set_target("100%");
    wave->set_hosts(hosts);
  }

  std::string max_failures = req.max_failures();
  if (max_failures.empty()) max_failures = spec.rollout().max_failures();
  if (max_failures.empty()) max_failures = "0";
  double value = 0;
  bool percent = false;
  absl::Status st = ParseCountOrPercent(max_failures, "max-failures", &value, &percent);
  if (!st.ok()) return st;
  plan.set_max_failures(percent ? static_cast<int32_t>(std::floor(value * hosts / 100.0 + 1e-9))
                                : static_cast<int32_t>(value));
  plan.set_max_failures_spec(max_failures);

  if (req.max_parallel() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max-parallel ", req.max_parallel(), " must be 0 (no limit) or more"));
  }
  plan.set_max_parallel(req.max_parallel());

  plan.set_bake_ms(spec.bake_ms());
  if (!req.bake().empty()) {
    absl::Duration bake;
    if (!absl::ParseDuration(req.bake(), &bake) || bake < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bake '", req.bake(), "' is not a duration like 30s or 2m"));
    }
    plan.set_bake_ms(absl::ToInt64Milliseconds(bake));
  }
  absl::Duration host_timeout = default_host_timeout;
  if (!req.host_timeout().empty() && (!absl::ParseDuration(req.host_timeout(), &host_timeout) ||
                                      host_timeout <= absl::ZeroDuration())) {
    return absl::InvalidArgumentError(
        absl::StrCat("host-timeout '", req.host_timeout(), "' is not a duration like 2m"));
  }
  plan.set_host_timeout_ms(absl::ToInt64Milliseconds(host_timeout));
  plan.set_manual_promote(req.manual_promote());
  return plan;
}

void RolloutEngine::AddEvent(const std::string& app, const std::string& rollout_id,
                             const std::string& host, const std::string& kind,
                             const std::string& actor, const std::string& message) {
  fleet::v1::Event e =
      MakeEvent(absl::ToUnixMillis(clock_->Now()), app, rollout_id, host, kind, actor, message);
  absl::Status st = store_->AddEvent(&e);
  if (!st.ok()) {
    spdlog::error("cannot record event: {}", st.message());
    return;
  }
  Publish({e}, nullptr);
}

void RolloutEngine::Publish(const std::vector<fleet::v1::Event>& events, const Rollout* rollout) {
  if (observers_.empty() || events.empty()) return;
  std::vector<EngineEvent> out;
  out.reserve(events.size());
  for (const fleet::v1::Event& e : events) {
    EngineEvent& ee = out.emplace_back();
    ee.event = e;
    if (rollout != nullptr) {
      ee.subject = rollout->subject();
      ee.version = rollout->version();
      ee.kind = rollout->kind();
    }
  }
  for (EngineObserver* observer : observers_) observer->OnEvents(out);
}

void RolloutEngine::PublishFinished(const Rollout& rollout) {
  for (EngineObserver* observer : observers_) observer->OnRolloutFinished(rollout);
}

absl::Status RolloutEngine::CheckNoActiveRollout(const std::string& app) {
  auto active = store_->ListActiveRollouts();
  if (!active.ok()) return active.status();
  for (const Rollout& r : *active) {
    if (r.app() != app) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "rollout ", r.id(), " of ", app, " is running (", VersionLabel(r.subject(), r.version()),
        ", started by ", r.created_by(), " at ",
        absl::FormatTime(absl::FromUnixMillis(r.created_at_ms())), "); wait for it to finish"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Rollout> RolloutEngine::StartRollout(const fleet::v1::StartRolloutRequest& req) {
  absl::MutexLock lock(&mu_);
  auto app = store_->GetApp(req.app());
  if (!app.ok()) return app.status();
  if (app->spec().analysis_size() > 0 && app->spec().prometheus_url().empty() &&
      options_.prometheus_url.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "app ", req.app(),
        " has analysis but no prometheus_url (spec) or --prometheus-url (controller)"));
  }
  const fleet::v1::Subject subject = req.subject();
  absl::Status exists = subject == fleet::v1::SUBJECT_CONFIG
                            ? store_->GetConfig(req.app(), req.version()).status()
                            : store_->GetRelease(req.app(), req.version()).status();
  if (absl::IsNotFound(exists)) {
    return absl::NotFoundError(subject == fleet::v1::SUBJECT_CONFIG
                                   ? absl::StrCat("unknown config ", req.app(), "@", req.version(),
                                                  "; push it first with fleetctl config push")
                                   : absl::StrCat("unknown release ", req.app(), "@", req.version(),
                                                  "; push it first with fleetctl release push"));
  }
  if (!exists.ok()) return exists;
  auto selector = ParseSelector(req.selector());
  if (!selector.ok()) return selector.status();
  auto hosts = store_->ListHosts();
  if (!hosts.ok()) return hosts.status();
  if (auto it = selector->find("host"); it != selector->end()) {
    auto host = store_->GetHost(it->second);
    if (!host.ok()) return host.status();
  }
  absl::Status st = req.dry_run() ? absl::OkStatus() : CheckNoActiveRollout(req.app());
  if (!st.ok()) return st;

  Rollout r;
  r.set_app(req.app());
  r.set_version(req.version());
  r.set_subject(subject);
  r.set_from_version(Desired(*app, subject));
  SetPair(&r, *app);
  r.set_kind(fleet::v1::ROLLOUT_KIND_DEPLOY);
  r.set_state(fleet::v1::ROLLOUT_STATE_STAGING);
  r.set_selector(req.selector());
  r.set_created_by(req.actor());
  int64_t now = absl::ToUnixMillis(clock_->Now());
  r.set_created_at_ms(now);
  std::vector<std::string> skipped;
  for (const auto& host : *hosts) {
    Labels labels(host.labels().begin(), host.labels().end());
    labels["host"] = host.id();
    if (!SelectorMatches(*selector, labels)) continue;
    if (!hub_->IsConnected(host.id())) {
      skipped.push_back(host.id());
      continue;
    }
    HostTask* task = r.add_tasks();
    task->set_host_id(host.id());
    task->set_state(fleet::v1::TASK_STATE_PENDING);
    task->set_to_version(req.version());
    task->set_updated_at_ms(now);
    for (const auto& a : host.apps()) {
      if (a.app() == req.app()) task->set_from_version(HostCurrent(a, subject));
    }
  }
  if (r.tasks_size() == 0) {
    std::string what = req.selector().empty() ? "" : absl::StrCat(" matches ", req.selector());
    if (!skipped.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no connected host", what, " (disconnected: ", absl::StrJoin(skipped, ", "), ")"));
    }
    return absl::FailedPreconditionError(absl::StrCat("no host", what));
  }
  auto plan = BuildRolloutPlan(req, app->spec(), r.tasks_size(), options_.host_timeout);
  if (!plan.ok()) return plan.status();
  *r.mutable_plan() = *plan;
  // Hosts are in id order (ListHosts sorts), so waves are deterministic.
  for (int i = 0, w = 0; i < r.tasks_size(); ++i) {
    while (i >= plan->waves(w).hosts()) ++w;
    r.mutable_tasks(i)->set_wave(w);
  }
  if (req.dry_run()) return r;
  {
    FLEET_ASSIGN_OR_RETURN(std::unique_ptr<StoreTransaction> txn, store_->Begin());
    st = txn->CreateRollout(&r);
    if (!st.ok()) return st;
    std::string message = absl::StrCat(
        "rollout of ", VersionLabel(subject, r.version()), " from ",
        r.from_version().empty() ? "(none)" : r.from_version(), " to ", r.tasks_size(), " hosts",
        skipped.empty() ? ""
                        : absl::StrCat("; skipped disconnected: ", absl::StrJoin(skipped, ", ")));
    fleet::v1::Event e =
        MakeEvent(now, r.app(), r.id(), "", "rollout.started", r.created_by(), message);
    st = txn->AddEvent(&e);
    if (!st.ok()) return st;
    st = txn->Commit();
    if (!st.ok()) return st;
    Publish({e}, &r);
  }
  spdlog::info("rollout {} of {} {} created by {} for {} hosts", r.id(), r.app(),
               VersionLabel(subject, r.version()), r.created_by(), r.tasks_size());
  Advance(r.id());
  return store_->GetRollout(r.id());
}

absl::StatusOr<std::string> RolloutEngine::DefaultRollbackTarget(const std::string& app_name,
                                                                 fleet::v1::Subject subject) {
  auto app = store_->GetApp(app_name);
  if (!app.ok()) return app.status();
  const std::string& current = Desired(*app, subject);
  const char* noun = subject == fleet::v1::SUBJECT_CONFIG ? "config" : "release";
  if (current.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(app_name, " has no successful ", noun, " yet; nothing to roll back from"));
  }
  auto rollouts = store_->ListRollouts(app_name, 0, /*with_tasks=*/false);
  if (!rollouts.ok()) return rollouts.status();
  // Newest first. A release that a later rollback moved away from is not a
  // target (rolling back twice goes further back, not forward again),
  // unless it was deployed successfully again after that rollback.
  std::set<std::string> rolled_away;
  for (const Rollout& r : *rollouts) {
    if (r.state() != fleet::v1::ROLLOUT_STATE_SUCCEEDED || r.subject() != subject) continue;
    if (r.version() != current && rolled_away.count(r.version()) == 0) return r.version();
    if (r.kind() == fleet::v1::ROLLOUT_KIND_ROLLBACK) rolled_away.insert(r.from_version());
  }
  return absl::FailedPreconditionError(
      absl::StrCat(app_name, " has no successful ", noun, " before ", current,
                   " to roll back to; name one with --to VERSION"));
}

absl::StatusOr<Rollout> RolloutEngine::Rollback(const fleet::v1::RollbackRequest& req) {
  absl::MutexLock lock(&mu_);
  auto app = store_->GetApp(req.app());
  if (!app.ok()) return app.status();
  // A running rollout is superseded; by default the rollback returns to
  // where that rollout started.
  auto active = store_->ListActiveRollouts();
  if (!active.ok()) return active.status();
  const fleet::v1::Subject subject = req.subject();
  std::vector<Rollout> superseded;
  for (const Rollout& running : *active) {
    // A rollout of the other subject goes on: its link is not the one this
    // rollback switches, and the agents queue the two per app.
    if (running.app() != req.app() || running.subject() != subject) continue;
    superseded.push_back(running);
  }
  std::string target = req.to_version();
  if (target.empty() && !superseded.empty() &&
      superseded.front().kind() == fleet::v1::ROLLOUT_KIND_DEPLOY &&
      !superseded.front().from_version().empty()) {
    target = superseded.front().from_version();
  } else if (target.empty()) {
    auto t = DefaultRollbackTarget(req.app(), subject);
    if (!t.ok()) return t.status();
    target = *t;
  } else {
    absl::Status exists = subject == fleet::v1::SUBJECT_CONFIG
                              ? store_->GetConfig(req.app(), target).status()
                              : store_->GetRelease(req.app(), target).status();
    if (!exists.ok()) return exists;
  }
  auto hosts = store_->ListHosts();
  if (!hosts.ok()) return hosts.status();

  Rollout r;
  r.set_app(req.app());
  r.set_version(target);
  r.set_subject(subject);
  r.set_from_version(Desired(*app, subject));
  SetPair(&r, *app);
  r.set_kind(fleet::v1::ROLLOUT_KIND_ROLLBACK);
  r.set_state(fleet::v1::ROLLOUT_STATE_ACTIVATING);
  r.set_created_by(req.actor());
  int64_t now = absl::ToUnixMillis(clock_->Now());
  r.set_created_at_ms(now);
  std::vector<std::string> skipped;
  for (const auto& host : *hosts) {
    const fleet::v1::HostAppState* state = nullptr;
    for (const auto& a : host.apps()) {
      if (a.app() == req.app()) state = &a;
    }
    if (state == nullptr ||
        (HostCurrent(*state, subject).empty() && HostOnDisk(*state, subject).empty())) {
      continue;
    }
    if (!hub_->IsConnected(host.id())) {
      skipped.push_back(host.id());
      continue;
    }
    HostTask* task = r.add_tasks();
    task->set_host_id(host.id());
    task->set_state(fleet::v1::TASK_STATE_STAGED);
    task->set_from_version(HostCurrent(*state, subject));
    task->set_to_version(target);
    task->set_updated_at_ms(now);
  }
  if (r.tasks_size() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no connected host has ", subject == fleet::v1::SUBJECT_CONFIG ? "a config of " : "",
        req.app(),
        skipped.empty() ? ""
                        : absl::StrCat(" (disconnected: ", absl::StrJoin(skipped, ", "), ")")));
  }
  fleet::v1::Wave* wave = r.mutable_plan()->add_waves();
  wave->set_target("100%");
  wave->set_hosts(r.tasks_size());
  wave->set_started_at_ms(now);
  r.mutable_plan()->set_host_timeout_ms(absl::ToInt64Milliseconds(options_.host_timeout));
  r.mutable_plan()->set_max_failures_spec("0");

  // The emergency exit always works: a running rollout of the app is
  // stopped and this rollback takes over its hosts.
  absl::Status st;
  std::vector<fleet::v1::Event> aborted;  // one per superseded rollout, in order
  {
    FLEET_ASSIGN_OR_RETURN(std::unique_ptr<StoreTransaction> txn, store_->Begin());
    st = txn->CreateRollout(&r);
    if (!st.ok()) return st;
    for (Rollout& old : superseded) {
      std::string reason = absl::StrCat("aborted by ", req.actor(), ": rollback ", r.id(), " to ",
                                        VersionLabel(subject, target), " takes over");
      for (HostTask& t : *old.mutable_tasks()) {
        if (IsTaskTerminal(t.state())) continue;
        t.set_state(fleet::v1::TASK_STATE_CANCELLED);
        t.set_reason("superseded by rollback " + r.id());
        t.set_updated_at_ms(now);
        st = txn->UpdateTask(old.id(), t);
        if (!st.ok()) return st;
      }
      old.set_state(fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
      old.set_reason(reason);
      old.set_finished_at_ms(now);
      old.set_awaiting_promote(false);
      st = txn->UpdateRollout(old);
      if (!st.ok()) return st;
      fleet::v1::Event e =
          MakeEvent(now, old.app(), old.id(), "", "rollout.aborted", req.actor(), reason);
      st = txn->AddEvent(&e);
      if (!st.ok()) return st;
      aborted.push_back(e);
    }
    // The intent is the target from now on: hosts that are away come back to it.
    st = txn->SetDesired(req.app(), subject, target);
    if (!st.ok()) return st;
    fleet::v1::Event e =
        MakeEvent(now, r.app(), r.id(), "", "rollback.started", r.created_by(),
                  absl::StrCat("rollback from ", VersionLabel(subject, r.from_version()), " to ",
                               VersionLabel(subject, target), " on ", r.tasks_size(), " hosts"));
    st = txn->AddEvent(&e);
    if (!st.ok()) return st;
    st = txn->Commit();
    if (!st.ok()) return st;
    for (size_t i = 0; i < superseded.size(); ++i) {
      analysis_.erase(superseded[i].id());
      Publish({aborted[i]}, &superseded[i]);
      PublishFinished(superseded[i]);
    }
    Publish({e}, &r);
  }
  spdlog::info("rollback {} of {} to {} created by {} for {} hosts", r.id(), r.app(),
               VersionLabel(subject, target), r.created_by(), r.tasks_size());
  Advance(r.id());
  return store_->GetRollout(r.id());
}

void RolloutEngine::Advance(const std::string& rollout_id) {
  auto loaded = store_->GetRollout(rollout_id);
  if (!loaded.ok()) {
    spdlog::error("cannot load rollout {}: {}", rollout_id, loaded.status().message());
    return;
  }
  Rollout r = std::move(*loaded);
  if (IsTerminal(r.state())) {
    analysis_.erase(r.id());
    return;
  }
  auto app = store_->GetApp(r.app());
  if (!app.ok()) return;
  absl::Time now = clock_->Now();
  int64_t now_ms = absl::ToUnixMillis(now);
  Plan plan;
  Planner p(&r, &plan, now_ms);
  const bool rollback_kind = r.kind() == fleet::v1::ROLLOUT_KIND_ROLLBACK;
  const fleet::v1::RolloutPlan cfg = r.plan();
  const int wave_count = std::max(1, cfg.waves_size());
  const absl::Duration host_timeout =
      cfg.host_timeout_ms() > 0 ? absl::Milliseconds(cfg.host_timeout_ms()) : options_.host_timeout;
  const absl::Duration answer_timeout =
      host_timeout + (rollback_kind ? absl::ZeroDuration() : absl::Milliseconds(cfg.bake_ms()));

  // Why a host that owes an answer is considered failed, or "".
  auto overdue = [&](const HostTask& t) -> std::string {
    if (!hub_->IsConnected(t.host_id())) {
      if (now - hub_->DisconnectedSince(t.host_id()) > host_timeout) {
        return absl::StrCat("host disconnected for more than ", absl::FormatDuration(host_timeout));
      }
      return "";
    }
    // The clock starts again when the host reconnects: time the controller
    // or the network was down is not the host's fault.
    absl::Time since = std::max({absl::FromUnixMillis(t.updated_at_ms()),
                                 hub_->ConnectedSince(t.host_id()), LastProgress(t.host_id())});
    if (now - since > answer_timeout) {
      return absl::StrCat("no answer from host for ", absl::FormatDuration(answer_timeout));
    }
    return "";
  };
  auto count = [&](TaskState state) {
    return std::count_if(r.tasks().begin(), r.tasks().end(),
                         [state](const HostTask& t) { return t.state() == state; });
  };
  auto failures = [&] {
    return count(fleet::v1::TASK_STATE_FAILED) + count(fleet::v1::TASK_STATE_LOST);
  };
  auto threshold_exceeded = [&] { return failures() > cfg.max_failures(); };
  auto failure_reason = [&] {
    std::string reason = FirstFailure(r);
    int64_t failed = failures();
    if (failed > 1) absl::StrAppend(&reason, " (", failed, " hosts failed)");
    return reason;
  };
  // Staging goes on in STAGING and PAUSED: hosts that (re)connect get their
  // stage command; hosts that stay away fail.
  auto progress_staging = [&] {
    for (HostTask& t : *r.mutable_tasks()) {
      if (t.state() == fleet::v1::TASK_STATE_PENDING && hub_->IsConnected(t.host_id())) {
        p.SetTask(&t, fleet::v1::TASK_STATE_STAGING);
        p.Send(&t, kPhaseStage);
      }
      if (t.state() == fleet::v1::TASK_STATE_PENDING ||
          t.state() == fleet::v1::TASK_STATE_STAGING) {
        if (std::string why = overdue(t); !why.empty()) {
          p.SetTask(&t, fleet::v1::TASK_STATE_FAILED, why);
          p.Event(t.host_id(), "host.failed", why);
        }
      }
    }
  };
  // A host that owes the answer to an activation may have switched: it is
  // LOST, not FAILED, so that a rollback sends it back.
  auto check_activation_timeouts = [&] {
    for (HostTask& t : *r.mutable_tasks()) {
      if (t.state() != fleet::v1::TASK_STATE_ACTIVATING) continue;
      if (std::string why = overdue(t); !why.empty()) {
        p.SetTask(&t, fleet::v1::TASK_STATE_LOST, why);
        p.Event(t.host_id(), "host.lost", why);
      }
    }
  };
  auto wave_label = [&](int w) {
    return absl::StrCat("wave ", w + 1, "/", wave_count,
                        cfg.waves_size() > w ? absl::StrCat(" (", cfg.waves(w).target(), ")") : "");
  };
  auto start_rolling_back = [&] {
    std::string reason = failure_reason();
    p.SetRollout(fleet::v1::ROLLOUT_STATE_ROLLING_BACK, reason);
    p.Event("", "rollout.failed",
            absl::StrCat(reason, "; more than ", cfg.max_failures(),
                         " failed hosts allowed; rolling back"));
  };

  bool progressed = true;
  while (progressed && !IsTerminal(r.state())) {
    progressed = false;
    switch (r.state()) {
      case fleet::v1::ROLLOUT_STATE_STAGING: {
        progress_staging();
        bool all_staged = std::all_of(r.tasks().begin(), r.tasks().end(), [](const HostTask& t) {
          return t.state() == fleet::v1::TASK_STATE_STAGED ||
                 t.state() == fleet::v1::TASK_STATE_FAILED;
        });
        if (threshold_exceeded()) {
          for (HostTask& t : *r.mutable_tasks()) {
            if (!IsTaskTerminal(t.state())) p.SetTask(&t, fleet::v1::TASK_STATE_CANCELLED);
          }
          std::string reason =
              absl::StrCat("staging failed: ", failure_reason(), "; nothing was switched");
          p.SetRollout(fleet::v1::ROLLOUT_STATE_ROLLED_BACK, reason);
          p.Event("", "rollout.failed", reason);
          progressed = true;
        } else if (all_staged) {
          p.SetRollout(fleet::v1::ROLLOUT_STATE_ACTIVATING);
          r.set_current_wave(0);
          if (r.plan().waves_size() > 0)
            r.mutable_plan()->mutable_waves(0)->set_started_at_ms(now_ms);
          p.Event("", "wave.started", wave_label(0));
          progressed = true;
        }
        break;
      }
      case fleet::v1::ROLLOUT_STATE_ACTIVATING: {
        check_activation_timeouts();
        const int w = std::min(r.current_wave(), wave_count - 1);
        int64_t in_flight = count(fleet::v1::TASK_STATE_ACTIVATING);
        RolloutAnalysis* analysis = rollback_kind ? nullptr : SyncAnalysis(r, app->spec(), now);
        if (threshold_exceeded()) {
          if (!rollback_kind) {
            start_rolling_back();
            progressed = true;
          } else if (in_flight == 0 && count(fleet::v1::TASK_STATE_STAGED) == 0) {
            // A rollback is not undone: the hosts that failed report why.
            p.SetRollout(fleet::v1::ROLLOUT_STATE_FAILED, failure_reason());
            p.Event("", "rollback.failed", failure_reason());
            progressed = true;
          }
          if (progressed || !rollback_kind) break;
        }
        // The verdict stays until NoteAnalysisState() sees the transition
        // persisted, so a failed write is retried by the next Advance().
        if (analysis != nullptr && analysis->verdict == RolloutAnalysis::Verdict::kFail) {
          p.SetRollout(fleet::v1::ROLLOUT_STATE_ROLLING_BACK, analysis->verdict_reason);
          p.EventBy(kAnalysisActor, "analysis.failed", analysis->verdict_reason);
          p.Event("", "rollout.failed", absl::StrCat(analysis->verdict_reason, "; rolling back"));
          progressed = true;
          break;
        }
        if (analysis != nullptr && analysis->verdict == RolloutAnalysis::Verdict::kPause) {
          p.SetRollout(fleet::v1::ROLLOUT_STATE_PAUSED, analysis->verdict_reason);
          r.set_paused_by(kAnalysisActor);
          p.EventBy(kAnalysisActor, "analysis.inconclusive",
                    absl::StrCat(analysis->verdict_reason,
                                 "; paused until: fleetctl rollout resume ", r.id()));
          progressed = true;
          break;
        }
        for (HostTask& t : *r.mutable_tasks()) {
          if (t.wave() > w || t.state() != fleet::v1::TASK_STATE_STAGED) continue;
          if (cfg.max_parallel() > 0 && in_flight >= cfg.max_parallel()) break;
          p.SetTask(&t, fleet::v1::TASK_STATE_ACTIVATING);
          p.Send(&t, kPhaseActivate);
          ++in_flight;
        }
        bool wave_done = std::all_of(r.tasks().begin(), r.tasks().end(), [w](const HostTask& t) {
          return t.wave() > w || IsTaskTerminal(t.state());
        });
        if (!wave_done) break;
        // Analysis holds the wave until every check passed in it. When no
        // host runs the release there is nothing to measure.
        if (analysis != nullptr && count(fleet::v1::TASK_STATE_HEALTHY) > 0 &&
            !std::all_of(analysis->progress.begin(), analysis->progress.end(),
                         [](const CheckProgress& c) { return c.passed; })) {
          break;
        }
        p.Changed();
        int64_t failed = failures();
        if (r.plan().waves_size() > w)
          r.mutable_plan()->mutable_waves(w)->set_finished_at_ms(now_ms);
        p.Event("", "wave.finished",
                absl::StrCat(wave_label(w), " done; ", failed, " hosts failed so far"));
        progressed = true;
        if (w + 1 >= wave_count && !rollback_kind && count(fleet::v1::TASK_STATE_HEALTHY) == 0) {
          // Every host failed, within a generous threshold: nothing runs the
          // release, so it did not succeed. The hosts switched themselves back.
          std::string reason = absl::StrCat("no host became healthy: ", failure_reason());
          p.SetRollout(fleet::v1::ROLLOUT_STATE_ROLLED_BACK, reason);
          p.Event("", "rollout.failed", reason);
        } else if (w + 1 >= wave_count) {
          std::string reason;
          if (failed > 0) {
            reason = absl::StrCat(failed, " hosts failed within the threshold of ",
                                  cfg.max_failures(), " and went back: ", FirstFailure(r));
          }
          p.SetRollout(fleet::v1::ROLLOUT_STATE_SUCCEEDED, reason);
          p.Event("", rollback_kind ? "rollback.succeeded" : "rollout.succeeded",
                  absl::StrCat(VersionLabel(r.subject(), r.version()), " is live on ",
                               count(fleet::v1::TASK_STATE_HEALTHY), " hosts"));
        } else if (cfg.manual_promote()) {
          p.SetRollout(fleet::v1::ROLLOUT_STATE_PAUSED);
          r.set_awaiting_promote(true);
          p.Event("", "rollout.waiting",
                  absl::StrCat(wave_label(w), " is healthy; waiting for: fleetctl rollout promote ",
                               r.id()));
        } else {
          r.set_current_wave(w + 1);
          r.mutable_plan()->mutable_waves(w + 1)->set_started_at_ms(now_ms);
          p.Event("", "wave.started", wave_label(w + 1));
        }
        break;
      }
      case fleet::v1::ROLLOUT_STATE_PAUSED: {
        progress_staging();
        check_activation_timeouts();
        if (threshold_exceeded()) {
          r.set_awaiting_promote(false);
          start_rolling_back();
          progressed = true;
        }
        break;
      }
      case fleet::v1::ROLLOUT_STATE_ROLLING_BACK: {
        bool waiting = false;
        bool incomplete = false;
        for (HostTask& t : *r.mutable_tasks()) {
          switch (t.state()) {
            case fleet::v1::TASK_STATE_PENDING:
            case fleet::v1::TASK_STATE_STAGING:
            case fleet::v1::TASK_STATE_STAGED:
              p.SetTask(&t, fleet::v1::TASK_STATE_CANCELLED);
              break;
            case fleet::v1::TASK_STATE_HEALTHY:
            case fleet::v1::TASK_STATE_LOST:
              // A host's first config goes back to no config at all; a
              // first release has nothing to go back to.
              if (t.from_version().empty() && !IsConfig(r)) {
                // First release on this host: there is nothing to go back to.
                p.SetTask(&t, fleet::v1::TASK_STATE_REVERTING);
                p.SetTask(&t, fleet::v1::TASK_STATE_REVERT_FAILED, NothingEarlier(r));
              } else {
                p.SetTask(&t, fleet::v1::TASK_STATE_REVERTING);
                p.Send(&t, kPhaseRevert);
              }
              break;
            case fleet::v1::TASK_STATE_ACTIVATING:
              if (std::string why = overdue(t); !why.empty()) {
                // It may have switched: send it back like a healthy host.
                p.SetTask(&t, fleet::v1::TASK_STATE_LOST, why);
                p.Event(t.host_id(), "host.lost", why);
                if (t.from_version().empty() && !IsConfig(r)) {
                  p.SetTask(&t, fleet::v1::TASK_STATE_REVERTING);
                  p.SetTask(&t, fleet::v1::TASK_STATE_REVERT_FAILED,
                            absl::StrCat(why, "; ", NothingEarlier(r)));
                } else {
                  p.SetTask(&t, fleet::v1::TASK_STATE_REVERTING);
                  p.Send(&t, kPhaseRevert);
                }
              }
              break;
            case fleet::v1::TASK_STATE_REVERTING:
              if (std::string why = overdue(t); !why.empty()) {
                p.SetTask(&t, fleet::v1::TASK_STATE_REVERT_FAILED, why);
                p.Event(t.host_id(), "host.revert_failed", why);
              }
              break;
            default:
              break;
          }
          if (t.state() == fleet::v1::TASK_STATE_ACTIVATING ||
              t.state() == fleet::v1::TASK_STATE_REVERTING) {
            waiting = true;
          }
          if (t.state() == fleet::v1::TASK_STATE_REVERT_FAILED) incomplete = true;
        }
        if (!waiting) {
          if (incomplete) {
            p.SetRollout(fleet::v1::ROLLOUT_STATE_FAILED,
                         absl::StrCat(r.reason(), "; not every host could go back"));
            p.Event("", "rollout.rollback_incomplete", r.reason());
          } else {
            p.SetRollout(fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
            p.Event("", "rollout.rolled_back",
                    absl::StrCat("every switched host is back: ", r.reason()));
          }
          progressed = true;
        }
        break;
      }
      default:
        break;
    }
  }

  if (plan.changed_tasks.empty() && !plan.rollout_changed && plan.events.empty()) {
    NoteAnalysisState(r);
    return;
  }
  {
    absl::StatusOr<std::unique_ptr<StoreTransaction>> txn = store_->Begin();
    absl::Status st = txn.status();
    for (const HostTask& t : r.tasks()) {
      if (st.ok() && plan.changed_tasks.count(t.host_id())) st = (*txn)->UpdateTask(r.id(), t);
    }
    if (st.ok() && plan.rollout_changed) st = (*txn)->UpdateRollout(r);
    if (st.ok() && r.state() == fleet::v1::ROLLOUT_STATE_SUCCEEDED) {
      st = (*txn)->SetDesired(r.app(), r.subject(), r.version());
    }
    for (auto& e : plan.events) {
      if (st.ok()) st = (*txn)->AddEvent(&e);
    }
    if (st.ok()) st = (*txn)->Commit();
    if (!st.ok()) {
      // Nothing is sent for a transition that is not on disk; the next Tick
      // tries again.
      spdlog::error("rollout {}: cannot persist transition: {}", r.id(), st.message());
      return;
    }
  }
  NoteAnalysisState(r);
  Publish(plan.events, &r);
  if (plan.rollout_changed && IsTerminal(r.state())) PublishFinished(r);
  SendTaskCommands(r, plan.to_send);
}

absl::StatusOr<Rollout> RolloutEngine::Act(const fleet::v1::RolloutActionRequest& req,
                                           RolloutAction action) {
  absl::MutexLock lock(&mu_);
  auto loaded = store_->GetRollout(req.id());
  if (!loaded.ok()) return loaded.status();
  Rollout r = std::move(*loaded);
  auto refuse = [&](const std::string& why) {
    return absl::FailedPreconditionError(absl::StrCat("rollout ", r.id(), " ", why));
  };
  if (IsTerminal(r.state()))
    return refuse(absl::StrCat("has ended (", RolloutStateName(r.state()), ")"));
  const bool paused = r.state() == fleet::v1::ROLLOUT_STATE_PAUSED;
  RolloutState to = r.state();
  std::string kind;
  std::string message;
  switch (action) {
    case RolloutAction::kPause:
      if (paused) return refuse("is paused already");
      if (r.state() == fleet::v1::ROLLOUT_STATE_ROLLING_BACK) return refuse("is rolling back");
      to = fleet::v1::ROLLOUT_STATE_PAUSED;
      r.set_paused_by(req.actor());
      kind = "rollout.paused";
      message = "no further host switches until resumed";
      break;
    case RolloutAction::kResume: {
      if (!paused) return refuse("is not paused");
      if (r.awaiting_promote()) {
        return refuse(absl::StrCat("waits for promote: fleetctl rollout promote ", r.id()));
      }
      bool staging = std::any_of(r.tasks().begin(), r.tasks().end(), [](const HostTask& t) {
        return t.state() == fleet::v1::TASK_STATE_PENDING ||
               t.state() == fleet::v1::TASK_STATE_STAGING;
      });
      to = staging ? fleet::v1::ROLLOUT_STATE_STAGING : fleet::v1::ROLLOUT_STATE_ACTIVATING;
      // The inconclusive evaluation that paused it is history now.
      if (r.paused_by() == kAnalysisActor) r.set_reason("");
      r.set_paused_by("");
      kind = "rollout.resumed";
      // Evaluations start over: each check must pass again after the
      // resume. SyncAnalysis() fills in the checks of an entry made here
      // (after a controller restart) and keeps this window.
      if (r.kind() == fleet::v1::ROLLOUT_KIND_DEPLOY) {
        RolloutAnalysis& analysis = analysis_[r.id()];
        analysis.wave = r.current_wave();
        StartAnalysisWindow(&analysis, clock_->Now());
      }
      break;
    }
    case RolloutAction::kPromote:
      if (!paused || !r.awaiting_promote()) return refuse("is not waiting for promote");
      to = fleet::v1::ROLLOUT_STATE_ACTIVATING;
      r.set_awaiting_promote(false);
      r.set_current_wave(r.current_wave() + 1);
      if (r.current_wave() < r.plan().waves_size()) {
        r.mutable_plan()
            ->mutable_waves(r.current_wave())
            ->set_started_at_ms(absl::ToUnixMillis(clock_->Now()));
      }
      kind = "rollout.promoted";
      message = absl::StrCat("wave ", r.current_wave() + 1, " starts");
      break;
    case RolloutAction::kAbort:
      if (r.state() == fleet::v1::ROLLOUT_STATE_ROLLING_BACK)
        return refuse("is rolling back already");
      to = fleet::v1::ROLLOUT_STATE_ROLLING_BACK;
      r.set_awaiting_promote(false);
      r.set_reason(absl::StrCat("aborted by ", req.actor()));
      kind = "rollout.aborted";
      message = "every host this rollout switched goes back";
      break;
  }
  if (!RolloutTransitionAllowed(r.state(), to)) {
    return refuse(
        absl::StrCat("cannot go from ", RolloutStateName(r.state()), " to ", RolloutStateName(to)));
  }
  r.set_state(to);
  {
    FLEET_ASSIGN_OR_RETURN(std::unique_ptr<StoreTransaction> txn, store_->Begin());
    absl::Status st = txn->UpdateRollout(r);
    fleet::v1::Event e = MakeEvent(absl::ToUnixMillis(clock_->Now()), r.app(), r.id(), "", kind,
                                   req.actor(), message);
    if (st.ok()) st = txn->AddEvent(&e);
    if (st.ok()) st = txn->Commit();
    if (!st.ok()) return st;
    Publish({e}, &r);
  }
  spdlog::info("rollout {}: {} by {}", r.id(), kind, req.actor());
  Advance(r.id());
  return store_->GetRollout(r.id());
}

void RolloutEngine::SendTaskCommands(const Rollout& r, const std::vector<std::string>& hosts) {
  if (hosts.empty()) return;
  auto app = store_->GetApp(r.app());
  if (!app.ok()) return;
  // What a stage command carries: the release, or the config release.
  std::optional<fleet::v1::StageCommand> stage;
  if (IsConfig(r)) {
    if (auto loaded = store_->GetConfig(r.app(), r.version()); loaded.ok()) {
      stage.emplace();
      *stage->mutable_config() = *std::move(loaded);
    }
  } else if (auto loaded = store_->GetRelease(r.app(), r.version()); loaded.ok()) {
    stage.emplace();
    *stage->mutable_release() = *std::move(loaded);
  }
  std::set<std::string> wanted(hosts.begin(), hosts.end());
  for (const HostTask& t : r.tasks()) {
    if (wanted.count(t.host_id())) SendTaskCommand(r, t, *app, stage);
  }
}

void RolloutEngine::SendTaskCommand(const Rollout& r, const HostTask& t, const fleet::v1::App& app,
                                    const std::optional<fleet::v1::StageCommand>& stage) {
  Command cmd;
  cmd.set_id(t.command_id());
  cmd.set_rollout_id(r.id());
  switch (t.state()) {
    case fleet::v1::TASK_STATE_STAGING: {
      if (!stage || r.version() != t.to_version()) return;
      *cmd.mutable_stage() = *stage;
      *cmd.mutable_stage()->mutable_spec() = app.spec();
      break;
    }
    case fleet::v1::TASK_STATE_ACTIVATING:
    case fleet::v1::TASK_STATE_REVERTING: {
      bool revert = t.state() == fleet::v1::TASK_STATE_REVERTING;
      auto* a = cmd.mutable_activate();
      *a->mutable_spec() = app.spec();
      a->set_version(revert ? t.from_version() : t.to_version());
      a->set_mode(revert || r.kind() == fleet::v1::ROLLOUT_KIND_ROLLBACK
                      ? fleet::v1::ACTIVATE_MODE_ROLLBACK
                      : fleet::v1::ACTIVATE_MODE_DEPLOY);
      a->set_subject(r.subject());
      if (!revert && r.kind() == fleet::v1::ROLLOUT_KIND_DEPLOY) {
        a->set_bake_ms(r.plan().bake_ms());
        a->set_has_bake(true);
      }
      if (!t.from_version().empty()) a->add_keep(t.from_version());
      if (!Desired(app, r.subject()).empty()) a->add_keep(Desired(app, r.subject()));
      break;
    }
    default:
      return;
  }
  if (!hub_->Send(t.host_id(), cmd)) {
    spdlog::info("host {} is not connected; command {} waits for it", t.host_id(), cmd.id());
  }
}

RolloutEngine::RolloutAnalysis* RolloutEngine::SyncAnalysis(const Rollout& r,
                                                            const fleet::v1::AppSpec& spec,
                                                            absl::Time now) {
  if (spec.analysis().empty()) {
    analysis_.erase(r.id());
    return nullptr;
  }
  RolloutAnalysis& a = analysis_[r.id()];
  const bool same_checks =
      static_cast<int>(a.checks.size()) == spec.analysis_size() &&
      std::equal(a.checks.begin(), a.checks.end(), spec.analysis().begin(),
                 [](const fleet::v1::AnalysisCheck& x, const fleet::v1::AnalysisCheck& y) {
                   return x.SerializeAsString() == y.SerializeAsString();
                 });
  if (!same_checks) {
    // Other checks than before (the spec was applied again): count afresh
    // from the wave's start. A new entry keeps the window it may have got
    // from a resume.
    if (!a.checks.empty()) a.wave = -1;
    a.checks.assign(spec.analysis().begin(), spec.analysis().end());
    a.progress.assign(a.checks.size(), CheckProgress{});
  }
  a.app = r.app();
  a.prometheus_url =
      spec.prometheus_url().empty() ? options_.prometheus_url : spec.prometheus_url();
  if (a.wave != r.current_wave()) {
    a.wave = r.current_wave();
    absl::Time start = now;
    if (a.wave < r.plan().waves_size() && r.plan().waves(a.wave).started_at_ms() > 0) {
      start = absl::FromUnixMillis(r.plan().waves(a.wave).started_at_ms());
    }
    StartAnalysisWindow(&a, start);
  }
  return &a;
}

void RolloutEngine::StartAnalysisWindow(RolloutAnalysis* analysis, absl::Time start) {
  analysis->window = next_analysis_window_++;
  analysis->window_start = start;
  for (CheckProgress& c : analysis->progress) {
    c.last_evaluated = absl::InfinitePast();
    c.passed = false;
  }
  analysis->verdict = RolloutAnalysis::Verdict::kNone;
  analysis->verdict_reason.clear();
}

void RolloutEngine::NoteAnalysisState(const Rollout& r) {
  auto it = analysis_.find(r.id());
  if (it == analysis_.end()) return;
  RolloutAnalysis& a = it->second;
  switch (r.state()) {
    case fleet::v1::ROLLOUT_STATE_ACTIVATING:
      a.active = true;
      break;
    case fleet::v1::ROLLOUT_STATE_PAUSED:
      // Failure counts last until the rollout ends; a resume starts a new
      // window.
      a.active = false;
      a.verdict = RolloutAnalysis::Verdict::kNone;
      a.verdict_reason.clear();
      break;
    default:
      analysis_.erase(it);
      break;
  }
}

std::vector<AnalysisEvaluation> RolloutEngine::AnalysisDue() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  std::vector<AnalysisEvaluation> due;
  for (const auto& [rollout_id, a] : analysis_) {
    if (!a.active || a.verdict != RolloutAnalysis::Verdict::kNone) continue;
    for (size_t i = 0; i < a.checks.size(); ++i) {
      const fleet::v1::AnalysisCheck& check = a.checks[i];
      const absl::Duration interval =
          absl::Milliseconds(check.interval_ms() > 0 ? check.interval_ms() : 10000);
      if (now < std::max(a.window_start, a.progress[i].last_evaluated) + interval) continue;
      AnalysisEvaluation& e = due.emplace_back();
      e.app = a.app;
      e.rollout_id = rollout_id;
      e.wave = a.wave;
      e.window = a.window;
      e.check_index = static_cast<int>(i);
      e.check = check;
      e.prometheus_url = a.prometheus_url;
    }
  }
  return due;
}

void RolloutEngine::OnAnalysisResult(const AnalysisEvaluation& evaluation,
                                     const absl::StatusOr<double>& value) {
  absl::MutexLock lock(&mu_);
  const std::string& id = evaluation.rollout_id;
  auto it = analysis_.find(id);
  if (it == analysis_.end() || !it->second.active || it->second.window != evaluation.window ||
      it->second.verdict != RolloutAnalysis::Verdict::kNone || evaluation.check_index < 0 ||
      evaluation.check_index >= static_cast<int>(it->second.checks.size())) {
    spdlog::debug("analysis of rollout {}: dropping a result of an earlier window", id);
    return;
  }
  auto loaded = store_->GetRollout(id);
  if (!loaded.ok()) return;
  if (loaded->state() != fleet::v1::ROLLOUT_STATE_ACTIVATING ||
      loaded->current_wave() != evaluation.wave) {
    // It moved on without this engine noticing (a rollback superseded it):
    // Advance() brings the analysis state in line.
    Advance(id);
    return;
  }
  RolloutAnalysis& a = it->second;
  const fleet::v1::AnalysisCheck& check = a.checks[evaluation.check_index];
  CheckProgress& progress = a.progress[evaluation.check_index];
  const absl::Time now = clock_->Now();
  progress.last_evaluated = now;
  const std::string where = absl::StrCat("app ", a.app, " rollout ", id, " wave ",
                                         evaluation.wave + 1, " check '", check.name(), "'");
  if (!value.ok()) {
    a.verdict = check.fail_on_inconclusive() ? RolloutAnalysis::Verdict::kFail
                                             : RolloutAnalysis::Verdict::kPause;
    a.verdict_reason =
        absl::StrCat("analysis '", check.name(), "' inconclusive: ", value.status().message());
    spdlog::warn("analysis: {}: inconclusive: {}; {} the rollout", where, value.status().message(),
                 check.fail_on_inconclusive() ? "failing" : "pausing");
    Advance(id);
    return;
  }
  const std::string fail_if = check.fail_if().empty()
                                  ? absl::StrCat(check.op(), " ", check.threshold())
                                  : std::string(absl::StripAsciiWhitespace(check.fail_if()));
  const std::string measured =
      absl::StrCat(check.query(), " = ", FormatAnalysisValue(*value), ", fail_if ", fail_if);
  if (!MeetsFailIf(*value, check.op(), check.threshold())) {
    progress.passed = true;
    spdlog::info("analysis: {}: {}: pass", where, measured);
    Advance(id);  // the pass may be the last one the wave waited for
    return;
  }
  ++progress.failures;
  const std::string counted = absl::StrCat(" (", progress.failures, " failed evaluation",
                                           progress.failures == 1 ? "" : "s", ")");
  if (progress.failures > check.failure_limit()) {
    a.verdict = RolloutAnalysis::Verdict::kFail;
    a.verdict_reason = absl::StrCat("analysis '", check.name(), "' failed: ", measured, counted);
    spdlog::warn("analysis: {}: {}{}: more than the {} allowed; failing the rollout", where,
                 measured, counted, check.failure_limit());
    Advance(id);
    return;
  }
  spdlog::warn("analysis: {}: {}{}: failed; {} allowed", where, measured, counted,
               check.failure_limit());
  fleet::v1::Event e = MakeEvent(
      absl::ToUnixMillis(now), a.app, id, "", "analysis.check_failed", kAnalysisActor,
      absl::StrCat("analysis '", check.name(), "' failed an evaluation: ", measured, counted,
                   "; the rollout fails after more than ", check.failure_limit()));
  absl::Status st = store_->AddEvent(&e);
  if (!st.ok()) {
    spdlog::error("cannot record event: {}", st.message());
    return;
  }
  Publish({e}, &*loaded);
}

void RolloutEngine::Tick() {
  absl::MutexLock lock(&mu_);
  auto active = store_->ListActiveRollouts();
  if (!active.ok()) {
    spdlog::error("cannot list active rollouts: {}", active.status().message());
    return;
  }
  for (const Rollout& r : *active) Advance(r.id());
}

absl::Status RolloutEngine::OnHello(const fleet::v1::Hello& hello, const std::string& peer) {
  if (!IsSafeName(hello.host_id())) {
    return absl::InvalidArgumentError(absl::StrCat("invalid host id '", hello.host_id(), "'"));
  }
  AgentEvent e;
  e.kind = AgentEvent::kHello;
  e.host_id = hello.host_id();
  e.hello = hello;
  e.peer = peer;
  Enqueue(std::move(e));
  return absl::OkStatus();
}

void RolloutEngine::HandleHello(const fleet::v1::Hello& hello, const std::string& peer) {
  fleet::v1::Host host;
  host.set_id(hello.host_id());
  *host.mutable_labels() = hello.labels();
  host.set_connected(true);
  host.set_last_seen_ms(absl::ToUnixMillis(clock_->Now()));
  host.set_agent_version(hello.agent_version());
  host.set_peer(peer);
  *host.mutable_apps() = hello.apps();
  absl::Status st = store_->UpsertHost(host);
  if (!st.ok()) {
    spdlog::error("cannot record host {}: {}", hello.host_id(), st.message());
    return;
  }
  spdlog::info("host {} connected from {} ({} apps)", hello.host_id(), peer, hello.apps_size());
  AddEvent("", "", hello.host_id(), "host.connected", hello.host_id(),
           absl::StrCat("connected from ", peer));

  // Commands this host owes an answer to are sent again; the agent answers
  // completed ones from its stored results.
  auto active = store_->ListActiveRollouts();
  if (!active.ok()) return;
  std::set<std::pair<std::string, fleet::v1::Subject>> busy;
  for (const Rollout& r : *active) {
    busy.insert({r.app(), r.subject()});
    for (const HostTask& t : r.tasks()) {
      if (t.host_id() != hello.host_id()) continue;
      if (t.state() == fleet::v1::TASK_STATE_STAGING ||
          t.state() == fleet::v1::TASK_STATE_ACTIVATING ||
          t.state() == fleet::v1::TASK_STATE_REVERTING) {
        // The stream registers after OnHello returns; send once it is there.
        pending_resend_.push_back({r.id(), t.host_id()});
      }
    }
  }
  Reconcile(hello, busy);
}

void RolloutEngine::Reconcile(
    const fleet::v1::Hello& hello,
    const std::set<std::pair<std::string, fleet::v1::Subject>>& busy) {
  for (const auto& state : hello.apps()) {
    auto app = store_->GetApp(state.app());
    if (!app.ok()) continue;
    for (fleet::v1::Subject subject : {fleet::v1::SUBJECT_RELEASE, fleet::v1::SUBJECT_CONFIG}) {
      if (busy.count({state.app(), subject})) continue;
      const std::string& desired = Desired(*app, subject);
      const std::string& current = HostCurrent(state, subject);
      if (desired.empty() || current == desired) continue;
      const auto& on_disk = HostOnDisk(state, subject);
      const bool staged = std::find(on_disk.begin(), on_disk.end(), desired) != on_disk.end();
      const std::string id = absl::StrCat(
          subject == fleet::v1::SUBJECT_CONFIG ? kReconcileConfig : kReconcileRelease, "/",
          hello.host_id(), "/", state.app(), "/", desired, "/", absl::ToUnixMillis(clock_->Now()));
      const std::string have = VersionLabel(subject, current);
      const std::string want = VersionLabel(subject, desired);
      if (!staged) {
        // It missed the version while away: stage it, then switch like a
        // deploy (probes, switching back on its own if they fail).
        Command cmd;
        cmd.set_id(absl::StrCat(id, "/", kPhaseStage));
        if (subject == fleet::v1::SUBJECT_CONFIG) {
          auto config = store_->GetConfig(state.app(), desired);
          if (!config.ok()) continue;
          *cmd.mutable_stage()->mutable_config() = *std::move(config);
        } else {
          auto release = store_->GetRelease(state.app(), desired);
          if (!release.ok()) continue;
          *cmd.mutable_stage()->mutable_release() = *std::move(release);
        }
        *cmd.mutable_stage()->mutable_spec() = app->spec();
        spdlog::info("host {} runs {} {} and missed {}; staging it", hello.host_id(), state.app(),
                     have, want);
        AddEvent(state.app(), "", hello.host_id(), "host.catch_up", "controller",
                 absl::StrCat("runs ", have, ", fleet runs ", want,
                              ", which is not on this host: staging it"));
        pending_reconcile_.push_back({hello.host_id(), cmd});
        continue;
      }
      Command cmd;
      cmd.set_id(id);
      auto* a = cmd.mutable_activate();
      *a->mutable_spec() = app->spec();
      a->set_version(desired);
      a->set_mode(fleet::v1::ACTIVATE_MODE_ROLLBACK);
      a->set_subject(subject);
      a->add_keep(desired);
      spdlog::info("host {} runs {} {} but the fleet runs {}; switching it", hello.host_id(),
                   state.app(), have, want);
      AddEvent(state.app(), "", hello.host_id(), "host.reconcile", "controller",
               absl::StrCat("switching from ", have, " to ", want));
      pending_reconcile_.push_back({hello.host_id(), cmd});
    }
  }
}

void RolloutEngine::OnConnected(const std::string& host_id) {
  AgentEvent e;
  e.kind = AgentEvent::kConnected;
  e.host_id = host_id;
  Enqueue(std::move(e));
}

void RolloutEngine::CatchUp(const std::string& host_id, const std::string& app_name,
                            fleet::v1::Subject subject, const std::string& version,
                            const std::string& id) {
  auto app = store_->GetApp(app_name);
  if (!app.ok() || Desired(*app, subject) != version) return;  // the fleet moved on
  auto active = store_->ListActiveRollouts();
  if (!active.ok()) return;
  for (const Rollout& r : *active) {
    if (r.app() == app_name && r.subject() == subject) return;  // the running rollout decides
  }
  Command cmd;
  cmd.set_id(absl::StrCat(id, "/", kPhaseActivate));
  auto* a = cmd.mutable_activate();
  *a->mutable_spec() = app->spec();
  a->set_version(version);
  a->set_mode(fleet::v1::ACTIVATE_MODE_DEPLOY);
  a->set_subject(subject);
  a->add_keep(version);
  AddEvent(app_name, "", host_id, "host.reconcile", "controller",
           absl::StrCat("staged ", VersionLabel(subject, version), "; switching to it"));
  hub_->Send(host_id, cmd);
}

void RolloutEngine::HandleConnected(const std::string& host_id) {
  std::vector<std::pair<std::string, std::string>> resend;
  for (auto it = pending_resend_.begin(); it != pending_resend_.end();) {
    if (it->second == host_id) {
      resend.push_back(*it);
      it = pending_resend_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [rollout_id, host] : resend) {
    auto r = store_->GetRollout(rollout_id);
    if (r.ok()) SendTaskCommands(*r, {host});
  }
  for (auto it = pending_reconcile_.begin(); it != pending_reconcile_.end();) {
    if (it->first == host_id) {
      hub_->Send(host_id, it->second);
      it = pending_reconcile_.erase(it);
    } else {
      ++it;
    }
  }
}

absl::Time RolloutEngine::LastProgress(const std::string& host_id) {
  absl::MutexLock lock(&progress_mu_);
  auto it = progress_at_.find(host_id);
  return it == progress_at_.end() ? absl::InfinitePast() : it->second;
}

void RolloutEngine::OnProgress(const std::string& host_id, const fleet::v1::CommandProgress& p) {
  // A host that reports progress (a long download) is not silent.
  {
    absl::MutexLock lock(&progress_mu_);
    progress_at_[host_id] = clock_->Now();
  }
  spdlog::debug("host {}: {} {} {}", host_id, p.command_id(), fleet::v1::ProgressStep_Name(p.step()),
                p.message());
}

void RolloutEngine::OnResult(const std::string& host_id, const CommandResult& result) {
  AgentEvent e;
  e.kind = AgentEvent::kResult;
  e.host_id = host_id;
  e.result = result;
  Enqueue(std::move(e));
}

void RolloutEngine::HandleResults(const std::vector<const AgentEvent*>& results,
                                  std::set<std::string>* touched) {
  // Results of one rollout are applied together: one read of the rollout,
  // one transaction, one Advance per batch instead of per host.
  std::map<std::string, Rollout> rollouts;
  std::map<std::string, std::set<std::string>> changed;  // rollout -> hosts
  std::vector<fleet::v1::Event> events;
  std::vector<std::pair<std::string, fleet::v1::HostAppState>> states;
  const int64_t now_ms = absl::ToUnixMillis(clock_->Now());
  for (const AgentEvent* event : results) {
    const std::string& host_id = event->host_id;
    const CommandResult& result = event->result;
    if (result.has_state() && !result.state().app().empty()) {
      states.emplace_back(host_id, result.state());
    }
    std::vector<std::string> parts = absl::StrSplit(result.command_id(), '/');
    if (!parts.empty() && (parts[0] == kReconcileRelease || parts[0] == kReconcileConfig)) {
      const fleet::v1::Subject subject =
          parts[0] == kReconcileConfig ? fleet::v1::SUBJECT_CONFIG : fleet::v1::SUBJECT_RELEASE;
      const std::string app = parts.size() > 2 ? parts[2] : "";
      const std::string version = parts.size() > 3 ? parts[3] : "";
      const bool staged = parts.size() == 6 && parts[5] == kPhaseStage;
      if (staged && result.ok()) {
        CatchUp(host_id, app, subject, version,
                absl::StrJoin(parts.begin(), parts.begin() + 5, "/"));
        continue;
      }
      std::string kind = result.ok() ? "host.reconciled" : "host.reconcile_failed";
      events.push_back(MakeEvent(
          now_ms, app, "", host_id, kind, host_id,
          result.ok() ? absl::StrCat("now on ", VersionLabel(subject, result.current_version()))
                      : result.reason()));
      continue;
    }
    if (parts.size() != 3) {
      spdlog::warn("host {} answered unknown command {}", host_id, result.command_id());
      continue;
    }
    const std::string& rollout_id = parts[0];
    const std::string& phase = parts[2];
    if (rollouts.count(rollout_id) == 0) {
      auto loaded = store_->GetRollout(rollout_id);
      if (!loaded.ok()) continue;
      rollouts[rollout_id] = std::move(*loaded);
    }
    Rollout& r = rollouts[rollout_id];
    if (IsTerminal(r.state())) continue;
    HostTask* task = nullptr;
    for (HostTask& t : *r.mutable_tasks()) {
      if (t.host_id() == host_id) task = &t;
    }
    // Only the answer to the command the task waits for counts; late answers
    // to earlier phases are ignored.
    if (task == nullptr || task->command_id() != result.command_id()) continue;
    TaskState to;
    std::string kind;
    if (phase == kPhaseStage && task->state() == fleet::v1::TASK_STATE_STAGING) {
      to = result.ok() ? fleet::v1::TASK_STATE_STAGED : fleet::v1::TASK_STATE_FAILED;
      kind = result.ok() ? "host.staged" : "host.stage_failed";
    } else if (phase == kPhaseActivate && task->state() == fleet::v1::TASK_STATE_ACTIVATING) {
      // A failed host that is not on its previous release (superseded, or
      // switching back failed) still needs to be sent back.
      const bool back = result.current_version() == task->from_version();
      to = result.ok() ? fleet::v1::TASK_STATE_HEALTHY
                       : (back || r.kind() == fleet::v1::ROLLOUT_KIND_ROLLBACK
                              ? fleet::v1::TASK_STATE_FAILED
                              : fleet::v1::TASK_STATE_LOST);
      kind = result.ok() ? "host.healthy"
                         : (result.switched_back() && back ? "host.switched_back" : "host.failed");
    } else if (phase == kPhaseRevert && task->state() == fleet::v1::TASK_STATE_REVERTING) {
      to = result.ok() ? fleet::v1::TASK_STATE_REVERTED : fleet::v1::TASK_STATE_REVERT_FAILED;
      kind = result.ok() ? "host.reverted" : "host.revert_failed";
    } else {
      continue;
    }
    if (!TaskTransitionAllowed(task->state(), to)) continue;
    task->set_state(to);
    task->set_reason(result.ok() ? "" : result.reason());
    task->set_updated_at_ms(now_ms);
    changed[rollout_id].insert(host_id);
    fleet::v1::Event e = MakeEvent(
        now_ms, r.app(), r.id(), host_id, kind, host_id,
        result.ok() ? absl::StrCat("on ", VersionLabel(r.subject(), result.current_version()),
                                   " (switch ", result.switch_us(), " us)")
                    : result.reason());
    events.push_back(std::move(e));
  }

  absl::StatusOr<std::unique_ptr<StoreTransaction>> txn = store_->Begin();
  absl::Status st = txn.status();
  for (const auto& [host_id, state] : states) {
    if (!st.ok()) break;
    absl::Status s2 = (*txn)->UpsertHostAppState(host_id, state);
    if (!s2.ok()) spdlog::warn("cannot record state of {}: {}", host_id, s2.message());
  }
  for (const auto& [rollout_id, hosts] : changed) {
    for (const HostTask& t : rollouts[rollout_id].tasks()) {
      if (st.ok() && hosts.count(t.host_id())) st = (*txn)->UpdateTask(rollout_id, t);
    }
  }
  for (auto& e : events) {
    if (st.ok()) st = (*txn)->AddEvent(&e);
  }
  if (st.ok()) st = (*txn)->Commit();
  if (!st.ok()) {
    // The agents' results stay stored on their side; the resend after the
    // next reconnect or the task's timeout recovers.
    spdlog::error("cannot record {} results: {}", results.size(), st.message());
    return;
  }
  for (const fleet::v1::Event& e : events) {
    auto it = rollouts.find(e.rollout_id());
    Publish({e}, it == rollouts.end() ? nullptr : &it->second);
  }
  for (const auto& [rollout_id, hosts] : changed) touched->insert(rollout_id);
}

void RolloutEngine::OnDisconnected(const std::string& host_id) {
  AgentEvent e;
  e.kind = AgentEvent::kDisconnected;
  e.host_id = host_id;
  Enqueue(std::move(e));
}

void RolloutEngine::HandleDisconnected(const std::string& host_id) {
  // The old stream of a host that reconnected ends after the new one began.
  if (hub_->IsConnected(host_id)) return;
  spdlog::warn("host {} disconnected", host_id);
  absl::Status st = store_->SetHostConnected(host_id, false, absl::ToUnixMillis(clock_->Now()));
  if (!st.ok()) spdlog::error("cannot record disconnect of {}: {}", host_id, st.message());
  AddEvent("", "", host_id, "host.disconnected", host_id, "stream ended");
}

void RolloutEngine::Enqueue(AgentEvent event) {
  absl::MutexLock lock(&queue_mu_);
  queue_.push_back(std::move(event));
}

void RolloutEngine::Start() {
  worker_ = std::thread([this] { WorkerLoop(); });
}

void RolloutEngine::Stop() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
}

RolloutEngine::~RolloutEngine() { Stop(); }

void RolloutEngine::WorkerLoop() {
  while (true) {
    std::deque<AgentEvent> batch;
    {
      absl::MutexLock lock(&queue_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
        return stopping_ || !queue_.empty();
      };
      queue_mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      batch.swap(queue_);
    }
    absl::MutexLock lock(&mu_);
    std::set<std::string> touched;
    bool connected = false;
    std::vector<const AgentEvent*> results;
    // Results are applied in runs; a hello, connect or disconnect between
    // them keeps its place in the order.
    auto flush = [&] {
      if (!results.empty()) HandleResults(results, &touched);
      results.clear();
    };
    for (const AgentEvent& e : batch) {
      switch (e.kind) {
        case AgentEvent::kResult:
          results.push_back(&e);
          break;
        case AgentEvent::kHello:
          flush();
          HandleHello(e.hello, e.peer);
          break;
        case AgentEvent::kConnected:
          flush();
          HandleConnected(e.host_id);
          connected = true;
          break;
        case AgentEvent::kDisconnected:
          flush();
          HandleDisconnected(e.host_id);
          break;
      }
    }
    flush();
    if (connected) {
      // Pending tasks of hosts that just connected can start now.
      auto active = store_->ListActiveRollouts();
      if (active.ok()) {
        for (const Rollout& r : *active) touched.insert(r.id());
      }
    }
    for (const std::string& id : touched) Advance(id);
  }
}

}  // namespace fleet::controller
