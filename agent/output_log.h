// What activations ran on this host and what it printed (hooks, the reload,
// every probe attempt), kept under STATE_DIR/output/<app>/ for `fleetctl
// logs`; the controller never stores it, it asks (OutputRequest).
//
// One file per activation, named <started_at_ms>-<hex command id>, holding a
// length-delimited ActivationOutput header and then one CommandRun record
// per run, appended as the runs end. A successful run identical to the one
// before it (a probe repeated through the bake) is appended as a small
// repeat record and read back as a count. Nothing is fsync'd: a record torn
// by a crash ends what is read of its file, the rest stays readable.
//
// Bounds: the newest kKeepActivations files per app; per file kMaxFileBytes
// of output (runs after that are recorded without it). Files are 0600 in
// 0700 directories: a service may print what it knows of its secrets.
#ifndef FLEET_AGENT_OUTPUT_LOG_H_
#define FLEET_AGENT_OUTPUT_LOG_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "fleet/v1/types.pb.h"

namespace fleet::agent {

// The record of one activation: its thread records each run as it ends.
// Never fails the activation: when the file cannot be written the failure
// is logged once and the rest is not recorded.
class ActivationRecorder {
 public:
  ActivationRecorder(std::string path, int fd);
  ~ActivationRecorder();
  ActivationRecorder(const ActivationRecorder&) = delete;
  ActivationRecorder& operator=(const ActivationRecorder&) = delete;

  void Record(const fleet::v1::CommandRun& given);

 private:
  bool Append(const fleet::v1::CommandRun& record);

  const std::string path_;
  int fd_;
  int64_t bytes_ = 0;
  std::optional<fleet::v1::CommandRun> last_;  // the last run appended in full
};

class OutputLog {
 public:
  static constexpr int kKeepActivations = 10;
  static constexpr int64_t kMaxFileBytes = 4 << 20;

  explicit OutputLog(std::string dir) : dir_(std::move(dir)) {}

  // Starts the file of a new activation (header: app, command_id,
  // rollout_id, version, subject, kind, started_at_ms) and removes the
  // oldest files of the app beyond kKeepActivations. Null, with the reason
  // logged, when the file cannot be created.
  std::unique_ptr<ActivationRecorder> Begin(const fleet::v1::ActivationOutput& header);

  // The newest `limit` activations of `app` (only those of `rollout_id`
  // when it is not empty), oldest first. Within `max_bytes` (> 0): output
  // of the oldest runs is left out first, each such run's output replaced
  // by a line that says so. An app without files gives none.
  absl::StatusOr<std::vector<fleet::v1::ActivationOutput>> Read(const std::string& app,
                                                                const std::string& rollout_id,
                                                                int limit,
                                                                int64_t max_bytes) const;

 private:
  std::string AppDir(const std::string& app) const { return dir_ + "/" + app; }
  // File names of the app's activations, oldest first.
  std::vector<std::string> Files(const std::string& app) const;

  const std::string dir_;
  absl::Mutex mu_;  // Begin's create-then-trim, against another app's Begin
};

}  // namespace fleet::agent

#endif  // FLEET_AGENT_OUTPUT_LOG_H_
