// End-to-end: the real fleetctl against a real controller and agents, as a
// user and a CI job meet it: global flags anywhere, one-line errors with
// suggestions, version, completion, archive checks and directory packing,
// the JSON schema, history filters, colour and fast connection errors.
#include <filesystem>
#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"

namespace fleet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;
using json = nlohmann::json;

bool OneLine(const std::string& s) {
  return !s.empty() && s.back() == '\n' && s.find('\n') == s.size() - 1;
}

json Parse(const CommandOutput& out) {
  json doc = json::parse(out.out, nullptr, false);
  EXPECT_FALSE(doc.is_discarded()) << out.out << out.err;
  return doc;
}

// fleetctl without any cluster: for what needs no controller.
CommandOutput Fleetctl(const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> argv = {Cluster::Binary("fleetctl")};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::RunCommand(argv, absl::Seconds(60), env);
}

class E2ECliTest : public ::testing::Test {
 protected:
  static ClusterOptions Options() {
    ClusterOptions options;
    options.agents = 2;
    return options;
  }
  void SetUp() override { ASSERT_TRUE(cluster_.WaitForConnectedHosts(2)); }

  // A release directory for ApplyExecSpec: VERSION and the file `healthy`.
  std::string MakeReleaseDir(const std::string& name, const std::string& version) {
    const std::string dir = cluster_.dir() + "/" + name;
    std::filesystem::create_directories(dir + "/bin");
    testing::WriteTextFile(dir + "/VERSION", version + "\n");
    testing::WriteTextFile(dir + "/healthy", "");
    testing::WriteTextFile(dir + "/bin/run", "#!/bin/sh\nexit 0\n");
    std::filesystem::permissions(dir + "/bin/run", std::filesystem::perms(0755));
    std::filesystem::create_symlink("bin/run", dir + "/start");
    return dir;
  }

  // App tiny (ApplyExecSpec) with its release v1.
  void PushTinyV1() {
    cluster_.ApplyExecSpec("tiny", "200ms");
    CommandOutput out = cluster_.Fleetctl(
        {"release", "push", "tiny", "v1", cluster_.MakeExecArtifact("v1", true)});
    ASSERT_EQ(out.exit_code, 0) << out.err;
  }

  Cluster cluster_{Options()};
};

TEST(E2ECliOfflineTest, GlobalFlagsAreListedInEveryCommandsHelp) {
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{"hosts", "--help"},
        std::vector<std::string>{"rollout", "watch", "--help"},
        std::vector<std::string>{"release", "push", "--help"}}) {
    CommandOutput out = Fleetctl(cmd);
    EXPECT_EQ(out.exit_code, 0) << out.err;
    for (const char* flag : {"--controller", "--output", "-o", "--token", "--token-file",
                             "--tls-ca", "--insecure"}) {
      EXPECT_THAT(out.out, HasSubstr(flag)) << cmd[0] << ": " << out.out;
    }
  }
}

TEST(E2ECliOfflineTest, UnknownCommandsAndFlagsGetOneLineWithTheClosestMatch) {
  CommandOutput out = Fleetctl({"rollot", "hello", "v1"});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_EQ(out.err, "fleetctl: unknown command 'rollot'; did you mean 'rollout'?\n");
  out = Fleetctl({"hosts", "--outptu", "json"});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_EQ(out.err, "fleetctl: unknown flag '--outptu' for 'fleetctl hosts'; did you mean "
                     "'--output'?\n");
  out = Fleetctl({"rollout", "stauts", "7"});  // rollout takes APP VERSION: a missing VERSION
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_TRUE(OneLine(out.err)) << out.err;
  out = Fleetctl({"release", "pusj", "hello", "v1", "x"});
  EXPECT_EQ(out.err,
            "fleetctl: unknown command 'pusj' for 'fleetctl release'; did you mean 'push'?\n");
  out = Fleetctl({"release"});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_EQ(out.err, "fleetctl: 'fleetctl release' needs a command: push, list; see 'fleetctl "
                     "release --help'\n");
  out = Fleetctl({"release", "push", "hello"});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_TRUE(OneLine(out.err)) << out.err;
  EXPECT_THAT(out.err, HasSubstr("fleetctl: release push: "));
  out = Fleetctl({"completion", "tcsh"});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_TRUE(OneLine(out.err)) << out.err;
  out = Fleetctl({"-o", "yaml", "hosts"});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_TRUE(OneLine(out.err)) << out.err;
}

TEST(E2ECliOfflineTest, CompletionScriptsCompleteCommandsAndFlags) {
  CommandOutput out = Fleetctl({"__complete", "rol"});
  EXPECT_EQ(out.out, "rollback\nrollout\n");
  out = Fleetctl({"__complete", "rollout", "pr"});
  EXPECT_EQ(out.out, "promote\n");
  out = Fleetctl({"__complete", "hosts", "--out"});
  EXPECT_EQ(out.out, "--output\n");
  out = Fleetctl({"__complete", "hosts", "-o", ""});
  EXPECT_EQ(out.out, "json\njsonl\ntext\n");
  for (const char* shell : {"bash", "zsh", "fish"}) {
    out = Fleetctl({"completion", shell});
    EXPECT_EQ(out.exit_code, 0) << shell;
    EXPECT_THAT(out.out, HasSubstr("fleetctl __complete")) << shell;
  }
  // The bash script, sourced by a real bash, completes "fleetctl rele".
  const std::string bin_dir = std::filesystem::path(Cluster::Binary("fleetctl")).parent_path();
  out = testing::RunCommand(
      {"bash", "-c",
       "source <(fleetctl completion bash) && COMP_WORDS=(fleetctl rele) && COMP_CWORD=1 && "
       "_fleetctl && echo \"${COMPREPLY[@]}\""},
      absl::Seconds(30), {{"PATH", absl::StrCat(bin_dir, ":/usr/bin:/bin")}});
  EXPECT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(out.out, "release\n");
}

TEST(E2ECliOfflineTest, ConnectionErrorsSayWhatHappenedAtOnce) {
  // Nothing listens on a fresh free port: refused at once.
  const std::string refused = absl::StrCat("127.0.0.1:", testing::FreePort());
  absl::Time start = absl::Now();
  CommandOutput out = Fleetctl({"--controller", refused, "hosts"});
  std::printf("connection refused reported after %.3f s\n",
              absl::ToDoubleSeconds(absl::Now() - start));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_TRUE(OneLine(out.err)) << out.err;
  EXPECT_THAT(out.err, HasSubstr(absl::StrCat("fleetctl: cannot reach the controller at ", refused,
                                              ": connection refused")));
  // .invalid never resolves (RFC 2606).
  start = absl::Now();
  out = Fleetctl({"--controller", "fleet.invalid:7000", "hosts"});
  std::printf("unknown host name reported after %.3f s\n",
              absl::ToDoubleSeconds(absl::Now() - start));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_TRUE(OneLine(out.err)) << out.err;
  EXPECT_THAT(out.err, HasSubstr("unknown host name 'fleet.invalid'"));
}

TEST_F(E2ECliTest, GlobalFlagsWorkAfterTheCommandAndVersionNamesBothSides) {
  CommandOutput after = cluster_.Fleetctl({"hosts", "-o", "json"});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(Parse(after)["hosts"].size(), 2u);
  CommandOutput long_form = cluster_.Fleetctl({"hosts", "--output", "json"});
  EXPECT_EQ(long_form.exit_code, 0) << long_form.err;
  EXPECT_TRUE(Parse(long_form).contains("hosts"));

  CommandOutput version = cluster_.Fleetctl({"version"});
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_EQ(version.out, absl::StrCat("fleetctl ", FLEET_VERSION, "\ncontroller ", FLEET_VERSION,
                                      " at ", cluster_.address(), "\n"));
  json doc = Parse(cluster_.Fleetctl({"version", "-o", "json"}));
  EXPECT_EQ(doc["client"], FLEET_VERSION);
  EXPECT_EQ(doc["controller"], FLEET_VERSION);
  CommandOutput flag = cluster_.Fleetctl({"--version"});
  EXPECT_EQ(flag.out, absl::StrCat("fleetctl ", FLEET_VERSION, "\n"));
}

TEST_F(E2ECliTest, ReleasePush_RefusesWhatIsNotAnArchiveAndPacksDirectoriesReproducibly) {
  cluster_.ApplyExecSpec("tiny", "200ms");
  const std::string readme = cluster_.dir() + "/README.md";
  testing::WriteTextFile(readme, "# hello\n");
  CommandOutput refused = cluster_.Fleetctl({"release", "push", "tiny", "v8", readme});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err, absl::StrCat("fleetctl: ", readme,
                                      " is not an archive fleet can unpack (Unrecognized archive "
                                      "format); push a tar, tar.gz, tar.zst or zip\n"));
  EXPECT_EQ(Parse(cluster_.Fleetctl({"-o", "json", "release", "list", "tiny"}))["releases"].size(),
            0u);

  // The same tree, made twice at different times, packs to the same bytes.
  const std::string first = MakeReleaseDir("tree-a", "v1");
  absl::SleepFor(absl::Milliseconds(1100));
  const std::string second = MakeReleaseDir("tree-b", "v1");
  CommandOutput pushed = cluster_.Fleetctl({"-o", "json", "release", "push", "tiny", "v1", first});
  ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
  CommandOutput again =
      cluster_.Fleetctl({"-o", "json", "release", "push", "tiny", "v1", second});
  ASSERT_EQ(again.exit_code, 0) << again.err;  // same content: the same release
  EXPECT_EQ(Parse(pushed)["sha256"], Parse(again)["sha256"]);

  CommandOutput rolled = cluster_.Fleetctl({"rollout", "tiny", "v1", "--wait"});
  ASSERT_EQ(rolled.exit_code, 0) << rolled.out << rolled.err;
  for (int i = 0; i < cluster_.agents(); ++i) {
    const std::string current = cluster_.AppsRoot(i) + "/tiny/current";
    EXPECT_EQ(testing::ReadTextFile(current + "/VERSION"), "v1\n");
    EXPECT_EQ(std::filesystem::read_symlink(current + "/start"), "bin/run");
  }
}

TEST_F(E2ECliTest, Json_FollowsTheDocumentedSchema) {
  PushTinyV1();
  CommandOutput out = cluster_.Fleetctl(
      {"rollout", "tiny", "v1", "--waves", "1,100%", "--wait", "--output", "json"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  json r = Parse(out);
  EXPECT_EQ(r["state"], "succeeded");
  EXPECT_EQ(r["kind"], "deploy");
  EXPECT_EQ(r["subject"], "release");
  EXPECT_TRUE(r["created_at_ms"].is_number_integer());
  const std::regex rfc3339(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}([+-]\d\d:\d\d|Z))");
  EXPECT_TRUE(std::regex_match(r["created_at"].get<std::string>(), rfc3339)) << r["created_at"];
  EXPECT_TRUE(std::regex_match(r["finished_at"].get<std::string>(), rfc3339));
  EXPECT_TRUE(r["plan"]["bake_ms"].is_number_integer());
  ASSERT_EQ(r["plan"]["waves"].size(), 2u);
  EXPECT_EQ(r["plan"]["waves"][0]["index"], 1);
  EXPECT_EQ(r["plan"]["waves"][1]["index"], 2);
  EXPECT_EQ(r["current_wave"], 2);
  std::vector<int> waves;
  for (const json& t : r["tasks"]) {
    EXPECT_EQ(t["state"], "healthy");
    waves.push_back(t["wave"].get<int>());
  }
  EXPECT_THAT(waves, ElementsAre(1, 2));
  EXPECT_TRUE(r["pause_reason"].is_string());

  json status = Parse(cluster_.Fleetctl({"status", "tiny", "-o", "json"}));
  EXPECT_TRUE(status["active_rollout"].is_null());
  EXPECT_EQ(status["last_rollout"]["state"], "succeeded");
  json hosts = Parse(cluster_.Fleetctl({"hosts", "-o", "json"}));
  EXPECT_TRUE(hosts["hosts"][0]["last_seen_ms"].is_number_integer());
  EXPECT_TRUE(hosts["hosts"][0]["last_seen"].is_string());
  json releases = Parse(cluster_.Fleetctl({"release", "list", "tiny", "-o", "json"}));
  EXPECT_TRUE(releases["releases"][0]["size"].is_number_integer());

  // jsonl: the same names, one update a line.
  CommandOutput lines = cluster_.Fleetctl({"rollout", "watch", r["id"], "-o", "jsonl"});
  ASSERT_EQ(lines.exit_code, 0) << lines.err;
  json last = json::parse(lines.out.substr(lines.out.rfind('\n', lines.out.size() - 2) + 1));
  EXPECT_EQ(last["rollout"]["state"], "succeeded");
  EXPECT_EQ(last["rollout"]["tasks"][0]["wave"], 1);
}

TEST_F(E2ECliTest, Logs_ShowsWhatReloadAndProbesPrintedOnEachHostAndTheCauseInTheReason) {
  const std::string path = cluster_.dir() + "/logged.yaml";
  testing::WriteTextFile(path, R"(name: logged
reload: "echo reloading ${FLEET_RELEASE}; echo warming cache >&2"
health:
  - exec: "test -f healthy || { echo 'FATAL: config missing'; echo see /var/log/app for details; exit 3; }"
    retries: 0
bake: 0s
)");
  ASSERT_EQ(cluster_.Fleetctl({"app", "apply", "-f", path}).exit_code, 0);
  for (const char* v : {"v1", "v2"}) {
    std::string artifact = cluster_.MakeExecArtifact(v, std::string(v) == "v1");
    ASSERT_EQ(cluster_.Fleetctl({"release", "push", "logged", v, artifact}).exit_code, 0);
  }
  ASSERT_EQ(cluster_.Fleetctl({"rollout", "logged", "v1", "--wait"}).exit_code, 0);
  CommandOutput failed = cluster_.Fleetctl({"rollout", "logged", "v2", "--waves", "100%", "--wait"});
  ASSERT_NE(failed.exit_code, 0);
  // The reason names the line that says why, not only the last one.
  CommandOutput status = cluster_.Fleetctl({"rollout", "status", "2"});
  EXPECT_THAT(status.out, HasSubstr("exited with status 3: FATAL: config missing (last line: see "
                                    "/var/log/app for details)"));

  CommandOutput out = cluster_.Fleetctl({"logs", "logged", "--rollout", "2", "--host", "web-01"});

  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_THAT(out.out, HasSubstr("==> web-01: deploy of v2 (rollout 2), "));
  EXPECT_THAT(out.out, HasSubstr("reload `echo reloading v2; echo warming cache >&2`: exited with "
                                 "status 0"));
  EXPECT_THAT(out.out, HasSubstr("reloading v2\nwarming cache\n"));
  EXPECT_THAT(out.out, HasSubstr("FATAL: config missing\nsee /var/log/app for details\n"));
  // The switch back to v1 reloaded it: recorded with the same activation.
  EXPECT_THAT(out.out, HasSubstr("reloading v1\n"));
  json all = Parse(cluster_.Fleetctl({"logs", "logged", "-n", "2", "-o", "json"}));
  ASSERT_EQ(all["hosts"].size(), static_cast<size_t>(cluster_.agents()));
  for (const json& host : all["hosts"]) {
    EXPECT_EQ(host["error"], "") << host;
    ASSERT_EQ(host["activations"].size(), 2u) << host;
    EXPECT_EQ(host["activations"][0]["version"], "v1");
    EXPECT_EQ(host["activations"][1]["runs"][0]["step"], "reload");
  }

  const int last = cluster_.agents() - 1;
  cluster_.KillAgent(last);
  ASSERT_TRUE(testing::WaitFor([&] { return !cluster_.Fleetctl({"logs", "logged"}).err.empty(); },
                               absl::Seconds(10)));
  out = cluster_.Fleetctl({"logs", "logged"});
  EXPECT_EQ(out.exit_code, 0);
  EXPECT_THAT(out.err, HasSubstr(absl::StrCat("fleetctl: no output from ", cluster_.HostId(last),
                                              ": not connected")));
  out = cluster_.Fleetctl({"logs", "logged", "--host", "web-09"});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_EQ(out.err, "fleetctl: unknown host 'web-09'\n");
}

TEST_F(E2ECliTest, AppShow_PrintsTheSpecAsAppliedAndWhoAppliedIt) {
  const std::string path = cluster_.dir() + "/show.yaml";
  const std::string yaml = "name: show\nkeep_releases: 4  # as written\nreload: \"true\"\n";
  testing::WriteTextFile(path, yaml);
  ASSERT_EQ(cluster_.Fleetctl({"app", "apply", "-f", path}).exit_code, 0);

  CommandOutput out = cluster_.Fleetctl({"app", "show", "show"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_THAT(out.out, StartsWith("app show: release -, config -\napplied by tester@ci at "));
  EXPECT_THAT(out.out, HasSubstr("(app.created)\n---\n" + yaml));
  json shown = Parse(cluster_.Fleetctl({"app", "show", "show", "-o", "json"}));
  EXPECT_EQ(shown["app"]["spec_yaml"], yaml);
  EXPECT_EQ(shown["app"]["spec"]["keep_releases"], 4);
  EXPECT_EQ(shown["applied"]["actor"], "tester@ci");
  EXPECT_EQ(shown["applied"]["kind"], "app.created");

  // A spec with a credential: its YAML is not sent; the parsed spec is, redacted.
  testing::WriteTextFile(path, yaml +
                                   "notify:\n  - { type: webhook, url: "
                                   "\"https://hook:PWshow9@127.0.0.1:1/x\" }\n");
  ASSERT_EQ(cluster_.Fleetctl({"app", "apply", "-f", path}).exit_code, 0);
  out = cluster_.Fleetctl({"app", "show", "show"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_THAT(out.out, HasSubstr("(app.updated)\nthe spec holds credentials: shown parsed, with "
                                 "them redacted\n"));
  EXPECT_THAT(out.out, HasSubstr("127.0.0.1:1/x"));
  EXPECT_THAT(out.out, Not(HasSubstr("PWshow9")));

  CommandOutput unknown = cluster_.Fleetctl({"app", "show", "nope"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.err, "fleetctl: unknown app 'nope' (fleetctl app list lists them)\n");
}

TEST_F(E2ECliTest, History_ShowsEveryEventKindInTextAndFiltersByKind) {
  PushTinyV1();
  CommandOutput rolled =
      cluster_.Fleetctl({"rollout", "tiny", "v1", "--waves", "1,100%", "--manual-promote"});
  ASSERT_EQ(rolled.exit_code, 0) << rolled.err;
  const std::string id = Cluster::RolloutId(rolled.out);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return absl::StrContains(cluster_.Fleetctl({"rollout", "status", id}).out,
                                 "waiting for promote: run fleetctl rollout promote " + id);
      },
      absl::Seconds(30)));
  ASSERT_EQ(cluster_.Fleetctl({"rollout", "promote", id}).exit_code, 0);
  ASSERT_EQ(cluster_.Fleetctl({"rollout", "watch", id}).exit_code, 0);

  CommandOutput text = cluster_.Fleetctl({"history", "tiny"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const char* kind : {"app.created", "release.pushed", "rollout.started", "rollout.waiting",
                           "rollout.promoted", "wave.started", "host.healthy",
                           "rollout.succeeded"}) {
    EXPECT_THAT(text.out, HasSubstr(kind)) << text.out;
  }
  CommandOutput filtered = cluster_.Fleetctl({"history", "tiny", "--kind", "release,app"});
  ASSERT_EQ(filtered.exit_code, 0) << filtered.err;
  EXPECT_THAT(filtered.out, HasSubstr("release.pushed"));
  EXPECT_THAT(filtered.out, HasSubstr("app.created"));
  EXPECT_THAT(filtered.out, Not(HasSubstr("rollout.")));
  json doc = Parse(cluster_.Fleetctl({"history", "tiny", "--kind", "rollout.promoted", "-o",
                                      "json"}));
  ASSERT_EQ(doc["events"].size(), 1u);
  EXPECT_EQ(doc["events"][0]["kind"], "rollout.promoted");
  EXPECT_TRUE(doc["events"][0]["id"].is_number_integer());
  CommandOutput typo = cluster_.Fleetctl({"history", "tiny", "--kind", "rollout.promted"});
  EXPECT_EQ(typo.exit_code, 1);
  EXPECT_EQ(typo.err,
            "fleetctl: unknown event kind 'rollout.promted'; did you mean 'rollout.promoted'?\n");
}

TEST_F(E2ECliTest, Colour_OnATerminalOnlyAndNeverWithNoColor) {
  cluster_.ApplyExecSpec("tiny", "200ms");
  // `script` gives fleetctl a terminal.
  const std::string cmd = absl::StrCat(Cluster::Binary("fleetctl"), " --controller ",
                                       cluster_.address(), " hosts");
  CommandOutput tty = testing::RunCommand({"script", "-qec", cmd, "/dev/null"});
  EXPECT_EQ(tty.exit_code, 0) << tty.err;
  EXPECT_THAT(tty.out, HasSubstr("\033[32myes\033[0m"));
  CommandOutput no_color =
      testing::RunCommand({"script", "-qec", cmd, "/dev/null"}, absl::Seconds(60),
                          {{"NO_COLOR", "1"}});
  EXPECT_THAT(no_color.out, HasSubstr("yes"));
  EXPECT_THAT(no_color.out, Not(HasSubstr("\033[")));
  CommandOutput piped = cluster_.Fleetctl({"hosts"});
  EXPECT_THAT(piped.out, Not(HasSubstr("\033[")));
}

}  // namespace
}  // namespace fleet
