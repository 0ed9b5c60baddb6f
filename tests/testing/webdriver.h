// A headless Chromium driven over WebDriver (W3C) for the dashboard's
// browser tests: Debian's `chromedriver` and `chromium`, started on a free
// loopback port in a temp dir and stopped with this object. Run as root,
// both run as `nobody` (with Chromium's --no-sandbox, which containers
// need); the browser's home and profile live in a dir of its own.
//
// With a CA file, the browser's NSS database (certutil, libnss3-tools)
// trusts that CA, so HTTPS pages load only with a certificate it signed.
//
// Every failure is reported with ADD_FAILURE and leaves ok() false; the
// calls after it do nothing and answer empty values.
#ifndef FLEET_TESTS_TESTING_WEBDRIVER_H_
#define FLEET_TESTS_TESTING_WEBDRIVER_H_

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/time/time.h"
#include "tests/testing/test_env.h"

namespace fleet::testing {

class WebDriver {
 public:
  // `ca_file`: a PEM CA to trust, "" for none. A `width` below 500 emulates
  // a phone of that size.
  explicit WebDriver(const std::string& ca_file = "", int width = 1280, int height = 900);
  ~WebDriver();
  WebDriver(const WebDriver&) = delete;
  WebDriver& operator=(const WebDriver&) = delete;

  bool ok() const { return ok_; }

  void Navigate(const std::string& url);
  // Navigates to `url` expecting the browser may refuse it: "" when
  // WebDriver reports no error (Chromium shows its own error pages, such as
  // one for an untrusted certificate, without one), else WebDriver's error.
  std::string NavigateError(const std::string& url);
  // Runs `script` (a function body; `arguments` holds `args`) in the page
  // and returns its value.
  nlohmann::json Execute(const std::string& script,
                         const nlohmann::json& args = nlohmann::json::array());
  // Runs `script` until it returns true or `timeout` passes.
  bool WaitUntil(const std::string& script, absl::Duration timeout,
                 const nlohmann::json& args = nlohmann::json::array());
  // The text of the first element matching `css`; "" when there is none.
  std::string Text(const std::string& css);
  // Whether an element matches `css`.
  bool Exists(const std::string& css);
  // Waits for an element matching `css` whose text contains `text`.
  bool WaitForText(const std::string& css, const std::string& text,
                   absl::Duration timeout = absl::Seconds(30));
  // Clicks / types into the first element matching `css` as a user would.
  void Click(const std::string& css);
  void Type(const std::string& css, const std::string& text);
  // Saves a PNG of the window to `path`.
  void Screenshot(const std::string& path);

  // The directory browser tests save their screenshots in:
  // <build>/tests/dashboard-screenshots.
  static std::string ScreenshotDir();

 private:
  // One WebDriver command; the answer's "value". Fails (ok_ = false) on an
  // error answer.
  nlohmann::json Command(const std::string& method, const std::string& path,
                         const nlohmann::json& body = nullptr);
  std::string Element(const std::string& css);
  void TrustCa(const std::string& ca_file, const std::string& home);

  bool ok_ = true;
  TempDir dir_;
  std::string home_;  // the browser's HOME and profile, owned by its user
  int port_ = 0;
  std::unique_ptr<Subprocess> driver_;
  std::string session_;
};

}  // namespace fleet::testing

#endif  // FLEET_TESTS_TESTING_WEBDRIVER_H_
