// The controller's durable state in SQLite.
//
// One connection in WAL mode with synchronous=FULL. The schema is migrated by
// PRAGMA user_version, one step per version, each in one transaction; a
// database newer than this code is refused. Tables are documented at the top
// of store.cc.
//
// Thread safety: every method may be called from any thread; calls are
// serialized on one recursive mutex. A Transaction holds that mutex from its
// construction to Commit() or destruction, so the calls a thread makes while
// it holds a Transaction are atomic with respect to every other thread.
#ifndef FLEET_CONTROLLER_STORE_H_
#define FLEET_CONTROLLER_STORE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/rollout_state.h"
#include "fleet/v1/api.pb.h"
#include "fleet/v1/types.pb.h"

struct sqlite3;

namespace fleet::controller {

class Store {
 public:
  static constexpr int kSchemaVersion = 5;

  // Opens or creates the database at `path` and migrates it. Fails with
  // FailedPrecondition when the database's user_version is newer than
  // kSchemaVersion.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit()
  // succeeded. Not nestable: a second Transaction on the same thread fails
  // with FailedPrecondition and leaves the first one alone. While a
  // Transaction whose BEGIN failed is alive, every Store call fails.
  class Transaction {
   public:
    explicit Transaction(Store* store);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    // The status of BEGIN; when not OK every later call fails too.
    const absl::Status& begin_status() const { return begin_status_; }
    absl::Status Commit();

   private:
    Store* store_;
    std::unique_lock<std::recursive_mutex> lock_;
    absl::Status begin_status_;
    bool done_ = false;
  };

  // Apps. `app.spec().name()` is the key. Sets *created when it was new.
  // Writes spec, spec_yaml and updated_at_ms; desired_version only when the
  // app is new (afterwards SetDesiredVersion owns it).
  absl::Status UpsertApp(const fleet::v1::App& app, bool* created);
  // NotFound("unknown app 'x'") when absent.
  absl::StatusOr<fleet::v1::App> GetApp(const std::string& name);
  absl::StatusOr<std::vector<fleet::v1::App>> ListApps();
  // NotFound for an unknown app.
  absl::Status SetDesiredVersion(const std::string& app, const std::string& version);
  // Sets desired_version (SUBJECT_RELEASE) or desired_config (SUBJECT_CONFIG).
  // NotFound for an unknown app.
  absl::Status SetDesired(const std::string& app, fleet::v1::Subject subject,
                          const std::string& version);

  // Releases. AlreadyExists when (app, version) exists; NotFound when the app
  // is unknown.
  absl::Status InsertRelease(const fleet::v1::Release& release);
  // NotFound("unknown release web@v9") when absent.
  absl::StatusOr<fleet::v1::Release> GetRelease(const std::string& app,
                                                const std::string& version);
  // Oldest first.
  absl::StatusOr<std::vector<fleet::v1::Release>> ListReleases(const std::string& app);

  // Config releases. AlreadyExists when (app, version) exists; NotFound when
  // the app is unknown. Only the file list of `files` is stored (no content).
  absl::Status InsertConfig(const fleet::v1::ConfigRelease& config);
  // NotFound("unknown config web@c9") when absent.
  absl::StatusOr<fleet::v1::ConfigRelease> GetConfig(const std::string& app,
                                                     const std::string& version);
  // Push order, oldest first.
  absl::StatusOr<std::vector<fleet::v1::ConfigRelease>> ListConfigs(const std::string& app);

  // Hosts. UpsertHost writes id, labels, connected, last_seen_ms,
  // agent_version and peer, and replaces the host's app states with
  // host.apps().
  absl::Status UpsertHost(const fleet::v1::Host& host);
  // Sets connected and last_seen_ms = at_ms. NotFound for an unknown host.
  absl::Status SetHostConnected(const std::string& host_id, bool connected, int64_t at_ms);
  // NotFound for an unknown host.
  absl::Status UpsertHostAppState(const std::string& host_id,
                                  const fleet::v1::HostAppState& state);
  // NotFound("unknown host 'x'") when absent. Includes app states.
  absl::StatusOr<fleet::v1::Host> GetHost(const std::string& host_id);
  // Sorted by id, with app states.
  absl::StatusOr<std::vector<fleet::v1::Host>> ListHosts();
  // Marks every host disconnected (at controller start).
  absl::Status MarkAllHostsDisconnected();

  // Rollouts. CreateRollout assigns rollout->id (decimal, increasing) and
  // inserts the rollout and its tasks. NotFound when the app is unknown.
  absl::Status CreateRollout(fleet::v1::Rollout* rollout);
  // Writes state, reason, finished_at_ms, from_version, plan, current_wave,
  // awaiting_promote and paused_by.
  // NotFound for an unknown rollout.
  absl::Status UpdateRollout(const fleet::v1::Rollout& rollout);
  // Writes every field of the task; (rollout_id, host_id) is the key.
  // NotFound when that task does not exist.
  absl::Status UpdateTask(const std::string& rollout_id, const fleet::v1::HostTask& task);
  // NotFound("unknown rollout 'x'") when absent. Tasks sorted by wave, host.
  absl::StatusOr<fleet::v1::Rollout> GetRollout(const std::string& id);
  // Newest first; app "" = all apps; limit <= 0 = no limit.
  absl::StatusOr<std::vector<fleet::v1::Rollout>> ListRollouts(const std::string& app,
                                                               int limit,
                                                               bool with_tasks);
  // Rollouts not in a terminal state (SUCCEEDED, ROLLED_BACK, FAILED), oldest first, with tasks.
  absl::StatusOr<std::vector<fleet::v1::Rollout>> ListActiveRollouts();

  // Events. Assigns event->id.
  absl::Status AddEvent(fleet::v1::Event* event);
  // Newest first; app "" = all apps; limit <= 0 = no limit.
  absl::StatusOr<std::vector<fleet::v1::Event>> ListEvents(const std::string& app, int limit);

  // Alertmanager alerts the controller decided on (v4): one row per alert
  // instance and status, keyed by (fingerprint, starts_at, status), written
  // before the controller acts, so that a repeated delivery is recognized
  // even after a restart.
  struct AlertRecord {
    std::string fingerprint;  // Alertmanager's fingerprint of the label set
    std::string starts_at;    // startsAt in UTC to the millisecond (RFC 3339)
    std::string status;       // "firing" or "resolved"
    std::string app;          // the fleet_app label
    std::string alertname;
    int64_t received_at_ms = 0;
    // "acting" while the controller acts on it, then what it did: "abort",
    // "rollback", "ignored" or "failed".
    std::string outcome;
    std::string rollout_id;  // the rollout aborted or the rollback started ("" = none)
    std::string message;     // what was decided, in words
  };
  // Inserts `alert`. AlreadyExists when its key is stored already (the row
  // is left alone).
  absl::Status InsertAlert(const AlertRecord& alert);
  // NotFound when no row has this key.
  absl::StatusOr<AlertRecord> GetAlert(const std::string& fingerprint, const std::string& starts_at,
                                       const std::string& status);
  // Writes outcome, rollout_id and message of the row with alert's key.
  // NotFound when there is none.
  absl::Status UpdateAlert(const AlertRecord& alert);

  // API tokens (v5). Only the sha256 of a token is stored (`hash`, lowercase
  // hex); rows are never deleted, RevokeToken marks them.
  // Inserts `token` (id, role, app, description, created_by, created_at_ms;
  // revoked_at_ms is stored as given). AlreadyExists when its id or hash is
  // stored already; InvalidArgument when id or hash is empty or the role is
  // ROLE_UNSPECIFIED.
  absl::Status InsertToken(const fleet::v1::TokenInfo& token, const std::string& hash);
  // The token whose hash is `hash`, revoked or not. NotFound when none is.
  absl::StatusOr<fleet::v1::TokenInfo> FindTokenByHash(const std::string& hash);
  // Every token, revoked ones included, in creation order.
  absl::StatusOr<std::vector<fleet::v1::TokenInfo>> ListTokens();
  // Sets revoked_at_ms = at_ms unless the token is revoked already (then the
  // first revocation stays) and returns the token as stored afterwards.
  // NotFound("unknown API token 'x'") when no token has this id.
  absl::StatusOr<fleet::v1::TokenInfo> RevokeToken(const std::string& id, int64_t at_ms);
  // Number of tokens, revoked ones included.
  absl::StatusOr<int64_t> CountTokens();

 private:
  Store(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  absl::Status Migrate();
  absl::Status Exec(const std::string& sql);
  // Fails when the calling thread's Transaction is unusable: its BEGIN
  // failed, or SQLite rolled it back after an error.
  absl::Status CheckTransaction();

  // The Transaction alive on the thread that holds mu_, if any.
  enum class TransactionState { kNone, kOpen, kBeginFailed };

  std::recursive_mutex mu_;
  sqlite3* db_;
  const std::string path_;
  TransactionState transaction_state_ = TransactionState::kNone;  // guarded by mu_
  absl::Status transaction_begin_status_;                         // guarded by mu_
};


}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_STORE_H_
