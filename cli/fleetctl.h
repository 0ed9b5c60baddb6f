// fleetctl: the command line over the public API, for people and CI.
#ifndef FLEET_CLI_FLEETCTL_H_
#define FLEET_CLI_FLEETCTL_H_

namespace fleet::cli {

// Exit codes, documented in README.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;             // bad input, refused, unreachable
// The rollout failed (or was rolled back) and no host was left on what it
// switched to.
inline constexpr int kExitRolledBack = 2;
// The rollout failed and some host may still run what it switched to: a
// host LOST or REVERT_FAILED, a deploy that FAILED, or a rollback that
// FAILED after switching some hosts.
inline constexpr int kExitRollbackIncomplete = 3;

// Parses argv, runs the command, prints results on stdout and one-line
// errors on stderr. Returns the process exit code.
int Run(int argc, char** argv);

}  // namespace fleet::cli

#endif  // FLEET_CLI_FLEETCTL_H_
