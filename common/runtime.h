// Process-wide settings of the long-running binaries (fleet-controller,
// fleet-agent), applied once at the top of main().
#ifndef FLEET_COMMON_RUNTIME_H_
#define FLEET_COMMON_RUNTIME_H_

namespace fleet {

// In release builds (NDEBUG), turns off Abseil's mutex deadlock detection:
// a debugging aid that updates a global lock graph at every lock, a
// measurable share of the controller's CPU with thousands of agents. Debug
// and sanitizer builds keep it.
void InitRuntime();

}  // namespace fleet

#endif  // FLEET_COMMON_RUNTIME_H_
