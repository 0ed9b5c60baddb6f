#include "controller/dashboard_ui.h"

#include <httplib.h>

#include <string>

#include "absl/strings/match.h"
#include "controller/dashboard_http.h"

namespace fleet::controller {
namespace {

// Scripts, styles, images and connections from this server only; the page
// runs no inline script and may be framed by nobody.
constexpr char kContentSecurityPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void ServeAsset(const std::string& name, httplib::Response& res) {
  const DashboardAsset* asset = FindDashboardAsset(name);
  AddSecurityHeaders(res);
  res.set_header("Content-Security-Policy", kContentSecurityPolicy);
  if (asset == nullptr) {
    res.status = 404;
    res.set_content("not found\n", "text/plain");
    return;
  }
  // The files change with the binary: revalidate rather than keep a stale page.
  res.set_header("Cache-Control", "no-cache");
  res.set_content(reinterpret_cast<const char*>(asset->data), asset->size,
                  DashboardContentType(name));
}

}  // namespace

const DashboardAsset* FindDashboardAsset(absl::string_view name) {
  for (size_t i = 0; i < kDashboardAssetCount; ++i) {
    if (name == kDashboardAssets[i].name) return &kDashboardAssets[i];
  }
  return nullptr;
}

const char* DashboardContentType(absl::string_view name) {
  if (absl::EndsWith(name, ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(name, ".js")) return "text/javascript; charset=utf-8";
  if (absl::EndsWith(name, ".css")) return "text/css; charset=utf-8";
  if (absl::EndsWith(name, ".svg")) return "image/svg+xml";
  if (absl::EndsWith(name, ".png")) return "image/png";
  return "application/octet-stream";
}

void AddDashboardPages(httplib::Server* server) {
  server->Get("/", [](const httplib::Request&, httplib::Response& res) {
    AddSecurityHeaders(res);
    res.set_redirect("/ui/");
  });
  server->Get("/ui", [](const httplib::Request&, httplib::Response& res) {
    AddSecurityHeaders(res);
    res.set_redirect("/ui/");
  });
  server->Get("/ui/", [](const httplib::Request&, httplib::Response& res) {
    ServeAsset("index.html", res);
  });
  server->Get(R"(/ui/([A-Za-z0-9_.-]+))", [](const httplib::Request& req, httplib::Response& res) {
    ServeAsset(req.matches[1].str(), res);
  });
}

}  // namespace fleet::controller
