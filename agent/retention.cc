#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/deployer.h"
#include "agent/deployer_internal.h"
#include "common/fs.h"
#include "common/logging.h"

namespace fleet::agent {

using fleet::v1::AgentAppRecord;
using fleet::v1::AppSpec;

void RemoveVersion(Versions* list, const std::string& version) {
  for (int i = list->size() - 1; i >= 0; --i) {
    if (list->Get(i) == version) list->DeleteSubrange(i, 1);
  }
}

std::vector<std::string> VersionsOldestFirst(const AppLayout& layout, const Track& track,
                                             const AgentAppRecord& record) {
  std::vector<std::string> on_disk = layout.ListStaged(track.subject());
  const Versions& staged = track.staged(record);
  std::set<std::string> known(staged.begin(), staged.end());
  std::vector<std::string> order;
  for (const std::string& v : on_disk) {
    if (known.count(v) == 0) order.push_back(v);
  }
  std::set<std::string> present(on_disk.begin(), on_disk.end());
  for (const std::string& v : staged) {
    if (present.count(v)) order.push_back(v);
  }
  return order;
}

std::string OrNone(const std::string& version, const Track& track) {
  return version.empty() ? absl::StrCat("no ", track.noun()) : version;
}

void Deployer::ApplyRetention(const AppLayout& layout, const Track& track, const AppSpec& spec,
                              const AgentAppRecord& record, const std::vector<std::string>& keep) {
  std::vector<std::string> on_disk = layout.ListStaged(track.subject());
  size_t limit = static_cast<size_t>(std::max(spec.keep_releases(), 3));
  if (on_disk.size() <= limit) return;
  std::set<std::string> protect(keep.begin(), keep.end());
  protect.insert(layout.LinkedVersion(track.subject()).value_or(""));
  protect.insert(track.last_good(record));
  protect.insert(track.previous(record));
  std::vector<std::string> order = VersionsOldestFirst(layout, track, record);
  size_t count = on_disk.size();
  AgentAppRecord updated = record;
  for (const std::string& v : order) {
    if (count <= limit) break;
    if (protect.count(v)) continue;
    absl::Status st = layout.DiscardVersion(track.subject(), v);
    if (!st.ok()) {
      spdlog::warn("retention: {}", st.message());
      continue;
    }
    spdlog::info("{}: {}: retention removed {} {}", options_.host_id, spec.name(), track.noun(), v);
    RemoveVersion(track.mutable_staged(&updated), v);
    if (!track.config()) updated.mutable_staged_releases()->erase(v);
    --count;
  }
  state_.SaveApp(updated).IgnoreError();
}

absl::Status Deployer::CheckBeforeSwitch(const AppLayout& layout, const Track& track,
                                         const std::string& version) {
  absl::Status st = layout.CheckComplete(track.subject(), version);
  if (absl::IsNotFound(st)) {
    return absl::FailedPreconditionError(
        absl::StrCat(track.noun(), " ", version, " of ", layout.app(), " is not on disk on host ",
                     options_.host_id, " (on disk: ",
                     absl::StrJoin(layout.ListStaged(track.subject()), ", "), ")"));
  }
  if (!absl::IsDataLoss(st)) return st;
  // Broken for good: unlisted now, so the controller sees it is not on
  // disk and a rollout of it stages it again.
  absl::Status discarded = layout.DiscardVersion(track.subject(), version);
  spdlog::warn("{}: {}; {}", options_.host_id, st.message(),
               discarded.ok() ? "removed it" : discarded.message());
  return absl::DataLossError(absl::StrCat(
      st.message(), " on host ", options_.host_id,
      discarded.ok() ? "; removed it, a rollout of it stages it again" : ""));
}

void Deployer::RepairVersions(const AppLayout& layout) {
  for (const Track track : {Track(fleet::v1::SUBJECT_RELEASE), Track(fleet::v1::SUBJECT_CONFIG)}) {
    for (const std::string& version : layout.ListVersions(track.subject())) {
      if (!layout.IsStaged(track.subject(), version)) {
        // Staged by an agent older than manifests: what is there now is
        // taken as the release (an agent never leaves such a directory).
        absl::Status st = layout.RecordManifest(track.subject(), version,
                                                layout.version_dir(track.subject(), version));
        spdlog::warn("{}: {}: recorded the manifest of {} {}, staged by an earlier agent{}",
                     options_.host_id, layout.app(), track.noun(), version,
                     st.ok() ? "" : absl::StrCat(": ", st.message()));
        continue;
      }
      absl::Status st = layout.CheckComplete(track.subject(), version);
      if (!absl::IsDataLoss(st)) continue;
      absl::Status discarded = layout.DiscardVersion(track.subject(), version);
      spdlog::warn("{}: {}; {}", options_.host_id, st.message(),
                   discarded.ok() ? "removed it" : discarded.message());
    }
  }
}

}  // namespace fleet::agent
