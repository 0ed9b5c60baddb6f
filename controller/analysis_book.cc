#include "controller/analysis_book.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/logging.h"
#include "controller/analysis.h"

namespace fleet::controller {

using fleet::v1::Rollout;

AnalysisGate AnalysisBook::Sync(const Rollout& r, const fleet::v1::AppSpec& spec,
                                const std::string& default_url, absl::Time now) {
  AnalysisGate gate;
  if (spec.analysis().empty()) {
    rollouts_.erase(r.id());
    return gate;
  }
  RolloutAnalysis& a = rollouts_[r.id()];
  const bool same_checks =
      static_cast<int>(a.checks.size()) == spec.analysis_size() &&
      std::equal(a.checks.begin(), a.checks.end(), spec.analysis().begin(),
                 [](const fleet::v1::AnalysisCheck& x, const fleet::v1::AnalysisCheck& y) {
                   return x.SerializeAsString() == y.SerializeAsString();
                 });
  if (!same_checks) {
    // Other checks than before (the spec was applied again): count afresh
    // from the wave's start. A new entry keeps the window a resume gave it.
    if (!a.checks.empty()) a.wave = -1;
    a.checks.assign(spec.analysis().begin(), spec.analysis().end());
    a.progress.assign(a.checks.size(), CheckProgress{});
  }
  a.app = r.app();
  a.prometheus_url = spec.prometheus_url().empty() ? default_url : spec.prometheus_url();
  if (a.wave != r.current_wave()) {
    a.wave = r.current_wave();
    absl::Time start = now;
    if (a.wave < r.plan().waves_size() && r.plan().waves(a.wave).started_at_ms() > 0) {
      start = absl::FromUnixMillis(r.plan().waves(a.wave).started_at_ms());
    }
    StartWindow(&a, start);
  }
  gate.has_checks = true;
  gate.all_passed = std::all_of(a.progress.begin(), a.progress.end(),
                                [](const CheckProgress& c) { return c.passed; });
  gate.verdict = a.verdict;
  gate.reason = a.verdict_reason;
  return gate;
}

void AnalysisBook::StartWindow(RolloutAnalysis* a, absl::Time start) {
  a->window = next_window_++;
  a->window_start = start;
  for (CheckProgress& c : a->progress) {
    c.last_evaluated = absl::InfinitePast();
    c.passed = false;
  }
  a->verdict = AnalysisGate::Verdict::kNone;
  a->verdict_reason.clear();
}

void AnalysisBook::Resumed(const Rollout& r, absl::Time now) {
  if (r.kind() != fleet::v1::ROLLOUT_KIND_DEPLOY) return;
  // Sync() fills in the checks of an entry made here (after a restart) and
  // keeps this window.
  RolloutAnalysis& a = rollouts_[r.id()];
  a.wave = r.current_wave();
  StartWindow(&a, now);
}

void AnalysisBook::NoteState(const Rollout& r) {
  auto it = rollouts_.find(r.id());
  if (it == rollouts_.end()) return;
  RolloutAnalysis& a = it->second;
  switch (r.state()) {
    case fleet::v1::ROLLOUT_STATE_ACTIVATING:
      a.active = true;
      break;
    case fleet::v1::ROLLOUT_STATE_PAUSED:
      // Failure counts last until the rollout ends; a resume starts a new
      // window.
      a.active = false;
      a.verdict = AnalysisGate::Verdict::kNone;
      a.verdict_reason.clear();
      break;
    default:
      rollouts_.erase(it);
      break;
  }
}

std::vector<AnalysisEvaluation> AnalysisBook::Due(absl::Time now) const {
  std::vector<AnalysisEvaluation> due;
  for (const auto& [rollout_id, a] : rollouts_) {
    if (!a.active || a.verdict != AnalysisGate::Verdict::kNone) continue;
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

bool AnalysisBook::Current(const AnalysisEvaluation& e) const {
  auto it = rollouts_.find(e.rollout_id);
  return it != rollouts_.end() && it->second.active && it->second.window == e.window &&
         it->second.verdict == AnalysisGate::Verdict::kNone && e.check_index >= 0 &&
         e.check_index < static_cast<int>(it->second.checks.size());
}

AnalysisBook::Outcome AnalysisBook::Apply(const AnalysisEvaluation& e,
                                          const absl::StatusOr<double>& value, absl::Time now) {
  Outcome out;
  if (!Current(e)) return out;
  out.apply = true;
  RolloutAnalysis& a = rollouts_[e.rollout_id];
  const fleet::v1::AnalysisCheck& check = a.checks[e.check_index];
  CheckProgress& progress = a.progress[e.check_index];
  progress.last_evaluated = now;
  const std::string where = absl::StrCat("app ", a.app, " rollout ", e.rollout_id, " wave ",
                                         e.wave + 1, " check '", check.name(), "'");
  if (!value.ok()) {
    a.verdict = check.fail_on_inconclusive() ? AnalysisGate::Verdict::kFail
                                             : AnalysisGate::Verdict::kPause;
    a.verdict_reason =
        absl::StrCat("analysis '", check.name(), "' inconclusive: ", value.status().message());
    spdlog::warn("analysis: {}: inconclusive: {}; {} the rollout", where, value.status().message(),
                 check.fail_on_inconclusive() ? "failing" : "pausing");
    return out;
  }
  const std::string fail_if = check.fail_if().empty()
                                  ? absl::StrCat(check.op(), " ", check.threshold())
                                  : std::string(absl::StripAsciiWhitespace(check.fail_if()));
  const std::string measured =
      absl::StrCat(check.query(), " = ", FormatAnalysisValue(*value), ", fail_if ", fail_if);
  if (!MeetsFailIf(*value, check.op(), check.threshold())) {
    progress.passed = true;
    spdlog::info("analysis: {}: {}: pass", where, measured);
    return out;
  }
  ++progress.failures;
  const std::string counted = absl::StrCat(" (", progress.failures, " failed evaluation",
                                           progress.failures == 1 ? "" : "s", ")");
  if (progress.failures > check.failure_limit()) {
    a.verdict = AnalysisGate::Verdict::kFail;
    a.verdict_reason = absl::StrCat("analysis '", check.name(), "' failed: ", measured, counted);
    spdlog::warn("analysis: {}: {}{}: more than the {} allowed; failing the rollout", where,
                 measured, counted, check.failure_limit());
    return out;
  }
  spdlog::warn("analysis: {}: {}{}: failed; {} allowed", where, measured, counted,
               check.failure_limit());
  out.check_failed = absl::StrCat("analysis '", check.name(), "' failed an evaluation: ", measured,
                                  counted, "; the rollout fails after more than ",
                                  check.failure_limit());
  return out;
}

}  // namespace fleet::controller
