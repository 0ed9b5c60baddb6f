#ifndef FLEET_CLI_ACTOR_H_
#define FLEET_CLI_ACTOR_H_

#include <string>

namespace fleet::cli {

// "user@host" of the caller, recorded in history as who acted. FLEET_ACTOR
// overrides it (CI systems set it to the pipeline's identity).
std::string CurrentActor();

}  // namespace fleet::cli

#endif  // FLEET_CLI_ACTOR_H_
