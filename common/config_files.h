// Syntax and required-key checks for an application's config files (JSON,
// YAML, TOML, INI, .env, .properties), so a broken or incomplete config is
// refused before a release goes live rather than when the service restarts.
//
// Every function here is pure (no I/O, no shared state) and may be called
// from any thread. Error messages name the file and line but never quote the
// file's content, because config files can be decrypted secrets.
#ifndef FLEET_COMMON_CONFIG_FILES_H_
#define FLEET_COMMON_CONFIG_FILES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleet {

enum class ConfigFormat { kUnknown, kJson, kYaml, kToml, kIni, kEnv, kProperties };

// The format of a config file from the last component of `path`, by a
// case-insensitive extension: .json, .yaml/.yml, .toml, .ini, .env (also a
// file named exactly ".env"), .properties. Anything else is kUnknown, which
// callers store as is without checking.
ConfigFormat ConfigFormatOf(absl::string_view path);

// "JSON", "YAML", "TOML", "INI", ".env", ".properties" or "unknown".
const char* ConfigFormatName(ConfigFormat format);

// Checks the syntax of `content`, the whole file at `path` (whose name gives
// the format). Returns OK for a well-formed file, for an empty file (in JSON,
// one of only whitespace) and for kUnknown. On a syntax error returns
// InvalidArgument "PATH:LINE: invalid FORMAT: PROBLEM", LINE 1-based, e.g.
// "conf/app.yaml:3: invalid YAML: end of map not found"; ":LINE" is left out
// only when the parser cannot say where (rare yaml-cpp errors).
//
// What each format accepts:
//  - JSON: one strict document (no comments, no trailing commas).
//  - YAML: any number of documents, as yaml-cpp loads them (it accepts some
//    malformed input, e.g. an unterminated quote at the end of the file).
//  - TOML: TOML 1.0 as toml++ parses it.
//  - INI: blank lines, comments starting with ';' or '#', "[section]"
//    headers, "key = value" or "key: value". Values are not interpreted.
//  - .env: blank lines, '#' comments, "KEY=VALUE" with an optional leading
//    "export ", KEY matching [A-Za-z_][A-Za-z0-9_.]*. VALUE is unquoted,
//    'single-quoted' (one line) or "double-quoted" (may span lines, backslash
//    escapes); an unterminated quote is reported at the line it opens on.
//  - .properties: java.util.Properties.load syntax; the only error is a
//    \uXXXX escape without 4 hex digits.
absl::Status CheckConfigSyntax(absl::string_view path, absl::string_view content);

// Returns the keys of `required` that `content` (the file at `path`) does not
// define, in the order given; an empty vector means all are present. A key
// is addressed as follows:
//  - JSON, YAML (its first document), TOML: a dotted path through nested
//    objects; every split at a dot is tried, so "db.url" matches
//    {"db": {"url": ...}} and also {"db.url": ...} at any level. A key whose
//    value is null counts as missing; objects, arrays and empty strings count
//    as present.
//  - INI: "section.key", or "key" for keys before the first section.
//  - .env: the variable name.
//  - .properties: the key after unescaping ("a\ b" is "a b").
// Key names are case-sensitive. Returns the error of CheckConfigSyntax when
// the file does not parse, and FailedPrecondition "PATH: cannot check
// required keys in a file of unknown format" for kUnknown.
absl::StatusOr<std::vector<std::string>> MissingConfigKeys(
    absl::string_view path, absl::string_view content, const std::vector<std::string>& required);

}  // namespace fleet

#endif  // FLEET_COMMON_CONFIG_FILES_H_
