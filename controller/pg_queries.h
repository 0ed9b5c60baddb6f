// Every read and write of the Store interface as SQL on one PostgreSQL
// connection, with the contracts of store.h. No locking and no transaction
// control: PgStore runs every call on a connection it holds alone, writes
// inside a transaction that holds write_lock, so a write that fails part
// way is rolled back there. The schema is documented in pg_schema.cc.
//
// Implemented in pg_catalog.cc (apps, releases, configs, tokens),
// pg_hosts.cc, pg_holds.cc, pg_rollouts.cc and pg_events.cc (events,
// alerts).
#ifndef FLEET_CONTROLLER_PG_QUERIES_H_
#define FLEET_CONTROLLER_PG_QUERIES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "controller/pg_connection.h"
#include "controller/store.h"

namespace fleet::controller {

class PgQueries final : public StoreReader, public StoreWriter {
 public:
  // `db` is borrowed and must outlive this object.
  explicit PgQueries(PgConnection* db) : db_(db) {}

  // StoreReader.
  absl::StatusOr<fleet::v1::App> GetApp(const std::string& name) override;
  absl::StatusOr<std::vector<fleet::v1::App>> ListApps() override;
  absl::StatusOr<fleet::v1::Release> GetRelease(const std::string& app,
                                                const std::string& version) override;
  absl::StatusOr<std::vector<fleet::v1::Release>> ListReleases(const std::string& app) override;
  absl::StatusOr<fleet::v1::ConfigRelease> GetConfig(const std::string& app,
                                                     const std::string& version) override;
  absl::StatusOr<std::vector<fleet::v1::ConfigRelease>> ListConfigs(
      const std::string& app) override;
  absl::StatusOr<fleet::v1::Host> GetHost(const std::string& host_id) override;
  absl::StatusOr<std::vector<fleet::v1::Host>> ListHosts() override;
  absl::StatusOr<std::vector<HostHoldRecord>> ListHostHolds() override;
  absl::StatusOr<std::vector<fleet::v1::HostAppStatus>> ListAppHosts(
      const std::string& app) override;
  absl::StatusOr<fleet::v1::Rollout> GetRollout(const std::string& id) override;
  absl::StatusOr<std::vector<fleet::v1::Rollout>> ListRollouts(const std::string& app, int limit,
                                                               bool with_tasks) override;
  absl::StatusOr<std::vector<fleet::v1::Rollout>> ListActiveRollouts() override;
  absl::StatusOr<std::vector<fleet::v1::Event>> ListEvents(const std::string& app,
                                                           int limit) override;
  absl::StatusOr<AlertRecord> GetAlert(const std::string& fingerprint, const std::string& starts_at,
                                       const std::string& status) override;
  absl::StatusOr<fleet::v1::TokenInfo> FindTokenByHash(const std::string& hash) override;
  absl::StatusOr<std::vector<fleet::v1::TokenInfo>> ListTokens() override;
  absl::StatusOr<int64_t> CountTokens() override;

  // StoreWriter.
  absl::Status UpsertApp(const fleet::v1::App& app, bool* created) override;
  absl::Status SetDesired(const std::string& app, fleet::v1::Subject subject,
                          const std::string& version) override;
  absl::Status InsertRelease(const fleet::v1::Release& release) override;
  absl::Status InsertConfig(const fleet::v1::ConfigRelease& config) override;
  absl::Status UpsertHost(const fleet::v1::Host& host) override;
  absl::Status SetHostConnected(const std::string& host_id, bool connected, int64_t at_ms) override;
  absl::Status UpsertHostAppState(const std::string& host_id,
                                  const fleet::v1::HostAppState& state) override;
  absl::Status MarkAllHostsDisconnected() override;
  absl::Status PutHostHold(const HostHoldRecord& record) override;
  absl::Status CreateRollout(fleet::v1::Rollout* rollout) override;
  absl::Status UpdateRollout(const fleet::v1::Rollout& rollout) override;
  absl::Status UpdateTask(const std::string& rollout_id, const fleet::v1::HostTask& task) override;
  absl::Status UpdateTasks(const std::string& rollout_id,
                           const std::vector<fleet::v1::HostTask>& tasks) override;
  absl::Status AddEvent(fleet::v1::Event* event) override;
  absl::Status InsertAlert(const AlertRecord& alert) override;
  absl::Status UpdateAlert(const AlertRecord& alert) override;
  absl::Status InsertToken(const fleet::v1::TokenInfo& token, const std::string& hash) override;
  absl::StatusOr<fleet::v1::TokenInfo> RevokeToken(const std::string& id, int64_t at_ms) override;

 private:
  // Fills the tasks of each rollout, sorted by wave, then host.
  absl::Status LoadTasks(std::vector<fleet::v1::Rollout>* rollouts);
  // Adds the holds still held to each host (Host.holds), sorted by app.
  absl::Status FillHolds(std::vector<fleet::v1::Host*> hosts);
  // Sets hold and held on the hosts where `app` is held.
  absl::Status FillAppHolds(const std::string& app,
                            std::vector<fleet::v1::HostAppStatus>* hosts);

  PgConnection* const db_;
};

// PostgreSQL reads LIMIT NULL as "no limit"; the queries spell that as
// LIMIT $n with a huge bound instead, one statement for both.
inline int64_t PgLimit(int limit) { return limit > 0 ? limit : INT64_MAX; }

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_PG_QUERIES_H_
