#include "cli/rollout_text.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/rollout_state.h"

namespace fleet::cli {

std::string KindName(const fleet::v1::Rollout& r) {
  const char* kind = r.kind() == fleet::v1::ROLLOUT_KIND_ROLLBACK  ? "rollback"
                     : r.kind() == fleet::v1::ROLLOUT_KIND_CATCH_UP ? "catch-up"
                                                                    : "rollout";
  return r.subject() == fleet::v1::SUBJECT_CONFIG ? absl::StrCat("config ", kind) : kind;
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string PromoteHint(const fleet::v1::Rollout& r) {
  return absl::StrCat("waiting for promote: run fleetctl rollout promote ", r.id());
}

std::string WaveLine(const fleet::v1::Rollout& r, int w) {
  int done = 0, failed = 0, running = 0, pending = 0;
  for (const auto& t : r.tasks()) {
    if (t.wave() != w) continue;
    switch (TaskPhaseOf(t.state())) {
      case TaskPhase::kDone:
        ++done;
        break;
      case TaskPhase::kFailed:
        ++failed;
        break;
      case TaskPhase::kSwitching:
        ++running;
        break;
      case TaskPhase::kPending:
        ++pending;
    }
  }
  std::string target = w < r.plan().waves_size() ? r.plan().waves(w).target() : "100%";
  std::string mark = w == r.current_wave() && !IsTerminal(r.state()) ? ">" : " ";
  return absl::StrFormat("%s wave %d/%d %-5s  done %-4d failed %-4d switching %-4d pending %d",
                         mark, w + 1, std::max(1, r.plan().waves_size()), target, done, failed,
                         running, pending);
}

}  // namespace fleet::cli
