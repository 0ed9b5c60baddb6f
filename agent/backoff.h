// Capped exponential backoff with jitter, for reconnecting and retrying.
#ifndef FLEET_AGENT_BACKOFF_H_
#define FLEET_AGENT_BACKOFF_H_

#include "absl/time/time.h"

namespace fleet::agent {

struct Backoff {
  absl::Duration initial = absl::Milliseconds(200);
  absl::Duration max = absl::Seconds(10);
  // The delay before attempt `n` (0-based): min(max, initial * 2^n), scaled
  // by a random factor in [0.5, 1.0] so a fleet does not retry in step.
  absl::Duration Delay(int n) const;
};

}  // namespace fleet::agent

#endif  // FLEET_AGENT_BACKOFF_H_
