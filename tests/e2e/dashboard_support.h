// What the dashboard's end-to-end tests share: tokens made with fleetctl,
// releases of the hello example, and calls of the HTTP API.
#ifndef FLEET_TESTS_E2E_DASHBOARD_SUPPORT_H_
#define FLEET_TESTS_E2E_DASHBOARD_SUPPORT_H_

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"

namespace fleet::dashboard_test {

// A token made by `fleetctl token create`: its secret and its public id.
struct Token {
  std::string token;
  std::string id;
};

inline Token CreateToken(testing::Cluster& cluster, const std::string& role,
                         const std::string& app = "") {
  std::vector<std::string> args = {"--output", "json", "token", "create", "--role", role};
  if (!app.empty()) args.insert(args.end(), {"--app", app});
  testing::CommandOutput out = cluster.Fleetctl(args);
  EXPECT_EQ(out.exit_code, 0) << out.err;
  nlohmann::json doc = nlohmann::json::parse(out.out, nullptr, false);
  if (!doc.is_object()) {
    ADD_FAILURE() << "not JSON: " << out.out;
    return {};
  }
  return {doc.value("token", ""), doc["info"].value("id", "")};
}

inline std::string AdminToken(const testing::Cluster& cluster) {
  return std::string(absl::StripAsciiWhitespace(testing::ReadTextFile(cluster.AdminTokenPath())));
}

inline void PushHello(testing::Cluster& cluster, const std::string& version,
                      int healthz_status = 200) {
  const std::string artifact = cluster.MakeHelloArtifact(version, healthz_status);
  testing::CommandOutput out = cluster.Fleetctl({"release", "push", "hello", version, artifact});
  ASSERT_EQ(out.exit_code, 0) << out.err;
}

// An answer of the dashboard's HTTP API.
struct HttpAnswer {
  int status = 0;
  std::string body;
  httplib::Headers headers;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

// GET or POST `path` on the cluster's --http-listen with `token` as bearer
// ("" for none) and `headers`; a POST sends `body` as application/json
// unless `content_type` says otherwise.
inline HttpAnswer Http(testing::Cluster& cluster, const std::string& method,
                       const std::string& path, const std::string& token,
                       const std::string& body = "{}",
                       const std::string& content_type = "application/json",
                       httplib::Headers headers = {}) {
  httplib::Client client("127.0.0.1", cluster.HttpPort());
  client.set_read_timeout(60, 0);
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  httplib::Result res = method == "GET"
                            ? client.Get(path.c_str(), headers)
                            : client.Post(path.c_str(), headers, body, content_type.c_str());
  if (!res) {
    ADD_FAILURE() << method << " " << path << ": no answer";
    return {};
  }
  return {res->status, res->body, res->headers};
}

}  // namespace fleet::dashboard_test

#endif  // FLEET_TESTS_E2E_DASHBOARD_SUPPORT_H_
