#include "cli/output.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"

namespace fleet::cli {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr char kGreen[] = "\033[32m";
constexpr char kRed[] = "\033[31m";
constexpr char kYellow[] = "\033[33m";
constexpr char kReset[] = "\033[0m";

const char* ColorOf(const std::string& word) {
  static const std::set<std::string> kGood = {"succeeded", "healthy", "yes", "connected",
                                              "reverted"};
  static const std::set<std::string> kBad = {"failed",       "rolled_back", "lost",
                                             "revert_failed", "cancelled",  "disconnected",
                                             "no"};
  static const std::set<std::string> kBusy = {"staging",   "activating", "paused",   "pending",
                                              "reverting", "staged",     "switching", "rolling_back"};
  if (kGood.count(word)) return kGreen;
  if (kBad.count(word)) return kRed;
  if (kBusy.count(word)) return kYellow;
  return nullptr;
}

// The width `s` takes on a terminal: bytes, less colour codes and UTF-8
// continuation bytes.
size_t VisibleWidth(const std::string& s) {
  size_t width = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\033') {
      while (i < s.size() && s[i] != 'm') ++i;
      continue;
    }
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++width;
  }
  return width;
}

// "RolloutState" -> "ROLLOUT_STATE_": the prefix of its values' names.
std::string EnumPrefix(const std::string& type_name) {
  std::string prefix;
  for (size_t i = 0; i < type_name.size(); ++i) {
    const char c = type_name[i];
    if (i > 0 && absl::ascii_isupper(c)) prefix += '_';
    prefix += absl::ascii_toupper(c);
  }
  return prefix + "_";
}

std::string EnumText(const google::protobuf::EnumValueDescriptor* value) {
  std::string name = value->name();
  const std::string prefix = EnumPrefix(value->type()->name());
  if (absl::StartsWith(name, prefix)) name = name.substr(prefix.size());
  return absl::AsciiStrToLower(name);
}

// Fields that count waves from 0 in the API; JSON counts them from 1 as the
// text does.
bool IsWaveNumber(const FieldDescriptor* field) {
  const std::string& message = field->containing_type()->full_name();
  return (message == "fleet.v1.HostTask" && field->name() == "wave") ||
         (message == "fleet.v1.Rollout" && field->name() == "current_wave") ||
         (message == "fleet.v1.Wave" && field->name() == "index");
}

bool IsTimestamp(const FieldDescriptor* field) {
  return field->cpp_type() == FieldDescriptor::CPPTYPE_INT64 &&
         (absl::EndsWith(field->name(), "at_ms") || field->name() == "last_seen_ms");
}

nlohmann::ordered_json Rfc3339(int64_t ms) {
  if (ms <= 0) return nullptr;
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3S%Ez", absl::FromUnixMillis(ms),
                          absl::LocalTimeZone());
}

nlohmann::ordered_json Value(const Message& m, const FieldDescriptor* f, int index);

nlohmann::ordered_json Scalar(const Message& m, const FieldDescriptor* f, int i) {
  const Reflection* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t v = rep ? r->GetRepeatedInt32(m, f, i) : r->GetInt32(m, f);
      return IsWaveNumber(f) ? v + 1 : v;
    }
    case FieldDescriptor::CPPTYPE_INT64:
      return rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f);
    case FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(m, f, i) : r->GetUInt32(m, f);
    case FieldDescriptor::CPPTYPE_UINT64:
      return rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r->GetRepeatedDouble(m, f, i) : r->GetDouble(m, f);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return rep ? r->GetRepeatedFloat(m, f, i) : r->GetFloat(m, f);
    case FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r->GetRepeatedBool(m, f, i) : r->GetBool(m, f);
    case FieldDescriptor::CPPTYPE_ENUM:
      return EnumText(rep ? r->GetRepeatedEnum(m, f, i) : r->GetEnum(m, f));
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string v = rep ? r->GetRepeatedString(m, f, i) : r->GetString(m, f);
      return f->type() == FieldDescriptor::TYPE_BYTES ? absl::Base64Escape(v) : v;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return nullptr;
}

nlohmann::ordered_json Value(const Message& m, const FieldDescriptor* f, int i) {
  if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return Scalar(m, f, i);
  const Reflection* r = m.GetReflection();
  if (f->is_repeated()) return ToJson(r->GetRepeatedMessage(m, f, i));
  if (!r->HasField(m, f)) return nullptr;
  return ToJson(r->GetMessage(m, f));
}

// A map field as an object keyed by its entries' keys, in key order.
nlohmann::ordered_json MapValue(const Message& m, const FieldDescriptor* f) {
  const Reflection* r = m.GetReflection();
  std::vector<std::pair<std::string, nlohmann::ordered_json>> entries;
  for (int i = 0; i < r->FieldSize(m, f); ++i) {
    const Message& entry = r->GetRepeatedMessage(m, f, i);
    const FieldDescriptor* key = entry.GetDescriptor()->FindFieldByName("key");
    const FieldDescriptor* value = entry.GetDescriptor()->FindFieldByName("value");
    nlohmann::ordered_json k = Value(entry, key, 0);
    entries.emplace_back(k.is_string() ? k.get<std::string>() : k.dump(), Value(entry, value, 0));
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (auto& [k, v] : entries) out[k] = std::move(v);
  return out;
}

}  // namespace

bool ColorEnabled() {
  static const bool enabled = [] {
    const char* no_color = getenv("NO_COLOR");
    const char* term = getenv("TERM");
    return isatty(STDOUT_FILENO) && (no_color == nullptr || *no_color == '\0') &&
           (term == nullptr || std::strcmp(term, "dumb") != 0);
  }();
  return enabled;
}

std::string Paint(const std::string& word, bool color) {
  const char* code = color ? ColorOf(word) : nullptr;
  return code == nullptr ? word : absl::StrCat(code, word, kReset);
}

void PrintTable(const std::vector<std::vector<std::string>>& rows, bool color) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], VisibleWidth(row[i]));
    }
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    std::string line;
    for (size_t i = 0; i < rows[r].size(); ++i) {
      const std::string& cell = rows[r][i];
      line += r > 0 ? Paint(cell, color) : cell;
      if (i + 1 < rows[r].size()) line += std::string(width[i] - VisibleWidth(cell) + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

std::string FormatMs(int64_t ms) {
  if (ms <= 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(ms), absl::LocalTimeZone());
}

nlohmann::ordered_json ToJson(const Message& message) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  const google::protobuf::Descriptor* d = message.GetDescriptor();
  const Reflection* r = message.GetReflection();
  for (int n = 0; n < d->field_count(); ++n) {
    const FieldDescriptor* f = d->field(n);
    if (f->is_map()) {
      out[f->name()] = MapValue(message, f);
    } else if (f->is_repeated()) {
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      for (int i = 0; i < r->FieldSize(message, f); ++i) list.push_back(Value(message, f, i));
      out[f->name()] = std::move(list);
    } else {
      out[f->name()] = Value(message, f, 0);
      if (IsTimestamp(f)) {
        out[f->name().substr(0, f->name().size() - 3)] = Rfc3339(r->GetInt64(message, f));
      }
    }
  }
  return out;
}

std::string JsonText(const Message& message) {
  // Invalid UTF-8 (a reason quoting a binary's output) is replaced, not thrown.
  return ToJson(message).dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) +
         "\n";
}

}  // namespace fleet::cli
