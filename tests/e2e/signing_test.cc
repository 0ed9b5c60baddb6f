// End-to-end: signed artifacts on a real controller and real agents. An app
// spec's trusted_keys makes the controller refuse pushes without a valid
// signature, and the agents check again on their own: a release that got
// past the controller unsigned, signed by another key, or carrying the
// signature of another version is never unpacked, let alone activated.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/sha256.h"
#include "fleet/v1/api.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"

namespace fleet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Cluster;
using testing::ClusterOptions;
using testing::CommandOutput;

ClusterOptions TwoHosts() {
  ClusterOptions options;
  options.agents = 2;
  return options;
}

class E2ESigningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.WaitForConnectedHosts(2)) << cluster_.ControllerLog();
  }

  // Runs `fleetctl keygen --out <dir>/<name>`; returns the public key line.
  std::string Keygen(const std::string& name) {
    const std::string prefix = absl::StrCat(cluster_.dir(), "/", name);
    CommandOutput out = cluster_.Fleetctl({"keygen", "--out", prefix});
    EXPECT_EQ(out.exit_code, 0) << out.err;
    std::string pub(absl::StripAsciiWhitespace(testing::ReadTextFile(prefix + ".pub")));
    EXPECT_THAT(out.out, HasSubstr(pub)) << "keygen prints the line to paste into trusted_keys";
    return pub;
  }
  std::string KeyFile(const std::string& name) const {
    return absl::StrCat(cluster_.dir(), "/", name, ".key");
  }

  // The hello spec, trusting `keys` (none: no trusted_keys at all).
  void ApplySpecTrusting(const std::vector<std::string>& keys) {
    std::string extra;
    if (!keys.empty()) {
      extra = "trusted_keys:\n";
      for (const std::string& key : keys) absl::StrAppend(&extra, "  - \"", key, "\"\n");
    }
    cluster_.ApplyHelloSpec("500ms", extra);
  }

  // `fleetctl release push hello VERSION ARTIFACT [--sign KEYFILE]`.
  CommandOutput Push(const std::string& version, const std::string& key_file = "") {
    std::vector<std::string> args = {"release", "push", "hello", version,
                                     cluster_.MakeHelloArtifact(version)};
    if (!key_file.empty()) args.insert(args.end(), {"--sign", key_file});
    return cluster_.Fleetctl(args);
  }

  // Pushes the hello artifact of `version` with `signature` in the header,
  // as any gRPC client could: fleetctl only sends signatures it made.
  grpc::Status PushWithSignature(const std::string& version, const std::string& signature) {
    const std::string artifact = cluster_.MakeHelloArtifact(version);
    std::string bytes = testing::ReadTextFile(artifact);
    auto channel = grpc::CreateChannel(cluster_.address(), grpc::InsecureChannelCredentials());
    auto api = fleet::v1::FleetService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    fleet::v1::Release resp;
    auto writer = api->PushRelease(&ctx, &resp);
    fleet::v1::PushReleaseRequest header;
    header.mutable_header()->set_app("hello");
    header.mutable_header()->set_version(version);
    header.mutable_header()->set_size(static_cast<int64_t>(bytes.size()));
    header.mutable_header()->set_sha256(Sha256File(artifact).value_or(""));
    header.mutable_header()->set_actor("replayer@ci");
    header.mutable_header()->set_signature(signature);
    fleet::v1::PushReleaseRequest data;
    data.set_data(bytes);
    if (writer->Write(header)) writer->Write(data);
    writer->WritesDone();
    return writer->Finish();
  }

  // The releases of hello as `release list --output json` shows them.
  nlohmann::json Releases() {
    CommandOutput out = cluster_.Fleetctl({"--output", "json", "release", "list", "hello"});
    EXPECT_EQ(out.exit_code, 0) << out.err;
    nlohmann::json doc = nlohmann::json::parse(out.out, nullptr, false);
    return doc.is_object() && doc.contains("releases") ? doc["releases"] : nlohmann::json::array();
  }
  std::vector<std::string> ReleaseVersions() {
    std::vector<std::string> versions;
    for (const nlohmann::json& r : Releases()) versions.push_back(r.value("version", ""));
    return versions;
  }
  std::string SignatureOf(const std::string& version) {
    for (const nlohmann::json& r : Releases()) {
      if (r.value("version", "") == version) return r.value("signature", "");
    }
    return "";
  }

  // Rolls `version` out and expects every host to refuse it for `reason`
  // and to stay on `running`, with nothing of `version` on its disk.
  void ExpectRolloutRefused(const std::string& version, const std::string& reason,
                            const std::string& running) {
    CommandOutput out = cluster_.Fleetctl({"rollout", "hello", version, "--wait"});
    EXPECT_EQ(out.exit_code, 2) << out.out << out.err;
    EXPECT_THAT(out.err, HasSubstr(reason)) << out.out;
    EXPECT_THAT(out.err, HasSubstr("nothing was switched"));
    for (int i = 0; i < cluster_.agents(); ++i) {
      EXPECT_EQ(cluster_.Current(i), running) << cluster_.HostId(i);
      EXPECT_EQ(cluster_.HttpGet(i, "/version"), running + "\n") << cluster_.HostId(i);
      const std::string releases = cluster_.AppsRoot(i) + "/hello/releases";
      for (const auto& entry : std::filesystem::directory_iterator(releases)) {
        EXPECT_NE(entry.path().filename().string(), version) << entry.path();
        EXPECT_FALSE(absl::StartsWith(entry.path().filename().string(), ".staging-"))
            << entry.path();
      }
      for (const auto& entry :
           std::filesystem::directory_iterator(cluster_.StateDir(i) + "/downloads")) {
        ADD_FAILURE() << "download left behind: " << entry.path();
      }
    }
  }

  Cluster cluster_{TwoHosts()};
};

TEST_F(E2ESigningTest, SignedRelease_RollsOutAndTheControllerRefusesUnsignedForeignAndReplayedPushes) {
  const std::string key = Keygen("release");
  Keygen("other");
  ApplySpecTrusting({key});

  CommandOutput pushed = Push("v1", KeyFile("release"));
  ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
  EXPECT_THAT(pushed.out, HasSubstr("pushed hello@v1"));
  EXPECT_THAT(pushed.out, HasSubstr("signed"));
  CommandOutput rolled = cluster_.Fleetctl({"rollout", "hello", "v1", "--wait"});
  ASSERT_EQ(rolled.exit_code, 0) << rolled.out << rolled.err;
  for (int i = 0; i < cluster_.agents(); ++i) EXPECT_EQ(cluster_.Current(i), "v1");
  const std::string v1_signature = SignatureOf("v1");
  EXPECT_FALSE(v1_signature.empty()) << "the signature reaches the store and the API";
  CommandOutput list = cluster_.Fleetctl({"release", "list", "hello"});
  EXPECT_THAT(list.out, HasSubstr("SIGNED"));
  EXPECT_THAT(list.out, HasSubstr("yes"));

  CommandOutput unsigned_push = Push("v2");
  EXPECT_EQ(unsigned_push.exit_code, 1);
  EXPECT_THAT(unsigned_push.err,
              HasSubstr("release hello@v2 is not signed, and app hello requires a signature by "
                        "its trusted key"));

  CommandOutput foreign = Push("v3", KeyFile("other"));
  EXPECT_EQ(foreign.exit_code, 1);
  EXPECT_THAT(foreign.err, HasSubstr("signature of release hello@v3 does not verify with any "
                                     "trusted key of app hello"));

  // v4's artifact with the signature made for v1.
  grpc::Status replayed = PushWithSignature("v4", v1_signature);
  EXPECT_EQ(replayed.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(replayed.error_message(),
            "signature of release hello@v4 does not verify with any trusted key of app hello");

  grpc::Status malformed = PushWithSignature("v5", "bm90IGEgc2lnbmF0dXJl");
  EXPECT_EQ(malformed.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(malformed.error_message(), HasSubstr("is not the base64 of a 64-byte Ed25519"));

  EXPECT_THAT(ReleaseVersions(), ElementsAre("v1")) << "a refused push stores nothing";
}

TEST_F(E2ESigningTest, Agents_RefuseReleasesThatGotPastTheControllerWithoutATrustedSignature) {
  const std::string key = Keygen("release");
  const std::string other_key = Keygen("other");
  // While the app trusts no keys the controller takes any well-formed push.
  ApplySpecTrusting({});
  ASSERT_EQ(Push("v1", KeyFile("release")).exit_code, 0);
  CommandOutput rolled = cluster_.Fleetctl({"rollout", "hello", "v1", "--wait"});
  ASSERT_EQ(rolled.exit_code, 0) << rolled.out << rolled.err;
  CommandOutput unsigned_push = Push("v2");
  ASSERT_EQ(unsigned_push.exit_code, 0) << unsigned_push.err;
  EXPECT_THAT(unsigned_push.out, HasSubstr("unsigned"));
  ASSERT_EQ(Push("v3", KeyFile("other")).exit_code, 0);
  grpc::Status replay = PushWithSignature("v4", SignatureOf("v1"));
  ASSERT_TRUE(replay.ok()) << replay.error_message();

  ApplySpecTrusting({key});

  ExpectRolloutRefused(
      "v2", "release hello@v2 is not signed, and app hello requires a signature by its trusted key",
      "v1");
  ExpectRolloutRefused(
      "v3", "signature of release hello@v3 does not verify with any trusted key of app hello",
      "v1");
  ExpectRolloutRefused(
      "v4", "signature of release hello@v4 does not verify with any trusted key of app hello",
      "v1");

  // The same v3 goes out once its key is trusted: nothing else held it back.
  ApplySpecTrusting({key, other_key});
  CommandOutput trusted = cluster_.Fleetctl({"rollout", "hello", "v3", "--wait"});
  EXPECT_EQ(trusted.exit_code, 0) << trusted.out << trusted.err;
  for (int i = 0; i < cluster_.agents(); ++i) EXPECT_EQ(cluster_.Current(i), "v3");
}

TEST_F(E2ESigningTest, Agents_RefuseToRollBackToAnUnsignedReleaseOnDiskOnceKeysAreSet) {
  const std::string key = Keygen("release");
  ApplySpecTrusting({});
  ASSERT_EQ(Push("v1").exit_code, 0);
  ASSERT_EQ(cluster_.Fleetctl({"rollout", "hello", "v1", "--wait"}).exit_code, 0);
  ApplySpecTrusting({key});
  ASSERT_EQ(Push("v2", KeyFile("release")).exit_code, 0);
  CommandOutput rolled = cluster_.Fleetctl({"rollout", "hello", "v2", "--wait"});
  ASSERT_EQ(rolled.exit_code, 0) << rolled.out << rolled.err;

  // v1 is on every disk, but nobody trusted signed it.
  CommandOutput back = cluster_.Fleetctl({"rollback", "hello", "--to", "v1", "--wait"});

  EXPECT_NE(back.exit_code, 0) << back.out << back.err;
  EXPECT_THAT(back.out + back.err,
              HasSubstr("release hello@v1 is not signed, and app hello requires a signature by "
                        "its trusted key"));
  for (int i = 0; i < cluster_.agents(); ++i) {
    EXPECT_EQ(cluster_.Current(i), "v2") << cluster_.HostId(i);
    EXPECT_EQ(cluster_.HttpGet(i, "/version"), "v2\n") << cluster_.HostId(i);
  }
}

TEST_F(E2ESigningTest, RePush_WithAnotherSignatureIsRefusedAndTheIdenticalOneIsFine) {
  Keygen("release");
  Keygen("other");
  ApplySpecTrusting({});
  ASSERT_EQ(Push("v1").exit_code, 0);
  ASSERT_EQ(Push("v2", KeyFile("release")).exit_code, 0);
  const std::string v2_signature = SignatureOf("v2");

  CommandOutput signed_later = Push("v1", KeyFile("release"));
  CommandOutput other_key = Push("v2", KeyFile("other"));
  CommandOutput unsigned_again = Push("v2");
  CommandOutput identical = Push("v2", KeyFile("release"));

  EXPECT_EQ(signed_later.exit_code, 1);
  EXPECT_THAT(signed_later.err, HasSubstr("release hello@v1 exists already unsigned; versions are "
                                          "immutable, push a new version"));
  for (const CommandOutput& out : {other_key, unsigned_again}) {
    EXPECT_EQ(out.exit_code, 1);
    EXPECT_THAT(out.err, HasSubstr("release hello@v2 exists already with another signature; "
                                   "versions are immutable, push a new version"));
    EXPECT_EQ(std::count(out.err.begin(), out.err.end(), '\n'), 1) << out.err;
  }
  EXPECT_EQ(identical.exit_code, 0) << identical.err;
  EXPECT_EQ(SignatureOf("v1"), "") << "a refused push changes nothing";
  EXPECT_EQ(SignatureOf("v2"), v2_signature);
}

}  // namespace
}  // namespace fleet
