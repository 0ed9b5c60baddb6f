// How both stores keep maps and lists of strings in one text column: as
// JSON, so any character (',', '=', newlines, quotes) in a key or value
// round-trips: {"role":"web"} and ["v1","v2"].
#ifndef FLEET_CONTROLLER_STORE_JSON_H_
#define FLEET_CONTROLLER_STORE_JSON_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/map.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace fleet::controller {

// A JSON object of the map's entries, keys sorted. InvalidArgument when a
// key or value is not UTF-8.
absl::StatusOr<std::string> EncodeStringMap(
    const google::protobuf::Map<std::string, std::string>& map);
// A JSON array of the list's items, in order. InvalidArgument when an item
// is not UTF-8.
absl::StatusOr<std::string> EncodeStringList(
    const google::protobuf::RepeatedPtrField<std::string>& list);

// Adds the entries of the JSON object `text` to `map`. DataLoss when it
// does not parse, is not an object, or holds a value that is not a string.
absl::Status DecodeStringMap(const std::string& text,
                             google::protobuf::Map<std::string, std::string>* map);
// Appends the items of the JSON array `text` to `list`. DataLoss when it
// does not parse, is not an array, or holds an item that is not a string.
absl::Status DecodeStringList(const std::string& text,
                              google::protobuf::RepeatedPtrField<std::string>* list);

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_STORE_JSON_H_
