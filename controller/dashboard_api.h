// The dashboard's HTTP JSON API under /api/v1/ on --http-listen (HTTPS when
// TLS is on), and the page that uses it (dashboard_ui.h).
//
// Every endpoint is a gateway to the public gRPC API (fleet.v1.FleetService)
// over the server's in-process channel: the HTTP request's
// `Authorization: Bearer <token>` header goes along as the call's
// metadata, so the same tokens, roles and app scopes admit it, denials are
// recorded the same way (naming the HTTP client as the peer, see
// kHttpPeerMetadata), actions are recorded with their actor like fleetctl's
// and every answer is redacted by the service before it gets here.
//
//   GET  /api/v1/whoami                       WhoAmI
//   GET  /api/v1/fleet                        apps with release, config, hosts
//                                             connected/total, running rollout
//                                             with progress, last failure
//   GET  /api/v1/apps                         ListApps
//   GET  /api/v1/apps/APP?label=k%3Dv&q=&offset=&limit=
//                                             GetAppStatus: hosts filtered by
//                                             label selector and id, paged
//   GET  /api/v1/apps/APP/releases|configs    ListReleases, ListConfigs
//   GET  /api/v1/apps/APP/history?limit=      GetHistory
//   POST /api/v1/apps/APP/rollback            Rollback; JSON body: to_version,
//                                             subject ("config"), dry_run
//   GET  /api/v1/rollouts?app=&limit=         ListRollouts
//   GET  /api/v1/rollouts/ID                  GetRollout
//   GET  /api/v1/rollouts/ID/watch            WatchRollout as server-sent events
//   POST /api/v1/rollouts/ID/pause|resume|promote|abort
//   GET  /api/v1/hosts?label=&app=&q=&offset=&limit=
//                                             ListHosts filtered and paged
//   GET  /api/v1/events?app=&kind=&actor=&limit=&before_id=
//                                             ListEvents
//   GET  /api/v1/events/stream?app=&after=    new audit events (EventFeed) as
//                                             server-sent events
//
// Answers are JSON: protobuf messages with their proto field names, every
// field present, enums by name, 64-bit numbers as strings (protobuf's JSON
// mapping). Errors are one JSON line {"error": "..."} with 400 (bad
// input), 401 (no or invalid token), 403 (role or scope), 404, 409
// (refused in this state), 415 (an action without a JSON body), 503, 500.
// Actions are POSTs that need a JSON body (Content-Type: application/json),
// which a cross-site form cannot send; a request whose Origin is not this
// server is refused (403); no CORS header is ever sent.
//
// Thread safety: handlers run on the HTTP server's threads; Shutdown() may
// be called from any thread.
#ifndef FLEET_CONTROLLER_DASHBOARD_API_H_
#define FLEET_CONTROLLER_DASHBOARD_API_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "controller/event_feed.h"
#include "fleet/v1/api.grpc.pb.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace fleet::controller {

// Hosts per page of /api/v1/hosts and /api/v1/apps/APP without ?limit=,
// and the most one page holds.
inline constexpr int kDefaultHostPage = 100;
inline constexpr int kMaxHostPage = 1000;
// A server-sent event stream without news sends a comment this often, so
// that a client that went away is noticed and proxies keep it open.
inline constexpr absl::Duration kStreamKeepAlive = absl::Seconds(15);

class DashboardApi {
 public:
  // `channel`: the gRPC server's in-process channel. `feed` is borrowed
  // and must outlive this object.
  DashboardApi(std::shared_ptr<grpc::Channel> channel, EventFeed* feed);
  ~DashboardApi();

  // Adds the /api/v1/ routes above and the page's (dashboard_ui.h) to
  // `server`, before it listens.
  void Register(httplib::Server* server);
  // Ends every open event stream (each within a second) and makes new ones
  // end at once; call before stopping the HTTP server. Idempotent.
  void Shutdown();

 private:
  using Stub = fleet::v1::FleetService::Stub;

  void RegisterReads(httplib::Server* server);

  void Fleet(const httplib::Request& req, httplib::Response& res);
  void AppStatus(const httplib::Request& req, httplib::Response& res);
  void Hosts(const httplib::Request& req, httplib::Response& res);
  void Events(const httplib::Request& req, httplib::Response& res);
  void Rollback(const httplib::Request& req, httplib::Response& res);
  void RolloutAction(const httplib::Request& req, httplib::Response& res);
  // Server-sent events (dashboard_stream.cc).
  void WatchRollout(const httplib::Request& req, httplib::Response& res);
  void EventStream(const httplib::Request& req, httplib::Response& res);

  std::unique_ptr<Stub> stub_;
  EventFeed* feed_;
  std::atomic<bool> stopping_{false};
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_DASHBOARD_API_H_
