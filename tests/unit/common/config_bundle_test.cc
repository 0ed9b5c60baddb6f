#include "common/config_bundle.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fleet {
namespace {

using ::fleet::testing::StatusIs;
using ::fleet::v1::AppSpec;
using ::fleet::v1::ConfigBundle;
using ::fleet::v1::ConfigFile;
using ::testing::HasSubstr;

using Files = google::protobuf::RepeatedPtrField<ConfigFile>;

Files MakeFiles(const std::vector<std::pair<std::string, std::string>>& contents) {
  Files files;
  for (const auto& [path, content] : contents) {
    ConfigFile* f = files.Add();
    f->set_path(path);
    f->set_content(content);
    f->set_mode(0644);
  }
  return files;
}

AppSpec SpecRequiring(const std::string& file, const std::vector<std::string>& keys) {
  AppSpec spec;
  spec.set_name("web");
  spec.mutable_config()->set_file(file);
  for (const auto& k : keys) spec.mutable_config()->add_required(k);
  return spec;
}

TEST(ConfigPathTest, RefusesAbsoluteDotDotEmptyAndControlCharacters) {
  EXPECT_OK(CheckConfigPath("app.yaml"));
  EXPECT_OK(CheckConfigPath(".env"));
  EXPECT_OK(CheckConfigPath("db/replica/app.toml"));
  EXPECT_THAT(CheckConfigPath("/etc/passwd"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is absolute")));
  EXPECT_THAT(CheckConfigPath("a/../../x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'.' or '..' component")));
  EXPECT_THAT(CheckConfigPath("a//b"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty component")));
  EXPECT_THAT(CheckConfigPath("a\nb"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("control character")));
  EXPECT_THAT(CheckConfigPath(std::string(256, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("longer than 255")));
}

TEST(ConfigPushTest, RefusesVersionControlMetadataAndEditorBackups) {
  for (const char* path : {".git/config", "conf/.svn/entries", ".hg/hgrc"}) {
    EXPECT_THAT(CheckConfigPush("c1", MakeFiles({{path, "x"}}), AppSpec(), {}),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("is inside version-control metadata")))
        << path;
  }
  for (const char* path : {"app.env~", ".app.env.swp", "db/app.yaml.bak", "x.swo"}) {
    EXPECT_THAT(CheckConfigPush("c1", MakeFiles({{path, "x"}}), AppSpec(), {}),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("looks like an editor backup")))
        << path;
  }
  EXPECT_OK(CheckConfigPush("c1", MakeFiles({{"git/config.ini", "a=1\n"}, {".gitignore", ""}}),
                            AppSpec(), {}));
}

TEST(ConfigPushTest, ReturnsFilesSortedWithPermissionBitsOnly) {
  Files files = MakeFiles({{"z.env", "A=1\n"}, {"a/app.yaml", "db: {url: x}\n"}});
  files.Mutable(0)->set_mode(04755);
  absl::StatusOr<ConfigBundle> bundle = CheckConfigPush("c1", files, AppSpec(), {});
  ASSERT_OK(bundle);
  ASSERT_EQ(bundle->files_size(), 2);
  EXPECT_EQ(bundle->files(0).path(), "a/app.yaml");
  EXPECT_EQ(bundle->files(1).path(), "z.env");
  EXPECT_EQ(bundle->files(1).mode(), 0755u);
}

TEST(ConfigPushTest, SyntaxErrorNamesFileAndLine) {
  EXPECT_THAT(
      CheckConfigPush("c1", MakeFiles({{"app.json", "{\n  \"a\": 1,\n}\n"}}), AppSpec(), {}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("app.json:3: invalid JSON")));
  EXPECT_THAT(CheckConfigPush("c1", MakeFiles({{"x/app.yaml", "a: [1, 2\nb: 3\n"}}), AppSpec(), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x/app.yaml:")));
  EXPECT_THAT(CheckConfigPush("c1", MakeFiles({{"app.toml", "a = 1\nb = = 2\n"}}), AppSpec(), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("app.toml:2: invalid TOML")));
}

TEST(ConfigPushTest, RequiredKeyMissingIsRefusedNamingTheKeys) {
  AppSpec spec = SpecRequiring("app.yaml", {"db.url", "redis.addr"});
  EXPECT_THAT(
      CheckConfigPush("c1", MakeFiles({{"app.yaml", "db:\n  url: postgres://db\n"}}), spec, {}),
      StatusIs(absl::StatusCode::kInvalidArgument, "app.yaml lacks required keys: redis.addr"));
  EXPECT_OK(CheckConfigPush(
      "c1", MakeFiles({{"app.yaml", "db:\n  url: postgres://db\nredis: {addr: r:6379}\n"}}), spec,
      {}));
}

TEST(ConfigPushTest, SpecFileMissingIsRefusedUnlessPushedEncrypted) {
  AppSpec spec = SpecRequiring("app.yaml", {"db.url"});
  EXPECT_THAT(CheckConfigPush("c1", MakeFiles({{"other.yaml", "a: 1\n"}}), spec, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "the app spec names config file app.yaml (config.file), which is not in "
                       "the push"));
  // Ciphertext cannot be checked here; hosts check it after decryption.
  EXPECT_OK(CheckConfigPush(
      "c1", MakeFiles({{"app.yaml.age", "age-encryption.org/v1\n-> X25519 abc\n"}}), spec, {}));
}

TEST(ConfigPushTest, RefusesDuplicatesFileDirectoryClashesAndSecretShadows) {
  EXPECT_THAT(CheckConfigPush("c1", MakeFiles({{"a.env", ""}, {"a.env", ""}}), AppSpec(), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "a.env is in the push twice"));
  EXPECT_THAT(CheckConfigPush("c1", MakeFiles({{"db", ""}, {"db-x", ""}, {"db/app.env", ""}}),
                              AppSpec(), {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "db is a file and also the directory of db/app.env"));
  EXPECT_THAT(CheckConfigPush("c1", MakeFiles({{"s.env", ""}, {"s.env.age", "x"}}), AppSpec(), {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "s.env.age decrypts to s.env, which is in the push as well"));
  // A secret whose name on the hosts is the directory of another file.
  EXPECT_THAT(CheckConfigPush("c1",
                              MakeFiles({{"db.age", "age-encryption.org/v1\n"}, {"db/x.env", ""}}),
                              AppSpec(), {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "db.age is a file and also the directory of db/x.env"));
}

TEST(ConfigPushTest, EnforcesLimitsAndVersionNames) {
  ConfigLimits limits;
  limits.max_files = 2;
  limits.max_file_bytes = 10;
  limits.max_total_bytes = 15;
  EXPECT_THAT(
      CheckConfigPush("c1", MakeFiles({{"a", ""}, {"b", ""}, {"c", ""}}), AppSpec(), limits),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 2 are allowed")));
  EXPECT_THAT(CheckConfigPush("c1", MakeFiles({{"a", std::string(11, 'x')}}), AppSpec(), limits),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("a has 11 bytes")));
  EXPECT_THAT(
      CheckConfigPush("c1", MakeFiles({{"a", std::string(8, 'x')}, {"b", std::string(8, 'x')}}),
                      AppSpec(), limits),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("more than 15 bytes")));
  EXPECT_THAT(CheckConfigPush("../c1", MakeFiles({{"a", ""}}), AppSpec(), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("invalid config version")));
  EXPECT_THAT(CheckConfigPush("c1", Files(), AppSpec(), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least one file")));
}

TEST(ConfigBundleTest, SerializationIsDeterministic) {
  absl::StatusOr<ConfigBundle> a =
      CheckConfigPush("c1", MakeFiles({{"b.env", "B=2\n"}, {"a.env", "A=1\n"}}), AppSpec(), {});
  absl::StatusOr<ConfigBundle> b =
      CheckConfigPush("c1", MakeFiles({{"a.env", "A=1\n"}, {"b.env", "B=2\n"}}), AppSpec(), {});
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ(SerializeConfigBundle(*a), SerializeConfigBundle(*b));
  ConfigBundle parsed;
  ASSERT_TRUE(parsed.ParseFromString(SerializeConfigBundle(*a)));
  EXPECT_EQ(parsed.files(0).path(), "a.env");
}

TEST(ConfigBundleTest, SecretPathsAndTheirDecryptedNames) {
  EXPECT_TRUE(IsSecretPath("db/secrets.env.age"));
  EXPECT_FALSE(IsSecretPath(".age"));
  EXPECT_FALSE(IsSecretPath("dir/.age"));
  EXPECT_FALSE(IsSecretPath("app.yaml"));
  EXPECT_EQ(DecryptedPath("db/secrets.env.age"), "db/secrets.env");
  EXPECT_EQ(DecryptedPath("app.yaml"), "app.yaml");
}

TEST(ConfigPushTest, SecretsMustBeAgeCiphertextAndModesLoseGroupAndOtherWrite) {
  EXPECT_THAT(CheckConfigPush("c1", MakeFiles({{"db.env.age", "DB_PASSWORD=plain\n"}}), AppSpec(),
                              {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("db.env.age is not age-encrypted (no age header)")));
  EXPECT_OK(CheckConfigPush(
      "c1", MakeFiles({{"db.env.age", "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n"}}), AppSpec(),
      {}));
  Files files = MakeFiles({{"app.env", "A=1\n"}});
  files.Mutable(0)->set_mode(0666);
  absl::StatusOr<ConfigBundle> bundle = CheckConfigPush("c1", files, AppSpec(), {});
  ASSERT_OK(bundle);
  EXPECT_EQ(bundle->files(0).mode(), 0644u);
}

}  // namespace
}  // namespace fleet
