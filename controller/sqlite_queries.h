// Every read and write of the Store interface as SQL on one connection, with
// the contracts of store.h. No locking and no transaction control: SqliteStore
// holds its mutex around every call and runs writes inside a transaction, so
// a write that fails part way is rolled back there. The schema is documented
// in sqlite_schema.cc.
//
// Implemented in sqlite_catalog.cc (apps, releases, configs), sqlite_hosts.cc,
// sqlite_holds.cc,
// sqlite_rollouts.cc, sqlite_events.cc (events, alerts) and
// sqlite_tokens.cc.
#ifndef FLEET_CONTROLLER_SQLITE_QUERIES_H_
#define FLEET_CONTROLLER_SQLITE_QUERIES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "controller/sqlite_statement.h"
#include "controller/store.h"

namespace fleet::controller {

class SqliteQueries final : public StoreReader, public StoreWriter {
 public:
  // `db` is borrowed and must outlive this object.
  explicit SqliteQueries(SqliteConnection* db) : db_(db) {}

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
  // Adds to each of `hosts` the apps held on it (sorted by app).
  absl::Status FillHolds(std::vector<fleet::v1::Host*> hosts);
  // Sets hold and held of each of `hosts` (ListAppHosts) where `app` is
  // held.
  absl::Status FillAppHolds(const std::string& app,
                            std::vector<fleet::v1::HostAppStatus>* hosts);
  // Fills the tasks of each rollout, sorted by wave, then host.
  absl::Status LoadTasks(std::vector<fleet::v1::Rollout>* rollouts);
  // Writes one task with the prepared UPDATE `stmt`; NotFound when the task
  // does not exist.
  absl::Status WriteTask(SqliteStatement& stmt, int64_t rollout_id,
                         const std::string& rollout_label, const fleet::v1::HostTask& task);

  SqliteConnection* const db_;
};

// SQLite reads LIMIT -1 as "no limit".
inline int64_t SqlLimit(int limit) { return limit > 0 ? limit : -1; }

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_SQLITE_QUERIES_H_
