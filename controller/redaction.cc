#include "controller/redaction.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace fleet::controller {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Webhook hosts whose URL path is (or holds) the token, e.g.
// https://hooks.slack.com/services/T0/B0/XXXX. DingTalk and WeCom carry
// theirs in the query, which is always redacted.
constexpr absl::string_view kTokenPathHosts[] = {
    "hooks.slack.com",    "discord.com",      "discordapp.com", "webhook.office.com",
    "outlook.office.com", "api.telegram.org", "open.feishu.cn", "open.larksuite.com",
    "hooks.zapier.com",   "maker.ifttt.com",  "api.pushover.net"};

// Keys whose value in free text ("secret: X", "password=X") is a secret;
// matched case-insensitively at the end of a key, so "db_password" counts.
constexpr absl::string_view kSecretKeys[] = {"secret", "password", "passwd"};

bool IsSchemeChar(char c) { return absl::ascii_isalnum(c) || c == '+' || c == '-' || c == '.'; }

// Where a URL in free text ends: at whitespace, a control character or a
// quote. Commas and parentheses may be part of a query value, so a URL
// runs over them (redacting too much rather than too little).
bool EndsUrl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u <= 0x20 || u == 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`' ||
         c == '\\';
}

bool HasTokenPath(absl::string_view host) {
  for (absl::string_view known : kTokenPathHosts) {
    if (host == known || absl::EndsWith(host, absl::StrCat(".", known))) return true;
  }
  return false;
}

// "a=1&b&c=" -> "a=***&***&c=": every value goes, names stay.
std::string RedactParams(absl::string_view params) {
  std::vector<std::string> out;
  for (absl::string_view param : absl::StrSplit(params, '&')) {
    size_t eq = param.find('=');
    if (eq == absl::string_view::npos) {
      out.push_back(param.empty() ? "" : kRedacted);
    } else {
      out.push_back(absl::StrCat(param.substr(0, eq + 1),
                                 eq + 1 == param.size() ? "" : kRedacted));
    }
  }
  return absl::StrJoin(out, "&");
}

// `rest` is what follows "scheme://" in a URL.
std::string RedactUrlRest(absl::string_view rest) {
  size_t authority_end = rest.find_first_of("/?#");
  if (authority_end == absl::string_view::npos) authority_end = rest.size();
  absl::string_view authority = rest.substr(0, authority_end);
  std::string out;
  if (size_t at = authority.rfind('@'); at != absl::string_view::npos) {
    authority.remove_prefix(at + 1);
    absl::StrAppend(&out, kRedacted, "@");
  }
  absl::StrAppend(&out, authority);
  std::string host = absl::AsciiStrToLower(authority.substr(0, authority.rfind(':')));
  absl::string_view tail = rest.substr(authority_end);
  size_t path_end = tail.find_first_of("?#");
  if (path_end == absl::string_view::npos) path_end = tail.size();
  absl::string_view path = tail.substr(0, path_end);
  absl::StrAppend(&out, HasTokenPath(host) && path.size() > 1 ? absl::StrCat("/", kRedacted)
                                                               : std::string(path));
  tail.remove_prefix(path_end);
  while (!tail.empty()) {  // "?query" then "#fragment", or either alone
    size_t next = tail.find('#', 1);
    if (next == absl::string_view::npos) next = tail.size();
    absl::StrAppend(&out, tail.substr(0, 1), RedactParams(tail.substr(1, next - 1)));
    tail.remove_prefix(next);
  }
  return out;
}

std::string RedactUrls(absl::string_view text) {
  std::string out;
  size_t done = 0;
  for (size_t sep = text.find("://"); sep != absl::string_view::npos;
       sep = text.find("://", sep + 3)) {
    if (sep < done) continue;
    size_t start = sep;
    while (start > done && IsSchemeChar(text[start - 1])) --start;
    while (start < sep && !absl::ascii_isalpha(text[start])) ++start;
    if (start == sep) continue;
    size_t end = sep + 3;
    while (end < text.size() && !EndsUrl(text[end])) ++end;
    absl::StrAppend(&out, text.substr(done, sep + 3 - done),
                    RedactUrlRest(text.substr(sep + 3, end - sep - 3)));
    done = end;
  }
  absl::StrAppend(&out, text.substr(done));
  return out;
}

// The end of the secret value that starts at `pos`: a quoted string, an
// unquoted word, or (for a YAML block scalar, '|' or '>') the rest of the
// text.
size_t SecretValueEnd(absl::string_view text, size_t pos) {
  if (pos >= text.size()) return pos;
  const char first = text[pos];
  if (first == '"' || first == '\'') {
    size_t close = text.find(first, pos + 1);
    return close == absl::string_view::npos ? text.size() : close + 1;
  }
  if (first == '|' || first == '>') return text.size();
  size_t end = pos;
  while (end < text.size() && !absl::ascii_isspace(text[end]) && text[end] != ',' &&
         text[end] != '}' && text[end] != ']' && text[end] != ';' && text[end] != '&') {
    ++end;
  }
  return end;
}

std::string RedactSecretPairs(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  std::string out;
  size_t done = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    for (absl::string_view key : kSecretKeys) {
      if (i < done || absl::string_view(lower).substr(i, key.size()) != key) continue;
      size_t pos = i + key.size();
      if (pos < text.size() && (text[pos] == '"' || text[pos] == '\'')) ++pos;
      while (pos < text.size() && text[pos] == ' ') ++pos;
      if (pos >= text.size() || (text[pos] != ':' && text[pos] != '=')) continue;
      ++pos;
      while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
      size_t end = SecretValueEnd(text, pos);
      if (end == pos || text.substr(pos, end - pos) == kRedacted) continue;
      absl::StrAppend(&out, text.substr(done, pos - done), kRedacted);
      done = end;
    }
  }
  absl::StrAppend(&out, text.substr(done));
  return out;
}

std::string RedactField(const FieldDescriptor* field, const std::string& value) {
  if (field->name() == "secret") return value.empty() ? value : kRedacted;
  return RedactText(value);
}

}  // namespace

std::string RedactText(absl::string_view text) {
  if (text.find("://") == absl::string_view::npos && text.find(':') == absl::string_view::npos &&
      text.find('=') == absl::string_view::npos) {
    return std::string(text);
  }
  return RedactSecretPairs(RedactUrls(text));
}

void RedactMessage(Message* message) {
  const Reflection* reflection = message->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(*message, &fields);
  for (const FieldDescriptor* field : fields) {
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (field->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(*message, field); ++i) {
          RedactMessage(reflection->MutableRepeatedMessage(message, field, i));
        }
      } else {
        RedactMessage(reflection->MutableMessage(message, field));
      }
    } else if (field->type() == FieldDescriptor::TYPE_STRING) {
      if (field->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(*message, field); ++i) {
          reflection->SetRepeatedString(
              message, field, i, RedactField(field, reflection->GetRepeatedString(*message, field, i)));
        }
      } else {
        reflection->SetString(message, field,
                              RedactField(field, reflection->GetString(*message, field)));
      }
    }
  }
}

absl::Status RedactStatus(const absl::Status& status) {
  if (status.ok()) return status;
  std::string message = RedactText(status.message());
  if (message.size() > kMaxApiErrorBytes) {
    size_t keep = kMaxApiErrorBytes - 64;  // room for the note
    // Never cut a UTF-8 sequence in two.
    while (keep > 0 && (static_cast<unsigned char>(message[keep]) & 0xC0) == 0x80) --keep;
    message = absl::StrCat(message.substr(0, keep), "... (", message.size() - keep, " bytes cut)");
  }
  return absl::Status(status.code(), message);
}

}  // namespace fleet::controller
