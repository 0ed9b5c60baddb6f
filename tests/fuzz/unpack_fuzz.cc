// libFuzzer target: UnpackArchive on arbitrary bytes. Beyond crashes and
// sanitizer reports it checks the unpacker's promises (DESIGN.md "Unpack")
// on whatever it wrote, whether it accepted the archive or refused it
// halfway: nothing outside the destination, no link that leads out of it,
// no device node or FIFO, no setuid/setgid bits, nothing writable but by its
// owner.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "agent/unpack.h"
#include "common/fs.h"

namespace {

namespace fs = std::filesystem;

// One scratch dir per fuzzing process: <tmp>/fleet-unpack-fuzz-XXXXXX.
const std::string& Scratch() {
  static const std::string* dir = [] {
    std::string tmpl = (fs::temp_directory_path() / "fleet-unpack-fuzz-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      perror("mkdtemp");
      abort();
    }
    return new std::string(tmpl);
  }();
  return *dir;
}

[[noreturn]] void Violation(const std::string& what, const fs::path& path) {
  fprintf(stderr, "unpack promise broken: %s: %s\n", what.c_str(), path.c_str());
  abort();
}

// Whether the lexically normal form of `target`, seen from `link`'s
// directory, stays inside `root`.
bool StaysInside(const fs::path& root, const fs::path& link, const fs::path& target) {
  if (target.is_absolute()) return false;
  fs::path resolved = (link.parent_path() / target).lexically_normal();
  fs::path rel = resolved.lexically_relative(root);
  return !rel.empty() && *rel.begin() != "..";
}

void CheckTree(const fs::path& root) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path& path = it->path();
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) Violation("cannot lstat", path);
    if (S_ISLNK(st.st_mode)) {
      if (!StaysInside(root, path, fs::read_symlink(path))) Violation("link leads out", path);
      continue;
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) Violation("special file", path);
    if (st.st_mode & (S_ISUID | S_ISGID)) Violation("setuid/setgid bit", path);
    if (st.st_mode & (S_IWGRP | S_IWOTH)) Violation("writable by group or others", path);
  }
  if (ec) Violation("cannot walk: " + ec.message(), root);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string archive = Scratch() + "/input";
  const std::string dest = Scratch() + "/dest";
  FILE* f = fopen(archive.c_str(), "wb");
  if (f == nullptr || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
  if (mkdir(dest.c_str(), 0755) != 0) abort();

  // Small limits keep each run fast; they are part of what is fuzzed.
  fleet::agent::UnpackLimits limits;
  limits.max_total_bytes = 1 << 20;
  limits.max_entries = 1000;
  fleet::agent::UnpackStats stats;
  absl::Status st = fleet::agent::UnpackArchive(archive, dest, limits, &stats);
  (void)st;  // accepted or refused, the promises hold
  CheckTree(dest);
  if (!fleet::RemoveAll(dest).ok()) abort();
  // Nothing may appear beside the destination either.
  for (const auto& entry : fs::directory_iterator(Scratch())) {
    if (entry.path().filename() != "input") Violation("file outside the destination", entry.path());
  }
  return 0;
}
