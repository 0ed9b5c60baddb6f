// Config releases as pushed and shipped: the checks a push must pass before
// anything is stored, and the bundle's byte form, whose sha256 names it.
#ifndef FLEET_COMMON_CONFIG_BUNDLE_H_
#define FLEET_COMMON_CONFIG_BUNDLE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fleet/v1/types.pb.h"

namespace fleet {

struct ConfigLimits {
  int max_files = 256;
  int64_t max_file_bytes = 1 << 20;
  int64_t max_total_bytes = 4 << 20;
};

// The permission bits a config file keeps: never setuid/setgid/sticky, and
// never writable by group or others, whatever the pushing machine had.
inline constexpr uint32_t kConfigModeMask = 0755;

// Suffix of a secret: an age-encrypted file that only hosts decrypt.
inline constexpr absl::string_view kSecretSuffix = ".age";

bool IsSecretPath(absl::string_view path);
// The name a secret is decrypted to: "db/secrets.env.age" -> "db/secrets.env".
// Other paths are returned as they are.
std::string DecryptedPath(absl::string_view path);

// Whether `path` may name a file inside a config release: relative,
// '/'-separated, no empty, "." or ".." component, no control characters,
// at most 255 bytes. InvalidArgument naming the path otherwise.
absl::Status CheckConfigPath(absl::string_view path);

// Version-control metadata dirs (".git", ".hg", ".svn"): never config.
bool IsVcsDirName(absl::string_view name);
// Editor backups and swap files ("*~", "*.swp", "*.swo", "*.bak"): a backup
// of a secret is its plaintext.
bool IsEditorBackupName(absl::string_view name);

// Whether `content` starts like an age file (binary or armored).
bool LooksAgeEncrypted(absl::string_view content);

// `files` sorted by path with modes masked by kConfigModeMask: the bundle
// that CheckConfigPush returns for a valid push, unchecked.
fleet::v1::ConfigBundle SortedConfigBundle(
    const google::protobuf::RepeatedPtrField<fleet::v1::ConfigFile>& files);

// Checks a push of `files` as config release `version` of the app with
// `spec`, and returns SortedConfigBundle(files). Refused with
// InvalidArgument (one line naming the file, and the line for syntax
// errors):
//  - an unsafe version or path, a path inside a version-control dir or
//    naming an editor backup (IsVcsDirName, IsEditorBackupName), the same
//    path twice, two files with the
//    same name on the hosts (a secret's name loses ".age"), a name that is
//    also a directory of another, a `.age` file that is not age-encrypted;
//  - more files or bytes than `limits` allow;
//  - a file of a known format (common/config_files.h) whose syntax is bad;
//  - spec.config.file missing from the push, or lacking a required key.
// A secret's content is never parsed here (it is ciphertext): when
// spec.config.file is pushed encrypted, its keys are checked on the hosts
// after decryption.
absl::StatusOr<fleet::v1::ConfigBundle> CheckConfigPush(
    const std::string& version,
    const google::protobuf::RepeatedPtrField<fleet::v1::ConfigFile>& files,
    const fleet::v1::AppSpec& spec, const ConfigLimits& limits);

// Checks the required keys of spec.config.file in `content`, the plaintext
// of the file at `path` (its name, decrypted). InvalidArgument
// "PATH lacks required keys: a.b, c" or the syntax error.
absl::Status CheckRequiredKeys(absl::string_view path, absl::string_view content,
                               const fleet::v1::AppSpec& spec);

// The bytes shipped to hosts: deterministic, so the same files always give
// the same sha256.
std::string SerializeConfigBundle(const fleet::v1::ConfigBundle& bundle);

}  // namespace fleet

#endif  // FLEET_COMMON_CONFIG_BUNDLE_H_
