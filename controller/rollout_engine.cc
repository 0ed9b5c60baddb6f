#include "controller/rollout_engine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "common/logging.h"
#include "common/rollout_state.h"
#include "common/status.h"
#include "common/vars.h"
#include "controller/command_builder.h"

namespace fleet::controller {

using fleet::v1::HostTask;
using fleet::v1::Rollout;

namespace {

absl::Status ShuttingDown() { return absl::UnavailableError("the controller is shutting down"); }

}  // namespace

RolloutEngine::RolloutEngine(Store* store, AgentHub* hub, Clock* clock, EngineOptions options)
    : store_(store),
      hub_(hub),
      clock_(clock),
      options_(std::move(options)),
      audit_(clock),
      liveness_(std::make_unique<LiveHosts>(clock->Now())),
      targets_(store) {}

RolloutEngine::~RolloutEngine() { Stop(); }

void RolloutEngine::Start() {
  absl::MutexLock lock(&inbox_mu_);
  if (started_) return;
  started_ = true;
  worker_ = std::thread([this] { WorkerLoop(); });
  worker_id_ = worker_.get_id();
}

void RolloutEngine::Stop() {
  {
    absl::MutexLock lock(&inbox_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
  // What the worker left is handled here, now the only thread, so that no
  // caller waits forever; later Post()s are refused.
  std::deque<Message> left;
  {
    absl::MutexLock lock(&inbox_mu_);
    left.swap(inbox_);
  }
  for (Message& m : left) m();
}

bool RolloutEngine::Post(Message message) {
  {
    absl::MutexLock lock(&inbox_mu_);
    if (stopping_) return false;
    if (started_) {
      inbox_.push_back(std::move(message));
      return true;
    }
  }
  message();  // not started: the caller is the engine's only thread
  return true;
}

template <typename T>
std::optional<T> RolloutEngine::Call(std::function<T()> fn) {
  if (std::this_thread::get_id() == worker_id_) return fn();  // an observer's call
  std::optional<T> result;
  absl::Notification done;
  if (!Post([&] {
        result.emplace(fn());
        done.Notify();
      })) {
    return std::nullopt;
  }
  done.WaitForNotification();
  return result;
}

void RolloutEngine::WorkerLoop() {
  while (true) {
    std::deque<Message> batch;
    {
      absl::MutexLock lock(&inbox_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(inbox_mu_) {
        return stopping_ || !inbox_.empty();
      };
      inbox_mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      batch.swap(inbox_);
    }
    for (Message& m : batch) m();
  }
}

void RolloutEngine::StartRollout(const fleet::v1::StartRolloutRequest& req,
                                 Done<Rollout> done) {
  if (!Post([this, req, done] { done(DoStartRollout(req)); })) done(ShuttingDown());
}

void RolloutEngine::Rollback(const fleet::v1::RollbackRequest& req, Done<Rollout> done) {
  if (!Post([this, req, done] { done(DoRollback(req)); })) done(ShuttingDown());
}

void RolloutEngine::Act(const fleet::v1::RolloutActionRequest& req, RolloutAction action,
                        Done<Rollout> done) {
  if (!Post([this, req, action, done] { done(DoAct(req, action)); })) done(ShuttingDown());
}

absl::StatusOr<Rollout> RolloutEngine::StartRollout(const fleet::v1::StartRolloutRequest& req) {
  return Call<absl::StatusOr<Rollout>>([&] { return DoStartRollout(req); })
      .value_or(ShuttingDown());
}

absl::StatusOr<Rollout> RolloutEngine::Rollback(const fleet::v1::RollbackRequest& req) {
  return Call<absl::StatusOr<Rollout>>([&] { return DoRollback(req); }).value_or(ShuttingDown());
}

absl::StatusOr<Rollout> RolloutEngine::Act(const fleet::v1::RolloutActionRequest& req,
                                           RolloutAction action) {
  return Call<absl::StatusOr<Rollout>>([&] { return DoAct(req, action); })
      .value_or(ShuttingDown());
}

void RolloutEngine::Tick() {
  Call<bool>([&] {
    DoTick();
    return true;
  });
}

std::vector<AnalysisEvaluation> RolloutEngine::AnalysisDue() {
  return Call<std::vector<AnalysisEvaluation>>([this] { return analysis_.Due(clock_->Now()); })
      .value_or(std::vector<AnalysisEvaluation>{});
}

void RolloutEngine::PostTick() {
  if (tick_queued_.exchange(true)) return;
  Post([this] {
    tick_queued_ = false;
    DoTick();
  });
}

absl::Status RolloutEngine::CheckNoActiveRollout(const std::string& app) {
  for (const auto& [id, running] : running_) {
    const Rollout& r = running.rollout;
    if (r.app() != app || r.kind() == fleet::v1::ROLLOUT_KIND_CATCH_UP) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "rollout ", r.id(), " of ", app, " is running (", VersionLabel(r.subject(), r.version()),
        ", started by ", r.created_by(), " at ",
        absl::FormatTime(absl::FromUnixMillis(r.created_at_ms())), "); wait for it to finish"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Rollout> RolloutEngine::DoStartRollout(const fleet::v1::StartRolloutRequest& req) {
  FLEET_ASSIGN_OR_RETURN(fleet::v1::App app, store_->GetApp(req.app()));
  if (app.spec().analysis_size() > 0 && app.spec().prometheus_url().empty() &&
      options_.prometheus_url.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "app ", req.app(),
        " has analysis but no prometheus_url (spec) or --prometheus-url (controller)"));
  }
  const bool config = req.subject() == fleet::v1::SUBJECT_CONFIG;
  absl::Status exists = config ? store_->GetConfig(req.app(), req.version()).status()
                               : store_->GetRelease(req.app(), req.version()).status();
  if (absl::IsNotFound(exists)) {
    return absl::NotFoundError(absl::StrCat("unknown ", config ? "config " : "release ", req.app(),
                                            "@", req.version(), "; push it first with fleetctl ",
                                            config ? "config" : "release", " push"));
  }
  FLEET_RETURN_IF_ERROR(exists);
  FLEET_ASSIGN_OR_RETURN(std::vector<fleet::v1::Host> hosts, store_->ListHosts());
  if (auto selector = ParseSelector(req.selector()); selector.ok()) {
    if (auto it = selector->find("host"); it != selector->end()) {
      FLEET_RETURN_IF_ERROR(store_->GetHost(it->second).status());
    }
  }
  if (!req.dry_run()) FLEET_RETURN_IF_ERROR(CheckNoActiveRollout(req.app()));
  std::vector<std::string> skipped;
  FLEET_ASSIGN_OR_RETURN(
      Rollout r, PlanDeploy(req, app, hosts, ConnectedFn(), clock_->Now(), options_.host_timeout,
                            &skipped));
  if (req.dry_run()) return r;
  // Catch-ups of the same app and subject give way.
  std::vector<Rollout*> superseded;
  for (auto& [id, running] : running_) {
    Rollout& other = running.rollout;
    if (other.app() == r.app() && other.subject() == r.subject()) superseded.push_back(&other);
  }
  const std::string message = absl::StrCat(
      "rollout of ", VersionLabel(r.subject(), r.version()), " from ",
      r.from_version().empty() ? "(none)" : r.from_version(), " to ", r.tasks_size(), " hosts",
      skipped.empty() ? "" : absl::StrCat("; skipped disconnected: ", absl::StrJoin(skipped, ", ")));
  std::vector<Decision> decisions;
  FLEET_RETURN_IF_ERROR(CreateRollout(
      &r, {MachineEvent{EventKind::kRolloutStarted, "", r.created_by(), message}}, superseded,
      &decisions));
  spdlog::info("rollout {} of {} {} created by {} for {} hosts", r.id(), r.app(),
               VersionLabel(r.subject(), r.version()), r.created_by(), r.tasks_size());
  const std::string id = r.id();
  Advance(id);
  const Rollout* now = Running(id);
  return now != nullptr ? *now : store_->GetRollout(id);
}

absl::StatusOr<std::string> RolloutEngine::RollbackTarget(
    const fleet::v1::RollbackRequest& req, const fleet::v1::App& app,
    const std::vector<Rollout>& superseded) {
  const fleet::v1::Subject subject = req.subject();
  FLEET_ASSIGN_OR_RETURN(std::vector<Rollout> history,
                         store_->ListRollouts(req.app(), 0, /*with_tasks=*/false));
  if (req.to_version().empty()) {
    // By default a rollback returns to where the running deploy started.
    for (const Rollout& s : superseded) {
      if (s.kind() == fleet::v1::ROLLOUT_KIND_DEPLOY && !s.from_version().empty()) {
        return s.from_version();
      }
    }
    return DefaultRollbackTarget(app, subject, history);
  }
  const std::string& target = req.to_version();
  const bool config = subject == fleet::v1::SUBJECT_CONFIG;
  FLEET_RETURN_IF_ERROR(config ? store_->GetConfig(req.app(), target).status()
                               : store_->GetRelease(req.app(), target).status());
  if (target != DesiredVersion(app, subject) && !WasReleased(history, subject, target)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rollback refused: ", config ? "config " : "release ", target, " of ", req.app(),
        " was never released (no rollout of it succeeded); roll it out instead: fleetctl ",
        config ? "config rollout " : "rollout ", req.app(), " ", target));
  }
  return target;
}

IsConnectedFn RolloutEngine::ConnectedFn() const {
  // The engine's own view (the one the rollout machine judges tasks by), not
  // the agent hub's: no lock per host, and plans agree with what follows.
  return [this](const std::string& h) { return liveness_->Liveness(h).connected; };
}

absl::StatusOr<Rollout> RolloutEngine::DoRollback(const fleet::v1::RollbackRequest& req) {
  FLEET_ASSIGN_OR_RETURN(fleet::v1::App app, store_->GetApp(req.app()));
  // A running rollout of the same subject is superseded; one of the other
  // subject goes on (its link is not the one this rollback switches).
  std::vector<Rollout*> superseded;
  std::vector<Rollout> superseded_copies;
  for (auto& [id, running] : running_) {
    Rollout& other = running.rollout;
    if (other.app() != req.app() || other.subject() != req.subject()) continue;
    superseded.push_back(&other);
    if (other.kind() != fleet::v1::ROLLOUT_KIND_CATCH_UP) superseded_copies.push_back(other);
  }
  FLEET_ASSIGN_OR_RETURN(std::string target, RollbackTarget(req, app, superseded_copies));
  FLEET_ASSIGN_OR_RETURN(std::vector<fleet::v1::Host> hosts, store_->ListHosts());
  std::vector<std::string> skipped;
  FLEET_ASSIGN_OR_RETURN(
      Rollout r,
      PlanRollback(req, app, target, hosts, ConnectedFn(), clock_->Now(), options_.host_timeout,
                   &skipped));
  if (req.dry_run()) return r;
  std::vector<Decision> decisions;
  const std::string message =
      absl::StrCat("rollback from ", VersionLabel(r.subject(), r.from_version()), " to ",
                   VersionLabel(r.subject(), target), " on ", r.tasks_size(), " hosts");
  FLEET_RETURN_IF_ERROR(CreateRollout(
      &r, {MachineEvent{EventKind::kRollbackStarted, "", r.created_by(), message}}, superseded,
      &decisions));
  spdlog::info("rollback {} of {} to {} created by {} for {} hosts", r.id(), r.app(),
               VersionLabel(r.subject(), target), r.created_by(), r.tasks_size());
  const std::string id = r.id();
  Advance(id);
  const Rollout* now = Running(id);
  return now != nullptr ? *now : store_->GetRollout(id);
}

absl::StatusOr<Rollout> RolloutEngine::DoAct(const fleet::v1::RolloutActionRequest& req,
                                             RolloutAction action) {
  Rollout* r = Running(req.id());
  if (r == nullptr) {
    // Unknown (NotFound), ended (the machine says so), or written to the
    // store since the last tick: taken on now.
    FLEET_ASSIGN_OR_RETURN(Rollout stored, store_->GetRollout(req.id()));
    if (IsTerminal(stored.state())) {
      Decision ignored;  // an ended rollout refuses every action
      FLEET_RETURN_IF_ERROR(ApplyAction(&stored, action, req.actor(), clock_->Now(), &ignored));
      return stored;
    }
    Remember(std::move(stored));
    r = Running(req.id());
  }
  Rollout before = *r;
  Decision d;
  absl::Status st = ApplyAction(r, action, req.actor(), clock_->Now(), &d);
  if (!st.ok()) {
    *r = std::move(before);
    return st;
  }
  if (action == RolloutAction::kResume) analysis_.Resumed(*r, clock_->Now());
  if (!Commit(r, d)) return absl::UnavailableError("cannot record the action; try again");
  spdlog::info("rollout {}: {} by {}", req.id(), d.events.empty() ? "" : EventKindName(d.events[0].kind),
               req.actor());
  Advance(req.id());
  const Rollout* now = Running(req.id());
  return now != nullptr ? *now : store_->GetRollout(req.id());
}

void RolloutEngine::DoTick() {
  // Rollouts in the store that this engine does not run yet (after a
  // restart, or written by an earlier engine) are read when the newest
  // rollout is one it has not seen, not at every tick (thousands of tasks).
  absl::StatusOr<std::vector<Rollout>> newest = store_->ListRollouts("", 1, /*with_tasks=*/false);
  if (!newest.ok()) {
    spdlog::error("cannot list rollouts: {}", newest.status().message());
  } else if (!newest->empty() && newest->front().id() != newest_seen_) {
    absl::StatusOr<std::vector<Rollout>> active = store_->ListActiveRollouts();
    if (!active.ok()) {
      spdlog::error("cannot list active rollouts: {}", active.status().message());
    } else {
      newest_seen_ = newest->front().id();
      for (Rollout& r : *active) {
        if (Running(r.id()) == nullptr) Remember(std::move(r));
      }
    }
  }
  ReconcileIfDue();
  AdvanceAll();
}

void RolloutEngine::AdvanceAll() {
  std::vector<std::string> ids;
  for (const auto& [id, running] : running_) ids.push_back(id);
  for (const std::string& id : ids) Advance(id);
}

Rollout* RolloutEngine::Running(const std::string& id) {
  auto it = running_.find(id);
  return it == running_.end() ? nullptr : &it->second.rollout;
}

fleet::v1::HostTask* RolloutEngine::Task(const std::string& id, const std::string& host_id) {
  auto it = running_.find(id);
  if (it == running_.end()) return nullptr;
  auto t = it->second.task_index.find(host_id);
  return t == it->second.task_index.end() ? nullptr
                                          : it->second.rollout.mutable_tasks(t->second);
}

std::vector<const HostTask*> RolloutEngine::ChangedTasks(const Rollout& r,
                                                         const Decision& d) const {
  std::vector<const HostTask*> tasks;
  tasks.reserve(d.changed_tasks.size());
  auto running = running_.find(r.id());
  if (running != running_.end() && &running->second.rollout == &r) {
    // Through the task index: a batch of results costs its own size, not
    // a walk over every task of the rollout.
    const RunningRollout& known = running->second;
    for (const std::string& host_id : d.changed_tasks) {
      auto it = known.task_index.find(host_id);
      if (it != known.task_index.end()) tasks.push_back(&r.tasks(it->second));
    }
    return tasks;
  }
  for (const HostTask& t : r.tasks()) {
    if (d.changed_tasks.count(t.host_id())) tasks.push_back(&t);
  }
  return tasks;
}

void RolloutEngine::Remember(Rollout r) {
  RunningRollout& running = running_[r.id()];
  running.task_index.clear();
  for (int i = 0; i < r.tasks_size(); ++i) running.task_index[r.tasks(i).host_id()] = i;
  running.rollout = std::move(r);
}

void RolloutEngine::Forget(const std::string& id) {
  running_.erase(id);
  analysis_.Forget(id);
}

absl::Status RolloutEngine::CreateRollout(Rollout* r, const std::vector<MachineEvent>& events,
                                          std::vector<Rollout*> superseded,
                                          std::vector<Decision>* decisions) {
  const absl::Time now = clock_->Now();
  std::vector<Rollout> before;
  for (Rollout* old : superseded) before.push_back(*old);
  auto restore = [&] {
    for (size_t i = 0; i < superseded.size(); ++i) *superseded[i] = before[i];
  };
  std::vector<EngineEvent> stored;
  std::vector<std::vector<EngineEvent>> superseded_events(superseded.size());
  std::vector<HostHoldRecord> released;
  {
    absl::StatusOr<std::unique_ptr<StoreTransaction>> begun = store_->Begin();
    if (!begun.ok()) return begun.status();
    StoreTransaction* txn = begun->get();
    absl::Status st = txn->CreateRollout(r);
    const std::string reason_base = absl::StrCat("aborted by ", r->created_by(), ": ");
    for (size_t i = 0; st.ok() && i < superseded.size(); ++i) {
      Decision& d = decisions->emplace_back();
      Supersede(superseded[i], r->created_by(), r->id(),
                absl::StrCat(reason_base,
                             r->kind() == fleet::v1::ROLLOUT_KIND_ROLLBACK ? "rollback " : "rollout ",
                             r->id(), " to ", VersionLabel(r->subject(), r->version()),
                             " takes over"),
                now, &d);
      st = Persist(txn, *superseded[i], d, &superseded_events[i]);
    }
    // A rollback's intent is the target from now on: hosts that are away
    // come back to it (the machine restores it if no host moves).
    if (st.ok() && r->kind() == fleet::v1::ROLLOUT_KIND_ROLLBACK) {
      st = txn->SetDesired(r->app(), r->subject(), r->version());
    }
    for (const MachineEvent& e : events) stored.push_back(MakeEvent(*r, e));
    if (st.ok()) st = ReleaseHoldsIn(txn, *r, &stored, &released);
    if (st.ok()) st = audit_.Write(txn, &stored);
    if (st.ok()) st = txn->Commit();
    if (!st.ok()) {
      restore();
      return st;
    }
  }
  for (const HostHoldRecord& record : released) holds_.Put(record);
  if (r->kind() == fleet::v1::ROLLOUT_KIND_ROLLBACK) targets_.Forget(r->app());
  for (size_t i = 0; i < superseded.size(); ++i) {
    const std::string id = superseded[i]->id();
    AfterCommit(superseded[i], (*decisions)[i], superseded_events[i], false);
    Forget(id);
  }
  Remember(*r);
  Decision created;
  for (const HostTask& t : r->tasks()) created.changed_tasks.insert(t.host_id());
  created.rollout_changed = true;
  AfterCommit(r, created, stored, true);
  return absl::OkStatus();
}

void RolloutEngine::Advance(const std::string& id) {
  Rollout* r = Running(id);
  if (r == nullptr) return;
  absl::StatusOr<fleet::v1::App> app = store_->GetApp(r->app());
  if (!app.ok()) return;
  const absl::Time now = clock_->Now();
  const AnalysisGate gate = GateFor(*r, *app);
  Decision d;
  fleet::controller::Advance(r, *liveness_, gate, now, options_.host_timeout, &d);
  if (d.empty() && d.commands.empty()) {
    analysis_.NoteState(*r);
    return;
  }
  if (Commit(r, d) && (r = Running(id)) != nullptr) {
    GateFor(*r, *app);  // analysis follows the wave that may have started
  }
}

bool RolloutEngine::Commit(Rollout* r, const Decision& d) {
  std::vector<EngineEvent> events;
  absl::Status st;
  {
    absl::StatusOr<std::unique_ptr<StoreTransaction>> txn = store_->Begin();
    st = txn.status();
    if (st.ok()) st = Persist(txn->get(), *r, d, &events);
    if (st.ok()) st = (*txn)->Commit();
  }
  if (!st.ok()) {
    spdlog::error("rollout {}: cannot persist transition: {}", r->id(), st.message());
    // Nothing is sent for a transition that is not on disk: go back to what
    // the store has; the next tick tries again.
    absl::StatusOr<Rollout> stored = store_->GetRollout(r->id());
    if (stored.ok()) {
      Remember(*std::move(stored));
    } else {
      Forget(r->id());
    }
    return false;
  }
  const std::string id = r->id();
  if (IsTerminal(r->state())) targets_.Forget(r->app());
  AfterCommit(r, d, events, false);
  if (IsTerminal(r->state())) Forget(id);
  return true;
}

absl::Status RolloutEngine::Persist(StoreTransaction* txn, const Rollout& r, const Decision& d,
                                    std::vector<EngineEvent>* events) {
  std::vector<HostTask> changed;
  changed.reserve(d.changed_tasks.size());
  for (const HostTask* t : ChangedTasks(r, d)) changed.push_back(*t);
  FLEET_RETURN_IF_ERROR(txn->UpdateTasks(r.id(), changed));
  if (d.rollout_changed) FLEET_RETURN_IF_ERROR(txn->UpdateRollout(r));
  if (d.set_desired) FLEET_RETURN_IF_ERROR(txn->SetDesired(r.app(), r.subject(), *d.set_desired));
  for (const MachineEvent& e : d.events) events->push_back(MakeEvent(r, e));
  return audit_.Write(txn, events);
}

void RolloutEngine::AfterCommit(Rollout* r, const Decision& d,
                                const std::vector<EngineEvent>& events, bool created) {
  analysis_.NoteState(*r);
  audit_.Publish(events);
  if (!created && d.rollout_changed && IsTerminal(r->state())) {
    for (EngineObserver* observer : observers_) observer->OnRolloutFinished(*r);
  }
  if (!observers_.empty()) {
    RolloutChange change;
    // The rollout's own fields without copying its (thousands of) tasks.
    google::protobuf::RepeatedPtrField<HostTask> tasks;
    tasks.Swap(r->mutable_tasks());
    change.rollout = *r;
    tasks.Swap(r->mutable_tasks());
    for (const HostTask* t : ChangedTasks(*r, d)) change.tasks.push_back(*t);
    for (const EngineEvent& e : events) change.events.push_back(e.event);
    for (EngineObserver* observer : observers_) observer->OnRolloutChanged(change);
  }
  SendCommands(*r, d.commands);
}

void RolloutEngine::SendCommands(const Rollout& r,
                                 const std::vector<fleet::v1::CommandRef>& refs) {
  if (refs.empty()) return;
  absl::StatusOr<fleet::v1::App> app = store_->GetApp(r.app());
  if (!app.ok()) return;
  StagePayload stage;
  for (const fleet::v1::CommandRef& ref : refs) {
    if (ref.phase() != fleet::v1::COMMAND_PHASE_STAGE) continue;
    if (r.subject() == fleet::v1::SUBJECT_CONFIG) {
      if (auto c = store_->GetConfig(r.app(), r.version()); c.ok()) stage.config = *std::move(c);
    } else if (auto rel = store_->GetRelease(r.app(), r.version()); rel.ok()) {
      stage.release = *std::move(rel);
    }
    break;
  }
  const CommandBuilder builder(r, *app, std::move(stage), targets_.Get(*app, r.subject()));
  auto running = running_.find(r.id());
  for (const fleet::v1::CommandRef& ref : refs) {
    const HostTask* task = nullptr;
    if (running != running_.end()) {
      auto it = running->second.task_index.find(ref.host_id());
      if (it != running->second.task_index.end()) task = &running->second.rollout.tasks(it->second);
    }
    if (task == nullptr) continue;
    std::optional<fleet::v1::Command> cmd = builder.Build(*task, ref);
    if (!cmd) continue;
    if (task->command_id() != cmd->id()) {
      spdlog::error("rollout {} host {}: command {} is not the task's {}", r.id(), ref.host_id(),
                    cmd->id(), task->command_id());
    }
    const std::string id = cmd->id();
    if (!hub_->Send(ref.host_id(), *std::move(cmd))) {
      spdlog::info("host {} is not connected; command {} waits for it", ref.host_id(), id);
    }
  }
}

EngineEvent RolloutEngine::MakeEvent(const Rollout& r, const MachineEvent& e) const {
  return audit_.Make(e.kind, &r, r.app(), e.host_id, e.actor, e.message);
}

void RolloutEngine::RecordEvent(const std::string& app, const std::string& host, EventKind kind,
                                const std::string& actor, const std::string& message) {
  audit_.Record(store_, audit_.Make(kind, nullptr, app, host, actor, message)).IgnoreError();
}

}  // namespace fleet::controller
