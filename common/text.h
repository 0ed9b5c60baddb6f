// Text from outside (spec files, library messages, API callers) made safe
// to put into one-line errors, logs and audit events.
#ifndef FLEET_COMMON_TEXT_H_
#define FLEET_COMMON_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace fleet {

// `text` with every control character (below 0x20, and 0x7f) as \xNN;
// everything else, UTF-8 included, as it is.
std::string EscapeControlCharacters(absl::string_view text);

}  // namespace fleet

#endif  // FLEET_COMMON_TEXT_H_
