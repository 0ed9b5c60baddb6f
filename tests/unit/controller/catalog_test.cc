// The catalog's rules over a real SqliteStore and BlobStore in a temp dir:
// what each apply and push stores, and that a refused one stores nothing.
#include "controller/catalog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/sha256.h"
#include "controller/blob_store.h"
#include "controller/sqlite_store.h"
#include "tests/testing/archive_builder.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_env.h"

namespace fleet::controller {
namespace {

using ::fleet::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kSpec[] =
    "name: web\nhealth:\n  - tcp: 127.0.0.1:80\nconfig: { file: app.yaml, required: [db.url] }\n";

std::string Sha256Of(const std::string& bytes) {
  Sha256 sha;
  sha.Update(bytes);
  return sha.HexDigest();
}

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(dir_.Sub("fleet.db"));
    ASSERT_OK(store);
    store_ = *std::move(store);
    ASSERT_OK(blobs_.Init());
    catalog_ = std::make_unique<Catalog>(store_.get(), &blobs_);
  }

  void ApplyWeb() { ASSERT_OK(catalog_->ApplyApp(kSpec, "web.yaml", "alice")); }

  // Pushes `content` as web@`version` in one upload.
  absl::StatusOr<fleet::v1::Release> Push(const std::string& version, const std::string& content,
                                          const std::string& announced_sha256 = "") {
    fleet::v1::PushReleaseHeader header;
    header.set_app("web");
    header.set_version(version);
    header.set_size(static_cast<int64_t>(content.size()));
    header.set_sha256(announced_sha256);
    header.set_actor("ci");
    absl::StatusOr<std::unique_ptr<ReleaseUpload>> upload = catalog_->StartReleasePush(header);
    if (!upload.ok()) return upload.status();
    absl::Status st = (*upload)->Append(content);
    if (!st.ok()) return st;
    return (*upload)->Finish();
  }

  // A tar.gz holding one file with `text`: what a push must be.
  std::string Archive(const std::string& text) {
    const std::string path = dir_.Sub("artifact.tar.gz");
    EXPECT_OK(testing::ArchiveBuilder().AddFile("VERSION", text).WriteTarGz(path));
    absl::StatusOr<std::string> bytes = ReadFile(path);
    EXPECT_OK(bytes);
    return bytes.value_or("");
  }

  std::vector<std::string> EventKinds() {
    std::vector<std::string> kinds;
    absl::StatusOr<std::vector<fleet::v1::Event>> events = store_->ListEvents("", 0);
    EXPECT_OK(events);
    if (!events.ok()) return kinds;
    for (auto it = events->rbegin(); it != events->rend(); ++it) kinds.push_back(it->kind());
    return kinds;
  }

  static google::protobuf::RepeatedPtrField<fleet::v1::ConfigFile> Files(
      const std::string& app_yaml) {
    google::protobuf::RepeatedPtrField<fleet::v1::ConfigFile> files;
    fleet::v1::ConfigFile* file = files.Add();
    file->set_path("app.yaml");
    file->set_mode(0644);
    file->set_content(app_yaml);
    return files;
  }

  fleet::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  BlobStore blobs_{dir_.Sub("blobs")};
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(CatalogTest, ApplyApp_CreatesThenUpdatesKeepingTheDesiredVersion) {
  absl::StatusOr<Catalog::AppliedApp> first = catalog_->ApplyApp(kSpec, "web.yaml", "alice");
  ASSERT_OK(first);
  EXPECT_TRUE(first->created);
  EXPECT_EQ(first->app.spec().name(), "web");
  ASSERT_OK(store_->SetDesired("web", fleet::v1::SUBJECT_RELEASE, "v1"));

  const std::string changed = std::string(kSpec) + "keep_releases: 7\n";
  absl::StatusOr<Catalog::AppliedApp> second = catalog_->ApplyApp(changed, "web.yaml", "bob");
  ASSERT_OK(second);
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->app.spec().keep_releases(), 7);
  EXPECT_EQ(second->app.desired_version(), "v1");
  absl::StatusOr<fleet::v1::App> stored = store_->GetApp("web");
  ASSERT_OK(stored);
  EXPECT_EQ(stored->spec_yaml(), changed);
  EXPECT_THAT(EventKinds(), ElementsAre("app.created", "app.updated"));
}

TEST_F(CatalogTest, ApplyApp_BadSpecChangesNothing) {
  EXPECT_THAT(catalog_->ApplyApp("name: web\nreplicas: 3\n", "web.yaml", "alice"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("web.yaml:2")));
  absl::StatusOr<std::vector<fleet::v1::App>> apps = store_->ListApps();
  ASSERT_OK(apps);
  EXPECT_TRUE(apps->empty());

  ApplyWeb();
  EXPECT_THAT(catalog_->ApplyApp("name: web\nkeep_releases: 2\n", "web.yaml", "alice"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<fleet::v1::App> stored = store_->GetApp("web");
  ASSERT_OK(stored);
  EXPECT_EQ(stored->spec_yaml(), kSpec);
  EXPECT_THAT(EventKinds(), ElementsAre("app.created"));
}

TEST_F(CatalogTest, PushRelease_StoresTheArtifactTheRowAndAnEvent) {
  ApplyWeb();
  const std::string content = Archive("v1");
  absl::StatusOr<fleet::v1::Release> release = Push("v1", content, Sha256Of(content));
  ASSERT_OK(release);
  EXPECT_EQ(release->sha256(), Sha256Of(content));
  EXPECT_EQ(release->size(), static_cast<int64_t>(content.size()));
  EXPECT_EQ(release->created_by(), "ci");
  EXPECT_TRUE(blobs_.Has(release->sha256()));
  absl::StatusOr<fleet::v1::Release> stored = store_->GetRelease("web", "v1");
  ASSERT_OK(stored);
  EXPECT_EQ(stored->sha256(), release->sha256());
  EXPECT_THAT(EventKinds(), ElementsAre("app.created", "release.pushed"));
}

TEST_F(CatalogTest, PushRelease_IdenticalRepushReturnsTheStoredRelease) {
  ApplyWeb();
  const std::string artifact = Archive("artifact bytes");
  absl::StatusOr<fleet::v1::Release> first = Push("v1", artifact);
  ASSERT_OK(first);
  absl::StatusOr<fleet::v1::Release> again = Push("v1", artifact);
  ASSERT_OK(again);
  EXPECT_EQ(again->SerializeAsString(), first->SerializeAsString());
  EXPECT_THAT(EventKinds(), ElementsAre("app.created", "release.pushed"));
}

TEST_F(CatalogTest, PushRelease_RepushWithOtherContentIsRefusedAndStoresNothing) {
  ApplyWeb();
  const std::string artifact = Archive("artifact bytes");
  const std::string other = Archive("other bytes");
  ASSERT_OK(Push("v1", artifact));
  EXPECT_THAT(Push("v1", other),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       HasSubstr("release web@v1 exists already with different content")));
  EXPECT_FALSE(blobs_.Has(Sha256Of(other)));
  absl::StatusOr<fleet::v1::Release> stored = store_->GetRelease("web", "v1");
  ASSERT_OK(stored);
  EXPECT_EQ(stored->sha256(), Sha256Of(artifact));
  EXPECT_THAT(EventKinds(), ElementsAre("app.created", "release.pushed"));
}

TEST_F(CatalogTest, PushRelease_RefusesWhatIsNotAnArchiveAndStoresNothing) {
  ApplyWeb();
  const std::string readme = "# hello\nnot an archive at all\n";
  EXPECT_THAT(Push("v8", readme),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("the artifact of web@v8 is not an archive fleet can unpack (")));
  EXPECT_FALSE(blobs_.Has(Sha256Of(readme)));
  EXPECT_THAT(store_->GetRelease("web", "v8"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(EventKinds(), ElementsAre("app.created"));
}

TEST_F(CatalogTest, PushRelease_HeaderIsCheckedBeforeTheUpload) {
  fleet::v1::PushReleaseHeader header;
  header.set_app("web");
  header.set_version("v1");
  EXPECT_THAT(catalog_->StartReleasePush(header),
              StatusIs(absl::StatusCode::kNotFound, "unknown app 'web'"));
  ApplyWeb();
  header.set_version("../v1");
  EXPECT_THAT(catalog_->StartReleasePush(header),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("invalid version")));
  header.set_version("v1");
  header.set_size(kMaxArtifactBytes + 1);
  EXPECT_THAT(catalog_->StartReleasePush(header),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is outside 0..")));
  header.set_size(3);
  header.set_signature("not base64");
  EXPECT_THAT(catalog_->StartReleasePush(header), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(CatalogTest, PushRelease_UploadThatDoesNotMatchTheHeaderStoresNothing) {
  ApplyWeb();
  fleet::v1::PushReleaseHeader header;
  header.set_app("web");
  header.set_version("v1");
  header.set_size(4);
  absl::StatusOr<std::unique_ptr<ReleaseUpload>> upload = catalog_->StartReleasePush(header);
  ASSERT_OK(upload);
  EXPECT_THAT((*upload)->Append("12345"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("larger than the announced")));
  ASSERT_OK((*upload)->Append("123"));
  EXPECT_THAT((*upload)->Finish(), StatusIs(absl::StatusCode::kInvalidArgument,
                                            "upload of web@v1 ended after 3 of 4 bytes"));

  EXPECT_THAT(Push("v1", "1234", Sha256Of("4321")), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_FALSE(blobs_.Has(Sha256Of("1234")));
  EXPECT_THAT(store_->GetRelease("web", "v1"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(EventKinds(), ElementsAre("app.created"));
}

TEST_F(CatalogTest, PushConfig_StoresTheBundleTheRowAndAnEvent) {
  ApplyWeb();
  absl::StatusOr<Catalog::PushedConfig> pushed =
      catalog_->PushConfig("web", "c1", Files("db: {url: x}\n"), "ci");
  ASSERT_OK(pushed);
  EXPECT_TRUE(pushed->created);
  EXPECT_TRUE(blobs_.Has(pushed->config.sha256()));
  ASSERT_EQ(pushed->config.files_size(), 1);
  EXPECT_EQ(pushed->config.files(0).path(), "app.yaml");
  absl::StatusOr<fleet::v1::ConfigRelease> stored = store_->GetConfig("web", "c1");
  ASSERT_OK(stored);
  EXPECT_EQ(stored->sha256(), pushed->config.sha256());
  EXPECT_THAT(EventKinds(), ElementsAre("app.created", "config.pushed"));
}

TEST_F(CatalogTest, PushConfig_IdenticalRepushIsAcceptedWhateverTheSpecSaysNow) {
  ApplyWeb();
  ASSERT_OK(catalog_->PushConfig("web", "c1", Files("db: {url: x}\n"), "ci"));
  // The spec now requires a key that c1 lacks; c1 is stored already.
  ASSERT_OK(catalog_->ApplyApp(
      "name: web\nhealth:\n  - tcp: 127.0.0.1:80\nconfig: { file: app.yaml, required: [x] }\n",
      "web.yaml", "alice"));
  absl::StatusOr<Catalog::PushedConfig> again =
      catalog_->PushConfig("web", "c1", Files("db: {url: x}\n"), "ci");
  ASSERT_OK(again);
  EXPECT_FALSE(again->created);
  EXPECT_THAT(EventKinds(), ElementsAre("app.created", "config.pushed", "app.updated"));
}

TEST_F(CatalogTest, PushConfig_RefusedPushesStoreNothing) {
  EXPECT_THAT(catalog_->PushConfig("web", "c1", Files("db: {url: x}\n"), "ci"),
              StatusIs(absl::StatusCode::kNotFound));
  ApplyWeb();
  ASSERT_OK(catalog_->PushConfig("web", "c1", Files("db: {url: x}\n"), "ci"));
  EXPECT_THAT(catalog_->PushConfig("web", "c1", Files("db: {url: y}\n"), "ci"),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("exists with other content")));
  EXPECT_THAT(catalog_->PushConfig("web", "c2", Files("db: {}\n"), "ci"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("db.url")));
  absl::StatusOr<std::vector<fleet::v1::ConfigRelease>> configs = store_->ListConfigs("web");
  ASSERT_OK(configs);
  ASSERT_EQ(configs->size(), 1u);
  EXPECT_EQ((*configs)[0].version(), "c1");
  EXPECT_THAT(EventKinds(), ElementsAre("app.created", "config.pushed"));
}

}  // namespace
}  // namespace fleet::controller
