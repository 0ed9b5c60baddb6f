// Analysis messages, handled on the engine's thread (see analysis_book.h).
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "controller/rollout_engine.h"

namespace fleet::controller {

using fleet::v1::Rollout;

AnalysisGate RolloutEngine::GateFor(const Rollout& r, const fleet::v1::App& app) {
  if (r.kind() != fleet::v1::ROLLOUT_KIND_DEPLOY ||
      r.state() != fleet::v1::ROLLOUT_STATE_ACTIVATING) {
    return AnalysisGate{};
  }
  return analysis_.Sync(r, app.spec(), options_.prometheus_url, clock_->Now());
}

void RolloutEngine::OnAnalysisResult(const AnalysisEvaluation& evaluation,
                                     const absl::StatusOr<double>& value) {
  Post([this, evaluation, value] { DoAnalysisResult(evaluation, value); });
}

void RolloutEngine::DoAnalysisResult(const AnalysisEvaluation& evaluation,
                                     const absl::StatusOr<double>& value) {
  const std::string& id = evaluation.rollout_id;
  Rollout* r = Running(id);
  if (r == nullptr || !analysis_.Current(evaluation)) {
    spdlog::debug("analysis of rollout {}: dropping a result of an earlier window", id);
    return;
  }
  if (r->state() != fleet::v1::ROLLOUT_STATE_ACTIVATING || r->current_wave() != evaluation.wave) {
    // It moved on since the evaluation was due: Advance() brings the
    // analysis state in line.
    Advance(id);
    return;
  }
  AnalysisBook::Outcome outcome = analysis_.Apply(evaluation, value, clock_->Now());
  if (outcome.check_failed) {
    Decision d;
    d.events.push_back(MachineEvent{EventKind::kAnalysisCheckFailed, "", kAnalysisActor,
                                    *outcome.check_failed});
    Commit(r, d);
  }
  // A pass may be the last one the wave waited for; a verdict moves it.
  Advance(id);
}

}  // namespace fleet::controller
