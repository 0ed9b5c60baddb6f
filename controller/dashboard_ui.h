// The dashboard's page: the files of controller/ui/, built into the binary
// (embed_assets.cmake writes them into a generated dashboard_assets.cc), so
// the controller serves the whole page itself, with nothing fetched from
// elsewhere at run time.
//
//   GET /        redirects to /ui/
//   GET /ui/     index.html
//   GET /ui/F    the file F of controller/ui/
//
// Every answer carries a Content-Security-Policy that lets the page load
// and connect to this server only, and no framing.
#ifndef FLEET_CONTROLLER_DASHBOARD_UI_H_
#define FLEET_CONTROLLER_DASHBOARD_UI_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace httplib {
class Server;
}

namespace fleet::controller {

// One file of the page.
struct DashboardAsset {
  const char* name;  // "index.html"
  const unsigned char* data;
  size_t size;
};

// Defined in the generated dashboard_assets.cc, sorted by name.
extern const DashboardAsset kDashboardAssets[];
extern const size_t kDashboardAssetCount;

// The file called `name`; nullptr when there is none.
const DashboardAsset* FindDashboardAsset(absl::string_view name);

// "text/html; charset=utf-8", ... by the name's extension;
// "application/octet-stream" for one it does not know.
const char* DashboardContentType(absl::string_view name);

// Adds the routes above to `server`.
void AddDashboardPages(httplib::Server* server);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_DASHBOARD_UI_H_
