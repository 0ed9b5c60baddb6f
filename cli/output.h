// How fleetctl prints: tables, times, colours and JSON.
#ifndef FLEET_CLI_OUTPUT_H_
#define FLEET_CLI_OUTPUT_H_

#include <google/protobuf/message.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace fleet::cli {

// Whether stdout gets colour: it is a terminal, NO_COLOR is unset (or
// empty) and TERM is not "dumb". Decided once per process.
bool ColorEnabled();

// `word` (a state name as the text output shows it: "succeeded",
// "rolled_back", "healthy", "disconnected", "yes", ...) wrapped in the ANSI
// colour of its class when `color`: green for success, red for failures and
// rollbacks, yellow for work in progress and pauses. Other words, and every
// word without `color`, come back unchanged.
std::string Paint(const std::string& word, bool color);

// Prints `rows` on stdout as a table: columns padded to their widest cell,
// measured without colour codes. With `color`, cells that Paint knows are
// coloured.
void PrintTable(const std::vector<std::vector<std::string>>& rows, bool color = false);

// Unix milliseconds as local "YYYY-MM-DD HH:MM:SS"; "-" for 0 or less.
std::string FormatMs(int64_t ms);

// The JSON fleetctl prints for API messages (the "JSON output" section of
// README): field names as in the proto; enum values as the lower-case names
// the text output shows ("rolled_back", "healthy", "config"); 64-bit
// numbers as JSON numbers; waves counted from 1 (HostTask.wave,
// Rollout.current_wave, Wave.index); every timestamp field `*_ms` (Unix
// milliseconds, 0 = never) joined by the same time as RFC 3339 with its
// zone offset in `*` without `_ms` (null when 0); every field present, an
// unset message as null.
nlohmann::ordered_json ToJson(const google::protobuf::Message& message);
// ToJson, printed with two-space indentation and a final newline.
std::string JsonText(const google::protobuf::Message& message);

}  // namespace fleet::cli

#endif  // FLEET_CLI_OUTPUT_H_
