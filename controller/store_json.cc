#include "controller/store_json.h"

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace fleet::controller {
namespace {

// nlohmann::json, not protobuf's JSON converter, which costs a type
// resolver per call (ListHosts decodes two lists per host).
template <typename Container>
absl::StatusOr<std::string> EncodeJson(const Container& items) {
  try {
    return nlohmann::json(items).dump();
  } catch (const nlohmann::json::exception& e) {  // text that is not UTF-8
    return absl::InvalidArgumentError(e.what());
  }
}

absl::StatusOr<nlohmann::json> ParseJson(const std::string& text, nlohmann::json::value_t type) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::DataLossError("stored JSON does not parse");
  if (json.type() != type) {
    return absl::DataLossError(absl::StrCat(
        "stored JSON is not ", type == nlohmann::json::value_t::object ? "an object" : "a list"));
  }
  return json;
}

}  // namespace

absl::StatusOr<std::string> EncodeStringMap(
    const google::protobuf::Map<std::string, std::string>& map) {
  return EncodeJson(std::map<std::string, std::string>(map.begin(), map.end()));
}

absl::StatusOr<std::string> EncodeStringList(
    const google::protobuf::RepeatedPtrField<std::string>& list) {
  return EncodeJson(std::vector<std::string>(list.begin(), list.end()));
}

absl::Status DecodeStringMap(const std::string& text,
                             google::protobuf::Map<std::string, std::string>* map) {
  FLEET_ASSIGN_OR_RETURN(nlohmann::json json, ParseJson(text, nlohmann::json::value_t::object));
  for (const auto& [key, value] : json.items()) {
    if (!value.is_string()) {
      return absl::DataLossError(absl::StrCat("value of '", key, "' is not a string"));
    }
    (*map)[key] = value.get<std::string>();
  }
  return absl::OkStatus();
}

absl::Status DecodeStringList(const std::string& text,
                              google::protobuf::RepeatedPtrField<std::string>* list) {
  FLEET_ASSIGN_OR_RETURN(nlohmann::json json, ParseJson(text, nlohmann::json::value_t::array));
  for (const nlohmann::json& value : json) {
    if (!value.is_string()) return absl::DataLossError("list item is not a string");
    list->Add(value.get<std::string>());
  }
  return absl::OkStatus();
}

}  // namespace fleet::controller
