#include "agent/backoff.h"

#include <random>

namespace fleet::agent {

absl::Duration Backoff::Delay(int n) const {
  absl::Duration d = initial;
  for (int i = 0; i < n && d < max; ++i) d *= 2;
  if (d > max) d = max;
  thread_local std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return d * jitter(rng);
}

}  // namespace fleet::agent
