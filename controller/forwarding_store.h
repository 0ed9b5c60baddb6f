// ForwardingStore: every call of StoreReader and StoreWriter written once,
// as a generic function of its receiver passed to Derived::Read or
// Derived::Write, which decide where and how it runs (CRTP). Both stores
// (SQLite, PostgreSQL) build their store and their transaction on it.
#ifndef FLEET_CONTROLLER_FORWARDING_STORE_H_
#define FLEET_CONTROLLER_FORWARDING_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controller/store.h"

namespace fleet::controller {

// The status of a call's result, whether it returns a Status or a StatusOr.
inline const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& result) {
  return result.status();
}

// Every call of StoreReader and StoreWriter, passed as a generic function
// of its receiver to Derived::Read or Derived::Write, which decide where it
// runs (CRTP: the calls are written once for the store and the transaction).
template <typename Base, typename Derived>
class ForwardingStore : public Base {
 public:
  absl::StatusOr<fleet::v1::App> GetApp(const std::string& name) override {
    return self().Read([&](auto& q) { return q.GetApp(name); });
  }
  absl::StatusOr<std::vector<fleet::v1::App>> ListApps() override {
    return self().Read([&](auto& q) { return q.ListApps(); });
  }
  absl::StatusOr<fleet::v1::Release> GetRelease(const std::string& app,
                                                const std::string& version) override {
    return self().Read([&](auto& q) { return q.GetRelease(app, version); });
  }
  absl::StatusOr<std::vector<fleet::v1::Release>> ListReleases(const std::string& app) override {
    return self().Read([&](auto& q) { return q.ListReleases(app); });
  }
  absl::StatusOr<fleet::v1::ConfigRelease> GetConfig(const std::string& app,
                                                     const std::string& version) override {
    return self().Read([&](auto& q) { return q.GetConfig(app, version); });
  }
  absl::StatusOr<std::vector<fleet::v1::ConfigRelease>> ListConfigs(
      const std::string& app) override {
    return self().Read([&](auto& q) { return q.ListConfigs(app); });
  }
  absl::StatusOr<fleet::v1::Host> GetHost(const std::string& host_id) override {
    return self().Read([&](auto& q) { return q.GetHost(host_id); });
  }
  absl::StatusOr<std::vector<fleet::v1::Host>> ListHosts() override {
    return self().Read([&](auto& q) { return q.ListHosts(); });
  }
  absl::StatusOr<std::vector<HostHoldRecord>> ListHostHolds() override {
    return self().Read([&](auto& q) { return q.ListHostHolds(); });
  }
  absl::StatusOr<std::vector<fleet::v1::HostAppStatus>> ListAppHosts(
      const std::string& app) override {
    return self().Read([&](auto& q) { return q.ListAppHosts(app); });
  }
  absl::StatusOr<fleet::v1::Rollout> GetRollout(const std::string& id) override {
    return self().Read([&](auto& q) { return q.GetRollout(id); });
  }
  absl::StatusOr<std::vector<fleet::v1::Rollout>> ListRollouts(const std::string& app, int limit,
                                                               bool with_tasks) override {
    return self().Read([&](auto& q) { return q.ListRollouts(app, limit, with_tasks); });
  }
  absl::StatusOr<std::vector<fleet::v1::Rollout>> ListActiveRollouts() override {
    return self().Read([&](auto& q) { return q.ListActiveRollouts(); });
  }
  absl::StatusOr<std::vector<fleet::v1::Event>> ListEvents(const std::string& app,
                                                           int limit) override {
    return self().Read([&](auto& q) { return q.ListEvents(app, limit); });
  }
  absl::StatusOr<AlertRecord> GetAlert(const std::string& fingerprint, const std::string& starts_at,
                                       const std::string& status) override {
    return self().Read([&](auto& q) { return q.GetAlert(fingerprint, starts_at, status); });
  }
  absl::StatusOr<fleet::v1::TokenInfo> FindTokenByHash(const std::string& hash) override {
    return self().Read([&](auto& q) { return q.FindTokenByHash(hash); });
  }
  absl::StatusOr<std::vector<fleet::v1::TokenInfo>> ListTokens() override {
    return self().Read([&](auto& q) { return q.ListTokens(); });
  }
  absl::StatusOr<int64_t> CountTokens() override {
    return self().Read([&](auto& q) { return q.CountTokens(); });
  }

  absl::Status UpsertApp(const fleet::v1::App& app, bool* created) override {
    return self().Write([&](auto& q) { return q.UpsertApp(app, created); });
  }
  absl::Status SetDesired(const std::string& app, fleet::v1::Subject subject,
                          const std::string& version) override {
    return self().Write([&](auto& q) { return q.SetDesired(app, subject, version); });
  }
  absl::Status InsertRelease(const fleet::v1::Release& release) override {
    return self().Write([&](auto& q) { return q.InsertRelease(release); });
  }
  absl::Status InsertConfig(const fleet::v1::ConfigRelease& config) override {
    return self().Write([&](auto& q) { return q.InsertConfig(config); });
  }
  absl::Status UpsertHost(const fleet::v1::Host& host) override {
    return self().Write([&](auto& q) { return q.UpsertHost(host); });
  }
  absl::Status SetHostConnected(const std::string& host_id, bool connected,
                                int64_t at_ms) override {
    return self().Write([&](auto& q) { return q.SetHostConnected(host_id, connected, at_ms); });
  }
  absl::Status UpsertHostAppState(const std::string& host_id,
                                  const fleet::v1::HostAppState& state) override {
    return self().Write([&](auto& q) { return q.UpsertHostAppState(host_id, state); });
  }
  absl::Status MarkAllHostsDisconnected() override {
    return self().Write([&](auto& q) { return q.MarkAllHostsDisconnected(); });
  }
  absl::Status PutHostHold(const HostHoldRecord& record) override {
    return self().Write([&](auto& q) { return q.PutHostHold(record); });
  }
  absl::Status CreateRollout(fleet::v1::Rollout* rollout) override {
    return self().Write([&](auto& q) { return q.CreateRollout(rollout); });
  }
  absl::Status UpdateRollout(const fleet::v1::Rollout& rollout) override {
    return self().Write([&](auto& q) { return q.UpdateRollout(rollout); });
  }
  absl::Status UpdateTask(const std::string& rollout_id, const fleet::v1::HostTask& task) override {
    return self().Write([&](auto& q) { return q.UpdateTask(rollout_id, task); });
  }
  absl::Status UpdateTasks(const std::string& rollout_id,
                           const std::vector<fleet::v1::HostTask>& tasks) override {
    return self().Write([&](auto& q) { return q.UpdateTasks(rollout_id, tasks); });
  }
  absl::Status AddEvent(fleet::v1::Event* event) override {
    return self().Write([&](auto& q) { return q.AddEvent(event); });
  }
  absl::Status InsertAlert(const AlertRecord& alert) override {
    return self().Write([&](auto& q) { return q.InsertAlert(alert); });
  }
  absl::Status UpdateAlert(const AlertRecord& alert) override {
    return self().Write([&](auto& q) { return q.UpdateAlert(alert); });
  }
  absl::Status InsertToken(const fleet::v1::TokenInfo& token, const std::string& hash) override {
    return self().Write([&](auto& q) { return q.InsertToken(token, hash); });
  }
  absl::StatusOr<fleet::v1::TokenInfo> RevokeToken(const std::string& id, int64_t at_ms) override {
    return self().Write([&](auto& q) { return q.RevokeToken(id, at_ms); });
  }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_FORWARDING_STORE_H_
