// `fleetctl pki`: a certificate authority for fleets without a PKI of their
// own (common/pki.h). Its commands need no controller.
#ifndef FLEET_CLI_PKI_COMMAND_H_
#define FLEET_CLI_PKI_COMMAND_H_

#include <CLI/CLI.hpp>

#include "cli/session.h"

namespace fleet::cli {

// Adds to `app`:
//   pki init DIR [--days N]
//       a new CA in DIR/ca.crt and DIR/ca.key (refused when either exists)
//   pki issue --ca-dir DIR (--host ID | --controller NAME) [--days N] [--force]
//       DIR/ID.crt + DIR/ID.key (client certificate, CN and SAN = ID) or
//       DIR/NAME.crt + DIR/NAME.key (server certificate for NAME, localhost
//       and 127.0.0.1), signed by DIR's CA
// The commands run from `app`'s parse, print what they wrote (JSON when
// `session`'s --output is "json" or "jsonl") or one "fleetctl: ..." line on
// stderr, and then end the parse with Exit() or Fail() (cli/session.h).
// They never connect to the controller. `app` and `session` must outlive
// its parse.
void AddPkiCommands(CLI::App* app, Session* session);

}  // namespace fleet::cli

#endif  // FLEET_CLI_PKI_COMMAND_H_
