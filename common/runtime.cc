#include "common/runtime.h"

#include "absl/synchronization/mutex.h"

namespace fleet {

void InitRuntime() {
#ifdef NDEBUG
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
}

}  // namespace fleet
