// Time behind an interface so tests can inject it.
#ifndef FLEET_COMMON_CLOCK_H_
#define FLEET_COMMON_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fleet {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
  virtual void SleepFor(absl::Duration d) = 0;
};

class RealClock : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
  void SleepFor(absl::Duration d) override { absl::SleepFor(d); }
};

inline Clock* DefaultClock() {
  static RealClock clock;
  return &clock;
}

inline int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace fleet

#endif  // FLEET_COMMON_CLOCK_H_
