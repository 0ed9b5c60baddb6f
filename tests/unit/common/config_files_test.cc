#include "common/config_files.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fleet {
namespace {

using ::fleet::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// status_matchers.h has no matcher for a StatusOr's value.
MATCHER_P(IsOkAndHolds, matcher,
          "is OK and holds a value that " +
              ::testing::DescribeMatcher<std::vector<std::string>>(matcher)) {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(matcher, *arg, result_listener);
}

// Asserts that checking `content` as `path` fails with exactly `message`,
// and that MissingConfigKeys reports the same error.
void ExpectSyntaxError(const std::string& path, const std::string& content,
                       const std::string& message) {
  EXPECT_THAT(CheckConfigSyntax(path, content),
              StatusIs(absl::StatusCode::kInvalidArgument, message));
  EXPECT_THAT(MissingConfigKeys(path, content, {"any"}),
              StatusIs(absl::StatusCode::kInvalidArgument, message));
}

TEST(ConfigFormatOfTest, UsesTheLastComponentsExtensionIgnoringCase) {
  EXPECT_EQ(ConfigFormatOf("conf/app.json"), ConfigFormat::kJson);
  EXPECT_EQ(ConfigFormatOf("APP.JSON"), ConfigFormat::kJson);
  EXPECT_EQ(ConfigFormatOf("conf/app.yaml"), ConfigFormat::kYaml);
  EXPECT_EQ(ConfigFormatOf("app.Yml"), ConfigFormat::kYaml);
  EXPECT_EQ(ConfigFormatOf("Cargo.toml"), ConfigFormat::kToml);
  EXPECT_EQ(ConfigFormatOf("php.ini"), ConfigFormat::kIni);
  EXPECT_EQ(ConfigFormatOf(".env"), ConfigFormat::kEnv);
  EXPECT_EQ(ConfigFormatOf("conf/.env"), ConfigFormat::kEnv);
  EXPECT_EQ(ConfigFormatOf("conf/prod.ENV"), ConfigFormat::kEnv);
  EXPECT_EQ(ConfigFormatOf("app.properties"), ConfigFormat::kProperties);
}

TEST(ConfigFormatOfTest, AnythingElseIsUnknown) {
  EXPECT_EQ(ConfigFormatOf("nginx.conf"), ConfigFormat::kUnknown);
  EXPECT_EQ(ConfigFormatOf("README"), ConfigFormat::kUnknown);
  EXPECT_EQ(ConfigFormatOf("app.json.bak"), ConfigFormat::kUnknown);
  EXPECT_EQ(ConfigFormatOf("conf.json/nginx.conf"), ConfigFormat::kUnknown)
      << "only the last component counts";
  EXPECT_EQ(ConfigFormatOf("conf/"), ConfigFormat::kUnknown);
  EXPECT_EQ(ConfigFormatOf(".env.local"), ConfigFormat::kUnknown);
}

TEST(ConfigFormatNameTest, NamesEveryFormat) {
  EXPECT_STREQ(ConfigFormatName(ConfigFormat::kUnknown), "unknown");
  EXPECT_STREQ(ConfigFormatName(ConfigFormat::kJson), "JSON");
  EXPECT_STREQ(ConfigFormatName(ConfigFormat::kYaml), "YAML");
  EXPECT_STREQ(ConfigFormatName(ConfigFormat::kToml), "TOML");
  EXPECT_STREQ(ConfigFormatName(ConfigFormat::kIni), "INI");
  EXPECT_STREQ(ConfigFormatName(ConfigFormat::kEnv), ".env");
  EXPECT_STREQ(ConfigFormatName(ConfigFormat::kProperties), ".properties");
}

TEST(CheckConfigSyntaxTest, EmptyFilesAreValidInEveryFormat) {
  for (const char* path : {"a.json", "a.yaml", "a.toml", "a.ini", "a.env", "a.properties"}) {
    EXPECT_OK(CheckConfigSyntax(path, "")) << path;
    EXPECT_THAT(MissingConfigKeys(path, "", {"a", "b.c"}), IsOkAndHolds(ElementsAre("a", "b.c")))
        << path;
  }
  EXPECT_OK(CheckConfigSyntax("a.json", " \n\t\r\n")) << "whitespace only counts as empty";
}

TEST(CheckConfigSyntaxTest, UnknownFormatIsNotChecked) {
  EXPECT_OK(CheckConfigSyntax("nginx.conf", "{{{ not json [[["));
}

TEST(MissingConfigKeysTest, UnknownFormatIsFailedPrecondition) {
  EXPECT_THAT(MissingConfigKeys("conf/nginx.conf", "server {}", {"a"}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "conf/nginx.conf: cannot check required keys in a file of unknown format"));
}

TEST(MissingConfigKeysTest, ReturnsMissingKeysInTheOrderGiven) {
  EXPECT_THAT(MissingConfigKeys("a.env", "B=1\n", {"C", "B", "A"}),
              IsOkAndHolds(ElementsAre("C", "A")));
  EXPECT_THAT(MissingConfigKeys("a.env", "B=1\n", {}), IsOkAndHolds(IsEmpty()));
}

// JSON.

constexpr char kJson[] = R"json({
  "name": "web",
  "db": {"url": "postgres://db", "pool": {"size": 4}},
  "cache.ttl": 30,
  "feature": {"flags.beta": true},
  "servers": [],
  "options": {},
  "empty": "",
  "token": null
}
)json";

TEST(JsonTest, ValidDocumentPasses) { EXPECT_OK(CheckConfigSyntax("conf/app.json", kJson)); }

TEST(JsonTest, WalksNestedObjectsAndLiteralDottedKeys) {
  EXPECT_THAT(MissingConfigKeys("conf/app.json", kJson,
                                {"name", "db", "db.url", "db.pool.size", "cache.ttl",
                                 "feature.flags.beta", "servers", "options", "empty"}),
              IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(MissingConfigKeys(
                  "conf/app.json", kJson,
                  {"db.password", "db.pool.max", "cache", "name.first", "feature.flags", "Name"}),
              IsOkAndHolds(ElementsAre("db.password", "db.pool.max", "cache", "name.first",
                                       "feature.flags", "Name")));
}

TEST(JsonTest, NullValueCountsAsMissing) {
  EXPECT_THAT(MissingConfigKeys("conf/app.json", kJson, {"token"}),
              IsOkAndHolds(ElementsAre("token")));
}

TEST(JsonTest, TopLevelArrayDefinesNoKeys) {
  EXPECT_THAT(MissingConfigKeys("a.json", R"([{"a": 1}])", {"a"}), IsOkAndHolds(ElementsAre("a")));
}

TEST(JsonTest, ReportsTheLineOfTheError) {
  ExpectSyntaxError("conf/app.json", "{\n  \"a\": 1,\n  \"b\": 2,}\n",
                    "conf/app.json:3: invalid JSON: syntax error while parsing object key - "
                    "unexpected '}'; expected string literal");
}

TEST(JsonTest, RejectsComments) {
  ExpectSyntaxError("a.json", "{\n  \"a\": 1 // port\n}\n",
                    "a.json:2: invalid JSON: syntax error while parsing object - invalid literal");
}

TEST(JsonTest, RejectsASecondDocument) {
  ExpectSyntaxError("a.json", "{\"a\": 1}\n{\"b\": 2}\n",
                    "a.json:2: invalid JSON: syntax error while parsing value - unexpected '{'; "
                    "expected end of input");
}

TEST(JsonTest, ReportsALineBreakInAStringOnTheLineItEnds) {
  ExpectSyntaxError("a.json", "{\"a\": \"x\ny\"}",
                    "a.json:1: invalid JSON: syntax error while parsing value - invalid string: "
                    "control character U+000A (LF) must be escaped to \\u000A or \\n");
}

TEST(JsonTest, SyntaxErrorDoesNotQuoteTheFile) {
  absl::Status trailing_comma = CheckConfigSyntax("a.json", R"({"password": "hunter2" , })");
  EXPECT_THAT(trailing_comma,
              StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("hunter2"))));

  // nlohmann adds "; last read: 'hunter2'" here.
  EXPECT_THAT(
      CheckConfigSyntax("a.json", "{\"password\":\n hunter2}"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "a.json:2: invalid JSON: syntax error while parsing value - invalid literal"));

  // And "number overflow parsing '1e99999'" here.
  EXPECT_THAT(
      CheckConfigSyntax("a.json", R"({"pin": 1e99999})"),
      StatusIs(absl::StatusCode::kInvalidArgument, "a.json:1: invalid JSON: number overflow"));
}

// YAML.

constexpr char kYaml[] = R"yaml(name: web
db:
  url: postgres://db
  pool: {size: 4}
cache.ttl: 30
feature:
  flags.beta: true
servers: []
empty: ""
token:
tilde: ~
---
second: document
)yaml";

TEST(YamlTest, ValidMultiDocumentFilePasses) {
  EXPECT_OK(CheckConfigSyntax("conf/app.yaml", kYaml));
}

TEST(YamlTest, WalksNestedMapsAndLiteralDottedKeysOfTheFirstDocument) {
  EXPECT_THAT(MissingConfigKeys("conf/app.yml", kYaml,
                                {"name", "db.url", "db.pool.size", "cache.ttl",
                                 "feature.flags.beta", "servers", "empty"}),
              IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(MissingConfigKeys("conf/app.yml", kYaml, {"db.password", "cache", "second"}),
              IsOkAndHolds(ElementsAre("db.password", "cache", "second")));
}

TEST(YamlTest, NullValuesCountAsMissing) {
  EXPECT_THAT(MissingConfigKeys("conf/app.yaml", kYaml, {"token", "tilde"}),
              IsOkAndHolds(ElementsAre("token", "tilde")));
}

TEST(YamlTest, ReportsTheLineOfTheError) {
  ExpectSyntaxError("conf/app.yaml", "db:\n  url: x\n bad: y\n",
                    "conf/app.yaml:3: invalid YAML: end of map not found");
}

TEST(YamlTest, CommaThatBeginsNoDocumentIsASyntaxErrorNotAHang) {
  ExpectSyntaxError("conf/app.yaml", "db: x\n---\nport: 1\n---\n,\n",
                    "conf/app.yaml:5: invalid YAML: unexpected ','");
}

TEST(YamlTest, SyntaxErrorDoesNotQuoteTheFile) {
  EXPECT_THAT(
      CheckConfigSyntax("a.yaml", "password: hunter2\n  bad: x\n"),
      StatusIs(absl::StatusCode::kInvalidArgument, "a.yaml:2: invalid YAML: illegal map value"));
  // yaml-cpp says "unknown escape character: q".
  EXPECT_THAT(CheckConfigSyntax("a.yaml", "password: \"hunter2\\q\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "a.yaml:1: invalid YAML: unknown escape character"));
}

// TOML.

constexpr char kToml[] = R"toml(name = "web"
"cache.ttl" = 30

[db]
url = "postgres://db"
pool.size = 4

[feature]
"flags.beta" = true

[[servers]]
host = "a"
)toml";

TEST(TomlTest, ValidDocumentPasses) { EXPECT_OK(CheckConfigSyntax("conf/app.toml", kToml)); }

TEST(TomlTest, WalksTablesAndLiteralDottedKeys) {
  EXPECT_THAT(MissingConfigKeys("conf/app.toml", kToml,
                                {"name", "cache.ttl", "db", "db.url", "db.pool.size",
                                 "feature.flags.beta", "servers"}),
              IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(MissingConfigKeys("conf/app.toml", kToml, {"db.password", "cache", "servers.host"}),
              IsOkAndHolds(ElementsAre("db.password", "cache", "servers.host")));
}

TEST(TomlTest, ReportsTheLineOfTheError) {
  ExpectSyntaxError(
      "conf/app.toml", "a = 1\nb = 2\n[db\n",
      "conf/app.toml:3: invalid TOML: error while parsing table header: expected ']'");
}

TEST(TomlTest, SyntaxErrorDoesNotQuoteTheFile) {
  // toml++ says "..., saw 'h'" here.
  EXPECT_THAT(CheckConfigSyntax("a.toml", "password = \"x\" hunter2\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "a.toml:1: invalid TOML: error while parsing key-value pair: expected a "
                       "comment or whitespace"));
  // "cannot redefine existing string 'hunter2'".
  EXPECT_THAT(CheckConfigSyntax("a.toml", "hunter2 = \"a\"\nhunter2 = \"b\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "a.toml:2: invalid TOML: error while parsing key-value pair: cannot "
                       "redefine existing string"));
  // "'99999999999999999999' is not representable in 64 bits".
  EXPECT_THAT(CheckConfigSyntax("a.toml", "pin = 99999999999999999999\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "a.toml:1: invalid TOML: error while parsing decimal integer: value is not "
                       "representable in 64 bits"));
  EXPECT_THAT(CheckConfigSyntax("a.toml", "password = \"hunter2\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("hunter2"))));
}

// INI.

const std::string& IniExample() {
  static const std::string* const kIni =
      new std::string(absl::StrCat("; global settings\n"
                                   "name = web\n"
                                   "\n"
                                   "[db]\n"
                                   "url = postgres://db\n"
                                   "# the pool\n"
                                   "pool.size: 4\n"
                                   "password =\n"
                                   "\n"
                                   "  [ server.main ]  ; the main one\n"
                                   "cert = ",
                                   std::string(1000, 'x'), "\n"));
  return *kIni;
}

TEST(IniTest, ValidFileWithA1000CharacterValuePasses) {
  // inih, with its 200-byte line buffer, fails on this file.
  EXPECT_OK(CheckConfigSyntax("conf/app.ini", IniExample()));
}

TEST(IniTest, AddressesKeysAsSectionDotKey) {
  EXPECT_THAT(
      MissingConfigKeys("conf/app.ini", IniExample(),
                        {"name", "db.url", "db.pool.size", "db.password", "server.main.cert"}),
      IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(MissingConfigKeys("conf/app.ini", IniExample(), {"url", "db.name", "server.cert"}),
              IsOkAndHolds(ElementsAre("url", "db.name", "server.cert")));
}

TEST(IniTest, LineThatIsNeitherKeyNorSectionIsAnError) {
  ExpectSyntaxError("conf/app.ini", "[db]\nurl = x\nhunter2\n",
                    "conf/app.ini:3: invalid INI: expected key = value or [section]");
}

TEST(IniTest, UnterminatedSectionIsAnError) {
  ExpectSyntaxError("conf/app.ini", "a = 1\n[db\nurl = x\n",
                    "conf/app.ini:2: invalid INI: section header without closing ']'");
}

TEST(IniTest, KeylessLineIsAnError) {
  ExpectSyntaxError("a.ini", "= x\n", "a.ini:1: invalid INI: missing key before '=' or ':'");
}

// .env.

constexpr char kEnv[] = R"env(# database
DB_URL=postgres://db
export API_KEY='abc def'
export  TOKEN="line one
line \"two\"
line three"  # spans three lines
EMPTY=
app.name=web
)env";

TEST(EnvTest, ValidFilePasses) { EXPECT_OK(CheckConfigSyntax("conf/.env", kEnv)); }

TEST(EnvTest, FindsVariablesWithOrWithoutExport) {
  EXPECT_THAT(
      MissingConfigKeys("conf/.env", kEnv, {"DB_URL", "API_KEY", "TOKEN", "EMPTY", "app.name"}),
      IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(MissingConfigKeys("conf/.env", kEnv, {"export", "db_url", "line"}),
              IsOkAndHolds(ElementsAre("export", "db_url", "line")));
}

TEST(EnvTest, LineWithoutEqualsIsAnError) {
  ExpectSyntaxError("conf/.env", "A=1\n\nhunter2\n", "conf/.env:3: invalid .env: line without '='");
}

TEST(EnvTest, InvalidVariableNameIsAnError) {
  ExpectSyntaxError("prod.env", "A=1\n1B=2\n", "prod.env:2: invalid .env: invalid variable name");
  ExpectSyntaxError("prod.env", "MY-VAR=2\n", "prod.env:1: invalid .env: invalid variable name");
}

TEST(EnvTest, UnterminatedDoubleQuoteIsReportedWhereItStarts) {
  ExpectSyntaxError("prod.env", "A=1\nB=\"open\nC=3\nD=4\n",
                    "prod.env:2: invalid .env: unterminated double-quoted value");
}

TEST(EnvTest, UnterminatedSingleQuoteIsAnError) {
  ExpectSyntaxError("prod.env", "A='open\nB='\n",
                    "prod.env:1: invalid .env: unterminated single-quoted value");
}

TEST(EnvTest, CountsLinesAfterAMultiLineValue) {
  ExpectSyntaxError("prod.env", "A=\"1\n2\n3\"\nB='x'y\n",
                    "prod.env:4: invalid .env: unexpected text after the closing quote");
}

// .properties.

constexpr char kProperties[] = R"props(# comment
! also a comment
db.url=jdbc:postgresql://db
name: web
greeting   hello world
key\ with\ spaces = 1
a\=b\:c = 2
\u0041pi = 3
list = one, \
       two, \
       three
trailing = \
)props";

TEST(PropertiesTest, ValidFilePasses) {
  EXPECT_OK(CheckConfigSyntax("conf/app.properties", kProperties));
}

TEST(PropertiesTest, FindsUnescapedLiteralKeys) {
  EXPECT_THAT(MissingConfigKeys("conf/app.properties", kProperties,
                                {"db.url", "name", "greeting", "key with spaces", "a=b:c", "Api",
                                 "list", "trailing"}),
              IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(MissingConfigKeys("conf/app.properties", kProperties, {"db", "two", "key"}),
              IsOkAndHolds(ElementsAre("db", "two", "key")));
}

TEST(PropertiesTest, ContinuationAtEndOfFileIsFine) {
  EXPECT_OK(CheckConfigSyntax("a.properties", "a = b\\"));
}

TEST(PropertiesTest, ShortUnicodeEscapeIsAnErrorOnItsLine) {
  ExpectSyntaxError("conf/app.properties", "a = 1\nb = x\\u12G4\n",
                    "conf/app.properties:2: invalid .properties: malformed \\uXXXX escape (needs "
                    "4 hex digits)");
  ExpectSyntaxError("a.properties", "a = one \\\n  two \\u12",
                    "a.properties:2: invalid .properties: malformed \\uXXXX escape (needs 4 hex "
                    "digits)");
}

}  // namespace
}  // namespace fleet
