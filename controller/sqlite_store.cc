#include "controller/sqlite_store.h"

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "controller/sqlite_queries.h"
#include "controller/sqlite_statement.h"

namespace fleet::controller {
namespace {

// Connections that serve reads besides the writing one: API reads from
// several threads at once, on two cores.
constexpr int kReaderConnections = 2;

using fleet::v1::App;
using fleet::v1::ConfigRelease;
using fleet::v1::Event;
using fleet::v1::Host;
using fleet::v1::HostAppState;
using fleet::v1::HostTask;
using fleet::v1::Release;
using fleet::v1::Rollout;
using fleet::v1::TokenInfo;

const absl::Status& StatusOf(const absl::Status& status) { return status; }
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
  absl::StatusOr<App> GetApp(const std::string& name) override {
    return self().Read([&](auto& q) { return q.GetApp(name); });
  }
  absl::StatusOr<std::vector<App>> ListApps() override {
    return self().Read([&](auto& q) { return q.ListApps(); });
  }
  absl::StatusOr<Release> GetRelease(const std::string& app, const std::string& version) override {
    return self().Read([&](auto& q) { return q.GetRelease(app, version); });
  }
  absl::StatusOr<std::vector<Release>> ListReleases(const std::string& app) override {
    return self().Read([&](auto& q) { return q.ListReleases(app); });
  }
  absl::StatusOr<ConfigRelease> GetConfig(const std::string& app,
                                          const std::string& version) override {
    return self().Read([&](auto& q) { return q.GetConfig(app, version); });
  }
  absl::StatusOr<std::vector<ConfigRelease>> ListConfigs(const std::string& app) override {
    return self().Read([&](auto& q) { return q.ListConfigs(app); });
  }
  absl::StatusOr<Host> GetHost(const std::string& host_id) override {
    return self().Read([&](auto& q) { return q.GetHost(host_id); });
  }
  absl::StatusOr<std::vector<Host>> ListHosts() override {
    return self().Read([&](auto& q) { return q.ListHosts(); });
  }
  absl::StatusOr<std::vector<HostHoldRecord>> ListHostHolds() override {
    return self().Read([&](auto& q) { return q.ListHostHolds(); });
  }
  absl::StatusOr<std::vector<fleet::v1::HostAppStatus>> ListAppHosts(
      const std::string& app) override {
    return self().Read([&](auto& q) { return q.ListAppHosts(app); });
  }
  absl::StatusOr<Rollout> GetRollout(const std::string& id) override {
    return self().Read([&](auto& q) { return q.GetRollout(id); });
  }
  absl::StatusOr<std::vector<Rollout>> ListRollouts(const std::string& app, int limit,
                                                    bool with_tasks) override {
    return self().Read([&](auto& q) { return q.ListRollouts(app, limit, with_tasks); });
  }
  absl::StatusOr<std::vector<Rollout>> ListActiveRollouts() override {
    return self().Read([&](auto& q) { return q.ListActiveRollouts(); });
  }
  absl::StatusOr<std::vector<Event>> ListEvents(const std::string& app, int limit) override {
    return self().Read([&](auto& q) { return q.ListEvents(app, limit); });
  }
  absl::StatusOr<AlertRecord> GetAlert(const std::string& fingerprint, const std::string& starts_at,
                                       const std::string& status) override {
    return self().Read([&](auto& q) { return q.GetAlert(fingerprint, starts_at, status); });
  }
  absl::StatusOr<TokenInfo> FindTokenByHash(const std::string& hash) override {
    return self().Read([&](auto& q) { return q.FindTokenByHash(hash); });
  }
  absl::StatusOr<std::vector<TokenInfo>> ListTokens() override {
    return self().Read([&](auto& q) { return q.ListTokens(); });
  }
  absl::StatusOr<int64_t> CountTokens() override {
    return self().Read([&](auto& q) { return q.CountTokens(); });
  }

  absl::Status UpsertApp(const App& app, bool* created) override {
    return self().Write([&](auto& q) { return q.UpsertApp(app, created); });
  }
  absl::Status SetDesired(const std::string& app, fleet::v1::Subject subject,
                          const std::string& version) override {
    return self().Write([&](auto& q) { return q.SetDesired(app, subject, version); });
  }
  absl::Status InsertRelease(const Release& release) override {
    return self().Write([&](auto& q) { return q.InsertRelease(release); });
  }
  absl::Status InsertConfig(const ConfigRelease& config) override {
    return self().Write([&](auto& q) { return q.InsertConfig(config); });
  }
  absl::Status UpsertHost(const Host& host) override {
    return self().Write([&](auto& q) { return q.UpsertHost(host); });
  }
  absl::Status SetHostConnected(const std::string& host_id, bool connected,
                                int64_t at_ms) override {
    return self().Write([&](auto& q) { return q.SetHostConnected(host_id, connected, at_ms); });
  }
  absl::Status UpsertHostAppState(const std::string& host_id, const HostAppState& state) override {
    return self().Write([&](auto& q) { return q.UpsertHostAppState(host_id, state); });
  }
  absl::Status MarkAllHostsDisconnected() override {
    return self().Write([&](auto& q) { return q.MarkAllHostsDisconnected(); });
  }
  absl::Status PutHostHold(const HostHoldRecord& record) override {
    return self().Write([&](auto& q) { return q.PutHostHold(record); });
  }
  absl::Status CreateRollout(Rollout* rollout) override {
    return self().Write([&](auto& q) { return q.CreateRollout(rollout); });
  }
  absl::Status UpdateRollout(const Rollout& rollout) override {
    return self().Write([&](auto& q) { return q.UpdateRollout(rollout); });
  }
  absl::Status UpdateTask(const std::string& rollout_id, const HostTask& task) override {
    return self().Write([&](auto& q) { return q.UpdateTask(rollout_id, task); });
  }
  absl::Status UpdateTasks(const std::string& rollout_id,
                           const std::vector<HostTask>& tasks) override {
    return self().Write([&](auto& q) { return q.UpdateTasks(rollout_id, tasks); });
  }
  absl::Status AddEvent(Event* event) override {
    return self().Write([&](auto& q) { return q.AddEvent(event); });
  }
  absl::Status InsertAlert(const AlertRecord& alert) override {
    return self().Write([&](auto& q) { return q.InsertAlert(alert); });
  }
  absl::Status UpdateAlert(const AlertRecord& alert) override {
    return self().Write([&](auto& q) { return q.UpdateAlert(alert); });
  }
  absl::Status InsertToken(const TokenInfo& token, const std::string& hash) override {
    return self().Write([&](auto& q) { return q.InsertToken(token, hash); });
  }
  absl::StatusOr<TokenInfo> RevokeToken(const std::string& id, int64_t at_ms) override {
    return self().Write([&](auto& q) { return q.RevokeToken(id, at_ms); });
  }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
};

// A read-only connection of its own, for reads outside transactions: in WAL
// mode it reads the last committed state while a transaction is open on the
// writing connection, so a read never waits for a commit's fsync.
struct SqliteReader {
  explicit SqliteReader(std::unique_ptr<SqliteConnection> connection)
      : db(std::move(connection)), queries(db.get()) {}
  absl::Mutex mu;
  const std::unique_ptr<SqliteConnection> db ABSL_PT_GUARDED_BY(mu);
  SqliteQueries queries ABSL_GUARDED_BY(mu);
};

// Reads on their own connections, one at a time on each. Every read is one
// SQLite read transaction, so a read of several statements (a rollout and its
// tasks) sees one committed state.
class SqliteReaders {
 public:
  explicit SqliteReaders(std::vector<std::unique_ptr<SqliteReader>> readers)
      : readers_(std::move(readers)) {}
  bool empty() const { return readers_.empty(); }

  template <typename Fn>
  auto Read(Fn fn) -> decltype(fn(std::declval<SqliteQueries&>())) {
    SqliteReader& reader = Acquire();
    absl::Cleanup release = [&reader]() ABSL_NO_THREAD_SAFETY_ANALYSIS { reader.mu.Unlock(); };
    return Snapshot(reader, fn);
  }

 private:
  // A free reader, or the next one in turn when all are busy; locked.
  SqliteReader& Acquire() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (auto& reader : readers_) {
      if (reader->mu.TryLock()) return *reader;
    }
    SqliteReader& reader = *readers_[next_.fetch_add(1, std::memory_order_relaxed) % readers_.size()];
    reader.mu.Lock();
    return reader;
  }
  template <typename Fn>
  static auto Snapshot(SqliteReader& reader, Fn fn) ABSL_NO_THREAD_SAFETY_ANALYSIS
      -> decltype(fn(std::declval<SqliteQueries&>())) {
    FLEET_RETURN_IF_ERROR(reader.db->Exec("BEGIN"));
    auto result = fn(reader.queries);
    // A read transaction has nothing to keep; ending it cannot lose data.
    if (reader.db->InTransaction()) reader.db->Exec("ROLLBACK").IgnoreError();
    return result;
  }

  const std::vector<std::unique_ptr<SqliteReader>> readers_;
  std::atomic<size_t> next_{0};
};

class SqliteStore final : public ForwardingStore<Store, SqliteStore> {
 public:
  SqliteStore(std::unique_ptr<SqliteConnection> db,
              std::vector<std::unique_ptr<SqliteReader>> readers)
      : db_(std::move(db)), queries_(db_.get()), readers_(std::move(readers)) {}

  absl::StatusOr<std::unique_ptr<StoreTransaction>> Begin() override;

  // A read runs on a reader connection when the database has them (a
  // file); otherwise under the mutex, in SQLite's autocommit mode, with no
  // other thread's transaction open meanwhile.
  template <typename Fn>
  auto Read(Fn fn) -> decltype(fn(std::declval<SqliteQueries&>())) {
    FLEET_RETURN_IF_ERROR(CheckNotInOwnTransaction());
    if (!readers_.empty()) return readers_.Read(fn);
    absl::MutexLock lock(&mu_);
    return fn(queries_);
  }
  // A write runs in a transaction of its own.
  template <typename Fn>
  auto Write(Fn fn) -> decltype(fn(std::declval<StoreTransaction&>())) {
    absl::StatusOr<std::unique_ptr<StoreTransaction>> txn = Begin();
    if (!txn.ok()) return txn.status();
    auto result = fn(**txn);
    if (!StatusOf(result).ok()) return result;  // and the transaction rolled back
    absl::Status committed = (*txn)->Commit();
    if (!committed.ok()) return committed;
    return result;
  }

 private:
  friend class SqliteTransaction;

  // FailedPrecondition when the calling thread holds a transaction: taking
  // the mutex would wait for that transaction forever.
  absl::Status CheckNotInOwnTransaction() const;
  // Ends the open transaction with COMMIT (`commit`) or ROLLBACK and
  // releases the mutex. A failed COMMIT is rolled back.
  absl::Status EndTransaction(bool commit) ABSL_UNLOCK_FUNCTION(mu_);

  absl::Mutex mu_;
  // The thread whose transaction holds mu_; std::thread::id() when none.
  std::atomic<std::thread::id> transaction_owner_{};
  const std::unique_ptr<SqliteConnection> db_ ABSL_PT_GUARDED_BY(mu_);
  SqliteQueries queries_ ABSL_GUARDED_BY(mu_);
  SqliteReaders readers_;
};

// Holds the store's mutex from its creation (by Begin) until it commits,
// fails or is destroyed; see StoreTransaction for the contract.
class SqliteTransaction final : public ForwardingStore<StoreTransaction, SqliteTransaction> {
 public:
  explicit SqliteTransaction(SqliteStore* store) : store_(store) {}
  ~SqliteTransaction() override {
    if (state_ == State::kOpen) store_->EndTransaction(/*commit=*/false).IgnoreError();
  }
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;

  absl::Status Commit() override;

  // A read that finds nothing leaves the transaction usable.
  template <typename Fn>
  auto Read(Fn fn) -> decltype(fn(std::declval<SqliteQueries&>())) {
    FLEET_RETURN_IF_ERROR(CheckUsable());
    store_->mu_.AssertHeld();
    auto result = fn(store_->queries_);
    const absl::Status& st = StatusOf(result);
    if (!st.ok() && !absl::IsNotFound(st)) Fail(st);
    return result;
  }
  template <typename Fn>
  auto Write(Fn fn) -> decltype(fn(std::declval<SqliteQueries&>())) {
    FLEET_RETURN_IF_ERROR(CheckUsable());
    store_->mu_.AssertHeld();
    auto result = fn(store_->queries_);
    if (!StatusOf(result).ok()) Fail(StatusOf(result));
    return result;
  }

 private:
  enum class State { kOpen, kFailed, kCommitted };

  absl::Status CheckUsable() const;
  // Rolls back, releases the store, and remembers `cause` for later calls.
  void Fail(const absl::Status& cause);

  SqliteStore* const store_;
  State state_ = State::kOpen;
  absl::Status failure_;  // the first failure, in kFailed
};

absl::StatusOr<std::unique_ptr<StoreTransaction>> SqliteStore::Begin()
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // the mutex passes to the transaction
  FLEET_RETURN_IF_ERROR(CheckNotInOwnTransaction());
  mu_.Lock();
  absl::Status st = db_->Exec("BEGIN IMMEDIATE");
  if (!st.ok()) {
    mu_.Unlock();
    return Annotate(st, absl::StrCat("cannot begin transaction on ", db_->path()));
  }
  transaction_owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  return std::make_unique<SqliteTransaction>(this);
}

absl::Status SqliteStore::CheckNotInOwnTransaction() const {
  // Only this thread ever sets its own id, so a relaxed load suffices.
  if (transaction_owner_.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      "this thread holds a store transaction: call the transaction, not the store (a call on "
      "the store would wait for that transaction forever)");
}

absl::Status SqliteStore::EndTransaction(bool commit) {
  mu_.AssertHeld();
  absl::Status st = commit ? db_->Exec("COMMIT") : absl::OkStatus();
  // After some failures (SQLITE_FULL, I/O errors) SQLite has rolled back
  // already.
  if ((!commit || !st.ok()) && db_->InTransaction()) db_->Exec("ROLLBACK").IgnoreError();
  if (!st.ok()) st = Annotate(st, absl::StrCat("cannot commit transaction on ", db_->path()));
  transaction_owner_.store(std::thread::id(), std::memory_order_relaxed);
  mu_.Unlock();
  return st;
}

absl::Status SqliteTransaction::Commit() {
  if (state_ == State::kFailed) {
    return absl::AbortedError(absl::StrCat(
        "store transaction was rolled back after an earlier failure: ", failure_.message()));
  }
  FLEET_RETURN_IF_ERROR(CheckUsable());
  absl::Status st = store_->EndTransaction(/*commit=*/true);
  if (!st.ok()) {
    state_ = State::kFailed;
    failure_ = st;
    return st;
  }
  state_ = State::kCommitted;
  return absl::OkStatus();
}

absl::Status SqliteTransaction::CheckUsable() const {
  switch (state_) {
    case State::kOpen:
      return absl::OkStatus();
    case State::kCommitted:
      return absl::FailedPreconditionError(
          "store transaction was committed already; begin a new one");
    case State::kFailed:
      return absl::FailedPreconditionError(
          absl::StrCat("store transaction was rolled back after an earlier failure (",
                       failure_.message(), "); begin a new one"));
  }
  return absl::InternalError("store transaction in an unknown state");
}

void SqliteTransaction::Fail(const absl::Status& cause) {
  state_ = State::kFailed;
  failure_ = cause;
  store_->EndTransaction(/*commit=*/false).IgnoreError();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  FLEET_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> db, SqliteConnection::Open(path));
  FLEET_RETURN_IF_ERROR(PrepareSqliteDatabase(db.get()));
  std::vector<std::unique_ptr<SqliteReader>> readers;
  // In-memory and temporary databases are private to their one connection.
  if (!path.empty() && path != ":memory:") {
    for (int i = 0; i < kReaderConnections; ++i) {
      FLEET_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> reader, SqliteConnection::Open(path));
      absl::Status st = reader->Exec("PRAGMA query_only = ON");
      if (!st.ok()) return Annotate(st, absl::StrCat("cannot open a reader on ", path));
      readers.push_back(std::make_unique<SqliteReader>(std::move(reader)));
    }
  }
  return std::make_unique<SqliteStore>(std::move(db), std::move(readers));
}

}  // namespace fleet::controller
