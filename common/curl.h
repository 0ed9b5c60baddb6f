// What Fleet's HTTP clients (agent probes, notifications, Prometheus
// queries) share about libcurl.
#ifndef FLEET_COMMON_CURL_H_
#define FLEET_COMMON_CURL_H_

#include <curl/curl.h>

#include <memory>

#include "absl/time/time.h"

namespace fleet {

struct CurlDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using CurlHeaders = std::unique_ptr<curl_slist, CurlSlistDeleter>;

// curl_global_init, once per process whichever client comes first: it is
// not thread-safe, and probes, notifications and queries run on their own
// threads. Thread-safe.
void InitCurlOnce();

// A handle for one request of `timeout`: no signals (SIGALRM for DNS
// timeouts is unsafe with threads), no redirects (a redirect is an answer
// of its own, and following it could resend a token elsewhere), http and
// https only, `user_agent`. nullptr when curl cannot make one.
CurlHandle NewHttpHandle(absl::Duration timeout, const char* user_agent);

}  // namespace fleet

#endif  // FLEET_COMMON_CURL_H_
