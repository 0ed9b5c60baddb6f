// The catalog: what may be deployed. Applying app specs, pushing releases
// (artifacts) and pushing config releases, with the rules each write must
// pass; every write stores its row and its audit event in one transaction,
// after the blob it names is on disk. Versions are immutable: a push of
// content stored before under its version is answered with what is stored,
// a push of other content under a stored version is refused.
//
// Callers admit the caller first (api_access.h) and pass its actor; the
// catalog records it as written.
//
// Thread safety: every method may be called from any thread; concurrent
// pushes of one version are decided by the store (one wins, the other is
// answered as a re-push).
#ifndef FLEET_CONTROLLER_CATALOG_H_
#define FLEET_CONTROLLER_CATALOG_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "controller/blob_store.h"
#include "controller/store.h"
#include "fleet/v1/api.pb.h"
#include "fleet/v1/types.pb.h"

namespace fleet::controller {

// The largest artifact a push may announce.
inline constexpr int64_t kMaxArtifactBytes = 8ll << 30;

// One release push in progress; see Catalog::StartReleasePush. Not
// thread-safe: one upload stream feeds it.
class ReleaseUpload {
 public:
  virtual ~ReleaseUpload() = default;
  // Appends the next bytes of the artifact. InvalidArgument when the upload
  // grows beyond the size the header announced.
  virtual absl::Status Append(absl::string_view data) = 0;
  // Ends the upload and records the release: its artifact stored under its
  // sha256, then the release row and a "release.pushed" event. Returns the
  // release as stored. Refused, storing nothing:
  //  - InvalidArgument when fewer bytes arrived than announced;
  //  - DataLoss when the header announced another sha256;
  //  - AlreadyExists when the version is stored with other content or
  //    another signature (an identical re-push returns the stored release);
  //  - the error of VerifyReleaseSignature (common/signing.h) when the
  //    app's trusted keys, as they are now, do not accept the signature.
  //  - the error of CheckReleaseArchive (common/archive.h) when the
  //    artifact is not an archive agents can unpack within their caps.
  virtual absl::StatusOr<fleet::v1::Release> Finish() = 0;
};

class Catalog {
 public:
  // `store` and `blobs` are borrowed and must outlive the catalog.
  Catalog(Store* store, BlobStore* blobs) : store_(store), blobs_(blobs) {}
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  struct AppliedApp {
    fleet::v1::App app;  // as stored
    bool created = false;
  };
  // Parses and validates `spec_yaml` (ParseAppSpec; `source` names it in
  // errors and in the event) and stores it as the spec of the app it
  // names, creating the app when new, with an "app.created" or
  // "app.updated" event by `actor`. Refused with ParseAppSpec's
  // InvalidArgument, changing nothing, when the spec does not parse or
  // validate.
  absl::StatusOr<AppliedApp> ApplyApp(const std::string& spec_yaml, const std::string& source,
                                      const std::string& actor);

  // Starts a push of the release `header` announces, recorded as pushed by
  // header.actor(). Refused before any byte is uploaded, in this order:
  // NotFound for an unknown app; InvalidArgument for a version that is not
  // a safe name (common/fs.h IsSafeName), a size outside
  // 0..kMaxArtifactBytes, or a malformed signature; the error of
  // VerifyReleaseSignature when the header announces a sha256 and the app's
  // trusted keys do not accept its signature, or announces none and the
  // app requires a signature that the header lacks.
  absl::StatusOr<std::unique_ptr<ReleaseUpload>> StartReleasePush(
      const fleet::v1::PushReleaseHeader& header);

  struct PushedConfig {
    fleet::v1::ConfigRelease config;  // as stored; files without content
    bool created = false;             // false for a re-push of stored content
  };
  // Stores config release `version` of `app` made of `files` (the bundle as
  // a blob, then the row and a "config.pushed" event by `actor`). A push of
  // the files stored under `version` before is answered with that release
  // and created = false, whatever the app's spec says now, so a retried CI
  // job passes. Refused, storing nothing: NotFound for an unknown app;
  // AlreadyExists when `version` is stored with other files; CheckConfigPush's
  // InvalidArgument (common/config_bundle.h) for an invalid push.
  absl::StatusOr<PushedConfig> PushConfig(
      const std::string& app, const std::string& version,
      const google::protobuf::RepeatedPtrField<fleet::v1::ConfigFile>& files,
      const std::string& actor);

 private:
  Store* const store_;
  BlobStore* const blobs_;
};

}  // namespace fleet::controller

#endif  // FLEET_CONTROLLER_CATALOG_H_
