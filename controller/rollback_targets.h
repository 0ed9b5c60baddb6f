// The version each app's `fleetctl rollback` would go to by default
// (rollout_planner.h DefaultRollbackTarget), remembered per app, subject and
// desired version so that commands can name it to the agents (whose
// retention keeps it on disk) without reading the app's history for every
// batch of commands. Not thread-safe: the engine's thread alone uses it.
#ifndef FLEET_CONTROLLER_ROLLBACK_TARGETS_H_
#define FLEET_CONTROLLER_ROLLBACK_TARGETS_H_

#include <map>
#include <string>
#include <tuple>

#include "controller/store.h"
#include "fleet/v1/api.pb.h"

namespace fleet::controller {

class RollbackTargets {
 public:
  // `store` is borrowed and must outlive this object.
  explicit RollbackTargets(StoreReader* store) : store_(store) {}

  // The default rollback target of `app`'s `subject` now; "" when there is
  // none (no successful version before the desired one) or the history
  // cannot be read (logged; asked again next time).
  std::string Get(const fleet::v1::App& app, fleet::v1::Subject subject);

  // Forgets what is known of `app`: a rollout of it ended or a rollback of
  // it began, which may change its target.
  void Forget(const std::string& app);

 private:
  using Key = std::tuple<std::string, fleet::v1::Subject, std::string>;  // app, subject, desired
  StoreReader* store_;
  std::map<Key, std::string> known_;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_ROLLBACK_TARGETS_H_
