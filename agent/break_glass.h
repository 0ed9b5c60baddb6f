// `fleet-agent rollback APP [--to VERSION] [--reason TEXT] [--state-dir DIR]`:
// break-glass rollback of one app on this host, with or without the
// controller. The agent running on the host (found by its control socket
// in the state dir) does it; when none runs, this process takes the
// agent's lock (agent/agent_lock.h), finishes what an interrupted agent
// left (Deployer::Recover) and does it itself with the agent's host id,
// apps root and --var from <state-dir>/agent.json. Either way one process
// writes. See Deployer::RollBackLocally for what is switched and checked.
//
// Exit codes: 0 rolled back and healthy; 1 nothing changed (the line on
// stderr says why); 2 switched, but reload or probes failed (the link
// stays, as with every rollback). The controller records the rollback and
// holds the app on this host when the agent next talks to it.
#ifndef FLEET_AGENT_BREAK_GLASS_H_
#define FLEET_AGENT_BREAK_GLASS_H_

namespace fleet::agent {

// argv[0] is "rollback".
int RunRollbackCommand(int argc, char** argv);

}  // namespace fleet::agent

#endif  // FLEET_AGENT_BREAK_GLASS_H_
