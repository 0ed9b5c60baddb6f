// End-to-end: mutual TLS between real agents and a real controller with
// certificates from common/pki (what `fleetctl pki` writes). Agents must
// present a certificate of the controller's CA that names their host id;
// fleetctl verifies the controller with --tls-ca; the controller's CA
// bundle is re-read while it runs; plaintext serves loopback only.
#include <httplib.h>
#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/pki.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"
#include "tests/testing/test_env.h"

namespace fleet {
namespace {

using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using testing::ReadTextFile;
using testing::RunCommand;
using testing::Subprocess;
using testing::TempDir;
using testing::WaitFor;
using testing::WriteTextFile;

ClusterOptions Tls(int agents) {
  ClusterOptions options;
  options.tls = true;
  options.agents = agents;
  return options;
}

// Whether `out` is exactly one line.
bool OneLine(const std::string& out) {
  return !out.empty() && out.back() == '\n' && out.find('\n') == out.size() - 1;
}

// One row of the controller's events table.
struct StoredEvent {
  std::string host_id;
  std::string kind;
  std::string message;
};

// The events of no app in the controller's database (read-only; the
// controller keeps running): no API lists them.
std::vector<StoredEvent> AppLessEvents(const Cluster& cluster) {
  std::vector<StoredEvent> events;
  sqlite3* db = nullptr;
  const std::string path = cluster.DataDir() + "/fleet.db";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << path << ": " << sqlite3_errmsg(db);
    sqlite3_close(db);
    return events;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT host_id, kind, message FROM events WHERE app = ''", -1, &stmt,
                         nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot query events: " << sqlite3_errmsg(db);
  }
  while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
    auto text = [stmt](int col) {
      const unsigned char* t = sqlite3_column_text(stmt, col);
      return t == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(t));
    };
    events.push_back({text(0), text(1), text(2)});
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return events;
}

// The lines of `fleetctl hosts` that name `host_id`.
std::vector<std::string> HostRows(Cluster& cluster, const std::string& host_id) {
  CommandOutput out = cluster.Fleetctl({"hosts"});
  EXPECT_EQ(out.exit_code, 0) << out.err;
  std::vector<std::string> rows;
  for (absl::string_view line : absl::StrSplit(out.out, '\n')) {
    if (absl::StartsWith(line, host_id + " ")) rows.emplace_back(line);
  }
  return rows;
}

// A certificate for `id` with `ca`, valid from `from` to `to`, written as
// DIR/<id>.crt and DIR/<id>.key.
void WriteIssued(const KeyAndCertificate& ca, const std::string& dir, const std::string& id,
                 absl::Time from, absl::Time to) {
  absl::StatusOr<KeyAndCertificate> issued =
      IssueCertificate(ca, id, CertificateKind::kHost, from, to);
  ASSERT_TRUE(issued.ok()) << issued.status();
  WriteTextFile(IssuedCertPath(dir, id), issued->cert_pem);
  WriteTextFile(IssuedKeyPath(dir, id), issued->key_pem, 0600);
}

TEST(E2ETlsTest, Cluster_DeploysAndRollsBackOverMutualTls) {
  Cluster cluster(Tls(3));
  ASSERT_TRUE(cluster.WaitForConnectedHosts(3)) << cluster.ControllerLog();
  EXPECT_THAT(cluster.ControllerLog(), HasSubstr(", mutual TLS), https on 127.0.0.1:"));
  EXPECT_THAT(cluster.AgentLog(0), HasSubstr("(mutual TLS)"));

  cluster.ApplyHelloSpec();
  for (const std::string version : {"v1", "v2"}) {
    std::string artifact = cluster.MakeHelloArtifact(version);
    CommandOutput out = cluster.Fleetctl({"release", "push", "hello", version, artifact});
    ASSERT_EQ(out.exit_code, 0) << out.err;
    out = cluster.Fleetctl({"rollout", "hello", version, "--wait"});
    ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(cluster.Current(i), "v2") << cluster.HostId(i);
    EXPECT_EQ(cluster.HttpGet(i, "/version"), "v2\n") << cluster.HostId(i);
  }

  CommandOutput rollback = cluster.Fleetctl({"rollback", "hello", "--wait"});
  EXPECT_EQ(rollback.exit_code, 0) << rollback.out << rollback.err;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(cluster.Current(i), "v1") << cluster.HostId(i);
}

TEST(E2ETlsTest, HttpEndpoints_ServeHttpsWithTheControllersCertificate) {
  Cluster cluster(Tls(1));
  ASSERT_TRUE(cluster.WaitForConnectedHosts(1)) << cluster.ControllerLog();
  httplib::SSLClient https("127.0.0.1", cluster.HttpPort());
  https.set_ca_cert_path(CaCertPath(cluster.PkiDir()).c_str());
  https.enable_server_certificate_verification(true);
  https.set_connection_timeout(5);
  auto res = https.Get("/healthz");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok\n");

  httplib::Client plain("127.0.0.1", cluster.HttpPort());
  plain.set_connection_timeout(5);
  plain.set_read_timeout(5);
  auto refused = plain.Get("/healthz");
  EXPECT_TRUE(!refused || refused->status != 200);
}

TEST(E2ETlsTest, Agent_WithCertificateOfAnotherCaIsNeverConnected) {
  Cluster cluster(Tls(1));
  ASSERT_TRUE(cluster.WaitForConnectedHosts(1)) << cluster.ControllerLog();
  const std::string other = cluster.dir() + "/other-pki";
  ASSERT_TRUE(InitCertificateAuthorityDir(other, absl::Hours(24)).ok());
  ASSERT_TRUE(
      IssueCertificateToDir(other, "web-04", CertificateKind::kHost, absl::Hours(24), false).ok());
  const std::string log = cluster.dir() + "/web-04.log";
  std::unique_ptr<Subprocess> agent = cluster.StartExtraAgent(
      "web-04", IssuedCertPath(other, "web-04"), IssuedKeyPath(other, "web-04"), log);

  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadTextFile(log), "Socket closed"); },
                      absl::Seconds(15)))
      << ReadTextFile(log);
  EXPECT_THAT(ReadTextFile(log),
              HasSubstr("does the controller's --tls-ca hold the CA that signed --tls-cert?"));
  EXPECT_THAT(cluster.ControllerLog(), HasSubstr("certificate verify failed"));
  EXPECT_TRUE(HostRows(cluster, "web-04").empty());
  EXPECT_TRUE(agent->running());
}

TEST(E2ETlsTest, Agent_WithExpiredCertificateIsRejected) {
  Cluster cluster(Tls(1));
  ASSERT_TRUE(cluster.WaitForConnectedHosts(1)) << cluster.ControllerLog();
  absl::StatusOr<KeyAndCertificate> ca = LoadCertificateAuthority(cluster.PkiDir());
  ASSERT_TRUE(ca.ok()) << ca.status();
  const std::string dir = cluster.dir() + "/expired";
  WriteIssued(*ca, dir, "web-05", absl::Now() - absl::Hours(48), absl::Now() - absl::Hours(24));
  const std::string log = cluster.dir() + "/web-05.log";
  std::unique_ptr<Subprocess> agent = cluster.StartExtraAgent(
      "web-05", IssuedCertPath(dir, "web-05"), IssuedKeyPath(dir, "web-05"), log);

  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadTextFile(log), "Socket closed"); },
                      absl::Seconds(15)))
      << ReadTextFile(log);
  const std::string agent_log = ReadTextFile(log);
  EXPECT_THAT(agent_log, HasSubstr(absl::StrCat("--tls-cert ", IssuedCertPath(dir, "web-05"),
                                                " expired on ")));
  EXPECT_THAT(cluster.ControllerLog(), HasSubstr("certificate verify failed"));
  EXPECT_TRUE(HostRows(cluster, "web-05").empty());
}

TEST(E2ETlsTest, Agent_ClaimingAnotherHostIdIsDeniedAndNothingIsRecordedForThatHost) {
  Cluster cluster(Tls(1));
  ASSERT_TRUE(cluster.WaitForConnectedHosts(1)) << cluster.ControllerLog();
  ASSERT_EQ(cluster.HostId(0), "web-01");
  const std::string log = cluster.dir() + "/impostor.log";
  std::unique_ptr<Subprocess> impostor =
      cluster.StartExtraAgent("web-02", IssuedCertPath(cluster.PkiDir(), "web-01"),
                              IssuedKeyPath(cluster.PkiDir(), "web-01"), log);

  const std::string denial = "host id 'web-02' does not match the client certificate (web-01)";
  ASSERT_TRUE(
      WaitFor([&] { return absl::StrContains(ReadTextFile(log), denial); }, absl::Seconds(15)))
      << ReadTextFile(log);
  EXPECT_THAT(cluster.ControllerLog(), HasSubstr(absl::StrCat("refused Connect from ")));
  EXPECT_THAT(cluster.ControllerLog(), HasSubstr(denial));

  EXPECT_TRUE(HostRows(cluster, "web-02").empty());
  // The real web-01 stays connected: the impostor never replaced its stream.
  std::vector<std::string> web01 = HostRows(cluster, "web-01");
  ASSERT_EQ(web01.size(), 1u);
  EXPECT_THAT(web01[0], HasSubstr(" yes "));

  std::vector<StoredEvent> denied;
  for (const StoredEvent& e : AppLessEvents(cluster)) {
    EXPECT_NE(e.host_id, "web-02") << e.kind << ": " << e.message;
    if (e.kind == "auth.denied" && absl::StrContains(e.message, denial)) denied.push_back(e);
  }
  // Retries within kDenialRecordInterval are logged, not recorded again.
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(denied[0].host_id, "web-01");
  EXPECT_THAT(denied[0].message, HasSubstr("Connect from ipv4:127.0.0.1:"));
}

TEST(E2ETlsTest, Fleetctl_WithoutTlsCaFailsWithOneLineSuggestingIt) {
  Cluster cluster(Tls(1));
  ASSERT_TRUE(cluster.WaitForConnectedHosts(1)) << cluster.ControllerLog();
  CommandOutput out =
      RunCommand({Cluster::Binary("fleetctl"), "--controller", cluster.address(), "hosts"});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_TRUE(OneLine(out.err)) << out.err;
  EXPECT_THAT(out.err, HasSubstr(absl::StrCat("fleetctl: cannot reach the controller at ",
                                              cluster.address())));
  EXPECT_THAT(out.err, EndsWith("is it TLS? pass --tls-ca or set FLEET_TLS_CA)\n"));
}

TEST(E2ETlsTest, Fleetctl_WithAnotherCaFailsTheHandshake) {
  Cluster cluster(Tls(1));
  ASSERT_TRUE(cluster.WaitForConnectedHosts(1)) << cluster.ControllerLog();
  const std::string other = cluster.dir() + "/other-pki";
  ASSERT_TRUE(InitCertificateAuthorityDir(other, absl::Hours(24)).ok());
  CommandOutput out =
      RunCommand({Cluster::Binary("fleetctl"), "--controller", cluster.address(), "hosts"},
                 absl::Seconds(60), {{"FLEET_TLS_CA", CaCertPath(other)}});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_TRUE(OneLine(out.err)) << out.err;
  EXPECT_THAT(out.err, HasSubstr(absl::StrCat("fleetctl: TLS handshake with the controller at ",
                                              cluster.address(),
                                              " failed: its certificate must chain to a "
                                              "CA in --tls-ca ",
                                              CaCertPath(other))));
  EXPECT_THAT(out.err, HasSubstr("certificate verify failed"));
}

TEST(E2ETlsTest, Rotation_ControllerTrustsASecondCaOnceItsBundleIsReplaced) {
  Cluster cluster(Tls(1));
  ASSERT_TRUE(cluster.WaitForConnectedHosts(1)) << cluster.ControllerLog();
  const std::string second = cluster.dir() + "/second-pki";
  ASSERT_TRUE(InitCertificateAuthorityDir(second, absl::Hours(24)).ok());
  ASSERT_TRUE(
      IssueCertificateToDir(second, "web-07", CertificateKind::kHost, absl::Hours(24), false).ok());
  const std::string log = cluster.dir() + "/web-07.log";
  std::unique_ptr<Subprocess> agent = cluster.StartExtraAgent(
      "web-07", IssuedCertPath(second, "web-07"), IssuedKeyPath(second, "web-07"), log);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadTextFile(log), "Socket closed"); },
                      absl::Seconds(15)))
      << ReadTextFile(log);
  EXPECT_TRUE(HostRows(cluster, "web-07").empty());

  // The old CA and the new one side by side, as during a rotation.
  WriteTextFile(cluster.ControllerCaFile() + ".new",
                ReadTextFile(CaCertPath(cluster.PkiDir())) + ReadTextFile(CaCertPath(second)));
  std::filesystem::rename(cluster.ControllerCaFile() + ".new", cluster.ControllerCaFile());

  // Reload every 1s; the agent retries with backoff of at most 10s.
  EXPECT_TRUE(cluster.WaitForConnectedHosts(2, absl::Seconds(20)))
      << ReadTextFile(log) << cluster.ControllerLog();
  std::vector<std::string> web07 = HostRows(cluster, "web-07");
  ASSERT_EQ(web07.size(), 1u);
  EXPECT_THAT(web07[0], HasSubstr(" yes "));
  // Hosts of the first CA were not disturbed.
  EXPECT_THAT(HostRows(cluster, "web-01"), ::testing::ElementsAre(HasSubstr(" yes ")));
}

TEST(E2ETlsTest, PkiCommands_MakeCertificatesThatControllerAgentAndFleetctlAccept) {
  TempDir dir;
  const std::string pki = dir.Sub("pki");
  const std::string fleetctl = Cluster::Binary("fleetctl");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{fleetctl, "pki", "init", pki},
        std::vector<std::string>{fleetctl, "pki", "issue", "--ca-dir", pki, "--controller",
                                 "fleet.example.net"},
        std::vector<std::string>{fleetctl, "pki", "issue", "--ca-dir", pki, "--host", "web-01"}}) {
    CommandOutput out = RunCommand(args, absl::Seconds(30));
    ASSERT_EQ(out.exit_code, 0) << out.err;
    EXPECT_THAT(out.out, HasSubstr("wrote " + pki + "/"));
  }
  const std::string grpc = absl::StrCat("127.0.0.1:", testing::FreePort());
  Subprocess controller({Cluster::Binary("fleet-controller"), "--listen", grpc, "--http-listen",
                         absl::StrCat("127.0.0.1:", testing::FreePort()), "--data-dir",
                         dir.Sub("data"), "--tls-cert", pki + "/fleet.example.net.crt", "--tls-key",
                         pki + "/fleet.example.net.key", "--tls-ca", pki + "/ca.crt"},
                        dir.Sub("controller.log"));
  // "localhost" is one of the names `pki issue --controller` puts in.
  const std::string dialled = absl::StrCat("localhost:", grpc.substr(grpc.rfind(':') + 1));
  Subprocess agent(
      {Cluster::Binary("fleet-agent"), "--controller", dialled, "--host-id", "web-01",
       "--apps-root", dir.Sub("apps"), "--state-dir", dir.Sub("state"), "--tls-cert",
       pki + "/web-01.crt", "--tls-key", pki + "/web-01.key", "--tls-ca", pki + "/ca.crt"},
      dir.Sub("agent.log"));
  CommandOutput hosts;
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string token(
            absl::StripAsciiWhitespace(ReadTextFile(dir.Sub("data/admin.token"))));
        hosts =
            RunCommand({fleetctl, "--controller", dialled, "--tls-ca", pki + "/ca.crt", "hosts"},
                       absl::Seconds(30), {{"FLEET_TOKEN", token}});
        return hosts.exit_code == 0 && absl::StrContains(hosts.out, "web-01 ") &&
               absl::StrContains(hosts.out, " yes ");
      },
      absl::Seconds(20)))
      << hosts.out << hosts.err << ReadTextFile(dir.Sub("agent.log"))
      << ReadTextFile(dir.Sub("controller.log"));
}

TEST(E2ETlsTest, Rotation_AgentPicksUpItsRenewedCertificateWithoutRestart) {
  Cluster cluster(Tls(1));
  ASSERT_TRUE(cluster.WaitForConnectedHosts(1)) << cluster.ControllerLog();
  absl::StatusOr<KeyAndCertificate> ca = LoadCertificateAuthority(cluster.PkiDir());
  ASSERT_TRUE(ca.ok()) << ca.status();
  const std::string dir = cluster.dir() + "/renewed";
  WriteIssued(*ca, dir, "web-06", absl::Now() - absl::Hours(48), absl::Now() - absl::Hours(24));
  const std::string log = cluster.dir() + "/web-06.log";
  std::unique_ptr<Subprocess> agent = cluster.StartExtraAgent(
      "web-06", IssuedCertPath(dir, "web-06"), IssuedKeyPath(dir, "web-06"), log);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadTextFile(log), "Socket closed"); },
                      absl::Seconds(15)))
      << ReadTextFile(log);

  // Renewed as an operator would: new files renamed over the old ones.
  WriteIssued(*ca, dir + "/new", "web-06", absl::Now() - absl::Minutes(5),
              absl::Now() + absl::Hours(24));
  std::filesystem::rename(IssuedKeyPath(dir + "/new", "web-06"), IssuedKeyPath(dir, "web-06"));
  std::filesystem::rename(IssuedCertPath(dir + "/new", "web-06"), IssuedCertPath(dir, "web-06"));

  EXPECT_TRUE(cluster.WaitForConnectedHosts(2, absl::Seconds(20)))
      << ReadTextFile(log) << cluster.ControllerLog();
  EXPECT_THAT(HostRows(cluster, "web-06"), ::testing::ElementsAre(HasSubstr(" yes ")));
  EXPECT_TRUE(agent->running());
}

TEST(E2ETlsTest, Controller_RefusesNonLoopbackListenWithoutTlsAndServesItWithInsecure) {
  TempDir dir;
  std::vector<std::string> argv = {Cluster::Binary("fleet-controller"),
                                   "--listen",
                                   "0.0.0.0:0",
                                   "--http-listen",
                                   "127.0.0.1:0",
                                   "--data-dir",
                                   dir.Sub("data")};
  CommandOutput refused = RunCommand(argv, absl::Seconds(30));
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err,
            "fleet-controller: --listen 0.0.0.0:0 is not a loopback address: give "
            "--tls-cert/--tls-key/--tls-ca, or --insecure to serve plaintext anyway\n");
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("data")));

  argv.push_back("--insecure");
  Subprocess controller(argv, dir.Sub("controller.log"));
  EXPECT_TRUE(WaitFor(
      [&] { return absl::StrContains(ReadTextFile(dir.Sub("controller.log")), "listening on"); },
      absl::Seconds(15)))
      << ReadTextFile(dir.Sub("controller.log"));
  EXPECT_THAT(ReadTextFile(dir.Sub("controller.log")),
              HasSubstr("gRPC on 0.0.0.0:0 is plaintext and unauthenticated"));
  EXPECT_TRUE(controller.running());
}

TEST(E2ETlsTest, Controller_RefusesTlsFileItCannotReadNamingIt) {
  TempDir dir;
  CommandOutput out = RunCommand(
      {Cluster::Binary("fleet-controller"), "--listen", "127.0.0.1:0", "--http-listen",
       "127.0.0.1:0", "--data-dir", dir.Sub("data"), "--tls-cert", dir.Sub("missing.crt"),
       "--tls-key", dir.Sub("missing.key"), "--tls-ca", dir.Sub("ca.crt")},
      absl::Seconds(30));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_EQ(out.err, absl::StrCat("fleet-controller: --tls-cert: cannot read ",
                                  dir.Sub("missing.crt"), ": No such file or directory\n"));
}

TEST(E2ETlsTest, Agent_RefusesNonLoopbackControllerWithoutTls) {
  TempDir dir;
  std::vector<std::string> argv = {Cluster::Binary("fleet-agent"),
                                   "--controller",
                                   "192.0.2.10:7000",
                                   "--host-id",
                                   "web-01",
                                   "--apps-root",
                                   dir.Sub("apps"),
                                   "--state-dir",
                                   dir.Sub("state")};
  CommandOutput refused = RunCommand(argv, absl::Seconds(30));
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err,
            "fleet-agent: --controller 192.0.2.10:7000 is not a loopback address: give "
            "--tls-cert/--tls-key/--tls-ca, or --insecure to connect in plaintext anyway\n");

  argv.push_back("--insecure");
  Subprocess agent(argv, dir.Sub("agent.log"));
  EXPECT_TRUE(
      WaitFor([&] { return absl::StrContains(ReadTextFile(dir.Sub("agent.log")), "(plaintext)"); },
              absl::Seconds(15)))
      << ReadTextFile(dir.Sub("agent.log"));
  EXPECT_TRUE(agent.running());
}

TEST(E2ETlsTest, Agent_RefusesTlsFilesWithSimulatedHosts) {
  TempDir dir;
  const std::string pki = dir.Sub("pki");
  ASSERT_TRUE(InitCertificateAuthorityDir(pki, absl::Hours(24)).ok());
  ASSERT_TRUE(
      IssueCertificateToDir(pki, "web", CertificateKind::kHost, absl::Hours(24), false).ok());
  CommandOutput out =
      RunCommand({Cluster::Binary("fleet-agent"), "--controller", "127.0.0.1:7000", "--simulate",
                  "2", "--host-id", "web", "--apps-root", dir.Sub("apps"), "--state-dir",
                  dir.Sub("state"), "--tls-cert", IssuedCertPath(pki, "web"), "--tls-key",
                  IssuedKeyPath(pki, "web"), "--tls-ca", CaCertPath(pki)},
                 absl::Seconds(30));
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_TRUE(OneLine(out.err)) << out.err;
  EXPECT_THAT(out.err,
              HasSubstr("fleet-agent: --simulate cannot use --tls-cert/--tls-key/--tls-ca"));
}

}  // namespace
}  // namespace fleet
