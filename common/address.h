// Network addresses as the flags give them ("HOST:PORT", "[::1]:7000").
#ifndef FLEET_COMMON_ADDRESS_H_
#define FLEET_COMMON_ADDRESS_H_

#include <string>

#include "absl/status/status.h"

namespace fleet {

// Splits "HOST:PORT" (HOST may be "[::1]", returned without brackets).
// InvalidArgument when malformed or the port is outside 0..65535.
absl::Status SplitHostPort(const std::string& address, std::string* host, int* port);

// True when `host` (no port) names only this machine: "localhost", an IPv4
// address in 127.0.0.0/8, or "::1". "0.0.0.0", "::" and names are not.
bool IsLoopbackHost(const std::string& host);

// IsLoopbackHost of the host part of "HOST:PORT"; false when malformed.
bool IsLoopbackAddress(const std::string& address);

}  // namespace fleet

#endif  // FLEET_COMMON_ADDRESS_H_
