// What deployer.cc, deployer_stage.cc and retention.cc share: the parts of
// Deployer's implementation that are not its interface. Not for other users.
#ifndef FLEET_AGENT_DEPLOYER_INTERNAL_H_
#define FLEET_AGENT_DEPLOYER_INTERNAL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/layout.h"
#include "fleet/v1/agent_state.pb.h"

namespace fleet::agent {

using Versions = google::protobuf::RepeatedPtrField<std::string>;

// Releases and configs are staged, activated, retained and recovered by the
// same code; a Track names what differs between them: the subject's link and
// directory (AppLayout takes the subject) and its fields in the app record.
class Track {
 public:
  explicit Track(fleet::v1::Subject subject) : subject_(subject) {}

  fleet::v1::Subject subject() const { return subject_; }
  bool config() const { return subject_ == fleet::v1::SUBJECT_CONFIG; }
  const char* noun() const { return config() ? "config" : "release"; }

  const std::string& last_good(const fleet::v1::AgentAppRecord& r) const {
    return config() ? r.last_good_config() : r.last_known_good();
  }
  std::string* mutable_last_good(fleet::v1::AgentAppRecord* r) const {
    return config() ? r->mutable_last_good_config() : r->mutable_last_known_good();
  }
  const std::string& previous(const fleet::v1::AgentAppRecord& r) const {
    return config() ? r.previous_config() : r.previous_release();
  }
  std::string* mutable_previous(fleet::v1::AgentAppRecord* r) const {
    return config() ? r->mutable_previous_config() : r->mutable_previous_release();
  }
  // Versions in the order they were staged, oldest first.
  const Versions& staged(const fleet::v1::AgentAppRecord& r) const {
    return config() ? r.staged_configs() : r.staged();
  }
  Versions* mutable_staged(fleet::v1::AgentAppRecord* r) const {
    return config() ? r->mutable_staged_configs() : r->mutable_staged();
  }

 private:
  fleet::v1::Subject subject_;
};

// Removes every `version` from `list`.
void RemoveVersion(Versions* list, const std::string& version);

// Staged versions, oldest first: those the record does not know (staged
// before the state dir existed) by name, then in the order they were staged.
std::vector<std::string> VersionsOldestFirst(const AppLayout& layout, const Track& track,
                                             const fleet::v1::AgentAppRecord& record);

// `version`, or "no release" / "no config" when it is "".
std::string OrNone(const std::string& version, const Track& track);

// InternalError "<what> <path>: <strerror(errno)>".
absl::Status ErrnoError(absl::string_view what, const std::string& path);

// Makes `config -> ../../config` in a release dir, unless it is there.
// FailedPrecondition when the release has a `config` of its own.
absl::Status LinkConfigInto(const std::string& release_dir);

}  // namespace fleet::agent

#endif  // FLEET_AGENT_DEPLOYER_INTERNAL_H_
