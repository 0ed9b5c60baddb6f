#include "agent/fetch.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <grpcpp/client_context.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/backoff.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "common/status.h"
#include "common/logging.h"

namespace fleet::agent {
namespace {

// A broken download (controller restarting, connection reset under load) is
// resumed after a pause: about 15 s in all before the attempt fails.
constexpr int kMaxAttempts = 6;
constexpr Backoff kRetryPacing{absl::Milliseconds(500), absl::Seconds(8)};

std::string Short(const std::string& sha) { return sha.substr(0, 12) + "…"; }

int64_t FileSize(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_size;
}

// Compares what arrived with the release; on a mismatch removes the file.
absl::Status CheckArtifact(const fleet::v1::Release& release, int64_t size,
                           const std::string& sha, const std::string& path) {
  std::string label = absl::StrCat(release.app(), "@", release.version());
  absl::Status st;
  if (size != release.size()) {
    st = absl::DataLossError(absl::StrCat("artifact size mismatch for ", label, ": expected ",
                                          release.size(), " bytes, got ", size));
  } else if (sha != release.sha256()) {
    st = absl::DataLossError(absl::StrCat("artifact sha256 mismatch for ", label, ": expected ",
                                          Short(release.sha256()), ", got ", Short(sha)));
  }
  if (!st.ok()) std::remove(path.c_str());
  return st;
}

}  // namespace

absl::Status VerifyArtifact(const fleet::v1::Release& release, const std::string& path) {
  auto sha = Sha256File(path);
  if (!sha.ok()) return sha.status();
  return CheckArtifact(release, FileSize(path), *sha, path);
}

absl::Status GrpcArtifactSource::Fetch(const fleet::v1::Release& release,
                                       const std::string& part_path) {
  std::string label = absl::StrCat(release.app(), "@", release.version());
  // The hash covers what is already in the part file (an earlier attempt's
  // bytes) and then every chunk as it is written.
  Sha256 hash;
  int64_t offset = 0;
  {
    std::ifstream existing(part_path, std::ios::binary);
    std::string buf(1 << 16, '\0');
    while (existing && offset < release.size()) {
      existing.read(buf.data(), static_cast<std::streamsize>(
                                    std::min<int64_t>(buf.size(), release.size() - offset)));
      hash.Update(absl::string_view(buf.data(), static_cast<size_t>(existing.gcount())));
      offset += existing.gcount();
    }
  }
  if (FileSize(part_path) > offset && truncate(part_path.c_str(), offset) != 0) {
    return absl::InternalError(absl::StrCat("cannot truncate ", part_path));
  }
  absl::Status last;
  for (int attempt = 1; attempt <= kMaxAttempts && offset < release.size(); ++attempt) {
    // 0600: the state dir is the agent's alone.
    int fd = open(part_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", part_path));
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
    fleet::v1::FetchArtifactRequest req;
    req.set_sha256(release.sha256());
    req.set_offset(offset);
    req.set_host_id(host_id_);
    auto reader = stub_->FetchArtifact(&ctx, req);
    fleet::v1::ArtifactChunk chunk;
    while (reader->Read(&chunk)) {
      if (offset + static_cast<int64_t>(chunk.data().size()) > release.size()) {
        ctx.TryCancel();
        break;
      }
      if (absl::Status st = WriteFully(fd, chunk.data(), part_path); !st.ok()) {
        ctx.TryCancel();
        reader->Finish();
        close(fd);
        return st;
      }
      hash.Update(chunk.data());
      offset += static_cast<int64_t>(chunk.data().size());
    }
    grpc::Status status = reader->Finish();
    close(fd);
    if (status.ok() || offset >= release.size()) break;
    last = Annotate(FromGrpcStatus(status), absl::StrCat("cannot download ", label));
    if (status.error_code() == grpc::StatusCode::NOT_FOUND ||
        status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      return last;
    }
    if (attempt == kMaxAttempts) return last;
    absl::Duration pause = kRetryPacing.Delay(attempt - 1);
    spdlog::warn("{} (attempt {}/{}), resuming at byte {} in {}", last.message(), attempt,
                 kMaxAttempts, offset, absl::FormatDuration(pause));
    absl::SleepFor(pause);
  }
  return CheckArtifact(release, offset, hash.HexDigest(), part_path);
}

}  // namespace fleet::agent
