// The host layout of one app (DESIGN.md "Host layout") and the atomic switch
// of its `current` link.
//
//   <apps-root>/<app>/releases/<version>/       complete, never modified after activation
//   <apps-root>/<app>/releases/.staging-<v>-*/  in-progress unpack
//   <apps-root>/<app>/shared/<dir>               persistent dirs linked into each release
//   <apps-root>/<app>/current -> releases/<v>
#ifndef FLEET_AGENT_LAYOUT_H_
#define FLEET_AGENT_LAYOUT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fleet::agent {

class AppLayout {
 public:
  AppLayout(std::string apps_root, std::string app)
      : app_dir_(apps_root + "/" + app), app_(std::move(app)) {}

  const std::string& app() const { return app_; }
  const std::string& app_dir() const { return app_dir_; }
  std::string releases_dir() const { return app_dir_ + "/releases"; }
  std::string release_dir(const std::string& version) const {
    return releases_dir() + "/" + version;
  }
  std::string shared_dir() const { return app_dir_ + "/shared"; }
  std::string current_link() const { return app_dir_ + "/current"; }

  // Creates app, releases and shared dirs.
  absl::Status Ensure() const;

  // The version `current` points to; "" when there is no current link.
  absl::StatusOr<std::string> CurrentRelease() const;

  // Complete releases on disk (no staging dirs), sorted by name.
  std::vector<std::string> ListReleases() const;
  bool HasRelease(const std::string& version) const;

  // Points `current` at releases/<version> atomically: symlinkat to
  // ".current.tmp", renameat over "current", fsync of the app dir. At every
  // instant `current` names either the old or the new release. The release
  // must exist (FailedPrecondition otherwise).
  absl::Status SwitchCurrent(const std::string& version) const;

  // Removes the current link atomically (used when a first deploy fails and
  // there is nothing to go back to).
  absl::Status RemoveCurrent() const;

  // Removes leftovers of an interrupted agent: releases/.staging-* and
  // .current.tmp. Returns what it removed, for the log.
  std::vector<std::string> RemoveLeftovers() const;

 private:
  std::string app_dir_;
  std::string app_;
};

// Apps present under the apps root (directories with a releases/ dir).
std::vector<std::string> ListAppDirs(const std::string& apps_root);

}  // namespace fleet::agent

#endif  // FLEET_AGENT_LAYOUT_H_
