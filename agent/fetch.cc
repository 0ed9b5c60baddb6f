#include "agent/fetch.h"

#include <sys/stat.h>

#include <fstream>

#include <grpcpp/client_context.h>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status.h"
#include "common/logging.h"

namespace fleet::agent {
namespace {

constexpr int kMaxAttempts = 4;

std::string Short(const std::string& sha) { return sha.substr(0, 12) + "…"; }

int64_t FileSize(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_size;
}

}  // namespace

absl::Status VerifyArtifact(const fleet::v1::Release& release, const std::string& path) {
  std::string label = absl::StrCat(release.app(), "@", release.version());
  int64_t size = FileSize(path);
  if (size != release.size()) {
    std::remove(path.c_str());
    return absl::DataLossError(absl::StrCat("artifact size mismatch for ", label, ": expected ",
                                            release.size(), " bytes, got ", size));
  }
  auto sha = Sha256File(path);
  if (!sha.ok()) return sha.status();
  if (*sha != release.sha256()) {
    std::remove(path.c_str());
    return absl::DataLossError(absl::StrCat("artifact sha256 mismatch for ", label, ": expected ",
                                            Short(release.sha256()), ", got ", Short(*sha)));
  }
  return absl::OkStatus();
}

absl::Status GrpcArtifactSource::Fetch(const fleet::v1::Release& release,
                                       const std::string& part_path) {
  std::string label = absl::StrCat(release.app(), "@", release.version());
  absl::Status last;
  for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    int64_t offset = FileSize(part_path);
    if (offset > release.size()) {
      std::remove(part_path.c_str());
      offset = 0;
    }
    if (offset == release.size()) break;
    std::ofstream out(part_path, std::ios::binary | std::ios::app);
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", part_path));

    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
    fleet::v1::FetchArtifactRequest req;
    req.set_sha256(release.sha256());
    req.set_offset(offset);
    req.set_host_id(host_id_);
    auto reader = stub_->FetchArtifact(&ctx, req);
    fleet::v1::ArtifactChunk chunk;
    while (reader->Read(&chunk)) {
      out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
      if (!out) return absl::InternalError(absl::StrCat("cannot write ", part_path));
    }
    out.flush();
    out.close();
    grpc::Status status = reader->Finish();
    if (status.ok()) break;
    last = Annotate(FromGrpcStatus(status), absl::StrCat("cannot download ", label));
    if (status.error_code() == grpc::StatusCode::NOT_FOUND ||
        status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      return last;
    }
    spdlog::warn("{} (attempt {}/{}), resuming", last.message(), attempt, kMaxAttempts);
    if (attempt == kMaxAttempts) return last;
  }
  return VerifyArtifact(release, part_path);
}

}  // namespace fleet::agent
