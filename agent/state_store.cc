#include "agent/state_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "common/status.h"
#include "google/protobuf/util/json_util.h"
#include "common/logging.h"

namespace fleet::agent {
namespace {

using google::protobuf::util::JsonParseOptions;
using google::protobuf::util::JsonStringToMessage;
using google::protobuf::util::MessageToJsonString;

template <typename Message>
absl::Status SaveJson(const std::string& path, const Message& msg) {
  std::string json;
  auto st = MessageToJsonString(msg, &json);
  if (!st.ok()) return absl::InternalError(absl::StrCat("cannot encode ", path));
  return WriteFileAtomic(path, json, 0600);
}

template <typename Message>
std::optional<Message> LoadJson(const std::string& path) {
  auto content = ReadFile(path);
  if (!content.ok()) return std::nullopt;
  Message msg;
  JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!JsonStringToMessage(*content, &msg, options).ok()) {
    spdlog::warn("ignoring unreadable state file {}", path);
    return std::nullopt;
  }
  return msg;
}

}  // namespace

absl::Status StateStore::Init() {
  for (const char* sub : {"apps", "journal", "results", "downloads"}) {
    absl::Status st = MakeDirs(absl::StrCat(dir_, "/", sub));
    if (!st.ok()) return st;
  }
  // Journals hold app specs; nobody but the agent's user reads them.
  FLEET_ASSIGN_OR_RETURN(int tightened, MakePrivateTree(dir_));
  if (tightened > 0) {
    spdlog::warn("state dir {}: took group and other access off {} entries", dir_, tightened);
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/downloads", ec)) {
    if (absl::EndsWith(entry.path().filename().string(), ".part")) {
      spdlog::info("removing interrupted download {}", entry.path().string());
      std::filesystem::remove(entry.path(), ec);
    }
  }
  return absl::OkStatus();
}

std::string StateStore::DownloadPath(const std::string& app, const std::string& sha256) const {
  return absl::StrCat(dir_, "/downloads/", app, "-", sha256, ".part");
}

absl::Status StateStore::SaveIdentity(const fleet::v1::AgentIdentity& identity) {
  return SaveJson(dir_ + "/agent.json", identity);
}

std::optional<fleet::v1::AgentIdentity> StateStore::LoadIdentity() const {
  return LoadJson<fleet::v1::AgentIdentity>(dir_ + "/agent.json");
}

fleet::v1::AgentAppRecord StateStore::LoadApp(const std::string& app) const {
  auto record = LoadJson<fleet::v1::AgentAppRecord>(absl::StrCat(dir_, "/apps/", app, ".json"));
  if (record) return *record;
  fleet::v1::AgentAppRecord empty;
  empty.set_app(app);
  return empty;
}

absl::Status StateStore::SaveApp(const fleet::v1::AgentAppRecord& record) {
  return SaveJson(absl::StrCat(dir_, "/apps/", record.app(), ".json"), record);
}

std::optional<fleet::v1::JournalEntry> StateStore::LoadJournal(const std::string& app) const {
  return LoadJson<fleet::v1::JournalEntry>(absl::StrCat(dir_, "/journal/", app, ".json"));
}

absl::Status StateStore::WriteJournal(const fleet::v1::JournalEntry& entry) {
  return SaveJson(absl::StrCat(dir_, "/journal/", entry.app(), ".json"), entry);
}

absl::Status StateStore::ClearJournal(const std::string& app) {
  std::string path = absl::StrCat(dir_, "/journal/", app, ".json");
  std::error_code ec;
  std::filesystem::remove(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot remove ", path, ": ", ec.message()));
  return FsyncDir(dir_ + "/journal");
}

std::vector<std::string> StateStore::JournalApps() const {
  std::vector<std::string> apps;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/journal", ec)) {
    std::string name = entry.path().filename().string();
    if (absl::EndsWith(name, ".json")) apps.push_back(name.substr(0, name.size() - 5));
  }
  return apps;
}

std::string StateStore::ResultPath(const std::string& command_id) const {
  // Command ids contain '/'; hex keeps the file name safe and unique.
  return absl::StrCat(dir_, "/results/", absl::BytesToHexString(command_id), ".json");
}

std::optional<fleet::v1::CommandResult> StateStore::LoadResult(
    const std::string& command_id) const {
  return LoadJson<fleet::v1::CommandResult>(ResultPath(command_id));
}

absl::Status StateStore::SaveResult(const fleet::v1::CommandResult& result) {
  absl::Status st = SaveJson(ResultPath(result.command_id()), result);
  if (!st.ok()) return st;
  absl::MutexLock lock(&prune_mu_);
  std::vector<std::pair<std::filesystem::file_time_type, std::filesystem::path>> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/results", ec)) {
    files.emplace_back(entry.last_write_time(ec), entry.path());
  }
  if (files.size() <= kMaxResults) return absl::OkStatus();
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i + kMaxResults < files.size(); ++i) {
    std::filesystem::remove(files[i].second, ec);
  }
  return absl::OkStatus();
}

}  // namespace fleet::agent
