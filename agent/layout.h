// The host layout of one app (DESIGN.md "Host layout") and the atomic switch
// of its `current` and `config` links.
//
//   <apps-root>/<app>/releases/<version>/       complete, never modified after activation
//   <apps-root>/<app>/releases/.manifest-<v>     what releases/<v> holds (agent/tree_manifest.h)
//   <apps-root>/<app>/releases/.staging-<v>-*/  in-progress unpack
//   <apps-root>/<app>/releases/.trash-<v>-*/    a release being removed
//   <apps-root>/<app>/shared/<dir>               persistent dirs linked into each release
//   <apps-root>/<app>/configs/<version>/        config releases (configs/.manifest-*,
//                                                .staging-*, .trash-* as for releases)
//   <apps-root>/<app>/current -> releases/<v>
//   <apps-root>/<app>/config -> configs/<v>
//
// Releases and configs are two "subjects" with the same rules: a directory
// of complete versions and one link that selects a version. The methods
// taking a fleet::v1::Subject serve both; the named ones (CurrentRelease,
// SwitchConfig, ...) are shorthands for one subject.
#ifndef FLEET_AGENT_LAYOUT_H_
#define FLEET_AGENT_LAYOUT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fleet/v1/types.pb.h"

namespace fleet::agent {

class AppLayout {
 public:
  using Subject = fleet::v1::Subject;
  static constexpr Subject kRelease = fleet::v1::SUBJECT_RELEASE;
  static constexpr Subject kConfig = fleet::v1::SUBJECT_CONFIG;

  AppLayout(std::string apps_root, std::string app)
      : app_dir_(apps_root + "/" + app), app_(std::move(app)) {}

  const std::string& app() const { return app_; }
  const std::string& app_dir() const { return app_dir_; }
  std::string shared_dir() const { return app_dir_ + "/shared"; }

  // "releases" or "configs": where the versions of `subject` live.
  std::string versions_dir(Subject subject) const;
  std::string version_dir(Subject subject, const std::string& version) const {
    return versions_dir(subject) + "/" + version;
  }
  // "current" or "config": the link that selects the active version.
  std::string link_path(Subject subject) const;

  std::string releases_dir() const { return versions_dir(kRelease); }
  std::string release_dir(const std::string& version) const {
    return version_dir(kRelease, version);
  }
  std::string current_link() const { return link_path(kRelease); }
  std::string configs_dir() const { return versions_dir(kConfig); }
  std::string config_dir(const std::string& version) const { return version_dir(kConfig, version); }
  std::string config_link() const { return link_path(kConfig); }

  // Creates app, releases, configs and shared dirs.
  absl::Status Ensure() const;

  // The version the subject's link points to; "" when there is no link.
  // DataLoss when the link points anywhere but at one version.
  absl::StatusOr<std::string> LinkedVersion(Subject subject) const;
  absl::StatusOr<std::string> CurrentRelease() const { return LinkedVersion(kRelease); }
  absl::StatusOr<std::string> CurrentConfig() const { return LinkedVersion(kConfig); }

  // Version directories on disk (no staging dirs, no symlinks), sorted by
  // name, whether or not they have their manifest: see ListStaged for what
  // may be switched to.
  std::vector<std::string> ListVersions(Subject subject) const;
  std::vector<std::string> ListReleases() const { return ListVersions(kRelease); }
  std::vector<std::string> ListConfigs() const { return ListVersions(kConfig); }
  bool HasVersion(Subject subject, const std::string& version) const;
  bool HasRelease(const std::string& version) const { return HasVersion(kRelease, version); }
  bool HasConfig(const std::string& version) const { return HasVersion(kConfig, version); }

  // Where the manifest of a version (agent/tree_manifest.h) is kept: beside
  // its directory, so that it lives and goes with the apps root.
  std::string manifest_path(Subject subject, const std::string& version) const;
  // Records what `dir`, the finished staging dir of `version`, holds as the
  // version's manifest (atomically, 0600). Called before `dir` is renamed
  // into place, so a version directory never lacks its manifest.
  absl::Status RecordManifest(Subject subject, const std::string& version,
                              const std::string& dir) const;
  // Versions staged to the end (a directory and its manifest), sorted by
  // name: what the agent reports as on disk.
  std::vector<std::string> ListStaged(Subject subject) const;
  bool IsStaged(Subject subject, const std::string& version) const;
  // Checks the version's directory against its manifest, walking it: OK;
  // NotFound when the version is not staged; DataLoss naming what differs
  // ("release v1 of web is incomplete: 3 of 20001 entries missing or
  // changed, first: 'lib/a.so' is missing").
  absl::Status CheckComplete(Subject subject, const std::string& version) const;
  // Removes a version so that a kill -9 at any point leaves it either
  // complete and staged or not listed at all: one rename(2) of its
  // directory to a trash name (.trash-<version>-XXXXXX, never listed),
  // fsync, then its manifest and the trash are removed. FailedPrecondition
  // for the version the subject's link points to; OK when it is absent.
  absl::Status DiscardVersion(Subject subject, const std::string& version) const;

  // Points the subject's link at <versions dir>/<version> atomically:
  // symlinkat to ".current.tmp" (".config.tmp"), renameat over the link,
  // fsync of the app dir. At every instant the link names either the old or
  // the new version. The version must exist (FailedPrecondition otherwise).
  absl::Status SwitchLink(Subject subject, const std::string& version) const;
  absl::Status SwitchCurrent(const std::string& version) const {
    return SwitchLink(kRelease, version);
  }
  absl::Status SwitchConfig(const std::string& version) const {
    return SwitchLink(kConfig, version);
  }

  // Removes the subject's link (used when a first activation fails and there
  // is nothing to go back to). OK when there is none.
  absl::Status RemoveLink(Subject subject) const;
  absl::Status RemoveCurrent() const { return RemoveLink(kRelease); }
  absl::Status RemoveConfigLink() const { return RemoveLink(kConfig); }

  // Removes leftovers of an interrupted agent: .staging-* and .trash-*
  // dirs and manifests without their directory (in releases/ and
  // configs/), .current.tmp and .config.tmp. Returns what it removed, for
  // the log.
  std::vector<std::string> RemoveLeftovers() const;

 private:
  std::string app_dir_;
  std::string app_;
};

// Apps present under the apps root (directories with a releases/ dir).
std::vector<std::string> ListAppDirs(const std::string& apps_root);

}  // namespace fleet::agent

#endif  // FLEET_AGENT_LAYOUT_H_
