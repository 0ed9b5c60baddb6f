// What the rollback benchmarks share: a fleetctl call checked with its
// output on failure, the median of a run, and timed rollbacks of an app
// whose reload and exec probe are `true` (bake 0).
#ifndef FLEET_TESTS_BENCH_ROLLBACK_TIMING_H_
#define FLEET_TESTS_BENCH_ROLLBACK_TIMING_H_

#include <string>
#include <vector>

#include "tests/testing/test_env.h"

namespace fleet::bench {

// True when `out` exited 0; otherwise prints "bench: WHAT failed" with the
// output on stderr.
bool Check(const testing::CommandOutput& out, const std::string& what);

// The median of `v` (0 when empty).
double Median(std::vector<double> v);

// Milliseconds of `runs` `fleetctl rollback quick --to V --wait` runs,
// alternately to v1 and v2, from the command's start to its exit, on
// `hosts` real agents of a controller started with `controller_args`;
// false (with the reason on stderr) when one step failed.
bool TrivialAppRollbacks(int hosts, int runs, std::vector<std::string> controller_args,
                         std::vector<double>* ms);

}  // namespace fleet::bench

#endif  // FLEET_TESTS_BENCH_ROLLBACK_TIMING_H_
