// `--wait` and `fleetctl rollout watch`: follows a rollout over
// WatchRollout (through controller restarts, see rollout_stream.h) and shows
// its progress as it happens.
#ifndef FLEET_CLI_WATCH_H_
#define FLEET_CLI_WATCH_H_

#include <functional>
#include <ostream>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "cli/rollout_stream.h"
#include "fleet/v1/api.grpc.pb.h"

namespace fleet::cli {

enum class WatchOutput {
  // On a terminal a progress block per wave redrawn in place, with hosts
  // that fail scrolling above it; otherwise (CI logs) one line per change.
  kText,
  // Nothing while it runs (the caller prints the final rollout).
  kJson,
  // Each update as one JSON object (fleet.v1.RolloutUpdate) on a line of
  // its own, as it arrives; the last one shows the terminal state.
  kJsonLines,
};

struct WatchOptions {
  WatchOutput output = WatchOutput::kText;
  bool terminal = false;  // `out` is a terminal: kText redraws in place
  bool color = false;     // kText colours states (cli/output.h Paint)
  ReconnectPolicy reconnect;
  // kText only: the hosts the controller lists as disconnected, asked about
  // once a second while the rollout runs, so that a host whose agent went
  // away is shown as such at once (its task only fails after the host
  // timeout). Unset, or failing: no such marks.
  std::function<absl::StatusOr<std::set<std::string>>()> disconnected_hosts;
};

// Follows rollout `id` until it ends, showing its progress on `out` (kText:
// "rollout 7 of web: v1 → v2", the time since the rollout started, the
// promote hint while it waits at a gate, and hosts that disconnect or come
// back) and one
// line on `err` each time the controller becomes unreachable ("fleetctl:
// controller unavailable (...); reconnecting..."). Returns the final rollout
// with every task, or why it could not be followed to its end (the
// rollout's own failure is not an error: see ExitCodeFor).
absl::StatusOr<fleet::v1::Rollout> WatchRollout(fleet::v1::FleetService::StubInterface* api,
                                                ContextFactory contexts, const std::string& id,
                                                const WatchOptions& options, std::ostream& out,
                                                std::ostream& err);

// The exit code for a finished rollout (codes in fleetctl.h): kExitOk when
// it succeeded; kExitRollbackIncomplete when some host may still run what
// it switched to (a task LOST or REVERT_FAILED, a deploy that FAILED, or a
// rollback that FAILED after switching some hosts); kExitRolledBack for any
// other end, where no host was left moved.
int ExitCodeFor(const fleet::v1::Rollout& r);

}  // namespace fleet::cli

#endif  // FLEET_CLI_WATCH_H_
