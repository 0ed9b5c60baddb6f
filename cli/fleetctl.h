// fleetctl: the command line over the public API, for people and CI.
#ifndef FLEET_CLI_FLEETCTL_H_
#define FLEET_CLI_FLEETCTL_H_

namespace fleet::cli {

// Exit codes, documented in README.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;             // bad input, refused, unreachable
inline constexpr int kExitRolledBack = 2;        // rollout failed; every switched host went back
inline constexpr int kExitRollbackIncomplete = 3;  // failed, and not every host could go back

// Parses argv, runs the command, prints results on stdout and one-line
// errors on stderr. Returns the process exit code.
int Run(int argc, char** argv);

}  // namespace fleet::cli

#endif  // FLEET_CLI_FLEETCTL_H_
