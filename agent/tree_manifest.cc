#include "agent/tree_manifest.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace fleet::agent {
namespace {

constexpr char kHeader[] = "fleet-manifest 1";

// The manifest's letter for what `st` is, or '\0' for what a release may
// not hold.
char KindOf(const struct stat& st) {
  if (S_ISREG(st.st_mode)) return 'f';
  if (S_ISDIR(st.st_mode)) return 'd';
  if (S_ISLNK(st.st_mode)) return 'l';
  return '\0';
}

uint64_t SizeOf(const struct stat& st) {
  return S_ISDIR(st.st_mode) ? 0 : static_cast<uint64_t>(st.st_size);
}

std::string Quote(const std::string& rel) { return absl::StrCat("'", absl::CHexEscape(rel), "'"); }

}  // namespace

absl::StatusOr<std::string> DescribeTree(const std::string& dir) {
  std::string body;
  uint64_t entries = 0;
  uint64_t bytes = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const std::string path = it->path().string();
    const std::string rel = path.substr(dir.size() + 1);
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) {
      return absl::InternalError(absl::StrCat("cannot stat ", path, ": ", std::strerror(errno)));
    }
    const char kind = KindOf(st);
    if (kind == '\0') {
      return absl::FailedPreconditionError(
          absl::StrCat(Quote(rel), " in ", dir, " is not a file, directory or symlink"));
    }
    // Fleet's own link, made again at activation when missing.
    if (kind == 'l' && rel == "config") continue;
    absl::StrAppend(&body, std::string(1, kind), " ", SizeOf(st), " ", absl::CHexEscape(rel),
                    "\n");
    ++entries;
    if (kind == 'f') bytes += SizeOf(st);
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot walk ", dir, ": ", ec.message()));
  return absl::StrCat(kHeader, " ", entries, " ", bytes, "\n", body);
}

absl::Status CheckTree(const std::string& dir, const std::string& manifest) {
  std::vector<absl::string_view> lines = absl::StrSplit(manifest, '\n', absl::SkipEmpty());
  if (lines.empty() || !absl::StartsWith(lines[0], kHeader)) {
    return absl::InvalidArgumentError(absl::StrCat("the manifest of ", dir, " is not one"));
  }
  uint64_t differ = 0;
  std::string first;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<absl::string_view> fields = absl::StrSplit(lines[i], absl::MaxSplits(' ', 2));
    uint64_t size = 0;
    std::string rel;
    if (fields.size() != 3 || fields[0].size() != 1 || !absl::SimpleAtoi(fields[1], &size) ||
        !absl::CUnescape(fields[2], &rel)) {
      return absl::InvalidArgumentError(
          absl::StrCat("the manifest of ", dir, " has a bad line ", i + 1));
    }
    const std::string path = absl::StrCat(dir, "/", rel);
    struct stat st;
    std::string problem;
    if (lstat(path.c_str(), &st) != 0) {
      problem = "is missing";
    } else if (KindOf(st) != fields[0][0]) {
      problem = "changed its type";
    } else if (SizeOf(st) != size) {
      problem = absl::StrCat("has ", SizeOf(st), " bytes, not ", size);
    } else {
      continue;
    }
    if (differ++ == 0) first = absl::StrCat(Quote(rel), " ", problem);
  }
  if (differ == 0) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(differ, " of ", lines.size() - 1,
                                          " entries missing or changed, first: ", first));
}

}  // namespace fleet::agent
