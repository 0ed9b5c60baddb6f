#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "common/config_bundle.h"
#include "common/fs.h"

namespace fleet::cli {
namespace {

struct ConfigArgs {
  std::string app;
  std::string version;
  std::string dir;
};

// The regular files under `dir`, sorted. Symlinks and special files are
// refused rather than followed or skipped, so what is pushed is what the
// directory shows; so are editor backups (of a secret, its plaintext).
std::vector<std::filesystem::path> ConfigFiles(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) Fail(absl::StrCat(dir, " is not a directory"));
  std::vector<fs::path> files;
  fs::recursive_directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    fs::file_status st = it->symlink_status(ec);
    if (ec) break;
    const std::string name = it->path().filename().string();
    if (fs::is_directory(st)) {
      // Version control metadata is never config.
      if (IsVcsDirName(name)) it.disable_recursion_pending();
      continue;
    }
    std::string rel = fs::relative(it->path(), dir, ec).generic_string();
    if (IsEditorBackupName(name)) {
      Fail(absl::StrCat(rel, " in ", dir,
                        " looks like an editor backup; remove it or push a clean directory"));
    }
    if (fs::is_symlink(st) || !fs::is_regular_file(st)) {
      Fail(absl::StrCat(rel, " in ", dir, " is ",
                        fs::is_symlink(st) ? "a symlink" : "not a regular file",
                        "; config pushes carry regular files only"));
    }
    files.push_back(it->path());
  }
  if (ec) Fail(absl::StrCat("cannot read ", dir, ": ", ec.message()));
  std::sort(files.begin(), files.end());
  return files;
}

// The files of `dir` for a config push, with their relative paths and
// permission bits.
void ReadConfigDir(const std::string& dir, fleet::v1::PushConfigRequest* req) {
  namespace fs = std::filesystem;
  int64_t total = 0;
  for (const fs::path& path : ConfigFiles(dir)) {
    fleet::v1::ConfigFile* file = req->add_files();
    std::error_code ec;
    file->set_path(fs::relative(path, dir, ec).generic_string());
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      Fail(absl::StrCat("cannot read ", path.string(), ": it changed"));
    }
    file->set_mode(st.st_mode & 0777);
    total += st.st_size;
    // The controller refuses this too, but a request past gRPC's message
    // limit would not get that far.
    if (total > ConfigLimits().max_total_bytes) {
      Fail(absl::StrCat(dir, " has more than ", ConfigLimits().max_total_bytes,
                        " bytes; keep big data out of config"));
    }
    absl::StatusOr<std::string> content = ReadFile(path.string());
    if (!content.ok()) Fail(content.status().message());
    file->set_content(*std::move(content));
  }
}

void Push(Session* session, const ConfigArgs& args) {
  fleet::v1::PushConfigRequest req;
  req.set_app(args.app);
  req.set_version(args.version);
  req.set_actor(session->actor());
  ReadConfigDir(args.dir, &req);
  fleet::v1::PushConfigResponse resp;
  auto* api = session->Api();
  grpc::Status st = api->PushConfig(session->Context().get(), req, &resp);
  if (!st.ok()) FailRpc(st);
  ExitWithJsonIfAsked(session, resp);
  const auto& c = resp.config();
  int secrets = 0;
  for (const auto& f : c.files()) secrets += f.secret() ? 1 : 0;
  std::cout << (resp.created() ? "pushed config " : "config already pushed with these files: ")
            << c.app() << "@" << c.version() << ": " << c.files_size() << " files (" << secrets
            << " secret), sha256 " << c.sha256() << " (" << c.size() << " bytes)\n";
  Exit(0);
}

void List(Session* session, const ConfigArgs& args) {
  fleet::v1::ListConfigsRequest req;
  req.set_app(args.app);
  fleet::v1::ListConfigsResponse resp;
  auto* api = session->Api();
  grpc::Status st = api->ListConfigs(session->Context().get(), req, &resp);
  if (!st.ok()) FailRpc(st);
  ExitWithJsonIfAsked(session, resp);
  std::vector<std::vector<std::string>> rows = {{"VERSION", "FILES", "SHA256", "PUSHED", "BY"}};
  for (const auto& c : resp.configs()) {
    std::vector<std::string> names;
    for (const auto& f : c.files()) names.push_back(f.path());
    rows.push_back({c.version(), absl::StrJoin(names, ","), c.sha256().substr(0, 12),
                    FormatMs(c.created_at_ms()), c.created_by()});
  }
  PrintTable(rows);
  Exit(0);
}

}  // namespace

void AddConfigCommands(CLI::App* app, Session* session) {
  auto args = std::make_shared<ConfigArgs>();
  CLI::App* cmd = app->add_subcommand("config", "manage config releases")->require_subcommand(1);
  CLI::App* push = cmd->add_subcommand(
      "push", "validate and store the files of DIR as config APP VERSION (*.age: secrets)");
  push->add_option("app", args->app)->required();
  push->add_option("version", args->version)->required();
  push->add_option("dir", args->dir, "directory with the config files")->required();
  push->callback([session, args] { Push(session, *args); });
  CLI::App* list = cmd->add_subcommand("list", "list an app's config releases");
  list->add_option("app", args->app)->required();
  list->callback([session, args] { List(session, *args); });
}

}  // namespace fleet::cli
