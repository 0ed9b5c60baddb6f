// Which apps are held on which hosts (a break-glass rollback on the host,
// `fleet-agent rollback`, until an operator rolls the app out or back again
// or runs `fleetctl host release`), as the engine keeps them in memory
// beside the store's host_holds rows. Not thread-safe: the engine's thread
// alone uses it, and changes it only after the store committed the change.
#ifndef FLEET_CONTROLLER_HOST_HOLDS_H_
#define FLEET_CONTROLLER_HOST_HOLDS_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "controller/store.h"

namespace fleet::controller {

class HostHolds {
 public:
  // Replaces what is known of record.hold.app() on record.host_id.
  void Put(const HostHoldRecord& record) {
    records_[{record.host_id, record.hold.app()}] = record;
  }
  // The hold of `app` on `host_id`, held or released; nullptr when none was
  // ever recorded.
  const HostHoldRecord* Find(const std::string& host_id, const std::string& app) const {
    auto it = records_.find({host_id, app});
    return it == records_.end() ? nullptr : &it->second;
  }
  bool Held(const std::string& host_id, const std::string& app) const {
    const HostHoldRecord* record = Find(host_id, app);
    return record != nullptr && record->held;
  }
  // The holds of `app` still held, by host.
  std::vector<HostHoldRecord> HeldOf(const std::string& app) const {
    std::vector<HostHoldRecord> out;
    for (const auto& [key, record] : records_) {
      if (key.second == app && record.held) out.push_back(record);
    }
    return out;
  }

 private:
  std::map<std::pair<std::string, std::string>, HostHoldRecord> records_;  // (host, app)
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_HOST_HOLDS_H_
