// The controller's durable state, behind an interface that names no
// database: apps, releases, configs, hosts, rollouts and their tasks, the
// audit log, Alertmanager alerts and API tokens. OpenSqliteStore
// (controller/sqlite_store.h) opens the embedded SQLite implementation,
// OpenPgStore (controller/pg_store.h) the PostgreSQL one; OpenStore
// (controller/store_location.h) picks one for the controller's flags.
//
// Reads are on StoreReader, writes on StoreWriter. A Store offers both, each
// call atomic on its own; Store::Begin() returns a StoreTransaction that
// offers both too, and stores every write made through it at Commit() or
// none of them.
//
// Errors, besides those each method names: Unavailable when the database is
// busy or unreachable (try again later), DataLoss when a stored row does not
// parse, ResourceExhausted when the disk is full, Internal for anything else
// the database reports. Messages say what could not be read or written
// ("cannot update rollout '12': ...").
//
// Threads: every method may be called from any thread. Transactions are
// serializable: they take effect as if run one after another, and no other
// thread sees a transaction's writes before its Commit(); a read on the
// Store sees what was committed before it started. Both stores run
// transactions one at a time (PgStore across every process on its
// database) and make every other write wait while one is open, so keep
// them short: no network calls and no waiting on other threads inside.
// While a thread holds a StoreTransaction it must call only that
// transaction: a call on the Store, or a second Begin(), from the same
// thread would wait for the transaction it holds itself (both stores fail
// such a call with FailedPrecondition instead of hanging). A
// StoreTransaction is used, committed and destroyed on the thread that
// began it.
#ifndef FLEET_CONTROLLER_STORE_H_
#define FLEET_CONTROLLER_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fleet/v1/api.pb.h"
#include "fleet/v1/types.pb.h"

namespace fleet::controller {

// What the controller did about an Alertmanager alert (alerts.h).
enum class AlertOutcome {
  kActing,    // stored before acting; left so when the controller stopped meanwhile
  kAbort,     // the running rollout was aborted
  kRollback,  // a rollback was started
  kIgnored,   // nothing to do, for the reason in the message
  kFailed,    // the engine refused or failed; tried again at the next delivery
};

// "acting", "abort", "rollback", "ignored", "failed": the text stored and
// answered for each outcome.
absl::string_view AlertOutcomeName(AlertOutcome outcome);
// The outcome named `name` by AlertOutcomeName. InvalidArgument for any
// other text.
absl::StatusOr<AlertOutcome> ParseAlertOutcome(absl::string_view name);

// An Alertmanager alert the controller decided on: one per alert instance
// and status, keyed by (fingerprint, starts_at, status), stored before the
// controller acts so that a repeated delivery is recognized even after a
// restart.
struct AlertRecord {
  std::string fingerprint;  // Alertmanager's fingerprint of the label set
  std::string starts_at;    // startsAt in UTC to the millisecond (RFC 3339)
  std::string status;       // "firing" or "resolved"
  std::string app;          // the fleet_app label
  std::string alertname;
  int64_t received_at_ms = 0;
  AlertOutcome outcome = AlertOutcome::kActing;
  std::string rollout_id;  // the rollout aborted or the rollback started ("" = none)
  std::string message;     // what was decided, in words
};

// The hold of one app on one host (types.proto HostHold), held or released:
// a released hold is kept so that the local rollback it came from is
// recorded once, however often its agent reports it.
struct HostHoldRecord {
  std::string host_id;
  fleet::v1::HostHold hold;
  bool held = false;
};

// Every read. NotFound only where a method says so; lists of nothing are
// empty, not errors.
class StoreReader {
 public:
  virtual ~StoreReader() = default;

  // NotFound("unknown app 'x'") when absent.
  virtual absl::StatusOr<fleet::v1::App> GetApp(const std::string& name) = 0;
  // Sorted by name.
  virtual absl::StatusOr<std::vector<fleet::v1::App>> ListApps() = 0;

  // NotFound("unknown release web@v9") when absent.
  virtual absl::StatusOr<fleet::v1::Release> GetRelease(const std::string& app,
                                                        const std::string& version) = 0;
  // Push order, oldest first.
  virtual absl::StatusOr<std::vector<fleet::v1::Release>> ListReleases(const std::string& app) = 0;

  // NotFound("unknown config web@c9") when absent. Only the file list is
  // stored with a config, not the files' content.
  virtual absl::StatusOr<fleet::v1::ConfigRelease> GetConfig(const std::string& app,
                                                             const std::string& version) = 0;
  // Push order, oldest first.
  virtual absl::StatusOr<std::vector<fleet::v1::ConfigRelease>> ListConfigs(
      const std::string& app) = 0;

  // NotFound("unknown host 'x'") when absent. With its app states, sorted
  // by app.
  virtual absl::StatusOr<fleet::v1::Host> GetHost(const std::string& host_id) = 0;
  // Sorted by id, with app states. GetHost and ListHosts fill Host.holds
  // with the apps held on the host (sorted by app), not released ones.
  virtual absl::StatusOr<std::vector<fleet::v1::Host>> ListHosts() = 0;
  // Every hold recorded, held or released, sorted by host, then app.
  virtual absl::StatusOr<std::vector<HostHoldRecord>> ListHostHolds() = 0;
  // The state of `app` on every host that reported one, sorted by host id;
  // `connected` as stored (the agent hub knows better while it runs);
  // `hold` and `held` set where the app is held on the host.
  // Cheaper than ListHosts for one app: no labels, no other apps.
  virtual absl::StatusOr<std::vector<fleet::v1::HostAppStatus>> ListAppHosts(
      const std::string& app) = 0;

  // NotFound("unknown rollout 'x'") when absent. Tasks sorted by wave, then
  // host.
  virtual absl::StatusOr<fleet::v1::Rollout> GetRollout(const std::string& id) = 0;
  // Newest first; app "" = all apps; limit <= 0 = no limit. Tasks only
  // `with_tasks`.
  virtual absl::StatusOr<std::vector<fleet::v1::Rollout>> ListRollouts(const std::string& app,
                                                                       int limit,
                                                                       bool with_tasks) = 0;
  // Rollouts not in a terminal state (SUCCEEDED, ROLLED_BACK, FAILED),
  // oldest first, with tasks.
  virtual absl::StatusOr<std::vector<fleet::v1::Rollout>> ListActiveRollouts() = 0;

  // Newest first; app "" = all apps; limit <= 0 = no limit.
  virtual absl::StatusOr<std::vector<fleet::v1::Event>> ListEvents(const std::string& app,
                                                                   int limit) = 0;

  // The alert with this key. NotFound when none is stored; DataLoss when
  // its stored outcome is none that ParseAlertOutcome knows.
  virtual absl::StatusOr<AlertRecord> GetAlert(const std::string& fingerprint,
                                               const std::string& starts_at,
                                               const std::string& status) = 0;

  // The API token whose hash (lowercase hex sha256 of the token) is `hash`,
  // revoked or not. NotFound when none is; the message does not repeat the
  // hash.
  virtual absl::StatusOr<fleet::v1::TokenInfo> FindTokenByHash(const std::string& hash) = 0;
  // Every token, revoked ones included, in creation order.
  virtual absl::StatusOr<std::vector<fleet::v1::TokenInfo>> ListTokens() = 0;
  // Number of tokens, revoked ones included.
  virtual absl::StatusOr<int64_t> CountTokens() = 0;
};

// Every write. A failed write leaves nothing of itself stored.
class StoreWriter {
 public:
  virtual ~StoreWriter() = default;

  // Apps; `app.spec().name()` is the key. Writes spec, spec_yaml and
  // updated_at_ms; desired_version only when the app is new, desired_config
  // never (SetDesired owns both afterwards). Sets *created (may be null) to
  // whether the app was new. InvalidArgument when the spec has no name.
  virtual absl::Status UpsertApp(const fleet::v1::App& app, bool* created) = 0;
  // Sets desired_version (SUBJECT_RELEASE) or desired_config
  // (SUBJECT_CONFIG) of `app`. NotFound("unknown app 'x'") for an unknown
  // app.
  virtual absl::Status SetDesired(const std::string& app, fleet::v1::Subject subject,
                                  const std::string& version) = 0;

  // Stores app, version, sha256, size, created_at_ms, created_by, metadata
  // and signature. AlreadyExists("release web@v1 exists already") when
  // (app, version) is stored; NotFound when the app is unknown;
  // InvalidArgument when app or version is empty.
  virtual absl::Status InsertRelease(const fleet::v1::Release& release) = 0;
  // Like InsertRelease, for a config release; of `config.files()` only the
  // list (path, mode, size, secret) is stored.
  virtual absl::Status InsertConfig(const fleet::v1::ConfigRelease& config) = 0;

  // Writes id, labels, connected, last_seen_ms, agent_version and peer, and
  // replaces the host's app states with host.apps(). InvalidArgument when
  // the id is empty or an app is reported twice.
  virtual absl::Status UpsertHost(const fleet::v1::Host& host) = 0;
  // Sets connected and last_seen_ms = at_ms. NotFound("unknown host 'x'")
  // for an unknown host.
  virtual absl::Status SetHostConnected(const std::string& host_id, bool connected,
                                        int64_t at_ms) = 0;
  // Writes the state of one app on a host, leaving its other apps alone.
  // NotFound("unknown host 'x'") for an unknown host.
  virtual absl::Status UpsertHostAppState(const std::string& host_id,
                                          const fleet::v1::HostAppState& state) = 0;
  // Marks every host disconnected (at controller start).
  virtual absl::Status MarkAllHostsDisconnected() = 0;
  // Writes the hold of record.hold.app() on record.host_id, replacing the
  // one stored (one per host and app). NotFound("unknown host 'x'") for an
  // unknown host; InvalidArgument when the app is empty.
  virtual absl::Status PutHostHold(const HostHoldRecord& record) = 0;

  // Assigns rollout->id (decimal, increasing, never reused) and stores the
  // rollout and its tasks; rollout->id is left alone on failure. NotFound
  // when the app is unknown; InvalidArgument when a host has two tasks.
  virtual absl::Status CreateRollout(fleet::v1::Rollout* rollout) = 0;
  // Writes state, reason, finished_at_ms, from_version, plan, current_wave,
  // awaiting_promote, paused_by and pause_reason; the other fields are
  // fixed at creation. NotFound("unknown rollout 'x'") for an unknown
  // rollout.
  virtual absl::Status UpdateRollout(const fleet::v1::Rollout& rollout) = 0;
  // Writes every field of the task; (rollout_id, task.host_id()) is the key.
  // NotFound when that task does not exist.
  virtual absl::Status UpdateTask(const std::string& rollout_id,
                                  const fleet::v1::HostTask& task) = 0;
  // UpdateTask for each of `tasks`, all or none: NotFound when one of them
  // does not exist, and then none is written. Empty `tasks` write nothing.
  virtual absl::Status UpdateTasks(const std::string& rollout_id,
                                   const std::vector<fleet::v1::HostTask>& tasks) = 0;

  // Appends `event` to the audit log and assigns event->id (increasing).
  virtual absl::Status AddEvent(fleet::v1::Event* event) = 0;

  // Stores `alert`. AlreadyExists when its key is stored already (that row
  // is left alone).
  virtual absl::Status InsertAlert(const AlertRecord& alert) = 0;
  // Writes outcome, rollout_id and message of the alert with alert's key.
  // NotFound when none is stored.
  virtual absl::Status UpdateAlert(const AlertRecord& alert) = 0;

  // Stores `token` (id, role, app, description, created_by, created_at_ms,
  // revoked_at_ms as given) under `hash`, the lowercase hex sha256 of the
  // token; the token itself is never stored. AlreadyExists when its id or
  // hash is stored already; InvalidArgument when id or hash is empty or the
  // role is ROLE_UNSPECIFIED.
  virtual absl::Status InsertToken(const fleet::v1::TokenInfo& token, const std::string& hash) = 0;
  // Sets revoked_at_ms = at_ms unless the token is revoked already (then the
  // first revocation stays) and returns the token as stored afterwards.
  // Tokens are never deleted. NotFound("unknown API token 'x'") when no
  // token has this id.
  virtual absl::StatusOr<fleet::v1::TokenInfo> RevokeToken(const std::string& id,
                                                           int64_t at_ms) = 0;
};

// Reads and writes that are stored together at Commit(), or not at all.
// Reads see the transaction's own writes. Created by Store::Begin().
//
// A read that fails with NotFound leaves the transaction usable; after any
// other failed call (every failed write included) the transaction is rolled
// back and unusable: later calls fail with FailedPrecondition and Commit()
// with Aborted, naming the first failure. Destruction without a successful
// Commit() rolls back.
class StoreTransaction : public StoreReader, public StoreWriter {
 public:
  // Stores every write of the transaction. On failure nothing of it is
  // stored. The transaction is over either way: later calls fail with
  // FailedPrecondition, a second Commit() with FailedPrecondition after a
  // successful one and with Aborted after a failed one.
  virtual absl::Status Commit() = 0;
};

// The store itself. Each call on it is atomic on its own: a write that
// fails leaves nothing of itself stored, and a read sees no other thread's
// transaction half done.
class Store : public StoreReader, public StoreWriter {
 public:
  // Starts a transaction; the calling thread must hold no other one (see
  // the top of this file). Waits while another thread's transaction is
  // open. Unavailable when the database stays busy (another process holds
  // it); then no transaction is open.
  virtual absl::StatusOr<std::unique_ptr<StoreTransaction>> Begin() = 0;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_STORE_H_
