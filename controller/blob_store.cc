#include "controller/blob_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "common/status.h"

namespace fleet::controller {

absl::Status BlobStore::Init() {
  absl::Status st = MakeDirs(root_ + "/tmp");
  if (!st.ok()) return st;
  // Uploads interrupted by a crash leave temporary files; none is in use now.
  RemoveAll(root_ + "/tmp").IgnoreError();
  return MakeDirs(root_ + "/tmp");
}

std::string BlobStore::PathFor(const std::string& sha256) const {
  return absl::StrCat(root_, "/", sha256.substr(0, 2), "/", sha256);
}

bool BlobStore::Has(const std::string& sha256) const {
  return IsSha256Hex(sha256) && PathExists(PathFor(sha256));
}

absl::StatusOr<std::unique_ptr<BlobStore::Writer>> BlobStore::NewWriter(uint64_t expected_bytes) {
  FLEET_RETURN_IF_ERROR(CheckFreeSpace(root_, expected_bytes));
  static std::atomic<uint64_t> counter{0};
  std::string tmp = absl::StrCat(root_, "/tmp/upload-", getpid(), "-", counter++);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<Writer>(new Writer(this, tmp, fd));
}

BlobStore::Writer::~Writer() {
  if (fd_ >= 0) close(fd_);
  if (!committed_) unlink(tmp_path_.c_str());
}

absl::Status BlobStore::Writer::Append(absl::string_view data) {
  if (!sha256_.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("upload ", tmp_path_, " is sealed"));
  }
  hash_.Update(data);
  FLEET_RETURN_IF_ERROR(WriteFully(fd_, data, tmp_path_));
  size_ += data.size();
  return absl::OkStatus();
}

absl::StatusOr<std::string> BlobStore::Writer::Seal() {
  if (!sha256_.empty()) return sha256_;
  if (fsync(fd_) != 0) {
    return absl::InternalError(absl::StrCat("cannot fsync ", tmp_path_, ": ", std::strerror(errno)));
  }
  close(fd_);
  fd_ = -1;
  sha256_ = hash_.HexDigest();
  return sha256_;
}

absl::StatusOr<std::string> BlobStore::Writer::Commit() {
  absl::StatusOr<std::string> sealed = Seal();
  if (!sealed.ok()) return sealed.status();
  const std::string& sha = *sealed;
  std::string final_path = store_->PathFor(sha);
  std::string dir = final_path.substr(0, final_path.find_last_of('/'));
  absl::Status st = MakeDirs(dir);
  if (!st.ok()) return st;
  if (rename(tmp_path_.c_str(), final_path.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot move blob into ", final_path, ": ", std::strerror(errno)));
  }
  committed_ = true;
  st = FsyncDir(dir);
  if (!st.ok()) return st;
  return sha;
}

}  // namespace fleet::controller
