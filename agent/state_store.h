// The agent's durable records under --state-dir:
//   apps/<app>.json        AgentAppRecord
//   journal/<app>.json     JournalEntry of an activation in progress
//   results/<id>.json      CommandResult of every completed command (the
//                          newest kMaxResults are kept), so a command the
//                          controller sends again is answered, not redone
//   downloads/<app>-<sha>.part   artifact downloads in progress
//   agent.json             AgentIdentity: host id, apps root and --var of
//                          the agent, for `fleet-agent rollback` without it
//   agent.lock             held (flock) by the one process that may change
//                          the host: the agent, or `fleet-agent rollback`
//   agent.sock             the running agent's control socket (0600)
// Every write is atomic (common/fs.h WriteFileAtomic). The state dir and
// its subdirs are 0700, every file in them 0600.
#ifndef FLEET_AGENT_STATE_STORE_H_
#define FLEET_AGENT_STATE_STORE_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "fleet/v1/agent.pb.h"
#include "fleet/v1/agent_state.pb.h"

namespace fleet::agent {

class StateStore {
 public:
  static constexpr int kMaxResults = 500;

  explicit StateStore(std::string state_dir) : dir_(std::move(state_dir)) {}

  // Creates the directories, takes group and other access off the state
  // dir and everything in it (logging how many entries it changed), and
  // removes *.part downloads left by a crash: nothing asks for them now.
  absl::Status Init();

  std::string downloads_dir() const { return dir_ + "/downloads"; }
  // Per app: two apps staging the same artifact at once must not share a file.
  std::string DownloadPath(const std::string& app, const std::string& sha256) const;

  // An empty record (with app set) when none was written yet.
  fleet::v1::AgentAppRecord LoadApp(const std::string& app) const;
  absl::Status SaveApp(const fleet::v1::AgentAppRecord& record);

  std::optional<fleet::v1::JournalEntry> LoadJournal(const std::string& app) const;
  absl::Status WriteJournal(const fleet::v1::JournalEntry& entry);
  absl::Status ClearJournal(const std::string& app);
  std::vector<std::string> JournalApps() const;

  absl::Status SaveIdentity(const fleet::v1::AgentIdentity& identity);
  // nullopt when no agent ever started with this state dir.
  std::optional<fleet::v1::AgentIdentity> LoadIdentity() const;
  std::string lock_path() const { return dir_ + "/agent.lock"; }
  std::string socket_path() const { return dir_ + "/agent.sock"; }

  std::optional<fleet::v1::CommandResult> LoadResult(const std::string& command_id) const;
  // Thread-safe; prunes the oldest results beyond kMaxResults.
  absl::Status SaveResult(const fleet::v1::CommandResult& result);

 private:
  std::string ResultPath(const std::string& command_id) const;

  std::string dir_;
  absl::Mutex prune_mu_;
};

}  // namespace fleet::agent

#endif  // FLEET_AGENT_STATE_STORE_H_
