#include "common/address.h"

#include <arpa/inet.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fleet {

absl::Status SplitHostPort(const std::string& address, std::string* host, int* port) {
  auto pos = address.rfind(':');
  if (pos == std::string::npos || pos == 0 ||
      !absl::SimpleAtoi(address.substr(pos + 1), port) || *port < 0 || *port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("'", address, "' is not HOST:PORT"));
  }
  *host = address.substr(0, pos);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return absl::OkStatus();
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

bool IsLoopbackAddress(const std::string& address) {
  std::string host;
  int port = 0;
  return SplitHostPort(address, &host, &port).ok() && IsLoopbackHost(host);
}

}  // namespace fleet
