#ifndef FLEET_CONTROLLER_LIVE_HOSTS_H_
#define FLEET_CONTROLLER_LIVE_HOSTS_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "controller/rollout_machine.h"

namespace fleet::controller {

// What the rollout machine knows of the hosts (rollout_machine.h HostsView),
// kept by the engine's thread from the connects, disconnects and progress it
// handles: no lock and no call to the agent hub per host at every advance.
// Not thread-safe: the engine's thread alone uses it.
class LiveHosts final : public HostsView {
 public:
  explicit LiveHosts(absl::Time started) : started_(started) {}

  HostLiveness Liveness(const std::string& host_id) const override {
    auto it = hosts_.find(host_id);
    if (it != hosts_.end()) return it->second;
    HostLiveness never;  // not connected since the controller started
    never.disconnected_since = started_;
    return never;
  }

  void Connected(const std::string& host_id, absl::Time at) {
    HostLiveness& live = Entry(host_id);
    live.connected = true;
    live.connected_since = at;
  }
  void Disconnected(const std::string& host_id, absl::Time at) {
    HostLiveness& live = Entry(host_id);
    live.connected = false;
    live.connected_since = absl::InfinitePast();
    live.disconnected_since = at;
  }
  void Progressed(const std::string& host_id, absl::Time at) { Entry(host_id).last_progress = at; }

 private:
  HostLiveness& Entry(const std::string& host_id) {
    auto [it, added] = hosts_.try_emplace(host_id);
    if (added) it->second.disconnected_since = started_;
    return it->second;
  }

  const absl::Time started_;
  absl::flat_hash_map<std::string, HostLiveness> hosts_;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_LIVE_HOSTS_H_
