#include "controller/api_token.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "common/sha256.h"
#include "tests/testing/status_matchers.h"

namespace fleet::controller {
namespace {

using ::testing::Optional;

TEST(ApiTokenTest, Generate_GivesPrefixedHexTokenWithItsHashAndId) {
  absl::StatusOr<GeneratedApiToken> generated = GenerateApiToken();
  ASSERT_OK(generated);
  EXPECT_TRUE(IsWellFormedApiToken(generated->token)) << generated->token;
  EXPECT_EQ(generated->token.size(), 6u + 64u);
  EXPECT_EQ(generated->hash, HashApiToken(generated->token));
  EXPECT_TRUE(IsSha256Hex(generated->hash));
  EXPECT_EQ(generated->id, generated->hash.substr(0, 12));
  // Neither the hash nor the id contains the secret part.
  EXPECT_EQ(generated->hash.find(generated->token.substr(6)), std::string::npos);
}

TEST(ApiTokenTest, Generate_NeverRepeatsItself) {
  std::set<std::string> tokens;
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<GeneratedApiToken> generated = GenerateApiToken();
    ASSERT_OK(generated);
    EXPECT_TRUE(tokens.insert(generated->token).second) << generated->token;
  }
}

TEST(ApiTokenTest, Hash_IsSha256HexOfTheWholeToken) {
  Sha256 sha;
  sha.Update("fleet_00");
  EXPECT_EQ(HashApiToken("fleet_00"), sha.HexDigest());
  EXPECT_NE(HashApiToken("fleet_00"), HashApiToken("fleet_01"));
  EXPECT_EQ(ApiTokenId(HashApiToken("fleet_00")), HashApiToken("fleet_00").substr(0, 12));
}

TEST(ApiTokenTest, IsWellFormed_RequiresPrefixAnd64LowercaseHexDigits) {
  const std::string hex(64, 'a');
  EXPECT_TRUE(IsWellFormedApiToken("fleet_" + hex));
  EXPECT_FALSE(IsWellFormedApiToken(hex));
  EXPECT_FALSE(IsWellFormedApiToken("fleet_" + hex.substr(1)));
  EXPECT_FALSE(IsWellFormedApiToken("fleet_" + hex + "a"));
  EXPECT_FALSE(IsWellFormedApiToken("fleet_" + std::string(64, 'A')));
  EXPECT_FALSE(IsWellFormedApiToken("fleet_" + std::string(63, 'a') + "g"));
  EXPECT_FALSE(IsWellFormedApiToken(""));
}

TEST(ApiTokenTest, BearerToken_TakesTheTokenAfterTheSchemeInAnyCase) {
  EXPECT_THAT(BearerToken("Bearer fleet_abc"), Optional(std::string("fleet_abc")));
  EXPECT_THAT(BearerToken("bearer   fleet_abc "), Optional(std::string("fleet_abc")));
  EXPECT_THAT(BearerToken("BEARER x"), Optional(std::string("x")));
  EXPECT_EQ(BearerToken("Bearer "), std::nullopt);
  EXPECT_EQ(BearerToken("Bearer"), std::nullopt);
  EXPECT_EQ(BearerToken("Basic dXNlcjpwYXNz"), std::nullopt);
  EXPECT_EQ(BearerToken("fleet_abc"), std::nullopt);
  EXPECT_EQ(BearerToken(""), std::nullopt);
}

}  // namespace
}  // namespace fleet::controller
