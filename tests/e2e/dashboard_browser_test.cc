// End-to-end in a real browser: headless Chromium (Debian's chromium and
// chromedriver, tests/testing/webdriver.h) against a real controller and
// real agents. Each page is saved as a screenshot in
// <build>/tests/dashboard-screenshots/.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/dashboard_support.h"
#include "tests/testing/cluster.h"
#include "tests/testing/webdriver.h"

namespace fleet {
namespace {

using dashboard_test::AdminToken;
using dashboard_test::CreateToken;
using dashboard_test::PushHello;
using dashboard_test::Token;
using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;
using ::testing::HasSubstr;
using testing::WebDriver;

std::string Shot(const std::string& name) { return WebDriver::ScreenshotDir() + "/" + name; }

std::string PageUrl(const Cluster& cluster, const std::string& scheme = "http") {
  return absl::StrCat(scheme, "://127.0.0.1:", cluster.HttpPort(), "/ui/");
}

// Signs in on the login view with `token`, naming `actor`, and waits for
// the fleet page.
void SignIn(WebDriver& browser, const std::string& token, const std::string& actor) {
  ASSERT_TRUE(
      browser.WaitUntil("return document.getElementById('login') !== null;", absl::Seconds(20)));
  browser.Type("#token", token);
  browser.Type("#actor", actor);
  browser.Click("#login button[type=submit]");
  ASSERT_TRUE(browser.WaitUntil(
      "return !document.getElementById('login') && !document.getElementById('nav').hidden;",
      absl::Seconds(20)))
      << browser.Text("body");
}

// Shows `hash` (#/rollout/7, ...) without reloading the page.
void Go(WebDriver& browser, const std::string& hash) {
  browser.Execute("location.hash = arguments[0];", {hash});
}

std::string StartRollout(Cluster& cluster, const std::vector<std::string>& args) {
  CommandOutput out = cluster.Fleetctl(args);
  EXPECT_EQ(out.exit_code, 0) << out.out << out.err;
  return Cluster::RolloutId(out.out);
}

// The figures the page measured (window.fleetMetrics and the paint
// timing), printed and kept next to the screenshots.
void ReportFigures(WebDriver& browser, const std::string& what) {
  nlohmann::json m = browser.Execute(
      "const p = performance.getEntriesByType('paint')"
      "  .find((e) => e.name === 'first-contentful-paint');"
      "return Object.assign({fcp: p ? p.startTime : null}, window.fleetMetrics);");
  std::vector<double> lat;
  for (const auto& v : m["updateLatenciesMs"]) lat.push_back(v.get<double>());
  std::sort(lat.begin(), lat.end());
  std::string line = absl::StrFormat(
      "dashboard figures (%s): first contentful paint %.0f ms, first data shown %.0f ms", what,
      m["fcp"].is_number() ? m["fcp"].get<double>() : -1.0,
      m["firstRenderMs"].is_number() ? m["firstRenderMs"].get<double>() : -1.0);
  if (!lat.empty()) {
    absl::StrAppendFormat(&line,
                          "; host transition to page update: median %.0f ms, max %.0f ms "
                          "over %d host updates",
                          lat[lat.size() / 2], lat.back(), static_cast<int>(lat.size()));
  }
  std::cout << line << std::endl;
  std::ofstream(Shot("figures.txt"), std::ios::app) << line << "\n";
}

ClusterOptions AuthCluster(int agents) {
  ClusterOptions options;
  options.agents = agents;
  options.auth = true;
  return options;
}

TEST(E2EDashboardBrowserTest, LiveRolloutFailingHostReasonAndOneClickRollback) {
  Cluster cluster(AuthCluster(3));
  ASSERT_TRUE(cluster.WaitForConnectedHosts(3)) << cluster.ControllerLog();
  cluster.ApplyHelloSpec();
  PushHello(cluster, "v1");
  ASSERT_EQ(cluster.Fleetctl({"rollout", "hello", "v1", "--wait"}).exit_code, 0);
  const Token deployer = CreateToken(cluster, "deployer", "hello");

  WebDriver browser;
  ASSERT_TRUE(browser.ok());
  // Without a token: the login view.
  browser.Navigate(PageUrl(cluster));
  ASSERT_TRUE(browser.WaitForText("#login", "API token"));
  browser.Screenshot(Shot("login.png"));
  SignIn(browser, deployer.token, "alice");
  ASSERT_TRUE(browser.WaitForText("#hosts-connected", "3/3"));
  ASSERT_TRUE(browser.WaitForText("td", "hello"));
  browser.Screenshot(Shot("fleet.png"));
  ReportFigures(browser, "fleet page, 3 hosts");

  // A rollout started with fleetctl: its page changes as it goes, without
  // a reload, until it ends.
  PushHello(cluster, "v2");
  browser.Execute("window.loadedOnce = true;");
  const std::string v2 =
      StartRollout(cluster, {"rollout", "hello", "v2", "--waves", "1,100%", "--bake", "3s"});
  Go(browser, "#/rollout/" + v2);
  ASSERT_TRUE(browser.WaitForText("#rollout-state", "activating", absl::Seconds(30)))
      << browser.Text("main");
  browser.Screenshot(Shot("rollout-live.png"));
  ASSERT_TRUE(browser.WaitForText("#rollout-state", "succeeded", absl::Seconds(60)))
      << browser.Text("main");
  EXPECT_EQ(browser.Execute("return window.loadedOnce === true;"), true) << "the page reloaded";
  EXPECT_GE(browser.Execute("return window.fleetMetrics.updates;").get<int>(), 3);
  browser.Screenshot(Shot("rollout.png"));

  // A failing release: the failing host's reason, on the rollout page and
  // as the fleet's last failure.
  PushHello(cluster, "v3", /*healthz_status=*/502);
  const std::string v3 = StartRollout(cluster, {"rollout", "hello", "v3"});
  Go(browser, "#/rollout/" + v3);
  ASSERT_TRUE(browser.WaitForText("#rollout-state", "rolled back", absl::Seconds(90)))
      << browser.Text("main");
  EXPECT_TRUE(browser.WaitForText("td.reason", "returned 502", absl::Seconds(10)))
      << browser.Text("main");
  browser.Screenshot(Shot("rollout-failed.png"));
  ReportFigures(browser, "after two live rollouts of 3 hosts");
  Go(browser, "#/fleet");
  EXPECT_TRUE(browser.WaitForText("td.reason", "502")) << browser.Text("main");

  // One-click rollback as the deployer: the confirmation names the target
  // and how many hosts switch, then every host switches.
  Go(browser, "#/app/hello");
  ASSERT_TRUE(browser.WaitForText("h1", "App hello"));
  ASSERT_TRUE(
      browser.WaitUntil("return document.getElementById('rollback') !== null;", absl::Seconds(20)));
  browser.Click("#rollback");
  ASSERT_TRUE(browser.WaitForText("#confirm", "to v1"));
  EXPECT_EQ(browser.Text("#confirm-count"), "3 of 3 hosts will switch");
  browser.Screenshot(Shot("app.png"));
  browser.Click("#confirm-rollback");
  ASSERT_TRUE(browser.WaitForText("h1", "rollback", absl::Seconds(20))) << browser.Text("main");
  ASSERT_TRUE(browser.WaitForText("#rollout-state", "succeeded", absl::Seconds(60)))
      << browser.Text("main");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(cluster.Current(i), "v1") << cluster.HostId(i);
  browser.Screenshot(Shot("rollback.png"));
  EXPECT_THAT(cluster.HistoryEvents("hello", "rollback.started").at(0).value("actor", ""),
              HasSubstr("alice via dashboard (token " + deployer.id + ")"));

  Go(browser, "#/hosts");
  ASSERT_TRUE(browser.WaitForText("td", cluster.HostId(2)));
  EXPECT_TRUE(browser.WaitForText("td", "ago"));
  browser.Screenshot(Shot("hosts.png"));
  Go(browser, "#/audit");
  ASSERT_TRUE(browser.WaitForText("td", "rollback.started"));
  browser.Screenshot(Shot("audit.png"));
}

TEST(E2EDashboardBrowserTest, PhoneWidth_FleetPageFitsWithoutSideScrolling) {
  Cluster cluster(AuthCluster(1));
  ASSERT_TRUE(cluster.WaitForConnectedHosts(1)) << cluster.ControllerLog();
  cluster.ApplyHelloSpec();
  WebDriver browser("", 390, 844);
  ASSERT_TRUE(browser.ok());
  browser.Navigate(PageUrl(cluster));
  SignIn(browser, CreateToken(cluster, "viewer").token, "");
  ASSERT_TRUE(browser.WaitForText("#hosts-connected", "1/1"));
  EXPECT_EQ(browser.Execute("return document.documentElement.scrollWidth <= window.innerWidth;"),
            true);
  browser.Screenshot(Shot("fleet-phone.png"));
}

TEST(E2EDashboardBrowserTest, Viewer_SeesNoActionButtonsAndAForcedActionIsRefused) {
  Cluster cluster(AuthCluster(2));
  ASSERT_TRUE(cluster.WaitForConnectedHosts(2)) << cluster.ControllerLog();
  cluster.ApplyHelloSpec();
  PushHello(cluster, "v1");
  ASSERT_EQ(cluster.Fleetctl({"rollout", "hello", "v1", "--wait"}).exit_code, 0);
  PushHello(cluster, "v2");
  // Waits at a promote gate after its first wave: running, with actions.
  const std::string id =
      StartRollout(cluster, {"rollout", "hello", "v2", "--waves", "1,100%", "--manual-promote"});
  const Token viewer = CreateToken(cluster, "viewer");

  WebDriver browser;
  ASSERT_TRUE(browser.ok());
  browser.Navigate(PageUrl(cluster));
  SignIn(browser, viewer.token, "");
  Go(browser, "#/rollout/" + id);
  ASSERT_TRUE(browser.WaitForText("#rollout-state", "paused", absl::Seconds(60)))
      << browser.Text("main");
  EXPECT_FALSE(browser.Exists("button[id^=action-]"));
  // Forced anyway: the API refuses, and the page shows its one line.
  nlohmann::json status = browser.Execute(
      "return fetch('/api/v1/rollouts/' + arguments[0] + '/abort', {method: 'POST',"
      " headers: Object.assign({'Content-Type': 'application/json'}, authHeaders()),"
      " body: '{}'}).then((r) => r.status);",
      {id});
  EXPECT_EQ(status, 403);
  browser.Execute("return act('/api/v1/rollouts/' + arguments[0] + '/abort', {});", {id});
  EXPECT_TRUE(browser.WaitForText("#error", "(viewer) may not abort rollouts of app 'hello'"));
  browser.Screenshot(Shot("viewer-refused.png"));
  Go(browser, "#/app/hello");
  ASSERT_TRUE(browser.WaitForText("h1", "App hello"));
  ASSERT_TRUE(browser.WaitForText("dt", "Last rollout"));
  EXPECT_FALSE(browser.Exists("#rollback"));

  // The same page as a deployer of the app offers promote, which works.
  browser.Click("#signout");
  SignIn(browser, CreateToken(cluster, "deployer", "hello").token, "bob");
  Go(browser, "#/rollout/" + id);
  ASSERT_TRUE(browser.WaitUntil("return document.getElementById('action-promote') !== null;",
                                absl::Seconds(20)));
  EXPECT_TRUE(browser.Exists("#action-abort"));
  browser.Screenshot(Shot("rollout-gate.png"));
  browser.Click("#action-promote");
  ASSERT_TRUE(browser.WaitForText("#rollout-state", "succeeded", absl::Seconds(60)))
      << browser.Text("main");
  EXPECT_EQ(cluster.Current(1), "v2");
}

TEST(E2EDashboardBrowserTest, Tls_PageLoadsOverHttpsWithTheTestCaOnly) {
  ClusterOptions options = AuthCluster(1);
  options.tls = true;
  Cluster cluster(options);
  ASSERT_TRUE(cluster.WaitForConnectedHosts(1)) << cluster.ControllerLog();
  {
    WebDriver browser(cluster.PkiDir() + "/ca.crt");
    ASSERT_TRUE(browser.ok());
    browser.Navigate(PageUrl(cluster, "https"));
    SignIn(browser, AdminToken(cluster), "");
    EXPECT_TRUE(browser.WaitForText("#hosts-connected", "1/1"));
    EXPECT_EQ(browser.Execute("return location.protocol;"), "https:");
    browser.Screenshot(Shot("fleet-https.png"));
  }
  // A browser that does not trust the test CA gets no page.
  WebDriver untrusting;
  ASSERT_TRUE(untrusting.ok());
  // Chromium shows its certificate error page instead.
  untrusting.NavigateError(PageUrl(cluster, "https"));
  EXPECT_EQ(untrusting.Execute("return document.title;"), "Privacy error");
  EXPECT_THAT(untrusting.Text("body"), HasSubstr("ERR_CERT_AUTHORITY_INVALID"));
  EXPECT_FALSE(untrusting.Exists("#login"));
}

}  // namespace
}  // namespace fleet
