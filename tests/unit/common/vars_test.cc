#include "common/vars.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fleet {
namespace {

using ::fleet::testing::StatusIs;
using ::fleet::testing::ToStatus;

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

TEST(ParseSelectorTest, ParsesPairsWithSpaces) {
  absl::StatusOr<Labels> sel = ParseSelector("env=prod, region = eu-west ,tier=web");
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_THAT(*sel, UnorderedElementsAre(Pair("env", "prod"), Pair("region", "eu-west"),
                                         Pair("tier", "web")));
}

TEST(ParseSelectorTest, EmptySelectorIsEmpty) {
  absl::StatusOr<Labels> sel = ParseSelector("");
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_THAT(*sel, IsEmpty());
}

TEST(ParseSelectorTest, AcceptsTheSamePairTwice) {
  absl::StatusOr<Labels> sel = ParseSelector("env=prod,env=prod");
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_THAT(*sel, UnorderedElementsAre(Pair("env", "prod")));
}

TEST(ParseSelectorTest, RejectsAKeyGivenTwiceWithDifferentValues) {
  EXPECT_THAT(ParseSelector("env=prod,env=staging").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("key 'env' given twice with different values")));
}

TEST(ParseSelectorTest, RejectsAnItemWithoutEquals) {
  EXPECT_THAT(ParseSelector("env=prod,canary").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("selector: 'canary' is not KEY=VALUE")));
}

TEST(ParseSelectorTest, RejectsAnInvalidKey) {
  EXPECT_THAT(ParseSelector("1env=prod").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("selector: '1env' in '1env=prod' is not a valid key")));
}

TEST(SelectorMatchesTest, EmptySelectorMatchesEverything) {
  EXPECT_TRUE(SelectorMatches({}, {}));
  EXPECT_TRUE(SelectorMatches({}, {{"env", "prod"}}));
}

TEST(SelectorMatchesTest, MatchesWhenEveryPairIsPresent) {
  Labels labels = {{"env", "prod"}, {"region", "eu"}, {"tier", "web"}};
  EXPECT_TRUE(SelectorMatches({{"env", "prod"}, {"tier", "web"}}, labels));
}

TEST(SelectorMatchesTest, DoesNotMatchAMissingKeyOrADifferentValue) {
  Labels labels = {{"env", "prod"}};
  EXPECT_FALSE(SelectorMatches({{"region", "eu"}}, labels));
  EXPECT_FALSE(SelectorMatches({{"env", "staging"}}, labels));
  EXPECT_FALSE(SelectorMatches({{"env", "prod"}, {"region", "eu"}}, labels));
}

TEST(ParseKeyValueTest, SplitsAtTheFirstEqualsAndTrims) {
  std::string key, value;
  ASSERT_TRUE(ParseKeyValue(" db.url = postgres://h/db?a=b ", &key, &value).ok());
  EXPECT_EQ(key, "db.url");
  EXPECT_EQ(value, "postgres://h/db?a=b");
}

TEST(ParseKeyValueTest, AllowsAnEmptyValue) {
  std::string key, value = "x";
  ASSERT_TRUE(ParseKeyValue("_flag=", &key, &value).ok());
  EXPECT_EQ(key, "_flag");
  EXPECT_EQ(value, "");
}

TEST(ParseKeyValueTest, RejectsTextWithoutEquals) {
  std::string key, value;
  EXPECT_THAT(ParseKeyValue("port", &key, &value),
              StatusIs(absl::StatusCode::kInvalidArgument, "'port' is not KEY=VALUE"));
}

TEST(ParseKeyValueTest, RejectsAnEmptyKey) {
  std::string key, value;
  EXPECT_THAT(
      ParseKeyValue("=8080", &key, &value),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'' in '=8080' is not a valid key")));
}

TEST(ParseKeyValueTest, RejectsAKeyStartingWithADigitOrHoldingOtherCharacters) {
  std::string key, value;
  EXPECT_THAT(ParseKeyValue("9port=1", &key, &value),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'9port'")));
  EXPECT_THAT(ParseKeyValue("my port=1", &key, &value),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'my port'")));
  EXPECT_THAT(ParseKeyValue("a/b=1", &key, &value),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'a/b'")));
}

TEST(ExpandVarsTest, ReplacesKnownVariables) {
  absl::StatusOr<std::string> out = ExpandVars("http://${host}:${port}/healthz?p=${port}",
                                               {{"host", "127.0.0.1"}, {"port", "8080"}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "http://127.0.0.1:8080/healthz?p=8080");
}

TEST(ExpandVarsTest, DoesNotExpandValuesAgain) {
  absl::StatusOr<std::string> out = ExpandVars("${a}", {{"a", "${b}"}, {"b", "no"}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "${b}");
}

TEST(ExpandVarsTest, UnknownVariableIsAnErrorNamingIt) {
  EXPECT_THAT(ExpandVars("bin/start --port ${port}", {{"host", "h"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "unknown variable ${port} in 'bin/start --port ${port}' "
                       "(give it to the agent with --var port=...)"));
}

TEST(ExpandVarsTest, UnterminatedReferenceIsAnError) {
  EXPECT_THAT(ExpandVars("echo ${port", {{"port", "1"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "unterminated ${ in 'echo ${port'"));
}

TEST(ExpandVarsTest, KeepsADollarNotFollowedByABrace) {
  absl::StatusOr<std::string> out =
      ExpandVars("echo $FLEET_RELEASE costs $5 $", {{"FLEET_RELEASE", "v1"}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "echo $FLEET_RELEASE costs $5 $");
}

TEST(ExpandVarsTest, TextWithoutReferencesIsUnchanged) {
  absl::StatusOr<std::string> out = ExpandVars("bin/restart {x} }", {});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "bin/restart {x} }");
}

}  // namespace
}  // namespace fleet
