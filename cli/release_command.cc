#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "common/archive.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "common/signing.h"

namespace fleet::cli {
namespace {

struct ReleaseArgs {
  std::string app;
  std::string version;
  std::string file;  // an archive, or a directory to pack
  std::string sign;
  std::string key_out;
};

// A directory packed for a push; removed with this object.
class PackedDirectory {
 public:
  ~PackedDirectory() {
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  // Packs `dir` (common/archive.h: the same tree gives the same bytes);
  // returns the archive's path.
  std::string Pack(const std::string& dir, const std::string& name, uint64_t* entries) {
    const char* tmp = getenv("TMPDIR");
    absl::StatusOr<std::string> made =
        MakeTempDir(tmp != nullptr && *tmp ? tmp : "/tmp", "fleetctl-pack-");
    if (!made.ok()) Fail(absl::StrCat("cannot pack ", dir, ": ", made.status().message()));
    dir_ = *made;
    const std::string path = absl::StrCat(dir_, "/", name, ".tar.gz");
    if (absl::Status st = PackDirectory(dir, path, entries); !st.ok()) Fail(st.message());
    return path;
  }

 private:
  std::string dir_;
};

std::string Signature(const ReleaseArgs& args, const std::string& sha, int64_t size) {
  if (args.sign.empty()) return "";
  absl::StatusOr<std::string> key = ReadSecretKeyFile(args.sign);
  absl::StatusOr<std::string> signed_manifest =
      key.ok() ? SignReleaseManifest(*key, args.app, args.version, sha, size) : key.status();
  if (!signed_manifest.ok()) {
    Fail(absl::StrCat("cannot sign ", args.app, "@", args.version, ": ",
                      signed_manifest.status().message()));
  }
  return *std::move(signed_manifest);
}

// Streams the artifact at `path` to the controller as APP VERSION.
fleet::v1::Release Upload(Session* session, const ReleaseArgs& args, const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) Fail(absl::StrCat("cannot read ", path));
  const int64_t size = in.tellg();
  in.seekg(0);
  absl::StatusOr<std::string> sha = Sha256File(path);
  if (!sha.ok()) Fail(sha.status().message());
  fleet::v1::PushReleaseRequest req;
  auto* header = req.mutable_header();
  header->set_app(args.app);
  header->set_version(args.version);
  header->set_size(size);
  header->set_sha256(*sha);
  header->set_actor(session->actor());
  header->set_signature(Signature(args, *sha, size));
  auto* api = session->Api();
  fleet::v1::Release resp;
  auto ctx = session->Context(absl::Hours(1));
  auto writer = api->PushRelease(ctx.get(), &resp);
  bool ok = writer->Write(req);
  std::string buf(1 << 20, '\0');
  while (ok && in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() <= 0) break;
    fleet::v1::PushReleaseRequest chunk;
    chunk.set_data(buf.data(), static_cast<size_t>(in.gcount()));
    ok = writer->Write(chunk);
  }
  writer->WritesDone();
  grpc::Status st = writer->Finish();
  if (!st.ok()) FailRpc(st);
  return resp;
}

void Push(Session* session, const ReleaseArgs& args) {
  struct stat st;
  if (stat(args.file.c_str(), &st) != 0) Fail(absl::StrCat("cannot read ", args.file));
  PackedDirectory packed;
  std::string path = args.file;
  uint64_t entries = 0;
  if (S_ISDIR(st.st_mode)) {
    path = packed.Pack(args.file, absl::StrCat(args.app, "-", args.version), &entries);
  } else if (absl::Status check = CheckReleaseArchive(args.file, args.file); !check.ok()) {
    // Before the upload: the controller would refuse it after.
    Fail(check.message());
  }
  fleet::v1::Release resp = Upload(session, args, path);
  ExitWithJsonIfAsked(session, resp);
  if (S_ISDIR(st.st_mode)) std::cout << "packed " << args.file << " (" << entries << " entries)\n";
  std::cout << "pushed " << resp.app() << "@" << resp.version() << " sha256 " << resp.sha256()
            << " (" << resp.size() << " bytes)"
            << (resp.signature().empty() ? ", unsigned" : ", signed") << "\n";
  Exit(0);
}

void List(Session* session, const ReleaseArgs& args) {
  fleet::v1::ListReleasesRequest req;
  req.set_app(args.app);
  fleet::v1::ListReleasesResponse resp;
  auto* api = session->Api();
  grpc::Status st = api->ListReleases(session->Context().get(), req, &resp);
  if (!st.ok()) FailRpc(st);
  ExitWithJsonIfAsked(session, resp);
  std::vector<std::vector<std::string>> rows = {
      {"VERSION", "SHA256", "SIZE", "SIGNED", "PUSHED", "BY"}};
  for (const auto& r : resp.releases()) {
    rows.push_back({r.version(), r.sha256().substr(0, 12), std::to_string(r.size()),
                    r.signature().empty() ? "no" : "yes", FormatMs(r.created_at_ms()),
                    r.created_by()});
  }
  PrintTable(rows);
  Exit(0);
}

// A key pair is made where it is kept, without a controller, which never
// sees the secret half.
void Keygen(Session* session, const ReleaseArgs& args) {
  absl::StatusOr<SigningKeyPair> keys = GenerateSigningKeyPair();
  absl::Status st = keys.ok() ? WriteKeyFiles(*keys, args.key_out) : keys.status();
  if (!st.ok()) Fail(absl::StrCat("keygen: ", st.message()));
  const std::string public_key = FormatPublicKey(keys->public_key);
  if (session->json()) {
    nlohmann::json out = {{"public_key", public_key},
                          {"secret_key_file", args.key_out + ".key"},
                          {"public_key_file", args.key_out + ".pub"}};
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << "wrote " << args.key_out << ".key (secret, mode 0600; for release push --sign) and "
              << args.key_out << ".pub; list this public key in the app spec's trusted_keys:\n"
              << public_key << "\n";
  }
  Exit(0);
}

}  // namespace

void AddReleaseCommands(CLI::App* app, Session* session) {
  auto args = std::make_shared<ReleaseArgs>();
  CLI::App* cmd = app->add_subcommand("release", "manage releases")->require_subcommand(1);
  CLI::App* push = cmd->add_subcommand(
      "push", "upload an archive, or a directory packed reproducibly, as APP VERSION");
  push->add_option("app", args->app)->required();
  push->add_option("version", args->version)->required();
  push->add_option("file", args->file,
                   "archive (tar, tar.gz, tar.zst, zip, ...) or directory to pack as tar.gz")
      ->required();
  push->add_option("--sign", args->sign,
                   "secret key file from fleetctl keygen: sign the release's manifest");
  push->callback([session, args] { Push(session, *args); });
  CLI::App* list = cmd->add_subcommand("list", "list an app's releases");
  list->add_option("app", args->app)->required();
  list->callback([session, args] { List(session, *args); });

  CLI::App* keygen = app->add_subcommand(
      "keygen", "make an Ed25519 key pair that signs releases (works without a controller)");
  keygen->add_option("--out", args->key_out, "write PREFIX.key (secret, mode 0600) and PREFIX.pub")
      ->required();
  keygen->callback([session, args] { Keygen(session, *args); });
}

}  // namespace fleet::cli
