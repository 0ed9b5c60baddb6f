// Artifacts stored by sha256 under <data-dir>/blobs/<aa>/<sha256>.
#ifndef FLEET_CONTROLLER_BLOB_STORE_H_
#define FLEET_CONTROLLER_BLOB_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/sha256.h"

namespace fleet::controller {

class BlobStore {
 public:
  explicit BlobStore(std::string root) : root_(std::move(root)) {}

  // Creates the store's directories and removes uploads a crash left.
  absl::Status Init();
  std::string PathFor(const std::string& sha256) const;
  bool Has(const std::string& sha256) const;

  // Receives one upload: Append while data arrives, then Commit, which
  // fsyncs and renames the file into place under its sha256 and returns it.
  // Seal first tells the sha256 without storing the blob yet, so that a
  // caller can refuse an upload by its content. A Writer destroyed without
  // Commit removes its temporary file.
  class Writer {
   public:
    ~Writer();
    // FailedPrecondition once sealed.
    absl::Status Append(absl::string_view data);
    uint64_t size() const { return size_; }
    // Fsyncs the upload and returns its sha256; the blob is not in place
    // until Commit. Idempotent.
    absl::StatusOr<std::string> Seal();
    // Seals (unless sealed) and moves the blob into place. Returns its
    // sha256.
    absl::StatusOr<std::string> Commit();
    // The file being written, to read a sealed upload before Commit moves it.
    const std::string& path() const { return tmp_path_; }

   private:
    friend class BlobStore;
    Writer(BlobStore* store, std::string tmp_path, int fd)
        : store_(store), tmp_path_(std::move(tmp_path)), fd_(fd) {}
    BlobStore* store_;
    std::string tmp_path_;
    int fd_;
    uint64_t size_ = 0;
    Sha256 hash_;
    std::string sha256_;  // set by Seal
    bool committed_ = false;
  };
  // A writer for an upload of `expected_bytes` (0 when unknown).
  // ResourceExhausted, before anything is written, when the blob store's
  // disk has not that much free with a margin ("needs 1.2 GiB in
  // <data-dir>/blobs, 300.0 MiB free"). Blobs are 0600. Whatever way an
  // upload fails (the disk fills up anyway, the client goes away), the
  // Writer's destructor leaves no partial blob.
  absl::StatusOr<std::unique_ptr<Writer>> NewWriter(uint64_t expected_bytes = 0);

 private:
  std::string root_;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_BLOB_STORE_H_
