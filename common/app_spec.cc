#include "common/app_spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/config_bundle.h"
#include "common/config_files.h"
#include "common/fs.h"
#include "common/text.h"
#include "common/signing.h"
#include "common/yaml_load.h"

namespace fleet {
namespace {

using fleet::v1::AppSpec;
using fleet::v1::HealthCheck;

// A portable user name (POSIX, as useradd accepts them): no leading '-',
// which `su`/`chown` would read as an option.
bool IsUserName(const std::string& name) {
  if (name.empty() || name.size() > 32 || name[0] == '-') return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

class SpecParser {
 public:
  explicit SpecParser(std::string source) : source_(std::move(source)) {}

  absl::Status Error(const YAML::Node& node, const std::string& field,
                     const std::string& problem) const {
    std::string where = source_;
    if (node.IsDefined() && node.Mark().line >= 0) {
      absl::StrAppend(&where, ":", node.Mark().line + 1);
    }
    return absl::InvalidArgumentError(
        EscapeControlCharacters(absl::StrCat(where, ": ", field, ": ", problem)));
  }

  absl::Status CheckKeys(const YAML::Node& map, const std::string& field,
                         const std::set<std::string>& allowed) const {
    if (!map.IsMap()) return Error(map, field, "must be a mapping");
    // yaml-cpp keeps duplicate keys and lookups see only one of them, so a
    // second `health:` would silently drop checks, like a typo would.
    std::set<std::string> seen;
    for (const auto& kv : map) {
      std::string key = kv.first.as<std::string>();
      std::string name = field.empty() ? key : absl::StrCat(field, ".", key);
      if (allowed.count(key) == 0) {
        return Error(kv.first, name,
                     absl::StrCat("unknown field (known: ", absl::StrJoin(allowed, ", "), ")"));
      }
      if (!seen.insert(key).second) return Error(kv.first, name, "given twice");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> String(const YAML::Node& node, const std::string& field) const {
    if (!node.IsScalar()) return Error(node, field, "must be a string");
    std::string value = node.as<std::string>();
    // A NUL would cut the string where the agent hands it to the OS.
    if (value.find('\0') != std::string::npos) return Error(node, field, "contains a NUL character");
    return value;
  }

  absl::StatusOr<int64_t> Int(const YAML::Node& node, const std::string& field, int64_t min,
                              int64_t max) const {
    int64_t v = 0;
    if (!node.IsScalar() || !absl::SimpleAtoi(node.as<std::string>(), &v)) {
      return Error(node, field, "must be a whole number");
    }
    if (v < min || v > max) {
      return Error(node, field, absl::StrCat(v, " is outside ", min, "..", max));
    }
    return v;
  }

  absl::StatusOr<int64_t> DurationMs(const YAML::Node& node, const std::string& field) const {
    absl::Duration d;
    if (!node.IsScalar() || !absl::ParseDuration(node.as<std::string>(), &d)) {
      return Error(node, field, "must be a duration such as 500ms, 10s or 2m");
    }
    if (d < absl::ZeroDuration()) return Error(node, field, "must not be negative");
    return absl::ToInt64Milliseconds(d);
  }

  absl::Status ParseHealth(const YAML::Node& node, const std::string& field,
                           HealthCheck* check) const {
    absl::Status st = CheckKeys(node, field,
                                {"http", "tcp", "exec", "expect_status", "timeout", "retries",
                                 "interval"});
    if (!st.ok()) return st;
    int kinds = 0;
    for (const char* kind : {"http", "tcp", "exec"}) {
      if (!node[kind]) continue;
      ++kinds;
      auto value = String(node[kind], absl::StrCat(field, ".", kind));
      if (!value.ok()) return value.status();
      if (value->empty()) return Error(node[kind], absl::StrCat(field, ".", kind), "is empty");
      if (std::string(kind) == "http") check->set_http(*value);
      if (std::string(kind) == "tcp") check->set_tcp(*value);
      if (std::string(kind) == "exec") check->set_exec(*value);
    }
    if (kinds != 1) return Error(node, field, "needs exactly one of http, tcp or exec");
    check->set_expect_status(200);
    check->set_timeout_ms(kMaxProbeTimeoutMs);
    check->set_retries(2);
    check->set_interval_ms(1000);
    if (node["expect_status"]) {
      if (check->http().empty()) {
        return Error(node["expect_status"], field + ".expect_status", "only applies to http checks");
      }
      auto v = Int(node["expect_status"], field + ".expect_status", 100, 599);
      if (!v.ok()) return v.status();
      check->set_expect_status(static_cast<int32_t>(*v));
    }
    if (node["timeout"]) {
      auto v = DurationMs(node["timeout"], field + ".timeout");
      if (!v.ok()) return v.status();
      if (*v <= 0) return Error(node["timeout"], field + ".timeout", "must be positive");
      if (*v > kMaxProbeTimeoutMs) {
        return Error(node["timeout"], field + ".timeout",
                     absl::StrCat(node["timeout"].as<std::string>(),
                                  " is more than the 10s maximum"));
      }
      check->set_timeout_ms(*v);
    }
    if (node["retries"]) {
      auto v = Int(node["retries"], field + ".retries", 0, 10);
      if (!v.ok()) return v.status();
      check->set_retries(static_cast<int32_t>(*v));
    }
    if (node["interval"]) {
      auto v = DurationMs(node["interval"], field + ".interval");
      if (!v.ok()) return v.status();
      check->set_interval_ms(*v);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<AppSpec> Parse(const std::string& yaml) const {
    // yaml-cpp may end a document at a raw NUL and parse what came before.
    if (size_t nul = yaml.find('\0'); nul != std::string::npos) {
      const auto line = std::count(yaml.begin(), yaml.begin() + nul, '\n') + 1;
      return absl::InvalidArgumentError(absl::StrCat(EscapeControlCharacters(source_), ":", line,
                                                     ": contains a NUL byte"));
    }
    YAML::Node root;
    try {
      YamlDocuments documents = LoadYaml(yaml);
      if (documents.count > 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            EscapeControlCharacters(source_), " holds ", documents.count,
            " YAML documents; an app spec is one document (one file per app)"));
      }
      root = documents.first;
    } catch (const YAML::ParserException& e) {
      return absl::InvalidArgumentError(
          EscapeControlCharacters(
              absl::StrCat(source_, ":", e.mark.line + 1, ": invalid YAML: ", e.msg)));
    }
    if (!root.IsMap()) {
      return absl::InvalidArgumentError(
          EscapeControlCharacters(absl::StrCat(source_, ": an app spec must be a mapping")));
    }
    try {
      return ParseRoot(root);
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          EscapeControlCharacters(absl::StrCat(source_, ":", e.mark.line + 1, ": ", e.msg)));
    }
  }

  absl::StatusOr<AppSpec> ParseRoot(const YAML::Node& root) const {
    AppSpec spec;
    absl::Status st = CheckKeys(root, "",
                                {"name", "keep_releases", "shared_dirs", "reload", "reload_timeout",
                                 "health", "bake", "hooks", "rollout", "config",
                                 "prometheus_url", "analysis", "rollback_on_alert", "notify",
                                 "trusted_keys", "user"});
    if (!st.ok()) return st;
    if (!root["name"]) return Error(root, "name", "is required");
    auto name = String(root["name"], "name");
    if (!name.ok()) return name.status();
    if (!IsSafeName(*name)) {
      return Error(root["name"], "name",
                   absl::StrCat("'", *name, "' must be letters, digits, '.', '_' or '-'"));
    }
    spec.set_name(*name);

    spec.set_keep_releases(kDefaultKeepReleases);
    if (root["keep_releases"]) {
      auto v = Int(root["keep_releases"], "keep_releases", kMinKeepReleases, 1000);
      if (!v.ok()) return v.status();
      spec.set_keep_releases(static_cast<int32_t>(*v));
    }
    if (const auto& dirs = root["shared_dirs"]; dirs) {
      if (!dirs.IsSequence()) return Error(dirs, "shared_dirs", "must be a list");
      for (size_t i = 0; i < dirs.size(); ++i) {
        std::string field = absl::StrCat("shared_dirs[", i, "]");
        auto dir = String(dirs[i], field);
        if (!dir.ok()) return dir.status();
        if (!IsSafeName(*dir)) {
          return Error(dirs[i], field, absl::StrCat("'", *dir, "' must be one plain directory name"));
        }
        if (*dir == "config") {
          return Error(dirs[i], field,
                       "'config' is where Fleet links the app's config release; use another name");
        }
        spec.add_shared_dirs(*dir);
      }
    }
    if (root["reload"]) {
      auto v = String(root["reload"], "reload");
      if (!v.ok()) return v.status();
      spec.set_reload(*v);
    }
    if (root["user"]) {
      auto v = String(root["user"], "user");
      if (!v.ok()) return v.status();
      if (!IsUserName(*v)) {
        return Error(root["user"], "user",
                     absl::StrCat("'", *v, "' is not a user name (letters, digits, '_', '-', '.'; at most 32)"));
      }
      spec.set_user(*v);
    }
    spec.set_reload_timeout_ms(60000);
    if (root["reload_timeout"]) {
      auto v = DurationMs(root["reload_timeout"], "reload_timeout");
      if (!v.ok()) return v.status();
      spec.set_reload_timeout_ms(*v);
    }
    if (const auto& health = root["health"]; health) {
      if (!health.IsSequence()) return Error(health, "health", "must be a list of checks");
      for (size_t i = 0; i < health.size(); ++i) {
        st = ParseHealth(health[i], absl::StrCat("health[", i, "]"), spec.add_health());
        if (!st.ok()) return st;
      }
    }
    if (root["bake"]) {
      auto v = DurationMs(root["bake"], "bake");
      if (!v.ok()) return v.status();
      spec.set_bake_ms(*v);
    }
    auto* hooks = spec.mutable_hooks();
    hooks->set_timeout_ms(60000);
    if (const auto& node = root["hooks"]; node) {
      st = CheckKeys(node, "hooks",
                     {"after_unpack", "before_switch", "after_switch", "after_rollback", "timeout"});
      if (!st.ok()) return st;
      struct Hook {
        const char* key;
        std::string* out;
      } all[] = {{"after_unpack", hooks->mutable_after_unpack()},
                 {"before_switch", hooks->mutable_before_switch()},
                 {"after_switch", hooks->mutable_after_switch()},
                 {"after_rollback", hooks->mutable_after_rollback()}};
      for (const Hook& hook : all) {
        if (!node[hook.key]) continue;
        auto v = String(node[hook.key], absl::StrCat("hooks.", hook.key));
        if (!v.ok()) return v.status();
        *hook.out = *v;
      }
      if (node["timeout"]) {
        auto v = DurationMs(node["timeout"], "hooks.timeout");
        if (!v.ok()) return v.status();
        hooks->set_timeout_ms(*v);
      }
    }
    if (const auto& node = root["rollout"]; node) {
      st = CheckKeys(node, "rollout", {"waves", "max_failures"});
      if (!st.ok()) return st;
      if (const auto& waves = node["waves"]; waves) {
        st = StringList(waves, "rollout.waves", spec.mutable_rollout()->mutable_waves());
        if (!st.ok()) return st;
      }
      if (node["max_failures"]) {
        auto v = String(node["max_failures"], "rollout.max_failures");
        if (!v.ok()) return v.status();
        spec.mutable_rollout()->set_max_failures(*v);
      }
    }
    if (const auto& node = root["config"]; node) {
      st = CheckKeys(node, "config", {"file", "required"});
      if (!st.ok()) return st;
      auto* config = spec.mutable_config();
      if (node["file"]) {
        auto v = String(node["file"], "config.file");
        if (!v.ok()) return v.status();
        if (absl::Status path = CheckConfigPath(*v); !path.ok()) {
          return Error(node["file"], "config.file", std::string(path.message()));
        }
        config->set_file(*v);
      }
      if (const auto& required = node["required"]; required) {
        if (config->file().empty()) {
          return Error(required, "config.required", "needs config.file: the file that has them");
        }
        if (ConfigFormatOf(config->file()) == ConfigFormat::kUnknown) {
          return Error(node["file"], "config.file",
                       absl::StrCat("Fleet cannot read keys from '", config->file(),
                                    "' (use .json, .yaml, .toml, .ini, .env or .properties)"));
        }
        st = StringList(required, "config.required", config->mutable_required());
        if (!st.ok()) return st;
        for (int i = 0; i < config->required_size(); ++i) {
          if (config->required(i).empty()) {
            return Error(required[i], absl::StrCat("config.required[", i, "]"), "is empty");
          }
        }
      }
    }
    if (root["prometheus_url"]) {
      auto v = String(root["prometheus_url"], "prometheus_url");
      if (!v.ok()) return v.status();
      if (!absl::StartsWith(*v, "http://") && !absl::StartsWith(*v, "https://")) {
        return Error(root["prometheus_url"], "prometheus_url", "must be an http:// or https:// URL");
      }
      spec.set_prometheus_url(*v);
    }
    if (const auto& list = root["analysis"]; list) {
      if (!list.IsSequence()) return Error(list, "analysis", "must be a list of queries");
      for (size_t i = 0; i < list.size(); ++i) {
        st = ParseAnalysis(list[i], absl::StrCat("analysis[", i, "]"), spec.add_analysis());
        if (!st.ok()) return st;
      }
    }
    if (const auto& node = root["rollback_on_alert"]; node) {
      st = CheckKeys(node, "rollback_on_alert", {"within"});
      if (!st.ok()) return st;
      if (!node["within"]) return Error(node, "rollback_on_alert.within", "is required");
      auto v = DurationMs(node["within"], "rollback_on_alert.within");
      if (!v.ok()) return v.status();
      if (*v <= 0) return Error(node["within"], "rollback_on_alert.within", "must be positive");
      spec.set_rollback_on_alert_within_ms(*v);
    }
    if (const auto& list = root["notify"]; list) {
      if (!list.IsSequence()) return Error(list, "notify", "must be a list of sinks");
      for (size_t i = 0; i < list.size(); ++i) {
        st = ParseSink(list[i], absl::StrCat("notify[", i, "]"), spec.add_notify());
        if (!st.ok()) return st;
      }
    }
    if (const auto& keys = root["trusted_keys"]; keys) {
      st = StringList(keys, "trusted_keys", spec.mutable_trusted_keys());
      if (!st.ok()) return st;
      // Checked here so that a typo is refused at `app apply`, not found by
      // every agent refusing every release.
      std::set<std::string> seen;
      for (int i = 0; i < spec.trusted_keys_size(); ++i) {
        const std::string field = absl::StrCat("trusted_keys[", i, "]");
        absl::StatusOr<std::string> key = ParsePublicKey(spec.trusted_keys(i));
        if (!key.ok()) return Error(keys[i], field, std::string(key.status().message()));
        if (!seen.insert(*key).second) return Error(keys[i], field, "lists the same key again");
        // One spelling everywhere: the form fleetctl keygen prints.
        *spec.mutable_trusted_keys(i) = FormatPublicKey(*key);
      }
    }
    return spec;
  }

  absl::Status ParseAnalysis(const YAML::Node& node, const std::string& field,
                             fleet::v1::AnalysisCheck* check) const {
    absl::Status st = CheckKeys(node, field,
                                {"name", "query", "fail_if", "interval", "failure_limit",
                                 "on_inconclusive"});
    if (!st.ok()) return st;
    for (const char* key : {"query", "fail_if"}) {
      if (!node[key]) return Error(node, absl::StrCat(field, ".", key), "is required");
    }
    auto query = String(node["query"], field + ".query");
    if (!query.ok()) return query.status();
    check->set_query(*query);
    check->set_name(*query);
    if (node["name"]) {
      auto v = String(node["name"], field + ".name");
      if (!v.ok()) return v.status();
      check->set_name(*v);
    }
    auto fail_if = String(node["fail_if"], field + ".fail_if");
    if (!fail_if.ok()) return fail_if.status();
    std::string text(absl::StripAsciiWhitespace(*fail_if));
    std::string op;
    for (const char* candidate : {">=", "<=", "==", "!=", ">", "<"}) {
      if (absl::StartsWith(text, candidate)) {
        op = candidate;
        break;
      }
    }
    double threshold = 0;
    if (op.empty() ||
        !absl::SimpleAtod(absl::StripAsciiWhitespace(text.substr(op.size())), &threshold)) {
      return Error(node["fail_if"], field + ".fail_if",
                   absl::StrCat("'", *fail_if,
                                "' must be a comparison with a number, e.g. \"> 0.05\""));
    }
    check->set_fail_if(*fail_if);
    check->set_op(op);
    check->set_threshold(threshold);
    check->set_interval_ms(10000);
    if (node["interval"]) {
      auto v = DurationMs(node["interval"], field + ".interval");
      if (!v.ok()) return v.status();
      if (*v < 100) return Error(node["interval"], field + ".interval", "must be at least 100ms");
      check->set_interval_ms(*v);
    }
    if (node["failure_limit"]) {
      auto v = Int(node["failure_limit"], field + ".failure_limit", 0, 1000);
      if (!v.ok()) return v.status();
      check->set_failure_limit(static_cast<int32_t>(*v));
    }
    if (node["on_inconclusive"]) {
      auto v = String(node["on_inconclusive"], field + ".on_inconclusive");
      if (!v.ok()) return v.status();
      if (*v != "pause" && *v != "fail") {
        return Error(node["on_inconclusive"], field + ".on_inconclusive",
                     absl::StrCat("'", *v, "' must be pause or fail"));
      }
      check->set_fail_on_inconclusive(*v == "fail");
    }
    return absl::OkStatus();
  }

  absl::Status ParseSink(const YAML::Node& node, const std::string& field,
                         fleet::v1::NotifySink* sink) const {
    absl::Status st = CheckKeys(node, field, {"type", "url", "secret"});
    if (!st.ok()) return st;
    for (const char* key : {"type", "url"}) {
      if (!node[key]) return Error(node, absl::StrCat(field, ".", key), "is required");
    }
    auto type = String(node["type"], field + ".type");
    if (!type.ok()) return type.status();
    if (*type != "dingtalk" && *type != "wecom" && *type != "slack" && *type != "webhook") {
      return Error(node["type"], field + ".type",
                   absl::StrCat("'", *type, "' must be dingtalk, wecom, slack or webhook"));
    }
    auto url = String(node["url"], field + ".url");
    if (!url.ok()) return url.status();
    if (!absl::StartsWith(*url, "http://") && !absl::StartsWith(*url, "https://")) {
      return Error(node["url"], field + ".url", "must be an http:// or https:// URL");
    }
    sink->set_type(*type);
    sink->set_url(*url);
    if (node["secret"]) {
      if (*type != "dingtalk") {
        return Error(node["secret"], field + ".secret", "only applies to dingtalk sinks");
      }
      auto v = String(node["secret"], field + ".secret");
      if (!v.ok()) return v.status();
      sink->set_secret(*v);
    }
    return absl::OkStatus();
  }

  // A YAML list of strings, appended to *out.
  absl::Status StringList(const YAML::Node& node, const std::string& field,
                          google::protobuf::RepeatedPtrField<std::string>* out) const {
    if (!node.IsSequence()) return Error(node, field, "must be a list");
    for (size_t i = 0; i < node.size(); ++i) {
      auto v = String(node[i], absl::StrCat(field, "[", i, "]"));
      if (!v.ok()) return v.status();
      out->Add(*std::move(v));
    }
    return absl::OkStatus();
  }

 private:
  std::string source_;
};

}  // namespace

absl::StatusOr<fleet::v1::AppSpec> ParseAppSpec(const std::string& yaml,
                                                const std::string& source) {
  return SpecParser(source).Parse(yaml);
}

}  // namespace fleet
