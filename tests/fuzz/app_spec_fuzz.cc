// libFuzzer target: ParseAppSpec on arbitrary bytes. Beyond crashes and
// sanitizer reports it checks that an accepted spec keeps the parser's
// promises: a safe name, keep_releases of at least 3, no shared dir named
// "config", a reload timeout, trusted_keys the signing code reads back, and a
// user that is at most 32 characters and not an option.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/escaping.h"
#include "common/app_spec.h"
#include "common/fs.h"
#include "common/signing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<fleet::v1::AppSpec> spec = fleet::ParseAppSpec(yaml, "fuzz.yaml");
  if (!spec.ok()) {
    // Errors are one printable line that names the source.
    const std::string message(spec.status().message());
    bool printable = true;
    for (char c : message) printable = printable && static_cast<unsigned char>(c) >= 0x20;
    if (message.rfind("fuzz.yaml", 0) != 0 || !printable) {
      fprintf(stderr, "error is not one printable line naming the file: %s\n",
              absl::CHexEscape(message).c_str());
      abort();
    }
    return 0;
  }
  bool bad = !fleet::IsSafeName(spec->name()) || spec->keep_releases() < 3 ||
             spec->reload_timeout_ms() <= 0;
  for (const std::string& dir : spec->shared_dirs()) bad = bad || dir == "config";
  for (const std::string& key : spec->trusted_keys()) bad = bad || !fleet::ParsePublicKey(key).ok();
  // proto3: an unset user and `user: ""` both read as "" (the agent's own
  // user), so only a non-empty one can be checked.
  const std::string& user = spec->user();
  if (!user.empty()) bad = bad || user.size() > 32 || user[0] == '-';
  if (bad) {
    fprintf(stderr, "accepted a spec that breaks its promises:\n%s\n", spec->DebugString().c_str());
    abort();
  }
  return 0;
}
