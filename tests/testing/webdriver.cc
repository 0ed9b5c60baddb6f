#include "tests/testing/webdriver.h"

#include <httplib.h>
#include <pwd.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fleet::testing {
namespace {

constexpr char kBrowserUser[] = "nobody";
// The key W3C WebDriver names an element reference with.
constexpr char kElementKey[] = "element-6066-11e4-a52e-4f735466cecf";

// argv run as kBrowserUser when this process is root, else as it is.
std::vector<std::string> AsBrowserUser(std::vector<std::string> argv) {
  if (geteuid() != 0) return argv;
  std::vector<std::string> out = {"setpriv", absl::StrCat("--reuid=", kBrowserUser),
                                  "--regid=nogroup", "--clear-groups", "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

// A dir the browser's user owns: under /tmp, which it can reach (a test's
// temp dir may be private to root).
std::string MakeBrowserHome(const std::string& fallback) {
  if (geteuid() != 0) {
    std::filesystem::create_directories(fallback);
    return fallback;
  }
  std::string tmpl = "/tmp/fleet-browser-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp for the browser's home failed";
    return fallback;
  }
  const passwd* user = getpwnam(kBrowserUser);
  if (user == nullptr || chown(tmpl.c_str(), user->pw_uid, user->pw_gid) != 0) {
    ADD_FAILURE() << "cannot give " << tmpl << " to " << kBrowserUser;
  }
  return tmpl;
}

}  // namespace

std::string WebDriver::ScreenshotDir() {
  return std::string(FLEET_BINARY_DIR) + "/tests/dashboard-screenshots";
}

WebDriver::WebDriver(const std::string& ca_file, int width, int height) {
  home_ = MakeBrowserHome(dir_.Sub("home"));
  if (!ca_file.empty()) TrustCa(ca_file, home_);
  port_ = FreePort();
  driver_ = std::make_unique<Subprocess>(
      AsBrowserUser({"chromedriver", absl::StrCat("--port=", port_)}), dir_.Sub("chromedriver.log"),
      // Its temp files too: the test's TMPDIR may be private to root.
      std::map<std::string, std::string>{{"HOME", home_}, {"TMPDIR", home_}});
  const bool up = WaitFor(
      [&] {
        httplib::Client client("127.0.0.1", port_);
        auto res = client.Get("/status");
        return res && res->status == 200;
      },
      absl::Seconds(20));
  if (!up) {
    ADD_FAILURE() << "chromedriver did not start: " << ReadTextFile(dir_.Sub("chromedriver.log"));
    ok_ = false;
    return;
  }
  nlohmann::json args = {"--headless=new",
                         "--no-sandbox",
                         "--disable-gpu",
                         "--disable-dev-shm-usage",
                         "--no-first-run",
                         "--no-default-browser-check",
                         "--disable-extensions",
                         "--disable-background-networking",
                         "--disable-component-update",
                         "--disable-sync",
                         absl::StrCat("--window-size=", width, ",", height),
                         absl::StrCat("--user-data-dir=", home_, "/profile")};
  nlohmann::json chrome = {{"binary", "/usr/bin/chromium"}, {"args", args}};
  // Headless windows are at least 500 pixels wide: a phone's width needs
  // the device emulation (which also sets a phone's viewport).
  if (width < 500) {
    chrome["mobileEmulation"] = {
        {"deviceMetrics", {{"width", width}, {"height", height}, {"pixelRatio", 2}}}};
  }
  nlohmann::json caps = {
      {"capabilities",
       {{"alwaysMatch", {{"browserName", "chrome"}, {"goog:chromeOptions", chrome}}}}}};
  nlohmann::json created = Command("POST", "/session", caps);
  if (ok_) session_ = created.value("sessionId", "");
  if (session_.empty()) {
    ADD_FAILURE() << "no WebDriver session: " << created.dump();
    ok_ = false;
  }
}

WebDriver::~WebDriver() {
  if (!session_.empty()) {
    ok_ = true;
    Command("DELETE", "/session/" + session_);
  }
  if (driver_) driver_->Stop(absl::Seconds(5));
  if (home_ != dir_.Sub("home")) {
    std::error_code ec;
    std::filesystem::remove_all(home_, ec);
  }
}

void WebDriver::TrustCa(const std::string& ca_file, const std::string& home) {
  const std::string db = home + "/.pki/nssdb";
  const std::string ca_copy = home + "/ca.crt";
  std::filesystem::copy_file(ca_file, ca_copy, std::filesystem::copy_options::overwrite_existing);
  if (geteuid() == 0) {
    const passwd* user = getpwnam(kBrowserUser);
    if (user != nullptr && chown(ca_copy.c_str(), user->pw_uid, user->pw_gid) != 0) {
      ADD_FAILURE() << "cannot give " << ca_copy << " to " << kBrowserUser;
    }
  }
  const std::map<std::string, std::string> env = {{"HOME", home}, {"TMPDIR", home}};
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{"mkdir", "-p", db},
        std::vector<std::string>{"certutil", "-d", "sql:" + db, "-N", "--empty-password"},
        std::vector<std::string>{"certutil", "-d", "sql:" + db, "-A", "-t", "C,,", "-n",
                                 "fleet-test-ca", "-i", ca_copy}}) {
    CommandOutput out = RunCommand(AsBrowserUser(argv), absl::Seconds(30), env);
    if (out.exit_code != 0) {
      ADD_FAILURE() << argv[0] << " failed: " << out.out << out.err;
      ok_ = false;
    }
  }
}

nlohmann::json WebDriver::Command(const std::string& method, const std::string& path,
                                  const nlohmann::json& body) {
  if (!ok_) return nullptr;
  httplib::Client client("127.0.0.1", port_);
  client.set_read_timeout(120, 0);
  httplib::Result res =
      method == "GET" ? client.Get(path.c_str())
      : method == "DELETE"
          ? client.Delete(path.c_str())
          : client.Post(path.c_str(), body.is_null() ? "{}" : body.dump(), "application/json");
  if (!res) {
    ADD_FAILURE() << "WebDriver " << method << " " << path << ": no answer from chromedriver";
    ok_ = false;
    return nullptr;
  }
  nlohmann::json answer = nlohmann::json::parse(res->body, nullptr, false);
  if (res->status != 200 || answer.is_discarded()) {
    ADD_FAILURE() << "WebDriver " << method << " " << path << ": " << res->status << " "
                  << res->body.substr(0, 2000);
    ok_ = false;
    return nullptr;
  }
  return answer.value("value", nlohmann::json());
}

void WebDriver::Navigate(const std::string& url) {
  Command("POST", absl::StrCat("/session/", session_, "/url"), {{"url", url}});
}

std::string WebDriver::NavigateError(const std::string& url) {
  if (!ok_) return "no browser";
  httplib::Client client("127.0.0.1", port_);
  client.set_read_timeout(120, 0);
  const nlohmann::json body = {{"url", url}};
  httplib::Result res = client.Post(absl::StrCat("/session/", session_, "/url").c_str(),
                                    body.dump(), "application/json");
  if (!res) return "no answer from chromedriver";
  if (res->status == 200) return "";
  nlohmann::json answer = nlohmann::json::parse(res->body, nullptr, false);
  if (answer.is_discarded() || !answer["value"].is_object()) return res->body;
  return answer["value"].value("error", res->body);
}

nlohmann::json WebDriver::Execute(const std::string& script, const nlohmann::json& args) {
  return Command("POST", absl::StrCat("/session/", session_, "/execute/sync"),
                 {{"script", script}, {"args", args}});
}

bool WebDriver::WaitUntil(const std::string& script, absl::Duration timeout,
                          const nlohmann::json& args) {
  return WaitFor(
             [&] {
               nlohmann::json v = Execute(script, args);
               return !ok_ || (v.is_boolean() && v.get<bool>());
             },
             timeout) &&
         ok_;
}

std::string WebDriver::Text(const std::string& css) {
  nlohmann::json v = Execute(
      "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", {css});
  return v.is_string() ? v.get<std::string>() : "";
}

bool WebDriver::Exists(const std::string& css) {
  nlohmann::json v = Execute("return document.querySelector(arguments[0]) !== null;", {css});
  return v.is_boolean() && v.get<bool>();
}

bool WebDriver::WaitForText(const std::string& css, const std::string& text,
                            absl::Duration timeout) {
  return WaitUntil(
      "return [...document.querySelectorAll(arguments[0])]"
      ".some((e) => e.innerText.includes(arguments[1]));",
      timeout, {css, text});
}

std::string WebDriver::Element(const std::string& css) {
  nlohmann::json v = Command("POST", absl::StrCat("/session/", session_, "/element"),
                             {{"using", "css selector"}, {"value", css}});
  return v.is_object() ? v.value(kElementKey, "") : "";
}

void WebDriver::Click(const std::string& css) {
  const std::string id = Element(css);
  if (!ok_) return;
  Command("POST", absl::StrCat("/session/", session_, "/element/", id, "/click"));
}

void WebDriver::Type(const std::string& css, const std::string& text) {
  const std::string id = Element(css);
  if (!ok_) return;
  Command("POST", absl::StrCat("/session/", session_, "/element/", id, "/value"), {{"text", text}});
}

void WebDriver::Screenshot(const std::string& path) {
  nlohmann::json v = Command("GET", absl::StrCat("/session/", session_, "/screenshot"));
  std::string png;
  if (!v.is_string() || !absl::Base64Unescape(v.get<std::string>(), &png)) {
    ADD_FAILURE() << "no screenshot for " << path;
    return;
  }
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << png;
}

}  // namespace fleet::testing
