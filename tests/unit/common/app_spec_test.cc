#include "common/app_spec.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/signing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fleet {
namespace {

using ::fleet::testing::StatusIs;
using ::fleet::testing::ToStatus;

using ::fleet::v1::AppSpec;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The example of DESIGN.md "App spec", verbatim.
constexpr char kDesignExample[] = R"yaml(name: web
keep_releases: 5
shared_dirs: [log, tmp]
reload: "${FLEET_RELEASE_DIR}/bin/restart"     # run after every switch
health:
  - http: "http://127.0.0.1:${port}/healthz"   # ${port} comes from the agent's --var port=...
    expect_status: 200
    timeout: 2s
    retries: 2
  - tcp: "127.0.0.1:${port}"
  - exec: "bin/check-db"
bake: 10s                                      # keep probing this long after a switch
hooks:                                         # optional; same environment as reload
  before_switch: "bin/migrate --check"         # fails the host before anything switches
  after_switch: "bin/warm-cache"               # a failure here counts as a failed probe
rollout: { waves: ["1", "100%"], max_failures: 0 }
)yaml";

absl::Status ParseError(const std::string& yaml) { return ParseAppSpec(yaml, "app.yaml").status(); }

TEST(ParseAppSpecTest, ParsesTheDesignExample) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec(kDesignExample, "app.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();

  EXPECT_EQ(spec->name(), "web");
  EXPECT_EQ(spec->keep_releases(), 5);
  EXPECT_THAT(spec->shared_dirs(), ElementsAre("log", "tmp"));
  EXPECT_EQ(spec->reload(), "${FLEET_RELEASE_DIR}/bin/restart");
  EXPECT_EQ(spec->reload_timeout_ms(), 60000);
  EXPECT_EQ(spec->bake_ms(), 10000);
  ASSERT_EQ(spec->health_size(), 3);

  const auto& http = spec->health(0);
  EXPECT_EQ(http.http(), "http://127.0.0.1:${port}/healthz") << "expansion happens on the host";
  EXPECT_EQ(http.expect_status(), 200);
  EXPECT_EQ(http.timeout_ms(), 2000);
  EXPECT_EQ(http.retries(), 2);
  EXPECT_EQ(http.interval_ms(), 1000);

  const auto& tcp = spec->health(1);
  EXPECT_EQ(tcp.tcp(), "127.0.0.1:${port}");
  EXPECT_EQ(tcp.http(), "");
  EXPECT_EQ(tcp.timeout_ms(), 10000);
  EXPECT_EQ(tcp.retries(), 2);
  EXPECT_EQ(tcp.interval_ms(), 1000);

  const auto& exec = spec->health(2);
  EXPECT_EQ(exec.exec(), "bin/check-db");
  EXPECT_EQ(exec.timeout_ms(), 10000);

  EXPECT_EQ(spec->hooks().before_switch(), "bin/migrate --check");
  EXPECT_EQ(spec->hooks().after_switch(), "bin/warm-cache");
  EXPECT_EQ(spec->hooks().after_unpack(), "");
  EXPECT_EQ(spec->hooks().after_rollback(), "");
  EXPECT_EQ(spec->hooks().timeout_ms(), 60000);

  EXPECT_THAT(spec->rollout().waves(), ElementsAre("1", "100%"));
  EXPECT_EQ(spec->rollout().max_failures(), "0");
}

TEST(ParseAppSpecTest, FillsDefaultsForAMinimalSpec) {
  absl::StatusOr<AppSpec> spec =
      ParseAppSpec("name: web\nhealth:\n  - tcp: 127.0.0.1:80\n", "app.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();

  EXPECT_EQ(spec->keep_releases(), 5);
  EXPECT_EQ(spec->reload_timeout_ms(), 60000);
  EXPECT_EQ(spec->bake_ms(), 0);
  EXPECT_EQ(spec->hooks().timeout_ms(), 60000);
  ASSERT_EQ(spec->health_size(), 1);
  EXPECT_EQ(spec->health(0).timeout_ms(), 10000);
  EXPECT_EQ(spec->health(0).retries(), 2);
  EXPECT_EQ(spec->health(0).interval_ms(), 1000);
  EXPECT_EQ(spec->health(0).expect_status(), 200);
}

TEST(ParseAppSpecTest, ParsesEveryHookAndTimeouts) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec(R"yaml(name: api
keep_releases: 3
reload_timeout: 90s
hooks:
  after_unpack: "bin/prepare"
  after_rollback: "bin/notify"
  timeout: 2m
health:
  - http: "http://h/x"
    expect_status: 204
    retries: 0
    interval: 250ms
)yaml",
                                              "api.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->keep_releases(), 3);
  EXPECT_EQ(spec->reload_timeout_ms(), 90000);
  EXPECT_EQ(spec->hooks().after_unpack(), "bin/prepare");
  EXPECT_EQ(spec->hooks().after_rollback(), "bin/notify");
  EXPECT_EQ(spec->hooks().timeout_ms(), 120000);
  EXPECT_EQ(spec->health(0).expect_status(), 204);
  EXPECT_EQ(spec->health(0).retries(), 0);
  EXPECT_EQ(spec->health(0).interval_ms(), 250);
}

TEST(ParseAppSpecTest, UnknownTopLevelFieldNamesFileLineAndField) {
  EXPECT_THAT(ParseError("name: web\nreplicas: 3\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("app.yaml:2: replicas: unknown field (known: ")));
}

TEST(ParseAppSpecTest, MultiDocumentYamlIsRefusedInOneLine) {
  absl::Status st = ParseError("name: web\n---\nname: api\n");
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument,
                           "app.yaml holds 2 YAML documents; an app spec is one document (one "
                           "file per app)"));
}

// yaml-cpp 0.7's LoadAll never returns on these (found by app_spec_fuzz).
TEST(ParseAppSpecTest, CommaThatBeginsNoDocumentIsAnErrorNamingItsLine) {
  EXPECT_THAT(ParseError(","), StatusIs(absl::StatusCode::kInvalidArgument,
                                        "app.yaml:1: invalid YAML: unexpected ','"));
  EXPECT_THAT(ParseError("name: web\nreload: bin/restart\n---\n,\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:4: invalid YAML: unexpected ','"));
}

TEST(ParseAppSpecTest, NulInAStringOrTheFileIsRefused) {
  EXPECT_THAT(ParseError("name: web\nreload: \"bin/restart\\0; rm -rf /\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:2: reload: contains a NUL character"));
  EXPECT_THAT(ParseError(std::string("name: web\nreload: bin/restart\0 --now\n", 37)),
              StatusIs(absl::StatusCode::kInvalidArgument, "app.yaml:2: contains a NUL byte"));
}

TEST(ParseAppSpecTest, UnknownFieldInACheckNamesTheCheck) {
  EXPECT_THAT(ParseError("name: web\nhealth:\n  - http: http://h/\n    expect: 200\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("app.yaml:4: health[0].expect: unknown field")));
}

TEST(ParseAppSpecTest, UnknownHookIsAnError) {
  EXPECT_THAT(ParseError("name: web\nhooks:\n  before_swtich: bin/x\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("app.yaml:3: hooks.before_swtich: unknown field")));
}

TEST(ParseAppSpecTest, MissingNameIsAnError) {
  EXPECT_THAT(ParseError("keep_releases: 5\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "app.yaml:1: name: is required"));
}

TEST(ParseAppSpecTest, NameThatIsNotASafePathComponentIsAnError) {
  EXPECT_THAT(ParseError("keep_releases: 5\nname: ../web\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:2: name: '../web' must be letters, digits, '.', '_' or '-'"));
  EXPECT_THAT(ParseError("name: my web\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("name: 'my web' must be")));
}

TEST(ParseAppSpecTest, KeepReleasesBelowThreeIsAnError) {
  EXPECT_THAT(ParseError("name: web\nkeep_releases: 2\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:2: keep_releases: 2 is outside 3..1000"));
}

TEST(ParseAppSpecTest, ProbeTimeoutAboveTenSecondsIsAnError) {
  EXPECT_THAT(ParseError("name: web\nhealth:\n  - tcp: h:1\n    timeout: 20s\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:4: health[0].timeout: 20s is more than the 10s maximum"));
}

TEST(ParseAppSpecTest, ProbeTimeoutOfZeroIsAnError) {
  EXPECT_THAT(ParseError("name: web\nhealth:\n  - tcp: h:1\n    timeout: 0s\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:4: health[0].timeout: must be positive"));
}

TEST(ParseAppSpecTest, CheckWithTwoKindsIsAnError) {
  EXPECT_THAT(ParseError("name: web\nhealth:\n  - tcp: h:1\n  - http: http://h/\n    exec: x\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:4: health[1]: needs exactly one of http, tcp or exec"));
}

TEST(ParseAppSpecTest, CheckWithNoKindIsAnError) {
  EXPECT_THAT(ParseError("name: web\nhealth:\n  - timeout: 2s\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:3: health[0]: needs exactly one of http, tcp or exec"));
}

TEST(ParseAppSpecTest, EmptyCheckTargetIsAnError) {
  EXPECT_THAT(ParseError("name: web\nhealth:\n  - exec: \"\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "app.yaml:3: health[0].exec: is empty"));
}

TEST(ParseAppSpecTest, ExpectStatusOnATcpCheckIsAnError) {
  EXPECT_THAT(ParseError("name: web\nhealth:\n  - tcp: h:1\n    expect_status: 200\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:4: health[0].expect_status: only applies to http checks"));
}

TEST(ParseAppSpecTest, ExpectStatusOutsideHttpRangeIsAnError) {
  EXPECT_THAT(ParseError("name: web\nhealth:\n  - http: http://h/\n    expect_status: 42\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:4: health[0].expect_status: 42 is outside 100..599"));
}

TEST(ParseAppSpecTest, DurationWithoutUnitIsAnError) {
  EXPECT_THAT(ParseError("name: web\nbake: 10\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:2: bake: must be a duration such as 500ms, 10s or 2m"));
}

TEST(ParseAppSpecTest, MalformedDurationInAHookTimeoutIsAnError) {
  EXPECT_THAT(ParseError("name: web\nhooks:\n  timeout: ten seconds\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:3: hooks.timeout: must be a duration such as 500ms, 10s or 2m"));
}

TEST(ParseAppSpecTest, NegativeDurationIsAnError) {
  EXPECT_THAT(
      ParseError("name: web\nbake: -1s\n"),
      StatusIs(absl::StatusCode::kInvalidArgument, "app.yaml:2: bake: must not be negative"));
}

TEST(ParseAppSpecTest, RetriesThatAreNotANumberAreAnError) {
  EXPECT_THAT(ParseError("name: web\nhealth:\n  - tcp: h:1\n    retries: many\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:4: health[0].retries: must be a whole number"));
}

TEST(ParseAppSpecTest, SharedDirThatIsAPathIsAnError) {
  EXPECT_THAT(ParseError("name: web\nshared_dirs:\n  - log\n  - ../etc\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:4: shared_dirs[1]: '../etc' must be one plain directory name"));
}

TEST(ParseAppSpecTest, HealthThatIsNotAListIsAnError) {
  EXPECT_THAT(
      ParseError("name: web\nhealth:\n  tcp: h:1\n"),
      StatusIs(absl::StatusCode::kInvalidArgument, "app.yaml:3: health: must be a list of checks"));
}

TEST(ParseAppSpecTest, InvalidYamlNamesTheLine) {
  EXPECT_THAT(
      ParseError("name: web\nkeep_releases: 5\n  bad: indent\n"),
      StatusIs(absl::StatusCode::kInvalidArgument, "app.yaml:3: invalid YAML: illegal map value"));
}

TEST(ParseAppSpecTest, UnclosedFlowListNamesTheLineWhereParsingStopped) {
  EXPECT_THAT(
      ParseError("name: web\nkeep_releases: 5\nhealth: [tcp: h:1\nbake: 1s\n"),
      StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("app.yaml:4: invalid YAML: ")));
}

// A second `health:` would otherwise silently replace (or be replaced by)
// the first, which disables checks as surely as a typo does.
TEST(ParseAppSpecTest, FieldGivenTwiceIsAnError) {
  EXPECT_THAT(ParseError("name: web\nhealth:\n  - tcp: h:1\nbake: 1s\nhealth:\n  - tcp: h:2\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "app.yaml:5: health: given twice"));
  EXPECT_THAT(
      ParseError("name: web\nhealth:\n  - tcp: h:1\n    timeout: 1s\n    timeout: 2s\n"),
      StatusIs(absl::StatusCode::kInvalidArgument, "app.yaml:5: health[0].timeout: given twice"));
}

TEST(ParseAppSpecTest, DocumentThatIsNotAMappingIsAnError) {
  EXPECT_THAT(ParseError("- name: web\n"), StatusIs(absl::StatusCode::kInvalidArgument,
                                                    "app.yaml: an app spec must be a mapping"));
  EXPECT_THAT(ParseError(""), StatusIs(absl::StatusCode::kInvalidArgument,
                                       "app.yaml: an app spec must be a mapping"));
}

TEST(ParseAppSpecTest, ParsesConfigFileAndRequiredKeys) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec(
      "name: web\nconfig: { file: conf/app.yaml, required: [db.url, redis.addr] }\n", "app.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->config().file(), "conf/app.yaml");
  EXPECT_THAT(spec->config().required(), ElementsAre("db.url", "redis.addr"));
}

TEST(ParseAppSpecTest, ConfigRequiredWithoutFileIsRefused) {
  EXPECT_THAT(ParseError("name: web\nconfig:\n  required: [db.url]\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:3: config.required: needs config.file: the file that has them"));
}

TEST(ParseAppSpecTest, ConfigFileOutsideTheConfigDirIsRefused) {
  EXPECT_THAT(ParseError("name: web\nconfig: { file: ../etc/passwd }\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("app.yaml:2: config.file: config path '../etc/passwd'")));
  EXPECT_THAT(ParseError("name: web\nconfig: { file: app.yaml, keys: [a] }\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("app.yaml:2: config.keys: unknown field")));
}

TEST(ParseAppSpecTest, ParsesAnalysisAlertWindowAndNotifySinks) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec(R"(name: web
prometheus_url: http://127.0.0.1:9090
analysis:
  - name: error rate
    query: sum(rate(errors[1m]))
    fail_if: "> 0.05"
    interval: 2s
    failure_limit: 2
    on_inconclusive: fail
  - query: up
    fail_if: "<1"
rollback_on_alert: { within: 30m }
notify:
  - { type: dingtalk, url: "https://oapi.dingtalk.com/robot/send?access_token=x", secret: SEC1 }
  - { type: webhook, url: "http://127.0.0.1:9/hook" }
)",
                                              "app.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->prometheus_url(), "http://127.0.0.1:9090");
  ASSERT_EQ(spec->analysis_size(), 2);
  EXPECT_EQ(spec->analysis(0).name(), "error rate");
  EXPECT_EQ(spec->analysis(0).op(), ">");
  EXPECT_DOUBLE_EQ(spec->analysis(0).threshold(), 0.05);
  EXPECT_EQ(spec->analysis(0).interval_ms(), 2000);
  EXPECT_EQ(spec->analysis(0).failure_limit(), 2);
  EXPECT_TRUE(spec->analysis(0).fail_on_inconclusive());
  EXPECT_EQ(spec->analysis(1).name(), "up");
  EXPECT_EQ(spec->analysis(1).op(), "<");
  EXPECT_EQ(spec->analysis(1).interval_ms(), 10000);
  EXPECT_FALSE(spec->analysis(1).fail_on_inconclusive());
  EXPECT_EQ(spec->rollback_on_alert_within_ms(), 30 * 60 * 1000);
  ASSERT_EQ(spec->notify_size(), 2);
  EXPECT_EQ(spec->notify(0).type(), "dingtalk");
  EXPECT_EQ(spec->notify(0).secret(), "SEC1");
  EXPECT_EQ(spec->notify(1).type(), "webhook");
}

TEST(ParseAppSpecTest, BadAnalysisAndSinksNameTheField) {
  EXPECT_THAT(ParseError("name: web\nanalysis:\n  - query: up\n    fail_if: above 3\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:4: analysis[0].fail_if: 'above 3' must be a comparison with a "
                       "number, e.g. \"> 0.05\""));
  EXPECT_THAT(ParseError("name: web\nanalysis:\n  - query: up\n    fail_if: '> 1'\n"
                         "    on_inconclusive: ignore\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:5: analysis[0].on_inconclusive: 'ignore' must be pause or fail"));
  EXPECT_THAT(ParseError("name: web\nnotify:\n  - { type: teams, url: 'http://x' }\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("app.yaml:3: notify[0].type: 'teams' must be")));
  EXPECT_THAT(ParseError("name: web\nnotify:\n  - { type: slack, url: 'http://x', secret: s }\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:3: notify[0].secret: only applies to dingtalk sinks"));
}

TEST(ParseAppSpecTest, SpecsThatEveryConfigPushOrStagingWouldFailAreRefused) {
  EXPECT_THAT(ParseError("name: web\nshared_dirs: [log, config]\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("app.yaml:2: shared_dirs[1]: 'config' is where Fleet links")));
  EXPECT_THAT(ParseError("name: web\nconfig: { file: app.conf, required: [a] }\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("app.yaml:2: config.file: Fleet cannot read keys from "
                                  "'app.conf'")));
  // Without required keys any file may be named.
  EXPECT_TRUE(ParseAppSpec("name: web\nconfig: { file: app.conf }\n", "app.yaml").ok());
}

TEST(ParseAppSpecTest, ParsesTrustedKeysInTheFormKeygenPrints) {
  absl::StatusOr<SigningKeyPair> a = GenerateSigningKeyPair();
  absl::StatusOr<SigningKeyPair> b = GenerateSigningKeyPair();
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string a_line = FormatPublicKey(a->public_key);
  const std::string b_line = FormatPublicKey(b->public_key);
  // The second is given as bare base64, which is stored with its prefix.
  absl::StatusOr<AppSpec> spec =
      ParseAppSpec(absl::StrCat("name: web\ntrusted_keys:\n  - \"", a_line, "\"\n  - \"",
                                b_line.substr(std::string(kPublicKeyPrefix).size()), "\"\n"),
                   "app.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->trusted_keys(), ElementsAre(a_line, b_line));

  absl::StatusOr<AppSpec> none = ParseAppSpec("name: web\n", "app.yaml");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->trusted_keys().empty()) << "no keys: releases need no signature";
}

TEST(ParseAppSpecTest, MalformedOrRepeatedTrustedKeyIsRefusedNamingIt) {
  absl::StatusOr<SigningKeyPair> keys = GenerateSigningKeyPair();
  ASSERT_TRUE(keys.ok());
  const std::string line = FormatPublicKey(keys->public_key);
  EXPECT_THAT(ParseError(absl::StrCat("name: web\ntrusted_keys:\n  - \"", line,
                                      "\"\n  - \"ed25519:dG9vIHNob3J0\"\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("app.yaml:4: trusted_keys[1]: 'ed25519:dG9vIHNob3J0' is not an "
                                  "Ed25519 public key")));
  EXPECT_THAT(ParseError(absl::StrCat("name: web\ntrusted_keys: [\"", line, "\", \"",
                                      line.substr(8), "\"]\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "app.yaml:2: trusted_keys[1]: lists the same key again"));
  EXPECT_THAT(ParseError(absl::StrCat("name: web\ntrusted_keys: [\"",
                                      FormatSecretKey(keys->secret_key), "\"]\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("trusted_keys[0]: this is a secret key")));
  EXPECT_THAT(ParseError(absl::StrCat("name: web\ntrusted_keys: \"", line, "\"\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, "app.yaml:2: trusted_keys: must be a list"));
}

TEST(ParseAppSpecTest, ParsesTheUserCommandsRunAs) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec("name: web\nuser: www-data\n", "app.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->user(), "www-data");
  EXPECT_EQ(ParseAppSpec("name: web\n", "app.yaml")->user(), "");
}

TEST(ParseAppSpecTest, RefusesAUserThatIsNotAUserName) {
  for (const char* user : {"\"-rf\"", "\"a b\"", "\"web;id\"", "\"\"",
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    EXPECT_THAT(ParseError(absl::StrCat("name: web\nuser: ", user, "\n")),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("app.yaml:2: user: ")))
        << user;
  }
}

// Found by tests/fuzz/app_spec_fuzz: yaml-cpp's messages and the values
// errors quote may hold control characters.
TEST(ParseAppSpecTest, ErrorsAreOnePrintableLine) {
  EXPECT_THAT(ParseError("name: \"web\\nx\\u0001y\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("name: 'web\\x0ax\\x01y' must be letters")));
  for (const char* bad : {"name: \"\\\x01\"\n", "name: \"\\\x1b\"\n"}) {
    absl::Status st = ParseError(bad);
    EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("invalid YAML")));
    for (char c : st.message()) EXPECT_GE(static_cast<unsigned char>(c), 0x20) << st;
  }
}

}  // namespace
}  // namespace fleet
