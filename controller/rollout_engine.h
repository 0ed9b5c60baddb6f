// The rollout engine: an actor. One thread owns every running rollout; API
// requests, agents' hellos, results, progress and disconnects, ticks,
// analysis results and alert decisions all reach it as messages in one
// inbox, handled in order. No other thread takes an engine lock.
//
// For each message the engine asks the pure state machine
// (controller/rollout_machine.h) what follows, persists the decision in one
// store transaction ("persist, then act"), then tells the observers and
// sends the commands. Running rollouts are kept in memory and resumed from
// the store after a restart. Commands carry typed refs (rollout, host,
// phase); agents answer a command they completed with the stored result, so
// resending is always safe.
//
// A host that comes back on another version than the fleet's gets a
// catch-up (ROLLOUT_KIND_CATCH_UP): a persisted one-host rollout that
// stages the fleet's version if needed and switches to it like a deploy.
// Catch-ups never hold an app's lock: a rollout or rollback of the same
// app and subject supersedes them. A connected host is checked too, every
// EngineOptions::reconcile_interval (engine_reconcile.cc): one whose app
// differs from the fleet's gets a catch-up with an event saying why; one
// whose catch-up keeps failing is tried again at growing intervals (up to
// 10 minutes).
//
// A break-glass rollback on a host (`fleet-agent rollback`, reported in a
// hello or as it happens) is recorded once, with its actor and reason, and
// holds the app on that host (engine_holds.cc): no catch-up moves it until
// an operator releases the hold (ReleaseHold) or a rollout or rollback of
// the app that includes the host starts, which ends the hold.
//
// Every activation command names the app's default rollback target
// (rollback_targets.h), which the agents' retention keeps on disk.
//
// Analysis (a deploy whose app spec has `analysis` checks; never a
// rollback): see controller/analysis_book.h.
#ifndef FLEET_CONTROLLER_ROLLOUT_ENGINE_H_
#define FLEET_CONTROLLER_ROLLOUT_ENGINE_H_

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/event_kind.h"
#include "controller/agent_hub.h"
#include "controller/analysis_book.h"
#include "controller/audit_log.h"
#include "controller/host_holds.h"
#include "controller/live_hosts.h"
#include "controller/rollback_targets.h"
#include "controller/rollout_machine.h"
#include "controller/rollout_planner.h"
#include "controller/store.h"
#include "fleet/v1/api.pb.h"

namespace fleet::controller {

struct EngineOptions {
  // A host that stays disconnected this long while it has work counts as
  // failed; a connected host gets this long (plus the bake time) to answer.
  absl::Duration host_timeout = absl::Minutes(2);
  // Prometheus base URL for the analysis of apps whose spec names none
  // (--prometheus-url); "" for none.
  std::string prometheus_url;
  // How often connected hosts are checked against the fleet's versions.
  absl::Duration reconcile_interval = absl::Seconds(10);
};


// A committed change of one rollout.
struct RolloutChange {
  fleet::v1::Rollout rollout;              // its own fields as committed; tasks cleared
  std::vector<fleet::v1::HostTask> tasks;  // the tasks that changed (every task when created)
  std::vector<fleet::v1::Event> events;    // events recorded with this change
};

// Told what the engine recorded, after it is committed to the store. Called
// on the engine's thread, in order: an observer must not block (it queues
// slow work) and must not call the engine synchronously.
class EngineObserver : public AuditObserver {
 public:
  // A rollout or rollback reached SUCCEEDED, ROLLED_BACK or FAILED.
  virtual void OnRolloutFinished(const fleet::v1::Rollout& rollout) = 0;
  virtual void OnRolloutChanged(const RolloutChange& /*change*/) {}
};

class RolloutEngine : public AgentListener {
 public:
  template <typename T>
  using Done = std::function<void(absl::StatusOr<T>)>;

  RolloutEngine(Store* store, AgentHub* hub, Clock* clock, EngineOptions options);
  ~RolloutEngine() override;

  // Starts / stops the engine's thread. Stop() is idempotent; it handles
  // the messages still queued on the calling thread, and afterwards every
  // request fails with Unavailable. Before Start() the calls below run on
  // the caller's thread (tests drive the engine that way).
  void Start();
  void Stop();

  // Adds an observer; only before Start(). Borrowed: it must outlive the
  // engine's thread (Stop()).
  void AddObserver(EngineObserver* observer) {
    observers_.push_back(observer);
    audit_.AddObserver(observer);
  }

  // Creates a deploy rollout of app@version (a release, or a config release
  // when req.subject is SUBJECT_CONFIG) to the connected hosts that match
  // the selector. Fails (and persists nothing) on an unknown app, version
  // or host, a bad selector, no matching host, an app with analysis checks
  // but no Prometheus URL in its spec or the options (InvalidArgument), or
  // a rollout of the app already running, of either subject
  // (FailedPrecondition naming it). `done` is called on the engine's thread.
  void StartRollout(const fleet::v1::StartRolloutRequest& req, Done<fleet::v1::Rollout> done);

  // Creates a rollback of the app's req.subject to req.to_version or, by
  // default, to the last successful version before the current one. Every
  // connected host with the app switches at once to the version already on
  // its disk. Refused before anything moves (FailedPrecondition) when the
  // target was never released or is missing on a target host's disk. A
  // running rollout of the same subject is aborted and the rollback takes
  // over its hosts; one of the other subject goes on beside it.
  void Rollback(const fleet::v1::RollbackRequest& req, Done<fleet::v1::Rollout> done);

  // Ends the hold of req.app on req.host_id (left by a break-glass rollback
  // there), records who did it, and brings the host to the fleet's versions
  // at once when it is connected. Returns the host as stored afterwards.
  // NotFound for an unknown host; FailedPrecondition when the app is not
  // held there.
  void ReleaseHold(const fleet::v1::ReleaseHoldRequest& req, Done<fleet::v1::Host> done);

  // Pause, resume, promote (past a manual gate) or abort a running rollout.
  // FailedPrecondition when the rollout is not in a state that allows it.
  void Act(const fleet::v1::RolloutActionRequest& req, RolloutAction action,
           Done<fleet::v1::Rollout> done);

  // The same, waiting for the answer. Never from the engine's thread (an
  // observer) nor from a gRPC callback thread.
  absl::StatusOr<fleet::v1::Rollout> StartRollout(const fleet::v1::StartRolloutRequest& req);
  absl::StatusOr<fleet::v1::Rollout> Rollback(const fleet::v1::RollbackRequest& req);
  absl::StatusOr<fleet::v1::Rollout> Act(const fleet::v1::RolloutActionRequest& req,
                                         RolloutAction action);

  // Advances every running rollout (timeouts, hosts that came back) and
  // picks up rollouts in the store it does not run yet (after a restart).
  // Waits until done.
  void Tick();
  // Queues a Tick unless one is queued already; returns at once.
  void PostTick();

  // The analysis checks that are due now (see AnalysisBook::Due). Waits
  // for the engine.
  std::vector<AnalysisEvaluation> AnalysisDue();
  // The result of evaluating `evaluation`; queued, returns at once unless
  // the engine is not started.
  void OnAnalysisResult(const AnalysisEvaluation& evaluation, const absl::StatusOr<double>& value);

  // AgentListener: queued, handled on the engine's thread in order.
  absl::Status OnHello(const fleet::v1::Hello& hello, const std::string& peer) override;
  void OnConnected(const std::string& host_id) override;
  void OnProgress(const std::string& host_id, const fleet::v1::CommandProgress& p) override;
  void OnResult(const std::string& host_id, const fleet::v1::CommandResult& result) override;
  void OnDisconnected(const std::string& host_id) override;
  void OnLocalRollback(const std::string& host_id,
                       const fleet::v1::LocalRollback& rollback) override;

 private:
  using Message = std::function<void()>;

  // Runs `message` on the engine's thread (or at once before Start()).
  // False, and nothing runs, once Stop() began.
  bool Post(Message message);
  // Runs `fn` on the engine's thread and waits for it (at once on the
  // engine's thread itself).
  // nullopt once Stop() began.
  template <typename T>
  std::optional<T> Call(std::function<T()> fn);
  void WorkerLoop();

  // Engine-thread handlers (rollout_engine.cc).
  absl::StatusOr<fleet::v1::Rollout> DoStartRollout(const fleet::v1::StartRolloutRequest& req);
  absl::StatusOr<fleet::v1::Rollout> DoRollback(const fleet::v1::RollbackRequest& req);
  absl::StatusOr<std::string> RollbackTarget(const fleet::v1::RollbackRequest& req,
                                             const fleet::v1::App& app,
                                             const std::vector<fleet::v1::Rollout>& superseded);
  absl::StatusOr<fleet::v1::Rollout> DoAct(const fleet::v1::RolloutActionRequest& req,
                                           RolloutAction action);
  void DoTick();
  void AdvanceAll();
  absl::Status CheckNoActiveRollout(const std::string& app);
  // Stores a new rollout with its first events and takes it on.
  absl::Status CreateRollout(fleet::v1::Rollout* r, const std::vector<MachineEvent>& events,
                             std::vector<fleet::v1::Rollout*> superseded,
                             std::vector<Decision>* superseded_decisions);
  // Asks the machine about rollout `id` and applies what it decided.
  void Advance(const std::string& id);
  // Persists `d` about `r` (already changed in memory); then publishes and
  // sends. On a failed commit the rollout is reloaded from the store.
  bool Commit(fleet::v1::Rollout* r, const Decision& d);
  // Writes what `d` changed of `r` and its events through `txn`.
  absl::Status Persist(StoreTransaction* txn, const fleet::v1::Rollout& r, const Decision& d,
                       std::vector<EngineEvent>* events);
  // Tells the observers about the committed `r` (left as it was) and sends
  // the commands of `d`.
  void AfterCommit(fleet::v1::Rollout* r, const Decision& d,
                   const std::vector<EngineEvent>& events, bool created);
  void SendCommands(const fleet::v1::Rollout& r, const std::vector<fleet::v1::CommandRef>& refs);
  EngineEvent MakeEvent(const fleet::v1::Rollout& r, const MachineEvent& e) const;
  // Records an event that is about no rollout (host connected, ...).
  void RecordEvent(const std::string& app, const std::string& host, EventKind kind,
                   const std::string& actor, const std::string& message);
  // The running rollout `id` in memory; nullptr when it is not running.
  fleet::v1::Rollout* Running(const std::string& id);
  // Its task of `host_id`; nullptr when it has none.
  fleet::v1::HostTask* Task(const std::string& id, const std::string& host_id);
  // The tasks of `r` whose host ids `d` lists as changed, in host id order
  // when `r` is a running rollout (found through its task index), else in
  // the rollout's order.
  std::vector<const fleet::v1::HostTask*> ChangedTasks(const fleet::v1::Rollout& r,
                                                       const Decision& d) const;
  void Forget(const std::string& id);
  void Remember(fleet::v1::Rollout r);

  // Agents (engine_agents.cc).
  void HandleHello(const fleet::v1::Hello& hello, const std::string& peer);
  // Stores the hellos queued since the last flush (hosts and their connect
  // events in one transaction), then starts their catch-ups.
  void FlushHellos();
  struct PendingHello;
  // Host rows and connect events of `hellos` in one transaction; appends
  // the events, once committed, to *events.
  absl::Status StoreHellos(const std::vector<const PendingHello*>& hellos,
                           std::vector<EngineEvent>* events);
  // Queues one AdvanceAll for everything queued before it runs.
  void QueueAdvanceAll();
  void StartCatchUps(const fleet::v1::Hello& hello);
  void HandleConnected(const std::string& host_id);
  void HandleResult(const fleet::v1::CommandResult& result);
  void FlushResults();
  // Stores the app states hosts reported with their results: one
  // transaction for them all, or one per host when that fails (so that one
  // bad row does not lose the others).
  void StoreHostStates(const std::map<std::string, fleet::v1::HostAppState>& states);
  void HandleDisconnected(const std::string& host_id);
  // Whether a host is connected, for the planners (rollout_planner.h).
  IsConnectedFn ConnectedFn() const;

  // Holds (engine_holds.cc). The holds as stored, read on first use from
  // the store, or from `reader` (a transaction this thread holds).
  HostHolds& Holds();
  HostHolds& Holds(StoreReader* reader);
  // Records a break-glass rollback of a host once (by its id) and holds its
  // app there.
  void HandleLocalRollback(const std::string& host_id, const fleet::v1::LocalRollback& rollback);
  absl::StatusOr<fleet::v1::Host> DoReleaseHold(const fleet::v1::ReleaseHoldRequest& req);
  // Within the transaction that creates `r` (a deploy or rollback): ends
  // the holds of its app on the hosts it includes, with their events.
  absl::Status ReleaseHoldsIn(StoreTransaction* txn, const fleet::v1::Rollout& r,
                              std::vector<EngineEvent>* events,
                              std::vector<HostHoldRecord>* released);

  // Reconciliation (engine_reconcile.cc).
  // A catch-up of `host_id`'s app `state` to the fleet's version of
  // `subject`; `why` ("" = it just connected) goes into its event.
  bool StartCatchUp(const fleet::v1::App& app, fleet::v1::Subject subject,
                    const std::string& host_id, const fleet::v1::HostAppState& state,
                    const std::string& why);
  // Every reconcile_interval: ReconcileHost for each connected host.
  void ReconcileIfDue();
  // What one periodic check found of each app and subject: the hosts of
  // the rollout that set its desired version (nullptr: none known).
  using ScopesOfPass =
      std::map<std::pair<std::string, fleet::v1::Subject>, const std::set<std::string>*>;
  const std::set<std::string>* DesiredScope(const fleet::v1::App& app, fleet::v1::Subject subject,
                                            ScopesOfPass* pass);
  // Catch-ups for the apps of `host` that differ from the fleet's and are
  // not held and have no rollout running. With `pass` (a periodic check):
  // only when the host was a target of the rollout that set the fleet's
  // version, and the difference was seen on an earlier check too (then
  // again at growing intervals while catch-ups fail). Without (`why` says
  // who asked): at once.
  void ReconcileHost(const fleet::v1::Host& host, const std::string& why,
                     ScopesOfPass* pass);

  // Analysis (engine_analysis.cc).
  AnalysisGate GateFor(const fleet::v1::Rollout& r, const fleet::v1::App& app);
  void DoAnalysisResult(const AnalysisEvaluation& evaluation, const absl::StatusOr<double>& value);

  Store* store_;
  AgentHub* hub_;
  Clock* clock_;
  EngineOptions options_;
  std::vector<EngineObserver*> observers_;  // fixed before Start()
  AuditLog audit_;
  std::unique_ptr<LiveHosts> liveness_;

  // Owned by the engine's thread (or the caller before Start()).
  struct RunningRollout {
    fleet::v1::Rollout rollout;
    absl::flat_hash_map<std::string, int> task_index;  // host id -> index in tasks
  };
  std::map<std::string, RunningRollout> running_;
  std::vector<fleet::v1::CommandResult> pending_results_;     // see HandleResult
  bool results_flush_queued_ = false;
  bool advance_all_queued_ = false;  // see HandleConnected
  struct PendingHello {
    fleet::v1::Hello hello;
    std::string peer;
  };
  std::vector<PendingHello> pending_hellos_;  // see HandleHello
  bool hellos_flush_queued_ = false;
  std::string newest_seen_;          // the newest rollout id DoTick read
  AnalysisBook analysis_;
  RollbackTargets targets_;
  HostHolds holds_;
  bool holds_loaded_ = false;
  absl::Time next_reconcile_ = absl::InfinitePast();
  using CatchUpKey = std::tuple<std::string, std::string, fleet::v1::Subject>;  // host, app, subject
  struct CatchUpAttempt {
    std::string version;  // the fleet's version it tries to reach
    int attempts = 0;
    absl::Time next = absl::InfinitePast();
  };
  std::map<CatchUpKey, CatchUpAttempt> catch_up_attempts_;
  struct RolloutScope {
    std::string rollout_id;
    std::set<std::string> hosts;
  };
  std::map<std::pair<std::string, fleet::v1::Subject>, RolloutScope> scopes_;

  // The inbox.
  absl::Mutex inbox_mu_;
  std::deque<Message> inbox_ ABSL_GUARDED_BY(inbox_mu_);
  bool stopping_ ABSL_GUARDED_BY(inbox_mu_) = false;
  bool started_ ABSL_GUARDED_BY(inbox_mu_) = false;
  std::atomic<bool> tick_queued_{false};
  std::thread worker_;
  std::atomic<std::thread::id> worker_id_{};
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_ROLLOUT_ENGINE_H_
