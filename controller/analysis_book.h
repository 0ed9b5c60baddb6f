// What analysis knows about each running deploy whose app has `analysis`
// checks, owned by the engine's thread (not thread-safe).
//
// While the rollout is ACTIVATING, each check's query is evaluated every
// interval_ms by the Analyzer (controller/analysis.h), which asks Due() what
// to run and reports each result, applied with Apply(). The first
// evaluation in a wave comes interval_ms after the wave started (or the
// rollout was resumed in it), so that Prometheus has scraped the hosts that
// just switched.
//   - pass (the value does not meet fail_if): a wave finishes (next wave,
//     promote gate, SUCCEEDED) only when every check has passed at least
//     once since the wave started or the rollout was resumed (unless no host
//     became healthy: then nothing runs the version to measure).
//   - fail (meets fail_if): an `analysis.check_failed` event; past the
//     check's failure_limit the rollout fails like one past its threshold.
//   - inconclusive (no answer, an error, no data, several series, NaN):
//     never a pass; with on_inconclusive: fail, the same failure path; by
//     default the rollout pauses (resume starts the evaluations over).
// The state lives in memory only: after a controller restart the counts
// start at zero and the current wave needs new passing evaluations.
#ifndef FLEET_CONTROLLER_ANALYSIS_BOOK_H_
#define FLEET_CONTROLLER_ANALYSIS_BOOK_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controller/rollout_machine.h"
#include "fleet/v1/api.pb.h"

namespace fleet::controller {

// One analysis check of a rollout that is due for evaluation, handed back
// with its result.
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

class AnalysisBook {
 public:
  // Brings the state of `r` (a deploy in ACTIVATING) up to date with its
  // wave and the app's checks, and says what analysis allows. No checks:
  // a gate without checks.
  AnalysisGate Sync(const fleet::v1::Rollout& r, const fleet::v1::AppSpec& spec,
                    const std::string& default_url, absl::Time now);
  // Records the state of `r` as committed: evaluations run while it is
  // ACTIVATING, are kept (inactive) while PAUSED, and are forgotten
  // otherwise.
  void NoteState(const fleet::v1::Rollout& r);
  // `r` was resumed at `now`: a new window, every check must pass again.
  void Resumed(const fleet::v1::Rollout& r, absl::Time now);
  void Forget(const std::string& rollout_id) { rollouts_.erase(rollout_id); }

  // The checks due at `now`. Changes nothing; a check stays due until its
  // result is applied.
  std::vector<AnalysisEvaluation> Due(absl::Time now) const;

  // What a result means for the rollout.
  struct Outcome {
    bool apply = false;  // false: a result of an earlier window, dropped
    // An `analysis.check_failed` event to record, when the check failed an
    // evaluation it is allowed to fail.
    std::optional<std::string> check_failed;
  };
  // Applies `value` (the query's value, or why it was inconclusive) for
  // `e`, whose rollout is ACTIVATING in e.wave. The verdict it reaches is
  // part of the next Sync() until NoteState() sees it committed.
  Outcome Apply(const AnalysisEvaluation& e, const absl::StatusOr<double>& value, absl::Time now);
  // Whether `e` belongs to the current window of an active rollout.
  bool Current(const AnalysisEvaluation& e) const;

 private:
  struct CheckProgress {
    absl::Time last_evaluated = absl::InfinitePast();  // in the current window
    bool passed = false;                               // a pass in the current window
    int failures = 0;                                  // failed evaluations in this rollout
  };
  struct RolloutAnalysis {
    bool active = false;  // ACTIVATING as last committed
    std::string app;
    int wave = -1;
    int64_t window = 0;
    absl::Time window_start;
    std::string prometheus_url;
    std::vector<fleet::v1::AnalysisCheck> checks;  // the app spec's
    std::vector<CheckProgress> progress;           // by check index
    AnalysisGate::Verdict verdict = AnalysisGate::Verdict::kNone;
    std::string verdict_reason;
  };
  void StartWindow(RolloutAnalysis* a, absl::Time start);

  std::map<std::string, RolloutAnalysis> rollouts_;
  int64_t next_window_ = 1;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_ANALYSIS_BOOK_H_
