// What of an app spec goes to the agents: only what a host needs to stage,
// switch, reload and probe. Notification sinks (their URLs carry tokens,
// DingTalk sinks a signing secret), analysis queries, the Prometheus URL
// (which may carry credentials), alert rollback and rollout policy stay on
// the controller, so no host journal or state file ever holds them.
#ifndef FLEET_CONTROLLER_AGENT_SPEC_H_
#define FLEET_CONTROLLER_AGENT_SPEC_H_

#include "fleet/v1/types.pb.h"

namespace fleet::controller {

// A copy of `spec` with only the fields agents act on: name, keep_releases,
// shared_dirs, reload, reload_timeout_ms, health, bake_ms, hooks, config,
// trusted_keys and user. A field added to AppSpec later goes nowhere until
// it is listed here (agent_spec_test checks that every field is decided).
fleet::v1::AppSpec SpecForAgent(const fleet::v1::AppSpec& spec);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_AGENT_SPEC_H_
