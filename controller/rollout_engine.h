// The rollout engine: turns rollouts persisted in the store into commands to
// agents and agents' results into state transitions.
//
// Every decision is derived from the store, and every transition is written
// there before its command is sent ("persist, then act"), so the engine
// continues a rollout after a controller restart from the store alone.
// Command ids are "<rollout>/<host>/<phase>"; agents answer a command id they
// already completed with the stored result, so resending is always safe.
//
// Rollout state machine (the allowed transitions, checked in
// RolloutTransitionAllowed()):
//   STAGING      -> ACTIVATING | PAUSED | ROLLING_BACK (aborted)
//                 | ROLLED_BACK (too many hosts could not stage; nothing switched)
//   ACTIVATING   -> SUCCEEDED | PAUSED (paused, a manual-promote gate, or
//                   inconclusive analysis)
//                 | ROLLING_BACK (failures past the threshold, failed analysis,
//                   or aborted)
//                 | FAILED (rollback kind: a host failed) | ROLLED_BACK (superseded by a rollback)
//   PAUSED       -> STAGING | ACTIVATING (resumed, promoted) | ROLLING_BACK | ROLLED_BACK
//   ROLLING_BACK -> ROLLED_BACK | FAILED (a host could not go back)
// Waves: ACTIVATING switches the hosts of waves 0..current_wave (at most
// max_parallel at once); a wave is done when all its hosts are healthy
// through the bake (the agents probe that long) or failed; then the next
// wave starts, or the rollout pauses for promote.
// Host task state machine:
//   PENDING -> STAGING -> STAGED -> ACTIVATING -> HEALTHY | FAILED (back on its
//                                     previous release) | LOST (may still run the new one)
//   HEALTHY | LOST -> REVERTING -> REVERTED | REVERT_FAILED   (the rollout failed)
//   PENDING | STAGING | STAGED -> FAILED | CANCELLED
//   ACTIVATING | REVERTING -> CANCELLED                 (a rollback took over)
//
// Analysis (a deploy rollout, of either subject, whose app spec has
// `analysis` checks; never a rollback): while the rollout is ACTIVATING,
// each check's query is evaluated every interval_ms by the Analyzer
// (controller/analysis.h), which asks AnalysisDue() what to run and reports
// with OnAnalysisResult(). The first evaluation in a wave comes interval_ms
// after the wave started (or the rollout was resumed in it), not at once, so
// that Prometheus has scraped the hosts that just switched.
//   - pass (the value does not meet fail_if): logged. A wave finishes (next
//     wave, promote gate, SUCCEEDED) only when every check has passed at
//     least once since the wave started or the rollout was resumed, so a
//     bake shorter than the interval cannot skip analysis (unless no host
//     became healthy: then nothing runs the release to measure).
//   - fail (meets fail_if): logged and an `analysis.check_failed` event;
//     when a check's failed evaluations in this rollout exceed its
//     failure_limit, the rollout fails like one past its failure threshold:
//     ACTIVATING -> ROLLING_BACK with a reason naming the check, the value
//     and the threshold, events `analysis.failed` and `rollout.failed`.
//   - inconclusive (no answer, an error, no data, several series, NaN):
//     never a pass. With on_inconclusive: fail, the same failure path
//     (reason "analysis 'NAME' inconclusive: WHY"); by
//     default ACTIVATING -> PAUSED with paused_by "analysis", the reason on
//     the rollout and an `analysis.inconclusive` event; `fleetctl rollout
//     resume` continues and the evaluations start over.
// Analysis state (failed evaluations per check, passes in the wave) lives in
// memory only: after a controller restart the counts start at zero and the
// current wave needs new passing evaluations.
#ifndef FLEET_CONTROLLER_ROLLOUT_ENGINE_H_
#define FLEET_CONTROLLER_ROLLOUT_ENGINE_H_

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controller/agent_hub.h"
#include "controller/store.h"
#include "fleet/v1/api.pb.h"

namespace fleet::controller {

enum class RolloutAction { kPause, kResume, kPromote, kAbort };

// Resolves the rollout plan: waves (cumulative, rounded up, each adding at
// least one host, the last covering every host), failure threshold,
// parallelism, bake and host timeout; the request overrides the app spec,
// which overrides the defaults (1,100%; 0 failures; the spec's bake).
// InvalidArgument names the bad value.
absl::StatusOr<fleet::v1::RolloutPlan> BuildRolloutPlan(const fleet::v1::StartRolloutRequest& req,
                                                        const fleet::v1::AppSpec& spec, int hosts,
                                                        absl::Duration default_host_timeout);

struct EngineOptions {
  // A host that stays disconnected this long while it has work counts as
  // failed; a connected host gets this long (plus the bake time) to answer.
  absl::Duration host_timeout = absl::Minutes(2);
  // Prometheus base URL for the analysis of apps whose spec names none
  // (--prometheus-url); "" for none.
  std::string prometheus_url;
};

// The actor of what analysis does to a rollout (events, paused_by).
inline constexpr char kAnalysisActor[] = "analysis";

// One analysis check of a rollout that is due for evaluation
// (RolloutEngine::AnalysisDue), handed back with its result
// (RolloutEngine::OnAnalysisResult).
struct AnalysisEvaluation {
  std::string app;
  std::string rollout_id;
  int wave = 0;  // the rollout's current wave, 0-based
  // The evaluation window (a wave, or its part since a resume) the check is
  // due in; a result for an older window is dropped.
  int64_t window = 0;
  int check_index = 0;  // into the app spec's analysis
  fleet::v1::AnalysisCheck check;
  std::string prometheus_url;  // the spec's, else the controller's; "" when neither
};

// An audit event the engine stored, with what it is about.
struct EngineEvent {
  fleet::v1::Event event;  // as stored: app, rollout_id, host_id, kind, actor, message
  // The rollout's subject, target version and kind; version "" when the
  // event is not about a rollout.
  fleet::v1::Subject subject = fleet::v1::SUBJECT_RELEASE;
  std::string version;
  fleet::v1::RolloutKind kind = fleet::v1::ROLLOUT_KIND_UNSPECIFIED;
};

// A committed change of one rollout (EngineObserver::OnRolloutChanged).
struct RolloutChange {
  fleet::v1::Rollout rollout;              // its own fields as committed; tasks cleared
  std::vector<fleet::v1::HostTask> tasks;  // the tasks that changed (every task when created)
  std::vector<fleet::v1::Event> events;    // events recorded with this change
};

// Told what the engine recorded, after it is committed to the store. Called
// on the engine's threads, in order, with the engine's lock held: an
// observer must not block (it queues slow work) and must not call the
// engine.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnEvents(const std::vector<EngineEvent>& events) = 0;
  // A rollout or rollback reached SUCCEEDED, ROLLED_BACK or FAILED.
  virtual void OnRolloutFinished(const fleet::v1::Rollout& rollout) = 0;
  // A committed change of one rollout, told after the commit on the engine's
  // thread. Must not block.
  virtual void OnRolloutChanged(const RolloutChange& /*change*/) {}
};

// What agents say is queued by the AgentListener methods (called on gRPC
// threads, which must not block on rollout work) and handled on the
// engine's own thread, in arrival order, results of one rollout in batches.
class RolloutEngine : public AgentListener {
 public:
  RolloutEngine(Store* store, AgentHub* hub, Clock* clock, EngineOptions options)
      : store_(store), hub_(hub), clock_(clock), options_(options) {}
  ~RolloutEngine() override;

  // Starts / stops the thread that handles agents' events. Stop() is
  // idempotent; events still queued are dropped (agents resend after
  // reconnecting).
  void Start();
  void Stop();

  // Adds an observer; only before Start(). Borrowed: it must outlive the
  // engine's threads (Stop()).
  void AddObserver(EngineObserver* observer) { observers_.push_back(observer); }

  // Creates a deploy rollout of app@version (a release, or a config release
  // when req.subject is SUBJECT_CONFIG) to the connected hosts that match
  // the selector. Fails (and persists nothing) on an unknown app, version
  // or host, a bad selector, no matching host, an app with analysis checks
  // but no Prometheus URL in its spec or the options (InvalidArgument), or
  // a rollout of the app already running, of either subject
  // (FailedPrecondition naming it).
  absl::StatusOr<fleet::v1::Rollout> StartRollout(const fleet::v1::StartRolloutRequest& req);

  // Creates a rollback of the app's req.subject (release or config) to
  // req.to_version or, by default, to the last successful version before
  // the current one. Every connected host with the app switches at once to
  // the version already on its disk. A running rollout of the same subject
  // is aborted and the rollback takes over its hosts: the rollback always
  // works. A running rollout of the other subject goes on beside it.
  absl::StatusOr<fleet::v1::Rollout> Rollback(const fleet::v1::RollbackRequest& req);

  // Pause, resume, promote (past a manual gate) or abort a running rollout.
  // FailedPrecondition when the rollout is not in a state that allows it.
  // Recorded as an event with the actor.
  absl::StatusOr<fleet::v1::Rollout> Act(const fleet::v1::RolloutActionRequest& req,
                                         RolloutAction action);

  // The version of `subject` a rollback goes to by default, or
  // FailedPrecondition.
  absl::StatusOr<std::string> DefaultRollbackTarget(
      const std::string& app, fleet::v1::Subject subject = fleet::v1::SUBJECT_RELEASE);

  // Advances every active rollout (timeouts, hosts that came back). Called
  // periodically and at start.
  void Tick();

  // The analysis checks that are due now (by the engine's clock): those of
  // ACTIVATING deploy rollouts whose interval has passed since the wave
  // started, the rollout resumed, or the check's last evaluation. Changes
  // nothing; a check stays due until its result is reported. Thread-safe.
  std::vector<AnalysisEvaluation> AnalysisDue();

  // The result of evaluating `evaluation`: its query's value, or why it was
  // inconclusive. Applies it as described under "Analysis" above, then
  // advances the rollout. A result for a rollout that is no longer
  // ACTIVATING, or for an earlier wave or window, is dropped. Takes the
  // engine's lock, so queries run before, never inside. Thread-safe.
  void OnAnalysisResult(const AnalysisEvaluation& evaluation, const absl::StatusOr<double>& value);

  // AgentListener.
  absl::Status OnHello(const fleet::v1::Hello& hello, const std::string& peer) override;
  void OnConnected(const std::string& host_id) override;
  void OnProgress(const std::string& host_id, const fleet::v1::CommandProgress& p) override;
  void OnResult(const std::string& host_id, const fleet::v1::CommandResult& result) override;
  void OnDisconnected(const std::string& host_id) override;

 private:
  struct AgentEvent {
    enum Kind { kHello, kConnected, kResult, kDisconnected } kind;
    std::string host_id;
    fleet::v1::Hello hello;
    std::string peer;
    fleet::v1::CommandResult result;
  };

  void Enqueue(AgentEvent event);
  void WorkerLoop();
  void HandleHello(const fleet::v1::Hello& hello, const std::string& peer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleConnected(const std::string& host_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a reconcile staged `version` on a host that missed it: switches
  // the host to it (as a deploy, with probes) if that is still the fleet's
  // release and no rollout of the app runs. `id` is the reconcile's id.
  void CatchUp(const std::string& host_id, const std::string& app, fleet::v1::Subject subject,
               const std::string& version, const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleDisconnected(const std::string& host_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies results, persists them in one transaction, and adds the ids of
  // the rollouts that changed to *touched.
  void HandleResults(const std::vector<const AgentEvent*>& results, std::set<std::string>* touched)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Status CheckNoActiveRollout(const std::string& app) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Advance(const std::string& rollout_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends the command that `task` is waiting on (by its state), if any.
  void SendTaskCommand(const fleet::v1::Rollout& rollout, const fleet::v1::HostTask& task,
                       const fleet::v1::App& app,
                       const std::optional<fleet::v1::StageCommand>& stage)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // SendTaskCommand for the tasks of `hosts`, reading app and release (or
  // config) once.
  void SendTaskCommands(const fleet::v1::Rollout& rollout, const std::vector<std::string>& hosts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues a switch for every app the host runs at another release or
  // config than the fleet's desired one, when no rollout of that app and
  // subject is running (`busy` are those with a rollout). A version missing
  // from its disk is staged first (CatchUp switches after).
  void Reconcile(const fleet::v1::Hello& hello,
                 const std::set<std::pair<std::string, fleet::v1::Subject>>& busy)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddEvent(const std::string& app, const std::string& rollout_id, const std::string& host,
                const std::string& kind, const std::string& actor, const std::string& message);
  // Tells the observers about stored events; `rollout` is what they are
  // about, or nullptr.
  void Publish(const std::vector<fleet::v1::Event>& events, const fleet::v1::Rollout* rollout);
  void PublishFinished(const fleet::v1::Rollout& rollout);
  // Tells the observers about a committed change of `rollout`: its own
  // fields, the tasks of `hosts` (every task when nullptr) and `events`.
  void PublishChange(const fleet::v1::Rollout& rollout, const std::set<std::string>* hosts,
                     const std::vector<fleet::v1::Event>& events);

  // What analysis knows about one deploy rollout whose app has checks.
  struct CheckProgress {
    absl::Time last_evaluated = absl::InfinitePast();  // in the current window
    bool passed = false;                               // a passing evaluation in the current window
    int failures = 0;                                  // failed evaluations in this rollout
  };
  struct RolloutAnalysis {
    enum class Verdict { kNone, kFail, kPause };
    // ACTIVATING as last persisted: its checks are evaluated.
    bool active = false;
    std::string app;
    int wave = -1;
    int64_t window = 0;
    absl::Time window_start;
    std::string prometheus_url;
    std::vector<fleet::v1::AnalysisCheck> checks;  // the app spec's
    std::vector<CheckProgress> progress;           // by check index
    // What a result decided, until Advance() persisted the transition.
    Verdict verdict = Verdict::kNone;
    std::string verdict_reason;
  };
  // The analysis state of `r` (a deploy rollout in ACTIVATING) brought up
  // to date with its wave and the app's checks; nullptr when the app has
  // none.
  RolloutAnalysis* SyncAnalysis(const fleet::v1::Rollout& r, const fleet::v1::AppSpec& spec,
                                absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts a new evaluation window at `start`: no passes, nothing evaluated.
  void StartAnalysisWindow(RolloutAnalysis* analysis, absl::Time start)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records the state of `r` as persisted: analysis runs while it is
  // ACTIVATING, is kept (inactive) while PAUSED, and is forgotten otherwise.
  void NoteAnalysisState(const fleet::v1::Rollout& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Store* store_;
  AgentHub* hub_;
  Clock* clock_;
  EngineOptions options_;
  std::vector<EngineObserver*> observers_;  // fixed before Start()
  // Serializes every decision; the store has its own lock underneath.
  absl::Mutex mu_;
  // Work decided in OnHello for a host whose stream registers right after.
  std::vector<std::pair<std::string, std::string>> pending_resend_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, fleet::v1::Command>> pending_reconcile_ ABSL_GUARDED_BY(mu_);
  // Rollout id -> its analysis; in memory only (see "Analysis" above).
  std::map<std::string, RolloutAnalysis> analysis_ ABSL_GUARDED_BY(mu_);
  int64_t next_analysis_window_ ABSL_GUARDED_BY(mu_) = 1;

  // When each host last reported progress; a leaf lock.
  absl::Time LastProgress(const std::string& host_id);
  absl::Mutex progress_mu_;
  std::map<std::string, absl::Time> progress_at_ ABSL_GUARDED_BY(progress_mu_);

  absl::Mutex queue_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::deque<AgentEvent> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::thread worker_;
};

bool IsTaskTerminal(fleet::v1::TaskState state);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_ROLLOUT_ENGINE_H_
