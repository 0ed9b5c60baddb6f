#include "common/config_files.h"

#include <toml++/toml.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "common/yaml_load.h"

namespace fleet {
namespace {

absl::Status SyntaxError(absl::string_view path, int line, ConfigFormat format,
                         absl::string_view problem) {
  std::string where(path);
  if (line > 0) absl::StrAppend(&where, ":", line);
  return absl::InvalidArgumentError(
      absl::StrCat(where, ": invalid ", ConfigFormatName(format), ": ", problem));
}

absl::string_view StripUtf8Bom(absl::string_view content) {
  absl::ConsumePrefix(&content, "\xEF\xBB\xBF");
  return content;
}

// 1 + the number of line breaks before `offset`.
int LineAt(absl::string_view content, size_t offset) {
  offset = std::min(offset, content.size());
  int line = 1;
  for (size_t i = 0; i < offset; ++i) line += content[i] == '\n';
  return line;
}

// Calls `visit(head, rest)` for every way to split `key` at a dot, rest
// being what follows that dot, then `visit(key, std::nullopt)`. Returns true
// as soon as one call does. This is how "a.b.c" finds {"a": {"b.c": 1}}.
template <typename Visit>
bool AnyKeySplit(absl::string_view key, Visit visit) {
  for (size_t from = 0;;) {
    size_t dot = key.find('.', from);
    if (dot == absl::string_view::npos) return visit(key, std::nullopt);
    if (visit(key.substr(0, dot), std::optional<absl::string_view>(key.substr(dot + 1)))) {
      return true;
    }
    from = dot + 1;
  }
}

// JSON.

// Validates without building a document, and keeps where parsing stopped:
// json::parse throws out_of_range (number overflow) without a position.
class JsonSyntaxCheck : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& error) override {
    position_ = position;
    message_ = error.what();
    return false;
  }

  // The character count nlohmann had read when it failed (1-based offset of
  // the offending character) and its message.
  size_t position() const { return position_; }
  const std::string& message() const { return message_; }

 private:
  size_t position_ = 0;
  std::string message_;
};

// nlohmann's message without its id, its position (we give our own line) and
// any text it quotes from the document: "last read: '...'" and the number in
// "number overflow parsing '...'".
std::string JsonProblem(absl::string_view what) {
  if (absl::ConsumePrefix(&what, "[json.exception.")) {
    size_t end = what.find("] ");
    if (end != absl::string_view::npos) what.remove_prefix(end + 2);
  }
  if (absl::ConsumePrefix(&what, "parse error")) {
    // "parse error at line 3, column 26: ..." or "parse error: ...".
    size_t colon = what.find(": ");
    if (colon != absl::string_view::npos) what.remove_prefix(colon + 2);
  }
  size_t last_read = what.find("; last read:");
  if (last_read != absl::string_view::npos) what = what.substr(0, last_read);
  // Elsewhere nlohmann quotes only token names, as in "unexpected '}'".
  if (absl::StartsWith(what, "number overflow")) what = "number overflow";
  return std::string(what);
}

bool IsBlankJson(absl::string_view content) {
  return content.find_first_not_of(" \t\r\n") == absl::string_view::npos;
}

absl::Status CheckJson(absl::string_view path, absl::string_view content) {
  if (IsBlankJson(content)) return absl::OkStatus();
  JsonSyntaxCheck check;
  if (nlohmann::json::sax_parse(content.begin(), content.end(), &check)) return absl::OkStatus();
  // The position counts the offending character; the line breaks before it
  // give its line (nlohmann's own line is one too far when that character
  // is itself a line break inside a string).
  size_t offset = check.position() > 0 ? check.position() - 1 : 0;
  return SyntaxError(path, LineAt(content, offset), ConfigFormat::kJson,
                     JsonProblem(check.message()));
}

absl::StatusOr<nlohmann::json> ParseJson(absl::string_view path, absl::string_view content) {
  FLEET_RETURN_IF_ERROR(CheckJson(path, content));
  if (IsBlankJson(content)) return nlohmann::json();
  return nlohmann::json::parse(content.begin(), content.end());
}

bool JsonHasKey(const nlohmann::json& node, absl::string_view key) {
  if (!node.is_object()) return false;
  return AnyKeySplit(key, [&](absl::string_view head, std::optional<absl::string_view> rest) {
    auto it = node.find(std::string(head));
    if (it == node.end()) return false;
    return rest.has_value() ? JsonHasKey(*it, *rest) : !it->is_null();
  });
}

// YAML.

// yaml-cpp's messages are fixed texts, except that a few append what they
// read after ": " ("unknown escape character: q"); that part is dropped.
std::string YamlProblem(const std::string& msg) {
  size_t colon = msg.find(": ");
  return colon == std::string::npos ? msg : msg.substr(0, colon);
}

// The first document, or a null node when there is none.
absl::StatusOr<YAML::Node> ParseYaml(absl::string_view path, absl::string_view content) {
  try {
    return LoadYaml(std::string(content)).first;
  } catch (const YAML::Exception& e) {
    return SyntaxError(path, e.mark.is_null() ? 0 : e.mark.line + 1, ConfigFormat::kYaml,
                       YamlProblem(e.msg));
  }
}

bool YamlHasKey(const YAML::Node& node, absl::string_view key) {
  if (!node.IsMap()) return false;
  return AnyKeySplit(key, [&](absl::string_view head, std::optional<absl::string_view> rest) {
    // Iterates rather than node[head]: a map may hold the key twice, and
    // yaml-cpp's operator[] on a non-const node would insert it.
    for (const auto& entry : node) {
      if (!entry.first.IsScalar() || entry.first.Scalar() != head) continue;
      if (rest.has_value() ? YamlHasKey(entry.second, *rest) : !entry.second.IsNull()) {
        return true;
      }
    }
    return false;
  });
}

// TOML.

// toml++'s description without text it quotes from the document. Its shapes
// (toml++ 3.3): "Error while parsing SCOPE: REASON" where REASON is either
// "expected FIXED TOKENS, saw 'CONTENT'" (or ", saw NUMBER"), or a sentence
// with a quoted key or value ("cannot redefine existing table 'a.b'",
// "'99999999999999999999' is not representable in 64 bits").
std::string TomlProblem(absl::string_view description) {
  std::string scope;
  if (absl::ConsumePrefix(&description, "Error while parsing ")) {
    size_t colon = description.find(": ");
    if (colon != absl::string_view::npos) {
      scope = absl::StrCat("error while parsing ", description.substr(0, colon), ": ");
      description.remove_prefix(colon + 2);
    }
  }
  std::string reason;
  if (absl::StartsWith(description, "expected ")) {
    // The expected part lists fixed tokens; "saw" is followed by content
    // unless it names a token class ("saw comma", "saw EOF").
    size_t saw = description.find(", saw ");
    if (saw != absl::string_view::npos && saw + 6 < description.size()) {
      char next = description[saw + 6];
      if (next == '\'' || absl::ascii_isdigit(static_cast<unsigned char>(next))) {
        description = description.substr(0, saw);
      }
    }
    reason = std::string(description);
  } else if (absl::StartsWith(description, "vertical tabs") ||
             absl::StartsWith(description, "escape sequence")) {
    reason = std::string(description);  // Quotes only fixed escape names.
  } else {
    // One quoted key or value: drop it, or call it "value" when it starts
    // the sentence. First to last quote, as the content may hold quotes too.
    size_t open = description.find('\'');
    size_t close = description.rfind('\'');
    if (open != close) {
      reason = absl::StrCat(open == 0 ? absl::string_view("value") : description.substr(0, open),
                            description.substr(close + 1));
      reason = absl::StrReplaceAll(reason, {{"  ", " "}});
    } else {
      reason = std::string(description);
    }
    reason = std::string(absl::StripAsciiWhitespace(reason));
  }
  return scope + reason;
}

absl::StatusOr<toml::table> ParseToml(absl::string_view path, absl::string_view content) {
  try {
    return toml::parse(std::string_view(content.data(), content.size()),
                       std::string_view(path.data(), path.size()));
  } catch (const toml::parse_error& e) {
    return SyntaxError(
        path, static_cast<int>(e.source().begin.line), ConfigFormat::kToml,
        TomlProblem(absl::string_view(e.description().data(), e.description().size())));
  }
}

bool TomlHasKey(const toml::node& node, absl::string_view key) {
  const toml::table* table = node.as_table();
  if (table == nullptr) return false;
  return AnyKeySplit(key, [&](absl::string_view head, std::optional<absl::string_view> rest) {
    const toml::node* child = table->get(std::string_view(head.data(), head.size()));
    if (child == nullptr) return false;
    // TOML has no null: every value counts.
    return rest.has_value() ? TomlHasKey(*child, *rest) : true;
  });
}

// INI.
//
// A parser of our own rather than inih's: Debian's libinih reads lines into a
// 200-byte buffer and splits a longer line, so a valid 1000-character value
// gives a false error on a later "line" (and its limit is a process-wide
// global, not ours to change). This one also reports why a line is wrong.
absl::StatusOr<std::set<std::string>> IniKeys(absl::string_view path, absl::string_view content) {
  std::set<std::string> keys;
  std::string section;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(StripUtf8Bom(content), '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == ';' || line[0] == '#') continue;
    auto error = [&](absl::string_view problem) {
      return SyntaxError(path, line_number, ConfigFormat::kIni, problem);
    };
    if (line[0] == '[') {
      size_t close = line.find(']');
      if (close == absl::string_view::npos) return error("section header without closing ']'");
      absl::string_view after = absl::StripLeadingAsciiWhitespace(line.substr(close + 1));
      if (!after.empty() && after[0] != ';' && after[0] != '#') {
        return error("unexpected text after the section header");
      }
      section = std::string(absl::StripAsciiWhitespace(line.substr(1, close - 1)));
      if (section.empty()) return error("empty section name");
      continue;
    }
    size_t separator = line.find_first_of("=:");
    if (separator == absl::string_view::npos) return error("expected key = value or [section]");
    absl::string_view key = absl::StripTrailingAsciiWhitespace(line.substr(0, separator));
    if (key.empty()) return error("missing key before '=' or ':'");
    keys.insert(section.empty() ? std::string(key) : absl::StrCat(section, ".", key));
  }
  return keys;
}

// .env.

bool IsEnvName(absl::string_view name) {
  if (name.empty() || !(absl::ascii_isalpha(name[0]) || name[0] == '_')) return false;
  for (char c : name) {
    if (!(absl::ascii_isalnum(c) || c == '_' || c == '.')) return false;
  }
  return true;
}

absl::StatusOr<std::set<std::string>> EnvKeys(absl::string_view path, absl::string_view content) {
  content = StripUtf8Bom(content);
  std::set<std::string> keys;
  int line_number = 0;
  size_t pos = 0;  // Start of the next line in `content`.
  while (pos < content.size()) {
    ++line_number;
    size_t end = std::min(content.find('\n', pos), content.size());
    absl::string_view line = absl::StripAsciiWhitespace(content.substr(pos, end - pos));
    pos = end + 1;
    if (line.empty() || line[0] == '#') continue;
    auto error = [&](absl::string_view problem) {
      return SyntaxError(path, line_number, ConfigFormat::kEnv, problem);
    };
    if (absl::StartsWith(line, "export") && line.size() > 6 &&
        (line[6] == ' ' || line[6] == '\t')) {
      line = absl::StripLeadingAsciiWhitespace(line.substr(6));
    }
    size_t equals = line.find('=');
    if (equals == absl::string_view::npos) return error("line without '='");
    absl::string_view name = absl::StripTrailingAsciiWhitespace(line.substr(0, equals));
    if (!IsEnvName(name)) return error("invalid variable name");
    absl::string_view value = absl::StripLeadingAsciiWhitespace(line.substr(equals + 1));
    absl::string_view after_quote;
    if (!value.empty() && value[0] == '\'') {
      size_t close = value.find('\'', 1);
      if (close == absl::string_view::npos) return error("unterminated single-quoted value");
      after_quote = value.substr(close + 1);
    } else if (!value.empty() && value[0] == '"') {
      // May run over several lines; reported at the line it opens on.
      int start_line = line_number;
      size_t i = static_cast<size_t>(value.data() - content.data()) + 1;
      for (; i < content.size() && content[i] != '"'; ++i) {
        if (content[i] == '\\' && i + 1 < content.size()) ++i;
        if (content[i] == '\n') ++line_number;
      }
      if (i >= content.size()) {
        return SyntaxError(path, start_line, ConfigFormat::kEnv,
                           "unterminated double-quoted value");
      }
      end = std::min(content.find('\n', i), content.size());
      after_quote = absl::StripTrailingAsciiWhitespace(content.substr(i + 1, end - i - 1));
      pos = end + 1;
    }
    after_quote = absl::StripLeadingAsciiWhitespace(after_quote);
    if (!after_quote.empty() && after_quote[0] != '#') {
      return error("unexpected text after the closing quote");
    }
    keys.insert(std::string(name));
  }
  return keys;
}

// .properties.

struct NaturalLine {
  absl::string_view text;
  int number;
};

// Lines ended by "\n", "\r\n" or "\r", as java.util.Properties reads them.
std::vector<NaturalLine> NaturalLines(absl::string_view content) {
  std::vector<NaturalLine> lines;
  int number = 1;
  size_t start = 0;
  for (size_t i = 0; i < content.size(); ++i) {
    if (content[i] != '\n' && content[i] != '\r') continue;
    lines.push_back({content.substr(start, i - start), number++});
    if (content[i] == '\r' && i + 1 < content.size() && content[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < content.size()) lines.push_back({content.substr(start), number});
  return lines;
}

bool IsPropertiesSpace(char c) { return c == ' ' || c == '\t' || c == '\f'; }

absl::string_view StripLeadingPropertiesSpace(absl::string_view text) {
  while (!text.empty() && IsPropertiesSpace(text[0])) text.remove_prefix(1);
  return text;
}

bool EndsInOddBackslashes(absl::string_view text) {
  size_t count = 0;
  while (count < text.size() && text[text.size() - 1 - count] == '\\') ++count;
  return count % 2 == 1;
}

void AppendUtf8(uint32_t code_point, std::string* out) {
  if (code_point < 0x80) {
    *out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    *out += static_cast<char>(0xC0 | (code_point >> 6));
    *out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    *out += static_cast<char>(0xE0 | (code_point >> 12));
    *out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (code_point >> 18));
    *out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

// Reads the 4 hex digits of a \u escape at text[at..], or nullopt.
std::optional<uint32_t> HexQuad(absl::string_view text, size_t at) {
  if (at + 4 > text.size()) return std::nullopt;
  uint32_t value = 0;
  for (size_t i = at; i < at + 4; ++i) {
    char c = text[i];
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    value = value * 16 + (absl::ascii_isdigit(static_cast<unsigned char>(c))
                              ? c - '0'
                              : absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10);
  }
  return value;
}

// One logical line: natural lines joined at odd trailing backslashes, with
// the natural line number of each character for errors.
struct LogicalLine {
  std::string text;
  std::vector<int> line_of;
};

// Unescapes text[*i..] (at a backslash) into *out and moves *i past it.
// Returns false for a \u without 4 hex digits.
bool UnescapeProperties(absl::string_view text, size_t* i, std::string* out) {
  size_t at = *i + 1;
  if (at >= text.size()) {  // Cannot happen after joining; keeps bounds safe.
    *i = at;
    return true;
  }
  char c = text[at];
  if (c != 'u') {
    switch (c) {
      case 't':
        *out += '\t';
        break;
      case 'n':
        *out += '\n';
        break;
      case 'r':
        *out += '\r';
        break;
      case 'f':
        *out += '\f';
        break;
      default:
        *out += c;
    }
    *i = at + 1;
    return true;
  }
  std::optional<uint32_t> unit = HexQuad(text, at + 1);
  if (!unit.has_value()) return false;
  *i = at + 5;
  uint32_t code_point = *unit;
  // A surrogate pair written as two escapes is one character.
  if (code_point >= 0xD800 && code_point < 0xDC00 && *i + 1 < text.size() && text[*i] == '\\' &&
      text[*i + 1] == 'u') {
    std::optional<uint32_t> low = HexQuad(text, *i + 2);
    if (low.has_value() && *low >= 0xDC00 && *low < 0xE000) {
      code_point = 0x10000 + ((code_point - 0xD800) << 10) + (*low - 0xDC00);
      *i += 6;
    }
  }
  AppendUtf8(code_point, out);
  return true;
}

absl::StatusOr<std::set<std::string>> PropertiesKeys(absl::string_view path,
                                                     absl::string_view content) {
  std::vector<NaturalLine> lines = NaturalLines(StripUtf8Bom(content));
  std::set<std::string> keys;
  for (size_t n = 0; n < lines.size(); ++n) {
    absl::string_view part = StripLeadingPropertiesSpace(lines[n].text);
    if (part.empty() || part[0] == '#' || part[0] == '!') continue;
    LogicalLine logical;
    for (;;) {
      bool continues = EndsInOddBackslashes(part);
      if (continues) part.remove_suffix(1);
      logical.text.append(part.data(), part.size());
      logical.line_of.insert(logical.line_of.end(), part.size(), lines[n].number);
      // A continuation on the last line just ends the file.
      if (!continues || n + 1 >= lines.size()) break;
      part = StripLeadingPropertiesSpace(lines[++n].text);
    }
    absl::string_view text = logical.text;
    std::string key;
    std::string ignored_value;
    auto unescape = [&](size_t* i, std::string* out) -> absl::Status {
      if (UnescapeProperties(text, i, out)) return absl::OkStatus();
      return SyntaxError(path, logical.line_of[*i], ConfigFormat::kProperties,
                         "malformed \\uXXXX escape (needs 4 hex digits)");
    };
    size_t i = 0;
    while (i < text.size() && text[i] != '=' && text[i] != ':' && !IsPropertiesSpace(text[i])) {
      if (text[i] == '\\') {
        FLEET_RETURN_IF_ERROR(unescape(&i, &key));
      } else {
        key += text[i++];
      }
    }
    // The value is not needed, but its escapes must be valid too.
    while (i < text.size()) {
      if (text[i] == '\\') {
        FLEET_RETURN_IF_ERROR(unescape(&i, &ignored_value));
      } else {
        ++i;
      }
    }
    keys.insert(std::move(key));
  }
  return keys;
}

absl::StatusOr<std::set<std::string>> FlatKeys(ConfigFormat format, absl::string_view path,
                                               absl::string_view content) {
  switch (format) {
    case ConfigFormat::kIni:
      return IniKeys(path, content);
    case ConfigFormat::kEnv:
      return EnvKeys(path, content);
    case ConfigFormat::kProperties:
      return PropertiesKeys(path, content);
    default:
      return absl::InternalError(
          absl::StrCat(path, ": ", ConfigFormatName(format), " is not a flat format"));
  }
}

template <typename HasKey>
std::vector<std::string> MissingKeys(const std::vector<std::string>& required, HasKey has_key) {
  std::vector<std::string> missing;
  for (const std::string& key : required) {
    if (!has_key(key)) missing.push_back(key);
  }
  return missing;
}

}  // namespace

ConfigFormat ConfigFormatOf(absl::string_view path) {
  size_t slash = path.rfind('/');
  std::string name =
      absl::AsciiStrToLower(slash == absl::string_view::npos ? path : path.substr(slash + 1));
  if (absl::EndsWith(name, ".json")) return ConfigFormat::kJson;
  if (absl::EndsWith(name, ".yaml") || absl::EndsWith(name, ".yml")) return ConfigFormat::kYaml;
  if (absl::EndsWith(name, ".toml")) return ConfigFormat::kToml;
  if (absl::EndsWith(name, ".ini")) return ConfigFormat::kIni;
  if (absl::EndsWith(name, ".env")) return ConfigFormat::kEnv;  // Also ".env" itself.
  if (absl::EndsWith(name, ".properties")) return ConfigFormat::kProperties;
  return ConfigFormat::kUnknown;
}

const char* ConfigFormatName(ConfigFormat format) {
  switch (format) {
    case ConfigFormat::kJson:
      return "JSON";
    case ConfigFormat::kYaml:
      return "YAML";
    case ConfigFormat::kToml:
      return "TOML";
    case ConfigFormat::kIni:
      return "INI";
    case ConfigFormat::kEnv:
      return ".env";
    case ConfigFormat::kProperties:
      return ".properties";
    case ConfigFormat::kUnknown:
      break;
  }
  return "unknown";
}

absl::Status CheckConfigSyntax(absl::string_view path, absl::string_view content) {
  ConfigFormat format = ConfigFormatOf(path);
  switch (format) {
    case ConfigFormat::kUnknown:
      return absl::OkStatus();
    case ConfigFormat::kJson:
      return CheckJson(path, content);
    case ConfigFormat::kYaml:
      return ParseYaml(path, content).status();
    case ConfigFormat::kToml:
      return ParseToml(path, content).status();
    case ConfigFormat::kIni:
    case ConfigFormat::kEnv:
    case ConfigFormat::kProperties:
      return FlatKeys(format, path, content).status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> MissingConfigKeys(
    absl::string_view path, absl::string_view content, const std::vector<std::string>& required) {
  ConfigFormat format = ConfigFormatOf(path);
  switch (format) {
    case ConfigFormat::kUnknown:
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": cannot check required keys in a file of unknown format"));
    case ConfigFormat::kJson: {
      FLEET_ASSIGN_OR_RETURN(nlohmann::json document, ParseJson(path, content));
      return MissingKeys(required,
                         [&](const std::string& key) { return JsonHasKey(document, key); });
    }
    case ConfigFormat::kYaml: {
      FLEET_ASSIGN_OR_RETURN(YAML::Node document, ParseYaml(path, content));
      return MissingKeys(required,
                         [&](const std::string& key) { return YamlHasKey(document, key); });
    }
    case ConfigFormat::kToml: {
      FLEET_ASSIGN_OR_RETURN(toml::table document, ParseToml(path, content));
      return MissingKeys(required,
                         [&](const std::string& key) { return TomlHasKey(document, key); });
    }
    case ConfigFormat::kIni:
    case ConfigFormat::kEnv:
    case ConfigFormat::kProperties: {
      FLEET_ASSIGN_OR_RETURN(std::set<std::string> keys, FlatKeys(format, path, content));
      return MissingKeys(required, [&](const std::string& key) { return keys.count(key) > 0; });
    }
  }
  return absl::InternalError(absl::StrCat(path, ": unhandled config format"));
}

}  // namespace fleet
