#include "controller/rollout_planner.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/vars.h"
#include "controller/rollout_machine.h"

namespace fleet::controller {

using fleet::v1::HostTask;
using fleet::v1::Rollout;

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

const std::string& DesiredVersion(const fleet::v1::App& app, fleet::v1::Subject subject) {
  return subject == fleet::v1::SUBJECT_CONFIG ? app.desired_config() : app.desired_version();
}

const std::string& HostCurrent(const fleet::v1::HostAppState& state, fleet::v1::Subject subject) {
  return subject == fleet::v1::SUBJECT_CONFIG ? state.current_config() : state.current_release();
}

bool HostHas(const fleet::v1::HostAppState& state, fleet::v1::Subject subject,
             const std::string& version) {
  const auto& on_disk =
      subject == fleet::v1::SUBJECT_CONFIG ? state.configs() : state.releases();
  return HostCurrent(state, subject) == version ||
         std::find(on_disk.begin(), on_disk.end(), version) != on_disk.end();
}

namespace {

const fleet::v1::HostAppState* AppState(const fleet::v1::Host& host, const std::string& app) {
  for (const auto& a : host.apps()) {
    if (a.app() == app) return &a;
  }
  return nullptr;
}

// The fields every new rollout of `app` has.
Rollout NewRollout(const fleet::v1::App& app, fleet::v1::Subject subject,
                   const std::string& version, fleet::v1::RolloutKind kind,
                   const std::string& actor, absl::Time now) {
  Rollout r;
  r.set_app(app.spec().name());
  r.set_version(version);
  r.set_subject(subject);
  r.set_from_version(DesiredVersion(app, subject));
  const bool config = subject == fleet::v1::SUBJECT_CONFIG;
  // The (release, config) pair the fleet runs once it succeeds.
  r.set_release(config ? app.desired_version() : version);
  r.set_config(config ? version : app.desired_config());
  r.set_kind(kind);
  r.set_created_by(actor);
  r.set_created_at_ms(absl::ToUnixMillis(now));
  return r;
}

HostTask* AddTask(Rollout* r, const std::string& host_id, fleet::v1::TaskState state,
                  const std::string& from, absl::Time now) {
  HostTask* task = r->add_tasks();
  task->set_host_id(host_id);
  task->set_state(state);
  task->set_from_version(from);
  task->set_to_version(r->version());
  task->set_updated_at_ms(absl::ToUnixMillis(now));
  return task;
}

// One wave of every host, started now: rollbacks and catch-ups.
void OneWave(Rollout* r, absl::Time now, absl::Duration host_timeout) {
  fleet::v1::Wave* wave = r->mutable_plan()->add_waves();
  wave->set_target("100%");
  wave->set_hosts(r->tasks_size());
  r->mutable_plan()->set_host_timeout_ms(absl::ToInt64Milliseconds(host_timeout));
  r->mutable_plan()->set_max_failures_spec("0");
  if (r->state() == fleet::v1::ROLLOUT_STATE_ACTIVATING) {
    wave->set_started_at_ms(absl::ToUnixMillis(now));
  }
}

}  // namespace

absl::StatusOr<Rollout> PlanDeploy(const fleet::v1::StartRolloutRequest& req,
                                   const fleet::v1::App& app,
                                   const std::vector<fleet::v1::Host>& hosts,
                                   const IsConnectedFn& connected, absl::Time now,
                                   absl::Duration host_timeout, std::vector<std::string>* skipped) {
  auto selector = ParseSelector(req.selector());
  if (!selector.ok()) return selector.status();
  Rollout r = NewRollout(app, req.subject(), req.version(), fleet::v1::ROLLOUT_KIND_DEPLOY,
                         req.actor(), now);
  r.set_state(fleet::v1::ROLLOUT_STATE_STAGING);
  r.set_selector(req.selector());
  for (const auto& host : hosts) {
    Labels labels(host.labels().begin(), host.labels().end());
    labels["host"] = host.id();
    if (!SelectorMatches(*selector, labels)) continue;
    if (!connected(host.id())) {
      skipped->push_back(host.id());
      continue;
    }
    const fleet::v1::HostAppState* state = AppState(host, req.app());
    AddTask(&r, host.id(), fleet::v1::TASK_STATE_PENDING,
            state == nullptr ? "" : HostCurrent(*state, req.subject()), now);
  }
  if (r.tasks_size() == 0) {
    std::string what = req.selector().empty() ? "" : absl::StrCat(" matches ", req.selector());
    if (!skipped->empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no connected host", what, " (disconnected: ", absl::StrJoin(*skipped, ", "), ")"));
    }
    return absl::FailedPreconditionError(absl::StrCat("no host", what));
  }
  auto plan = BuildRolloutPlan(req, app.spec(), r.tasks_size(), host_timeout);
  if (!plan.ok()) return plan.status();
  *r.mutable_plan() = *plan;
  // Hosts are in id order (ListHosts sorts), so waves are deterministic.
  for (int i = 0, w = 0; i < r.tasks_size(); ++i) {
    while (i >= plan->waves(w).hosts()) ++w;
    r.mutable_tasks(i)->set_wave(w);
  }
  return r;
}

bool WasReleased(const std::vector<Rollout>& rollouts, fleet::v1::Subject subject,
                 const std::string& version) {
  return std::any_of(rollouts.begin(), rollouts.end(), [&](const Rollout& r) {
    return r.subject() == subject && r.version() == version &&
           r.kind() != fleet::v1::ROLLOUT_KIND_CATCH_UP &&
           r.state() == fleet::v1::ROLLOUT_STATE_SUCCEEDED;
  });
}

absl::StatusOr<std::string> DefaultRollbackTarget(const fleet::v1::App& app,
                                                  fleet::v1::Subject subject,
                                                  const std::vector<Rollout>& rollouts) {
  const std::string& current = DesiredVersion(app, subject);
  const char* noun = subject == fleet::v1::SUBJECT_CONFIG ? "config" : "release";
  if (current.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        app.spec().name(), " has no successful ", noun, " yet; nothing to roll back from"));
  }
  // Newest first. A version that a later rollback moved away from is not a
  // target (rolling back twice goes further back, not forward again),
  // unless it was deployed successfully again after that rollback.
  std::set<std::string> rolled_away;
  for (const Rollout& r : rollouts) {
    if (r.state() != fleet::v1::ROLLOUT_STATE_SUCCEEDED || r.subject() != subject ||
        r.kind() == fleet::v1::ROLLOUT_KIND_CATCH_UP) {
      continue;
    }
    if (r.version() != current && rolled_away.count(r.version()) == 0) return r.version();
    if (r.kind() == fleet::v1::ROLLOUT_KIND_ROLLBACK) rolled_away.insert(r.from_version());
  }
  return absl::FailedPreconditionError(
      absl::StrCat(app.spec().name(), " has no successful ", noun, " before ", current,
                   " to roll back to; name one with --to VERSION"));
}

absl::StatusOr<Rollout> PlanRollback(const fleet::v1::RollbackRequest& req,
                                     const fleet::v1::App& app, const std::string& target,
                                     const std::vector<fleet::v1::Host>& hosts,
                                     const IsConnectedFn& connected, absl::Time now,
                                     absl::Duration host_timeout,
                                     std::vector<std::string>* skipped) {
  const fleet::v1::Subject subject = req.subject();
  Rollout r = NewRollout(app, subject, target, fleet::v1::ROLLOUT_KIND_ROLLBACK, req.actor(), now);
  r.set_state(fleet::v1::ROLLOUT_STATE_ACTIVATING);
  std::vector<std::string> lacking;
  for (const auto& host : hosts) {
    const fleet::v1::HostAppState* state = AppState(host, req.app());
    if (state == nullptr || (HostCurrent(*state, subject).empty() &&
                             (subject == fleet::v1::SUBJECT_CONFIG ? state->configs_size()
                                                                   : state->releases_size()) == 0)) {
      continue;
    }
    if (!connected(host.id())) {
      skipped->push_back(host.id());
      continue;
    }
    if (!HostHas(*state, subject, target)) lacking.push_back(host.id());
    AddTask(&r, host.id(), fleet::v1::TASK_STATE_STAGED, HostCurrent(*state, subject), now);
  }
  const char* noun = subject == fleet::v1::SUBJECT_CONFIG ? "config " : "release ";
  if (!lacking.empty()) {
    // A rollback never downloads: refuse before anything moves.
    return absl::FailedPreconditionError(absl::StrCat(
        "rollback refused: ", noun, target, " of ", req.app(), " is not on disk on host",
        lacking.size() == 1 ? " " : "s ", absl::StrJoin(lacking, ", "),
        "; nothing was changed (fleetctl status ", req.app(), " shows what each host has)"));
  }
  if (r.tasks_size() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no connected host has ", subject == fleet::v1::SUBJECT_CONFIG ? "a config of " : "",
        req.app(),
        skipped->empty() ? ""
                         : absl::StrCat(" (disconnected: ", absl::StrJoin(*skipped, ", "), ")")));
  }
  OneWave(&r, now, host_timeout);
  return r;
}

Rollout PlanCatchUp(const fleet::v1::App& app, fleet::v1::Subject subject,
                    const std::string& host_id, const fleet::v1::HostAppState& state,
                    absl::Time now, absl::Duration host_timeout) {
  const std::string& desired = DesiredVersion(app, subject);
  Rollout r = NewRollout(app, subject, desired, fleet::v1::ROLLOUT_KIND_CATCH_UP, "controller", now);
  r.set_from_version(HostCurrent(state, subject));
  const bool staged = HostHas(state, subject, desired);
  r.set_state(staged ? fleet::v1::ROLLOUT_STATE_ACTIVATING : fleet::v1::ROLLOUT_STATE_STAGING);
  AddTask(&r, host_id, staged ? fleet::v1::TASK_STATE_STAGED : fleet::v1::TASK_STATE_PENDING,
          HostCurrent(state, subject), now);
  r.mutable_plan()->set_bake_ms(app.spec().bake_ms());
  OneWave(&r, now, host_timeout);
  return r;
}

}  // namespace fleet::controller
