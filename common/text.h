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

// `text` with every byte sequence that is not valid UTF-8 (stray or
// truncated bytes, overlong forms, surrogates, beyond U+10FFFF) replaced by
// U+FFFD (one for an invalid byte and the continuation bytes after it);
// valid text unchanged. For program output carried in proto string fields.
std::string ValidUtf8(absl::string_view text);

}  // namespace fleet

#endif  // FLEET_COMMON_TEXT_H_
