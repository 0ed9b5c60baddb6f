#include "controller/pg_store.h"

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "controller/forwarding_store.h"
#include "controller/pg_connection.h"
#include "controller/pg_queries.h"

namespace fleet::controller {
namespace {

// Connections that serve reads besides the writing one, as SqliteStore has.
constexpr int kReaderConnections = 2;
// Runs of one write on the store before its serialization failure (or
// dropped connection) is returned.
constexpr int kWriteAttempts = 5;

// Whether a failure of a statement before COMMIT may be run again in a new
// transaction: nothing of it was stored, and trying again can succeed.
bool Retryable(const absl::Status& status, const PgConnection& db) {
  if (absl::IsAborted(status)) return true;  // serialization failure, deadlock
  return absl::IsUnavailable(status) && !db.Healthy();
}

// A connection of its own for reads outside transactions. `mu` guards the
// connection and its queries; PgReaders locks it around each read.
struct PgReader {
  explicit PgReader(std::unique_ptr<PgConnection> connection)
      : db(std::move(connection)), queries(db.get()) {}
  absl::Mutex mu;
  const std::unique_ptr<PgConnection> db;
  PgQueries queries;
};

class PgReaders {
 public:
  explicit PgReaders(std::vector<std::unique_ptr<PgReader>> readers)
      : readers_(std::move(readers)) {}

  template <typename Fn>
  auto Read(Fn fn) -> decltype(fn(std::declval<PgQueries&>())) {
    PgReader& reader = Acquire();
    absl::Cleanup release = [&reader]() ABSL_NO_THREAD_SAFETY_ANALYSIS { reader.mu.Unlock(); };
    auto result = Snapshot(reader, fn);
    if (StatusOf(result).ok() || reader.db->Healthy()) return result;
    // The server or the network dropped the connection: once more on a new one.
    FLEET_RETURN_IF_ERROR(Reconnect(reader));
    return Snapshot(reader, fn);
  }

 private:
  PgReader& Acquire() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (auto& reader : readers_) {
      if (reader->mu.TryLock()) return *reader;
    }
    PgReader& reader = *readers_[next_.fetch_add(1, std::memory_order_relaxed) % readers_.size()];
    reader.mu.Lock();
    return reader;
  }
  static absl::Status Reconnect(PgReader& reader) { return reader.db->Reconnect(); }
  template <typename Fn>
  static auto Snapshot(PgReader& reader, Fn fn) -> decltype(fn(std::declval<PgQueries&>())) {
    if (!reader.db->Healthy()) FLEET_RETURN_IF_ERROR(reader.db->Reconnect());
    FLEET_RETURN_IF_ERROR(reader.db->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    auto result = fn(reader.queries);
    // A read transaction has nothing to keep; ending it cannot lose data.
    if (reader.db->InTransaction()) reader.db->Exec("ROLLBACK").IgnoreError();
    return result;
  }

  const std::vector<std::unique_ptr<PgReader>> readers_;
  std::atomic<size_t> next_{0};
};

class PgTransaction;

class PgStore final : public ForwardingStore<Store, PgStore> {
 public:
  PgStore(std::unique_ptr<PgConnection> db, std::vector<std::unique_ptr<PgReader>> readers)
      : db_(std::move(db)), queries_(db_.get()), readers_(std::move(readers)) {}

  absl::StatusOr<std::unique_ptr<StoreTransaction>> Begin() override;

  template <typename Fn>
  auto Read(Fn fn) -> decltype(fn(std::declval<PgQueries&>())) {
    FLEET_RETURN_IF_ERROR(CheckNotInOwnTransaction());
    return readers_.Read(fn);
  }
  // A write runs in a transaction of its own, again after a failure that
  // left nothing stored and may pass the next time.
  template <typename Fn>
  auto Write(Fn fn) -> decltype(fn(std::declval<StoreTransaction&>()));

 private:
  friend class PgTransaction;

  absl::StatusOr<std::unique_ptr<PgTransaction>> BeginTransaction();
  absl::Status CheckNotInOwnTransaction() const;
  // BEGIN, lock timeout and write_lock on the locked connection; reconnects
  // first when the connection dropped.
  absl::Status StartOnConnection() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the open transaction with COMMIT (`commit`) or ROLLBACK and
  // releases the mutex. A failed COMMIT is rolled back.
  absl::Status EndTransaction(bool commit) ABSL_UNLOCK_FUNCTION(mu_);

  absl::Mutex mu_;
  std::atomic<std::thread::id> transaction_owner_{};
  const std::unique_ptr<PgConnection> db_ ABSL_PT_GUARDED_BY(mu_);
  PgQueries queries_ ABSL_GUARDED_BY(mu_);
  PgReaders readers_;
};

class PgTransaction final : public ForwardingStore<StoreTransaction, PgTransaction> {
 public:
  explicit PgTransaction(PgStore* store) : store_(store) {}
  ~PgTransaction() override {
    if (state_ == State::kOpen) store_->EndTransaction(/*commit=*/false).IgnoreError();
  }
  PgTransaction(const PgTransaction&) = delete;
  PgTransaction& operator=(const PgTransaction&) = delete;

  absl::Status Commit() override;

  template <typename Fn>
  auto Read(Fn fn) -> decltype(fn(std::declval<PgQueries&>())) {
    FLEET_RETURN_IF_ERROR(CheckUsable());
    store_->mu_.AssertHeld();
    auto result = fn(store_->queries_);
    const absl::Status& st = StatusOf(result);
    if (!st.ok() && !absl::IsNotFound(st)) Fail(st);
    return result;
  }
  template <typename Fn>
  auto Write(Fn fn) -> decltype(fn(std::declval<PgQueries&>())) {
    FLEET_RETURN_IF_ERROR(CheckUsable());
    store_->mu_.AssertHeld();
    auto result = fn(store_->queries_);
    if (!StatusOf(result).ok()) Fail(StatusOf(result));
    return result;
  }

  // Whether the first failure left nothing stored and may pass in a new
  // transaction (see Retryable).
  bool retryable() const { return retryable_; }

 private:
  enum class State { kOpen, kFailed, kCommitted };

  absl::Status CheckUsable() const;
  void Fail(const absl::Status& cause);

  PgStore* const store_;
  State state_ = State::kOpen;
  absl::Status failure_;
  bool retryable_ = false;
};

template <typename Fn>
auto PgStore::Write(Fn fn) -> decltype(fn(std::declval<StoreTransaction&>())) {
  absl::Duration pause = absl::Milliseconds(10);
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<std::unique_ptr<PgTransaction>> txn = BeginTransaction();
    if (!txn.ok()) return txn.status();
    auto result = fn(static_cast<StoreTransaction&>(**txn));
    absl::Status st = StatusOf(result);
    if (st.ok()) st = (*txn)->Commit();
    if (st.ok()) return result;
    if (!(*txn)->retryable() || attempt == kWriteAttempts) {
      if (!StatusOf(result).ok()) return result;
      return st;
    }
    txn->reset();
    absl::SleepFor(pause);
    pause = pause * 2;
  }
}

absl::Status PgStore::StartOnConnection() {
  if (!db_->Healthy()) FLEET_RETURN_IF_ERROR(db_->Reconnect());
  absl::Status st = db_->Exec("BEGIN ISOLATION LEVEL SERIALIZABLE");
  if (!st.ok() && !db_->Healthy()) {
    // Dropped since its last use; nothing was open on it.
    FLEET_RETURN_IF_ERROR(db_->Reconnect());
    st = db_->Exec("BEGIN ISOLATION LEVEL SERIALIZABLE");
  }
  FLEET_RETURN_IF_ERROR(st);
  // LOCK TABLE takes no snapshot: the snapshot is taken by the first query
  // after it, once every earlier writer has committed.
  FLEET_RETURN_IF_ERROR(db_->Exec("SET LOCAL lock_timeout = '5s'"));
  return db_->Exec("LOCK TABLE write_lock IN EXCLUSIVE MODE");
}

absl::StatusOr<std::unique_ptr<PgTransaction>> PgStore::BeginTransaction()
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // the mutex passes to the transaction
  FLEET_RETURN_IF_ERROR(CheckNotInOwnTransaction());
  mu_.Lock();
  absl::Status st = StartOnConnection();
  if (!st.ok()) {
    if (db_->Healthy() && db_->InTransaction()) db_->Exec("ROLLBACK").IgnoreError();
    mu_.Unlock();
    // A lock held elsewhere past the timeout, or no server: try later.
    return absl::UnavailableError(
        absl::StrCat("cannot begin transaction on ", db_->label(), ": ", st.message()));
  }
  transaction_owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  return std::make_unique<PgTransaction>(this);
}

absl::StatusOr<std::unique_ptr<StoreTransaction>> PgStore::Begin() {
  FLEET_ASSIGN_OR_RETURN(std::unique_ptr<PgTransaction> txn, BeginTransaction());
  return std::unique_ptr<StoreTransaction>(std::move(txn));
}

absl::Status PgStore::CheckNotInOwnTransaction() const {
  if (transaction_owner_.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      "this thread holds a store transaction: call the transaction, not the store (a write on "
      "the store would wait for that transaction forever)");
}

absl::Status PgStore::EndTransaction(bool commit) {
  mu_.AssertHeld();
  absl::Status st = absl::OkStatus();
  if (commit && db_->TransactionFailed()) {
    // COMMIT would roll back and answer as if it had stored everything.
    st = absl::AbortedError("a statement of the transaction failed");
  } else if (commit) {
    st = db_->Exec("COMMIT");
  }
  if ((!commit || !st.ok()) && db_->Healthy() && db_->InTransaction()) {
    db_->Exec("ROLLBACK").IgnoreError();
  }
  if (!st.ok()) st = Annotate(st, absl::StrCat("cannot commit transaction on ", db_->label()));
  transaction_owner_.store(std::thread::id(), std::memory_order_relaxed);
  mu_.Unlock();
  return st;
}

absl::Status PgTransaction::Commit() {
  if (state_ == State::kFailed) {
    return absl::AbortedError(absl::StrCat(
        "store transaction was rolled back after an earlier failure: ", failure_.message()));
  }
  FLEET_RETURN_IF_ERROR(CheckUsable());
  store_->mu_.AssertHeld();
  // A serialization failure at COMMIT stored nothing; a dropped connection
  // leaves the outcome unknown, so that one is not retryable.
  const bool lost_before = !store_->db_->Healthy();
  absl::Status st = store_->EndTransaction(/*commit=*/true);
  if (!st.ok()) {
    state_ = State::kFailed;
    failure_ = st;
    retryable_ = absl::IsAborted(st) || lost_before;
    return st;
  }
  state_ = State::kCommitted;
  return absl::OkStatus();
}

absl::Status PgTransaction::CheckUsable() const {
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

void PgTransaction::Fail(const absl::Status& cause) {
  store_->mu_.AssertHeld();
  state_ = State::kFailed;
  failure_ = cause;
  retryable_ = Retryable(cause, *store_->db_);
  store_->EndTransaction(/*commit=*/false).IgnoreError();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenPgStore(const std::string& url) {
  FLEET_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> db, PgConnection::Open(url));
  FLEET_RETURN_IF_ERROR(PreparePgDatabase(db.get()));
  std::vector<std::unique_ptr<PgReader>> readers;
  for (int i = 0; i < kReaderConnections; ++i) {
    FLEET_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> reader, PgConnection::Open(url));
    absl::Status st = reader->Exec("SET default_transaction_read_only = on");
    if (!st.ok()) return Annotate(st, absl::StrCat("cannot open a reader on ", reader->label()));
    readers.push_back(std::make_unique<PgReader>(std::move(reader)));
  }
  return std::make_unique<PgStore>(std::move(db), std::move(readers));
}

}  // namespace fleet::controller
