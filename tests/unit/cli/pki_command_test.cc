#include "cli/pki_command.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/fleetctl.h"
#include "common/fs.h"
#include "common/pki.h"
#include "common/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::cli {
namespace {

using ::fleet::testing::FileMode;
using ::fleet::testing::ReadTextFile;
using ::fleet::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Parses `args` (after "fleetctl") with an app that has fleetctl's global
// --output option and the pki commands, as Run() does.
Outcome RunPki(std::vector<std::string> args) {
  CLI::App app;
  Session session;
  AddGlobalOptions(&app, &session.options());
  AddPkiCommands(&app, &session);
  std::vector<char*> argv = {const_cast<char*>("fleetctl")};
  for (std::string& arg : args) argv.push_back(arg.data());
  Outcome outcome;
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
    outcome.exit_code = kExitOk;  // no command ran
  } catch (const CLI::ParseError& e) {
    outcome.exit_code = e.get_exit_code();
  }
  outcome.out = ::testing::internal::GetCapturedStdout();
  outcome.err = ::testing::internal::GetCapturedStderr();
  return outcome;
}


TEST(PkiCommandTest, Init_WritesTheCaAndSaysWhatToDoWithIt) {
  TempDir tmp;
  const std::string dir = tmp.Sub("pki");
  Outcome init = RunPki({"pki", "init", dir});
  EXPECT_EQ(init.exit_code, kExitOk) << init.err;
  EXPECT_EQ(init.err, "");
  EXPECT_THAT(init.out,
              StartsWith("wrote " + dir + "/ca.key (0600) and " + dir + "/ca.crt: " + "Fleet CA "));
  EXPECT_THAT(init.out, HasSubstr("give " + dir + "/ca.crt to the controller, every agent"));
  EXPECT_EQ(FileMode(CaKeyPath(dir)), 0600u);
  EXPECT_OK(LoadCertificateAuthority(dir));
}

TEST(PkiCommandTest, Init_RefusesAnExistingCaWithOneLine) {
  TempDir tmp;
  const std::string dir = tmp.Sub("pki");
  ASSERT_EQ(RunPki({"pki", "init", dir}).exit_code, kExitOk);
  const std::string key = ReadTextFile(CaKeyPath(dir));
  Outcome again = RunPki({"pki", "init", dir});
  EXPECT_EQ(again.exit_code, kExitError);
  EXPECT_EQ(again.out, "");
  EXPECT_EQ(again.err, "fleetctl: " + dir +
                           "/ca.key exists: refusing to replace a CA (every certificate it signed "
                           "would stop being trusted); remove it first or use another directory\n");
  EXPECT_EQ(ReadTextFile(CaKeyPath(dir)), key);
}

TEST(PkiCommandTest, IssueHost_WritesAClientCertificateForTheHost) {
  TempDir tmp;
  const std::string dir = tmp.Sub("pki");
  ASSERT_EQ(RunPki({"pki", "init", dir}).exit_code, kExitOk);
  Outcome issue = RunPki({"pki", "issue", "--ca-dir", dir, "--host", "web-01", "--days", "30"});
  EXPECT_EQ(issue.exit_code, kExitOk) << issue.err;
  EXPECT_THAT(issue.out, HasSubstr(": client certificate for host web-01, signed by Fleet CA "));
  absl::StatusOr<CertificateNames> names = NamesOfCertificate(ReadTextFile(dir + "/web-01.crt"));
  ASSERT_OK(names);
  EXPECT_EQ(names->common_name, "web-01");
  EXPECT_EQ(FileMode(dir + "/web-01.key"), 0600u);
  EXPECT_OK(ValidateTlsFiles({dir + "/web-01.crt", dir + "/web-01.key", CaCertPath(dir)}));
}

TEST(PkiCommandTest, IssueController_PrintsJsonWithOutputJson) {
  TempDir tmp;
  const std::string dir = tmp.Sub("pki");
  ASSERT_EQ(RunPki({"pki", "init", dir}).exit_code, kExitOk);
  Outcome issue =
      RunPki({"--output", "json", "pki", "issue", "--ca-dir", dir, "--controller", "fleet"});
  EXPECT_EQ(issue.exit_code, kExitOk) << issue.err;
  nlohmann::json out = nlohmann::json::parse(issue.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << issue.out;
  EXPECT_EQ(out["cert"], dir + "/fleet.crt");
  EXPECT_EQ(out["key"], dir + "/fleet.key");
  EXPECT_EQ(out["ca"], dir + "/ca.crt");
  absl::StatusOr<CertificateNames> names = NamesOfCertificate(ReadTextFile(dir + "/fleet.crt"));
  ASSERT_OK(names);
  EXPECT_THAT(names->dns_names, ::testing::ElementsAre("fleet", "localhost"));
}

TEST(PkiCommandTest, Issue_RefusesExistingFilesUnlessForced) {
  TempDir tmp;
  const std::string dir = tmp.Sub("pki");
  ASSERT_EQ(RunPki({"pki", "init", dir}).exit_code, kExitOk);
  ASSERT_EQ(RunPki({"pki", "issue", "--ca-dir", dir, "--host", "web-01"}).exit_code, kExitOk);
  const std::string cert = ReadTextFile(dir + "/web-01.crt");
  Outcome again = RunPki({"pki", "issue", "--ca-dir", dir, "--host", "web-01"});
  EXPECT_EQ(again.exit_code, kExitError);
  EXPECT_EQ(again.err, "fleetctl: " + dir +
                           "/web-01.key exists: pass --force to issue a new certificate and key "
                           "for 'web-01'\n");
  EXPECT_EQ(ReadTextFile(dir + "/web-01.crt"), cert);
  Outcome forced = RunPki({"pki", "issue", "--ca-dir", dir, "--host", "web-01", "--force"});
  EXPECT_EQ(forced.exit_code, kExitOk) << forced.err;
  EXPECT_NE(ReadTextFile(dir + "/web-01.crt"), cert);
}

TEST(PkiCommandTest, Issue_NeedsExactlyOneOfHostAndController) {
  TempDir tmp;
  const std::string dir = tmp.Sub("pki");
  ASSERT_EQ(RunPki({"pki", "init", dir}).exit_code, kExitOk);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"pki", "issue", "--ca-dir", dir},
        std::vector<std::string>{"pki", "issue", "--ca-dir", dir, "--host", "a", "--controller",
                                 "b"}}) {
    Outcome out = RunPki(args);
    EXPECT_EQ(out.exit_code, kExitError);
    EXPECT_EQ(out.err,
              "fleetctl: pki issue needs exactly one of --host ID (an agent's client certificate) "
              "or --controller NAME (the controller's server certificate)\n");
  }
}

TEST(PkiCommandTest, Issue_RefusesDaysOutOfRangeAndBadNames) {
  TempDir tmp;
  const std::string dir = tmp.Sub("pki");
  ASSERT_EQ(RunPki({"pki", "init", dir}).exit_code, kExitOk);
  Outcome days = RunPki({"pki", "issue", "--ca-dir", dir, "--host", "web-01", "--days", "0"});
  EXPECT_EQ(days.exit_code, kExitError);
  EXPECT_EQ(days.err, "fleetctl: --days 0 must be between 1 and 36500\n");
  Outcome name = RunPki({"pki", "issue", "--ca-dir", dir, "--host", "../web-01"});
  EXPECT_EQ(name.exit_code, kExitError);
  EXPECT_THAT(name.err, HasSubstr("'../web-01' cannot name a certificate"));
  EXPECT_FALSE(::fleet::PathExists(tmp.Sub("web-01.key")));
}

}  // namespace
}  // namespace fleet::cli
