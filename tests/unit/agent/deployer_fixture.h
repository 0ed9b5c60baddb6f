// The Deployer under test with its fakes: a clock that moves only when the
// code sleeps, scripted probes, artifacts served from test files. Reload and
// hooks run for real (they append to marker files in the app dir). Shared by
// the release and config tests of the Deployer.
#ifndef FLEET_TESTS_UNIT_AGENT_DEPLOYER_FIXTURE_H_
#define FLEET_TESTS_UNIT_AGENT_DEPLOYER_FIXTURE_H_

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "agent/deployer.h"
#include "agent/fetch.h"
#include "agent/layout.h"
#include "agent/probe.h"
#include "agent/state_store.h"
#include "common/clock.h"
#include "common/fs.h"
#include "common/process.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "tests/testing/archive_builder.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/test_env.h"

namespace fleet::agent {

// The fixture's own vocabulary, for the tests that derive from it.
using ::fleet::testing::ArchiveBuilder;
using ::fleet::testing::TempDir;
using ::fleet::testing::WriteTextFile;
using ::fleet::v1::ActivateMode;
using ::fleet::v1::AgentAppRecord;
using ::fleet::v1::AppSpec;
using ::fleet::v1::Command;
using ::fleet::v1::CommandResult;
using ::fleet::v1::Release;

inline constexpr char kHost[] = "h1";
inline constexpr char kPort[] = "18080";
inline constexpr absl::Duration kBake = absl::Seconds(5);

using ::fleet::testing::FakeClock;

// Answers each probe from a script keyed by its target (URL, HOST:PORT or
// command); a target without a script is healthy. Records every attempt.
class FakeProbes : public ProbeTransport {
 public:
  // Every attempt on `target` from now on fails with `reason`.
  void Fail(const std::string& target, const std::string& reason) { FailAfter(target, 0, reason); }
  // The next `healthy` attempts on `target` succeed, the later ones fail.
  void FailAfter(const std::string& target, int healthy, const std::string& reason) {
    absl::MutexLock lock(&mu_);
    scripts_[target] = Script{healthy, reason};
  }
  // "http URL", "tcp HOST:PORT" or "exec COMMAND", in order.
  std::vector<std::string> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  ProbeContext last_exec_context() {
    absl::MutexLock lock(&mu_);
    return last_exec_context_;
  }

  ProbeAttempt Http(const std::string& url, int expect_status, absl::Duration) override {
    return Answer(absl::StrCat("http ", url, " ", expect_status), url);
  }
  ProbeAttempt Tcp(const std::string& host_port, absl::Duration) override {
    return Answer(absl::StrCat("tcp ", host_port), host_port);
  }
  ProbeAttempt Exec(const std::string& command, const ProbeContext& ctx, absl::Duration) override {
    {
      absl::MutexLock lock(&mu_);
      last_exec_context_ = ctx;
    }
    return Answer(absl::StrCat("exec ", command), command);
  }

 private:
  ProbeAttempt Answer(const std::string& call, const std::string& target) {
    absl::MutexLock lock(&mu_);
    calls_.push_back(call);
    ProbeAttempt attempt;
    auto it = scripts_.find(target);
    if (it == scripts_.end() || it->second.healthy-- > 0) {
      attempt.ok = true;
    } else {
      attempt.reason = it->second.reason;
    }
    return attempt;
  }

  struct Script {
    int healthy;
    std::string reason;
  };

  absl::Mutex mu_;
  std::map<std::string, Script> scripts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  ProbeContext last_exec_context_ ABSL_GUARDED_BY(mu_);
};

// Delivers artifacts the test prepared on disk, checked with the real
// VerifyArtifact. Can be told to fail or to deliver corrupted bytes.
class FakeArtifacts : public ArtifactSource {
 public:
  void Serve(const std::string& version, const std::string& path) {
    absl::MutexLock lock(&mu_);
    files_[version] = path;
  }
  void FailWith(absl::Status status) {
    absl::MutexLock lock(&mu_);
    failure_ = std::move(status);
  }
  // Flips the last byte of what is delivered: same size, other sha256.
  void Corrupt(bool on) {
    absl::MutexLock lock(&mu_);
    corrupt_ = on;
  }
  int fetches() {
    absl::MutexLock lock(&mu_);
    return fetches_;
  }

  // With FailWith, the first half of the artifact arrives in `part_path`
  // before the failure, as from a stream that broke.
  absl::Status Fetch(const Release& release, const std::string& part_path) override {
    std::string bytes;
    absl::Status failure;
    {
      absl::MutexLock lock(&mu_);
      ++fetches_;
      failure = failure_;
      auto it = files_.find(release.version());
      if (it == files_.end()) return failure.ok() ? absl::NotFoundError("no such artifact") : failure;
      bytes = ::fleet::testing::ReadTextFile(it->second);
      if (corrupt_ && !bytes.empty()) bytes.back() = static_cast<char>(~bytes.back());
    }
    if (!failure.ok()) bytes.resize(bytes.size() / 2);
    std::ofstream out(part_path, std::ios::binary | std::ios::trunc);
    out << bytes;
    out.close();
    if (!failure.ok()) return failure;
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", part_path));
    return VerifyArtifact(release, part_path);
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::string> files_ ABSL_GUARDED_BY(mu_);
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  bool corrupt_ ABSL_GUARDED_BY(mu_) = false;
  int fetches_ ABSL_GUARDED_BY(mu_) = 0;
};

// Lines of a file; empty when it does not exist.
inline std::vector<std::string> Lines(const std::string& path) {
  absl::StatusOr<std::string> content = ReadFile(path);
  if (!content.ok()) return {};
  return absl::StrSplit(*content, '\n', absl::SkipEmpty());
}

// Everything below `root` whose name starts with `prefix`.
inline std::vector<std::string> FindByPrefix(const std::string& root, const std::string& prefix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (absl::StartsWith(it->path().filename().string(), prefix)) {
      out.push_back(it->path().string());
    }
  }
  return out;
}

inline std::string LinkTarget(const std::string& path) {
  absl::StatusOr<std::string> target = ReadLink(path);
  return target.ok() ? *target : "";
}

class DeployerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.host_id = kHost;
    options_.apps_root = tmp_.Sub("apps");
    options_.state_dir = tmp_.Sub("state");
    options_.vars = {{"port", kPort}, {"region", "eu"}};
    NewDeployer();
  }

  // A fresh Deployer over the same dirs, as after an agent restart.
  void NewDeployer() {
    deployer_ = std::make_unique<Deployer>(options_, DefaultProcessRunner(), &probes_, &clock_,
                                           &artifacts_);
    ASSERT_TRUE(deployer_->Recover().ok());
  }

  // Reload and after_rollback append the release to marker files in the app
  // dir; probes watch ${port}.
  virtual AppSpec Spec() const {
    AppSpec spec;
    spec.set_name("web");
    spec.set_keep_releases(5);
    spec.add_shared_dirs("log");
    spec.set_reload("echo $FLEET_RELEASE >> $FLEET_APP_DIR/reloads");
    spec.set_reload_timeout_ms(10000);
    spec.set_bake_ms(absl::ToInt64Milliseconds(kBake));
    auto* http = spec.add_health();
    http->set_http("http://127.0.0.1:${port}/healthz");
    http->set_expect_status(200);
    http->set_timeout_ms(2000);
    http->set_retries(1);
    http->set_interval_ms(1000);
    auto* tcp = spec.add_health();
    tcp->set_tcp("127.0.0.1:${port}");
    tcp->set_timeout_ms(2000);
    tcp->set_retries(1);
    tcp->set_interval_ms(1000);
    spec.mutable_hooks()->set_after_rollback(
        "echo $FLEET_RELEASE >> $FLEET_APP_DIR/after_rollback");
    spec.mutable_hooks()->set_timeout_ms(10000);
    return spec;
  }

  // Writes the artifact of `version` and makes the fake serve it.
  Release PrepareRelease(const std::string& version, ArchiveBuilder archive) {
    std::string path = tmp_.Sub(absl::StrCat("artifacts/web-", version, ".tar.gz"));
    EXPECT_TRUE(MakeDirs(tmp_.Sub("artifacts")).ok());
    EXPECT_TRUE(archive.WriteTarGz(path).ok());
    artifacts_.Serve(version, path);
    Release release;
    release.set_app("web");
    release.set_version(version);
    release.set_sha256(Sha256File(path).value_or(""));
    release.set_size(static_cast<int64_t>(std::filesystem::file_size(path)));
    return release;
  }
  Release PrepareRelease(const std::string& version) {
    ArchiveBuilder archive;
    archive.AddFile("VERSION", version)
        .AddFile("bin/start", "#!/bin/sh\nexit 0\n", 0755)
        .AddFile("log/from-artifact.txt", "replaced by the shared dir");
    return PrepareRelease(version, std::move(archive));
  }

  CommandResult Run(const Command& command) {
    return deployer_->Execute(
        command, [this](fleet::v1::ProgressStep step, const std::string&) {
          steps_.push_back(ProgressStepName(step));
        });
  }

  CommandResult Stage(const std::string& version, const AppSpec& spec) {
    return Stage(PrepareRelease(version), spec);
  }
  CommandResult Stage(const Release& release, const AppSpec& spec) {
    Command command;
    command.set_id(absl::StrCat("stage-", release.version()));
    *command.mutable_stage()->mutable_spec() = spec;
    *command.mutable_stage()->mutable_release() = release;
    return Run(command);
  }

  Command ActivateCommand(const std::string& id, const std::string& version, const AppSpec& spec,
                          ActivateMode mode = fleet::v1::ACTIVATE_MODE_DEPLOY,
                          const std::vector<std::string>& keep = {}) const {
    Command command;
    command.set_id(id);
    command.set_rollout_id("r1");
    auto* activate = command.mutable_activate();
    *activate->mutable_spec() = spec;
    activate->set_version(version);
    activate->set_mode(mode);
    for (const std::string& v : keep) activate->add_keep(v);
    return command;
  }
  CommandResult Deploy(const std::string& version, const AppSpec& spec,
                       const std::vector<std::string>& keep = {}) {
    return Run(ActivateCommand(absl::StrCat("deploy-", version), version, spec,
                               fleet::v1::ACTIVATE_MODE_DEPLOY, keep));
  }
  CommandResult Rollback(const std::string& version, const AppSpec& spec,
                         const std::vector<std::string>& keep = {}) {
    return Run(ActivateCommand(absl::StrCat("rollback-", version), version, spec,
                               fleet::v1::ACTIVATE_MODE_ROLLBACK, keep));
  }

  // Stages and deploys `version`, asserting both succeed.
  void StageAndDeploy(const std::string& version, const AppSpec& spec) {
    CommandResult staged = Stage(version, spec);
    ASSERT_TRUE(staged.ok()) << staged.reason();
    CommandResult deployed = Deploy(version, spec);
    ASSERT_TRUE(deployed.ok()) << deployed.reason();
  }

  std::string AppDir() const { return options_.apps_root + "/web"; }
  std::string ReleaseDir(const std::string& v) const { return AppDir() + "/releases/" + v; }
  std::string Current() const {
    return AppLayout(options_.apps_root, "web").CurrentRelease().value_or("<error>");
  }
  std::vector<std::string> Reloads() const { return Lines(AppDir() + "/reloads"); }
  std::vector<std::string> AfterRollbacks() const { return Lines(AppDir() + "/after_rollback"); }
  // What the agent reports as on disk: staged releases, by name.
  std::vector<std::string> OnDisk() const {
    return AppLayout(options_.apps_root, "web").ListStaged(AppLayout::kRelease);
  }
  AgentAppRecord Record() const { return StateStore(options_.state_dir).LoadApp("web"); }
  bool HasJournal() const { return StateStore(options_.state_dir).LoadJournal("web").has_value(); }

  TempDir tmp_;
  AgentOptions options_;
  FakeClock clock_;
  FakeProbes probes_;
  FakeArtifacts artifacts_;
  std::unique_ptr<Deployer> deployer_;
  std::vector<std::string> steps_;
};

// The agent was killed after switching current (or, for SUBJECT_CONFIG, the
// config link) to `to` and before storing the result of "deploy-<to>": what
// a restart finds on disk.
class DeployerRecoveryTest : public DeployerTest {
 protected:
  void SimulateKilledDeploy(const std::string& from, const std::string& to,
                            ActivateMode mode = fleet::v1::ACTIVATE_MODE_DEPLOY,
                            fleet::v1::Subject subject = fleet::v1::SUBJECT_RELEASE) {
    fleet::v1::JournalEntry entry;
    entry.set_command_id(
        absl::StrCat(mode == fleet::v1::ACTIVATE_MODE_DEPLOY ? "deploy-" : "rollback-", to));
    entry.set_rollout_id("r1");
    entry.set_app("web");
    entry.set_from_release(from);
    entry.set_to_release(to);
    entry.set_mode(mode);
    entry.set_started_at_ms(1700000000000);
    entry.set_subject(subject);
    *entry.mutable_spec() = Spec();
    StateStore store(options_.state_dir);
    ASSERT_TRUE(store.WriteJournal(entry).ok());
    ASSERT_TRUE(AppLayout(options_.apps_root, "web").SwitchLink(subject, to).ok());
    std::filesystem::remove(AppDir() + "/reloads");
    std::filesystem::remove(AppDir() + "/after_rollback");
  }
};

}  // namespace fleet::agent

#endif  // FLEET_TESTS_UNIT_AGENT_DEPLOYER_FIXTURE_H_
