#include "common/signing.h"

#include <sys/stat.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet {
namespace {

using ::fleet::testing::FileMode;
using ::fleet::testing::ReadTextFile;
using ::fleet::testing::StatusIs;
using ::fleet::testing::TempDir;
using ::fleet::testing::WriteTextFile;
using ::fleet::v1::Release;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kSha[] = "3fa9c3b1e5d2f4a6b8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2";
constexpr char kOtherSha[] = "01bc3b1e5d2f4a6b8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2f";

using Keys = google::protobuf::RepeatedPtrField<std::string>;

SigningKeyPair NewKeys() {
  absl::StatusOr<SigningKeyPair> keys = GenerateSigningKeyPair();
  EXPECT_TRUE(keys.ok()) << keys.status();
  return keys.value_or(SigningKeyPair{});
}

Keys Trusting(std::initializer_list<const SigningKeyPair*> pairs) {
  Keys keys;
  for (const SigningKeyPair* pair : pairs) keys.Add(FormatPublicKey(pair->public_key));
  return keys;
}

Release MakeRelease(const std::string& app, const std::string& version, const std::string& sha,
                    int64_t size, const std::string& signature) {
  Release release;
  release.set_app(app);
  release.set_version(version);
  release.set_sha256(sha);
  release.set_size(size);
  release.set_signature(signature);
  return release;
}

// web@v2 signed by `keys`.
Release SignedWebV2(const SigningKeyPair& keys) {
  absl::StatusOr<std::string> sig = SignReleaseManifest(keys.secret_key, "web", "v2", kSha, 1234);
  EXPECT_TRUE(sig.ok()) << sig.status();
  return MakeRelease("web", "v2", kSha, 1234, sig.value_or(""));
}


TEST(ReleaseManifestTest, IsTheDocumentedCanonicalText) {
  absl::StatusOr<std::string> manifest = ReleaseManifest("web", "v2", kSha, 1234);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(*manifest, absl::StrCat("fleet-release-manifest-v1\napp=web\nversion=v2\nsha256=",
                                    kSha, "\nsize=1234\n"));
}

TEST(ReleaseManifestTest, RefusesLineBreaksInNamesAndMalformedShaOrSize) {
  EXPECT_THAT(ReleaseManifest("web\nversion=v9", "v2", kSha, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line break")));
  EXPECT_THAT(ReleaseManifest("web", "v2\r", kSha, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line break")));
  EXPECT_THAT(ReleaseManifest("", "v2", kSha, 1), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ReleaseManifest("web", "v2", "ABC", 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("64 lowercase hex")));
  EXPECT_THAT(ReleaseManifest("web", "v2", kSha, -1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative")));
}

TEST(VerifyReleaseSignatureTest, AcceptsASignatureByATrustedKey) {
  SigningKeyPair keys = NewKeys();
  EXPECT_OK(VerifyReleaseSignature(SignedWebV2(keys), Trusting({&keys})));
}

TEST(VerifyReleaseSignatureTest, AcceptsASignatureByAnyOneOfSeveralTrustedKeys) {
  SigningKeyPair other = NewKeys();
  SigningKeyPair keys = NewKeys();
  EXPECT_OK(VerifyReleaseSignature(SignedWebV2(keys), Trusting({&other, &keys})));
}

TEST(VerifyReleaseSignatureTest, RequiresNothingWhenTheAppTrustsNoKeys) {
  EXPECT_OK(VerifyReleaseSignature(MakeRelease("web", "v2", kSha, 1234, ""), Keys()));
}

TEST(VerifyReleaseSignatureTest, RefusesAnUnsignedReleaseSayingHowManyKeysTheAppTrusts) {
  SigningKeyPair a = NewKeys();
  SigningKeyPair b = NewKeys();
  EXPECT_THAT(VerifyReleaseSignature(MakeRelease("web", "v2", kSha, 1234, ""), Trusting({&a, &b})),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "release web@v2 is not signed, and app web requires a signature by one of "
                       "its 2 trusted keys"));
  EXPECT_THAT(VerifyReleaseSignature(MakeRelease("web", "v2", kSha, 1234, ""), Trusting({&a})),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "release web@v2 is not signed, and app web requires a signature by its "
                       "trusted key"));
}

TEST(VerifyReleaseSignatureTest, RefusesEveryTamperedManifestField) {
  SigningKeyPair keys = NewKeys();
  const Release good = SignedWebV2(keys);
  const std::string refused =
      "signature of release %s does not verify with any trusted key of app %s";
  struct Case {
    const char* what;
    Release release;
  } cases[] = {
      {"sha256", MakeRelease("web", "v2", kOtherSha, 1234, good.signature())},
      {"size", MakeRelease("web", "v2", kSha, 1235, good.signature())},
      {"version (replay of another version)", MakeRelease("web", "v3", kSha, 1234,
                                                            good.signature())},
      {"app (another app's release)", MakeRelease("api", "v2", kSha, 1234, good.signature())},
  };
  for (const Case& c : cases) {
    std::string label = absl::StrCat(c.release.app(), "@", c.release.version());
    EXPECT_THAT(VerifyReleaseSignature(c.release, Trusting({&keys})),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         absl::StrCat("signature of release ", label,
                                      " does not verify with any trusted key of app ",
                                      c.release.app())))
        << c.what;
  }
}

TEST(VerifyReleaseSignatureTest, RefusesASignatureByAKeyTheAppDoesNotTrust) {
  SigningKeyPair trusted = NewKeys();
  SigningKeyPair stranger = NewKeys();
  EXPECT_THAT(VerifyReleaseSignature(SignedWebV2(stranger), Trusting({&trusted})),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("does not verify")));
}

TEST(VerifyReleaseSignatureTest, RefusesAFlippedBitInTheSignature) {
  SigningKeyPair keys = NewKeys();
  Release release = SignedWebV2(keys);
  std::string raw;
  ASSERT_TRUE(absl::Base64Unescape(release.signature(), &raw));
  raw[10] = static_cast<char>(raw[10] ^ 0x01);
  release.set_signature(absl::Base64Escape(raw));
  EXPECT_THAT(VerifyReleaseSignature(release, Trusting({&keys})),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("does not verify")));
}

TEST(VerifyReleaseSignatureTest, RefusesMalformedSignatures) {
  SigningKeyPair keys = NewKeys();
  const std::string good = SignedWebV2(keys).signature();
  for (const std::string& bad :
       {std::string("not base64 at all!"), good.substr(0, good.size() - 4),  // 63 bytes
        good + "AAAA",                                          // data after the padding
        good + "\n", absl::Base64Escape(std::string(32, 'x'))}) {
    EXPECT_THAT(VerifyReleaseSignature(MakeRelease("web", "v2", kSha, 1234, bad), Trusting({&keys})),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         "signature of release web@v2 is not the base64 of a 64-byte Ed25519 "
                         "signature"))
        << bad;
    EXPECT_THAT(CheckSignatureFormat(bad, "web@v2"), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_OK(CheckSignatureFormat(good, "web@v2"));
}

TEST(VerifyReleaseSignatureTest, RefusesAMalformedTrustedKeyNamingIt) {
  SigningKeyPair keys = NewKeys();
  Keys trusted = Trusting({&keys});
  trusted.Add("ed25519:c2hvcnQ=");
  EXPECT_THAT(VerifyReleaseSignature(SignedWebV2(keys), trusted),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("trusted_keys[1] of app web: ")));
}

TEST(PublicKeyTest, RoundTripsWithAndWithoutThePrefix) {
  SigningKeyPair keys = NewKeys();
  const std::string text = FormatPublicKey(keys.public_key);
  EXPECT_THAT(text, StartsWith("ed25519:"));
  EXPECT_EQ(ParsePublicKey(text).value_or(""), keys.public_key);
  EXPECT_EQ(ParsePublicKey(absl::StrCat("  ", text, "\n")).value_or(""), keys.public_key);
  EXPECT_EQ(ParsePublicKey(text.substr(8)).value_or(""), keys.public_key) << "bare base64";
}

TEST(PublicKeyTest, RefusesWrongLengthsOtherFormatsAndSecretKeys) {
  SigningKeyPair keys = NewKeys();
  for (const std::string& bad :
       {std::string(""), std::string("ed25519:"),
        absl::StrCat("ed25519:", absl::Base64Escape(std::string(31, 'k'))),
        absl::StrCat("ed25519:", absl::Base64Escape(std::string(33, 'k'))),
        absl::StrCat("ssh-ed25519 ", absl::Base64Escape(keys.public_key)),
        absl::StrCat("ed25519:", absl::WebSafeBase64Escape(std::string(32, '\xfb')))}) {
    EXPECT_THAT(ParsePublicKey(bad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not an Ed25519 public key")))
        << bad;
  }
  const std::string secret = FormatSecretKey(keys.secret_key);
  absl::Status st = ParsePublicKey(secret).status();
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("secret key")));
  EXPECT_THAT(std::string(st.message()), Not(HasSubstr(secret.substr(15))))
      << "a secret must never be echoed";
}

TEST(SecretKeyTest, RoundTripsAndRefusesOtherText) {
  SigningKeyPair keys = NewKeys();
  EXPECT_EQ(ParseSecretKey(FormatSecretKey(keys.secret_key)).value_or(""), keys.secret_key);
  EXPECT_THAT(ParseSecretKey(FormatPublicKey(keys.public_key)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ed25519-secret:")));
  EXPECT_THAT(ParseSecretKey(absl::StrCat("ed25519-secret:", absl::Base64Escape("short"))),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("64 bytes")));
}

TEST(SignReleaseManifestTest, RefusesAKeyOfTheWrongSize) {
  SigningKeyPair keys = NewKeys();
  EXPECT_THAT(SignReleaseManifest(keys.public_key, "web", "v2", kSha, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not 64 bytes")));
}

TEST(KeyFilesTest, WritesASecretFileOnlyTheOwnerCanReadAndAPublicOne) {
  TempDir dir;
  SigningKeyPair keys = NewKeys();
  const std::string prefix = dir.Sub("release");
  ASSERT_OK(WriteKeyFiles(keys, prefix));

  EXPECT_EQ(FileMode(prefix + ".key"), 0600u);
  EXPECT_EQ(FileMode(prefix + ".pub"), 0644u);
  EXPECT_EQ(ReadTextFile(prefix + ".pub"), FormatPublicKey(keys.public_key) + "\n");
  EXPECT_EQ(ReadSecretKeyFile(prefix + ".key").value_or(""), keys.secret_key);
  // What the files hold signs and verifies end to end.
  absl::StatusOr<std::string> secret = ReadSecretKeyFile(prefix + ".key");
  ASSERT_TRUE(secret.ok()) << secret.status();
  absl::StatusOr<std::string> sig = SignReleaseManifest(*secret, "web", "v2", kSha, 1234);
  ASSERT_TRUE(sig.ok()) << sig.status();
  Keys trusted;
  trusted.Add(ReadTextFile(prefix + ".pub"));
  EXPECT_OK(VerifyReleaseSignature(MakeRelease("web", "v2", kSha, 1234, *sig), trusted));
}

TEST(KeyFilesTest, NeverOverwritesAnExistingKeyFile) {
  TempDir dir;
  const std::string prefix = dir.Sub("release");
  ASSERT_OK(WriteKeyFiles(NewKeys(), prefix));
  const std::string secret = ReadTextFile(prefix + ".key");
  const std::string pub = ReadTextFile(prefix + ".pub");

  EXPECT_THAT(WriteKeyFiles(NewKeys(), prefix),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("never overwritten")));
  EXPECT_EQ(ReadTextFile(prefix + ".key"), secret);
  EXPECT_EQ(ReadTextFile(prefix + ".pub"), pub);
}

TEST(KeyFilesTest, WritesNothingWhenOnlyThePublicFileExists) {
  TempDir dir;
  const std::string prefix = dir.Sub("release");
  WriteTextFile(prefix + ".pub", "someone else's\n");

  EXPECT_THAT(WriteKeyFiles(NewKeys(), prefix), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_FALSE(PathExists(prefix + ".key"));
  EXPECT_EQ(ReadTextFile(prefix + ".pub"), "someone else's\n");
}

TEST(KeyFilesTest, RefusesASecretKeyFileOthersCanRead) {
  TempDir dir;
  const std::string prefix = dir.Sub("release");
  ASSERT_OK(WriteKeyFiles(NewKeys(), prefix));
  ASSERT_EQ(chmod((prefix + ".key").c_str(), 0640), 0);

  EXPECT_THAT(ReadSecretKeyFile(prefix + ".key"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("mode 0640"), HasSubstr("chmod 600"))));
}

TEST(KeyFilesTest, RefusesAFileThatHoldsNoSecretKeyWithoutQuotingIt) {
  TempDir dir;
  const std::string path = dir.Sub("wrong.key");
  WriteTextFile(path, "ed25519:c29tZXRoaW5n\n", 0600);

  absl::StatusOr<std::string> key = ReadSecretKeyFile(path);
  EXPECT_THAT(key, StatusIs(absl::StatusCode::kInvalidArgument, StartsWith(path + ": ")));
  EXPECT_THAT(std::string(key.status().message()), Not(HasSubstr("c29tZXRoaW5n")));
  EXPECT_THAT(ReadSecretKeyFile(dir.Sub("missing.key")), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace fleet
