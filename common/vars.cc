#include "common/vars.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace fleet {
namespace {

bool IsKey(const std::string& key) {
  if (key.empty()) return false;
  if (!(absl::ascii_isalpha(key[0]) || key[0] == '_')) return false;
  for (char c : key) {
    if (!(absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-')) return false;
  }
  return true;
}

}  // namespace

absl::Status ParseKeyValue(const std::string& text, std::string* key, std::string* value) {
  auto pos = text.find('=');
  if (pos == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not KEY=VALUE"));
  }
  *key = std::string(absl::StripAsciiWhitespace(text.substr(0, pos)));
  *value = std::string(absl::StripAsciiWhitespace(text.substr(pos + 1)));
  if (!IsKey(*key)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", *key, "' in '", text, "' is not a valid key (letters, digits, _ . -)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Labels> ParseSelector(const std::string& selector) {
  Labels out;
  for (absl::string_view item : absl::StrSplit(selector, ',', absl::SkipWhitespace())) {
    std::string key, value;
    absl::Status st = ParseKeyValue(std::string(item), &key, &value);
    if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat("selector: ", st.message()));
    if (out.count(key) && out[key] != value) {
      return absl::InvalidArgumentError(
          absl::StrCat("selector: key '", key, "' given twice with different values"));
    }
    out[key] = value;
  }
  return out;
}

bool SelectorMatches(const Labels& selector, const Labels& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

absl::StatusOr<std::string> ExpandVars(const std::string& text, const Labels& vars) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      size_t end = text.find('}', i + 2);
      if (end == std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("unterminated ${ in '", text, "'"));
      }
      std::string name = text.substr(i + 2, end - i - 2);
      auto it = vars.find(name);
      if (it == vars.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown variable ${", name, "} in '", text,
                         "' (give it to the agent with --var ", name, "=...)"));
      }
      out += it->second;
      i = end + 1;
    } else {
      out += text[i++];
    }
  }
  return out;
}

}  // namespace fleet
