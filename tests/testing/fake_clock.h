// A Clock for tests: time moves only when the code under test sleeps on it
// or the test advances it. Thread-safe.
#ifndef FLEET_TESTS_TESTING_FAKE_CLOCK_H_
#define FLEET_TESTS_TESTING_FAKE_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace fleet::testing {

class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1700000000))
      : start_(start), now_(start) {}

  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  // Advances the time; counted in slept().
  void SleepFor(absl::Duration d) override {
    absl::MutexLock lock(&mu_);
    now_ += d;
    slept_ += d;
  }
  // Advances the time as the world does, not counted in slept().
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  // Since construction.
  absl::Duration Elapsed() {
    absl::MutexLock lock(&mu_);
    return now_ - start_;
  }
  // Total of SleepFor calls.
  absl::Duration slept() {
    absl::MutexLock lock(&mu_);
    return slept_;
  }

 private:
  absl::Mutex mu_;
  const absl::Time start_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  absl::Duration slept_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fleet::testing

#endif  // FLEET_TESTS_TESTING_FAKE_CLOCK_H_
