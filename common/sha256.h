// Streaming SHA-256 (OpenSSL) with lowercase hex output.
#ifndef FLEET_COMMON_SHA256_H_
#define FLEET_COMMON_SHA256_H_

#include <memory>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace fleet {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(absl::string_view data);
  // Lowercase hex digest. The object must not be updated afterwards.
  std::string HexDigest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Hex sha256 of a whole file.
absl::StatusOr<std::string> Sha256File(const std::string& path);

// Whether `s` looks like a hex sha256 (64 lowercase hex characters).
bool IsSha256Hex(absl::string_view s);

}  // namespace fleet

#endif  // FLEET_COMMON_SHA256_H_
