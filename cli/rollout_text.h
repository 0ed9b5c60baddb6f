// How fleetctl names a rollout and its waves in text output.
#ifndef FLEET_CLI_ROLLOUT_TEXT_H_
#define FLEET_CLI_ROLLOUT_TEXT_H_

#include <string>

#include "fleet/v1/api.pb.h"

namespace fleet::cli {

// "rollout", "rollback", "config rollout" or "config rollback".
std::string KindName(const fleet::v1::Rollout& r);

// `s`, or "-" when it is empty.
std::string OrDash(const std::string& s);

// Wave `w` (0-based) of `r`: how many of its hosts are done, failed,
// switching and pending, marked with ">" while it is the current wave of a
// running rollout:
// "> wave 2/3 25%    done 3    failed 0    switching 2    pending 0".
std::string WaveLine(const fleet::v1::Rollout& r, int w);

// What a rollout waiting at a manual-promote gate needs:
// "waiting for promote: run fleetctl rollout promote 23".
std::string PromoteHint(const fleet::v1::Rollout& r);

}  // namespace fleet::cli

#endif  // FLEET_CLI_ROLLOUT_TEXT_H_
