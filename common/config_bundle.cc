#include "common/config_bundle.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/config_files.h"
#include "common/fs.h"
#include "common/status.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace fleet {

bool IsSecretPath(absl::string_view path) {
  return path.size() > kSecretSuffix.size() && absl::EndsWith(path, kSecretSuffix) &&
         path[path.size() - kSecretSuffix.size() - 1] != '/';
}

std::string DecryptedPath(absl::string_view path) {
  if (!IsSecretPath(path)) return std::string(path);
  return std::string(path.substr(0, path.size() - kSecretSuffix.size()));
}

absl::Status CheckConfigPath(absl::string_view path) {
  auto refuse = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("config path '", path, "' ", why));
  };
  if (path.empty()) return refuse("is empty");
  if (path.size() > 255) return refuse("is longer than 255 bytes");
  if (path.front() == '/') return refuse("is absolute; paths are relative to the config dir");
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return refuse("contains a control character");
    }
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty()) return refuse("has an empty component");
    if (part == "." || part == "..") return refuse("has a '.' or '..' component");
  }
  return absl::OkStatus();
}

bool IsVcsDirName(absl::string_view name) {
  return name == ".git" || name == ".hg" || name == ".svn";
}

bool IsEditorBackupName(absl::string_view name) {
  return absl::EndsWith(name, "~") || absl::EndsWith(name, ".swp") ||
         absl::EndsWith(name, ".swo") || absl::EndsWith(name, ".bak");
}

namespace {

// Refuses what no directory's config is: version-control metadata and
// editor backups, whichever client sent them (fleetctl leaves them out).
absl::Status CheckPushablePath(absl::string_view path) {
  std::vector<absl::string_view> parts = absl::StrSplit(path, '/');
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (IsVcsDirName(parts[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config path '", path, "' is inside version-control metadata (", parts[i],
          "/); push the files of the working tree only"));
    }
  }
  if (IsEditorBackupName(parts.back())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config path '", path, "' looks like an editor backup; remove it from the push"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckRequiredKeys(absl::string_view path, absl::string_view content,
                               const fleet::v1::AppSpec& spec) {
  const auto& required = spec.config().required();
  if (required.empty()) return absl::OkStatus();
  std::vector<std::string> keys(required.begin(), required.end());
  absl::StatusOr<std::vector<std::string>> missing = MissingConfigKeys(path, content, keys);
  if (!missing.ok()) return missing.status();
  if (!missing->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " lacks required keys: ", absl::StrJoin(*missing, ", ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<fleet::v1::ConfigBundle> CheckConfigPush(
    const std::string& version,
    const google::protobuf::RepeatedPtrField<fleet::v1::ConfigFile>& files,
    const fleet::v1::AppSpec& spec, const ConfigLimits& limits) {
  if (!IsSafeName(version)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid config version '", version,
                     "': use letters, digits, '.', '_' or '-', not starting with '.'"));
  }
  if (files.empty()) return absl::InvalidArgumentError("a config release needs at least one file");
  if (files.size() > limits.max_files) {
    return absl::InvalidArgumentError(absl::StrCat("config has ", files.size(), " files; at most ",
                                                   limits.max_files, " are allowed"));
  }
  std::map<std::string, const fleet::v1::ConfigFile*> by_path;
  int64_t total = 0;
  for (const fleet::v1::ConfigFile& file : files) {
    FLEET_RETURN_IF_ERROR(CheckConfigPath(file.path()));
    FLEET_RETURN_IF_ERROR(CheckPushablePath(file.path()));
    if (!by_path.emplace(file.path(), &file).second) {
      return absl::InvalidArgumentError(absl::StrCat(file.path(), " is in the push twice"));
    }
    const int64_t size = static_cast<int64_t>(file.content().size());
    if (size > limits.max_file_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(file.path(), " has ", size, " bytes; at most ",
                                                     limits.max_file_bytes,
                                                     " per file are allowed"));
    }
    total += size;
    if (total > limits.max_total_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("config has more than ",
                                                     limits.max_total_bytes,
                                                     " bytes in all; keep big data out of config"));
    }
  }
  // What each file is called on the hosts: secrets lose ".age". Two files
  // with one name, or a name that is also a directory, cannot be staged.
  std::map<std::string, std::string> final_names;  // host name -> pushed path
  for (const auto& [path, file] : by_path) {
    auto [it, fresh] = final_names.emplace(DecryptedPath(path), path);
    if (!fresh) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " decrypts to ", it->first, ", which is in the push as well"));
    }
    if (IsSecretPath(path) && !LooksAgeEncrypted(file->content())) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, " is not age-encrypted (no age header); encrypt it with age -r RECIPIENT, "
                "or drop the .age suffix if it is not a secret"));
    }
  }
  for (const auto& [name, path] : final_names) {
    for (size_t slash = name.find('/'); slash != std::string::npos;
         slash = name.find('/', slash + 1)) {
      auto dir = final_names.find(name.substr(0, slash));
      if (dir != final_names.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(dir->second, " is a file and also the directory of ", path));
      }
    }
  }
  for (const auto& [path, file] : by_path) {
    if (IsSecretPath(path)) continue;
    absl::Status st = CheckConfigSyntax(path, file->content());
    if (!st.ok()) return st;
  }
  const std::string& keyed = spec.config().file();
  if (!keyed.empty()) {
    auto plain = by_path.find(keyed);
    if (plain != by_path.end()) {
      absl::Status st = CheckRequiredKeys(keyed, plain->second->content(), spec);
      if (!st.ok()) return st;
    } else if (by_path.count(absl::StrCat(keyed, kSecretSuffix)) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("the app spec names config file ", keyed,
                                                     " (config.file), which is not in the push"));
    }
  }
  return SortedConfigBundle(files);
}

fleet::v1::ConfigBundle SortedConfigBundle(
    const google::protobuf::RepeatedPtrField<fleet::v1::ConfigFile>& files) {
  std::vector<const fleet::v1::ConfigFile*> sorted;
  for (const fleet::v1::ConfigFile& file : files) sorted.push_back(&file);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto* a, const auto* b) { return a->path() < b->path(); });
  fleet::v1::ConfigBundle bundle;
  for (const fleet::v1::ConfigFile* file : sorted) {
    fleet::v1::ConfigFile* out = bundle.add_files();
    *out = *file;
    out->set_mode(file->mode() & kConfigModeMask);
  }
  return bundle;
}

bool LooksAgeEncrypted(absl::string_view content) {
  return absl::StartsWith(content, "age-encryption.org/v1\n") ||
         absl::StartsWith(content, "-----BEGIN AGE ENCRYPTED FILE-----");
}

std::string SerializeConfigBundle(const fleet::v1::ConfigBundle& bundle) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    bundle.SerializeToCodedStream(&coded);
  }
  return bytes;
}

}  // namespace fleet
