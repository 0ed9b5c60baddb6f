// Rows read the same way from both stores: a reader is written once as a
// template over a row with Text(col), Int(col) and Bool(col), which
// SqliteRow (a stepped statement) and PgRow (one row of a result) provide.
#ifndef FLEET_CONTROLLER_STORE_ROWS_H_
#define FLEET_CONTROLLER_STORE_ROWS_H_

#include <cstdint>
#include <string>

#include "controller/pg_connection.h"
#include "controller/sqlite_statement.h"
#include "controller/store.h"

namespace fleet::controller {

class SqliteRow {
 public:
  explicit SqliteRow(const SqliteStatement& stmt) : stmt_(stmt) {}
  std::string Text(int col) const { return stmt_.Text(col); }
  int64_t Int(int col) const { return stmt_.Int(col); }
  bool Bool(int col) const { return stmt_.Int(col) != 0; }

 private:
  const SqliteStatement& stmt_;
};

class PgRow {
 public:
  PgRow(const PgResult& result, int row) : result_(result), row_(row) {}
  std::string Text(int col) const { return result_.Text(row_, col); }
  int64_t Int(int col) const { return result_.Int(row_, col); }
  bool Bool(int col) const { return result_.Bool(row_, col); }

 private:
  const PgResult& result_;
  const int row_;
};

// host_holds, in this column order (one literal, for the statement caches).
#define FLEET_HOLD_COLUMNS \
  "host_id, app, held, version, from_version, reason, actor, since_ms, local_id"

template <typename Row>
HostHoldRecord ReadHold(const Row& row) {
  HostHoldRecord record;
  record.host_id = row.Text(0);
  record.hold.set_app(row.Text(1));
  record.held = row.Bool(2);
  record.hold.set_version(row.Text(3));
  record.hold.set_from_version(row.Text(4));
  record.hold.set_reason(row.Text(5));
  record.hold.set_actor(row.Text(6));
  record.hold.set_since_ms(row.Int(7));
  record.hold.set_local_id(row.Text(8));
  return record;
}

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_STORE_ROWS_H_
