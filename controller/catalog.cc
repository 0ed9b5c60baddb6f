#include "controller/catalog.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/app_spec.h"
#include "common/archive.h"
#include "common/clock.h"
#include "common/config_bundle.h"
#include "common/event_kind.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/sha256.h"
#include "common/signing.h"
#include "common/status.h"

namespace fleet::controller {
namespace {

using fleet::v1::ConfigRelease;
using fleet::v1::Release;

std::string VersionLabel(absl::string_view app, absl::string_view version) {
  return absl::StrCat(app, "@", version);
}

fleet::v1::Event CatalogEvent(int64_t at_ms, const std::string& app, EventKind kind,
                              const std::string& actor, const std::string& message) {
  fleet::v1::Event e;
  e.set_at_ms(at_ms);
  e.set_app(app);
  e.set_kind(EventKindName(kind));
  e.set_actor(actor);
  e.set_message(message);
  return e;
}

// The release `header` announces, with the artifact's `sha256`.
Release Announced(const fleet::v1::PushReleaseHeader& header, const std::string& sha256) {
  Release release;
  release.set_app(header.app());
  release.set_version(header.version());
  release.set_sha256(sha256);
  release.set_size(header.size());
  release.set_signature(header.signature());
  return release;
}

// Answers a push of a release version that is stored: the stored release
// when the push carries the same artifact and signature, AlreadyExists
// otherwise.
absl::StatusOr<Release> SameReleaseOrRefuse(Release existing, const std::string& pushed_sha,
                                            const std::string& pushed_signature) {
  const std::string label = VersionLabel(existing.app(), existing.version());
  if (existing.sha256() == pushed_sha && existing.signature() == pushed_signature) {
    return existing;  // the same content again: nothing to do
  }
  // Keeping the stored signature would answer OK to a push whose signature
  // never took effect.
  if (existing.sha256() == pushed_sha) {
    return absl::AlreadyExistsError(
        absl::StrCat("release ", label, " exists already ",
                     existing.signature().empty() ? "unsigned" : "with another signature",
                     "; versions are immutable, push a new version"));
  }
  return absl::AlreadyExistsError(
      absl::StrCat("release ", label, " exists already with different content (sha256 ",
                   existing.sha256().substr(0, 12), "…, this upload ", pushed_sha.substr(0, 12),
                   "…); versions are immutable, push a new version"));
}

// Answers a push of a config version that is stored: the stored release
// when it carries the same files, AlreadyExists otherwise.
absl::StatusOr<Catalog::PushedConfig> SameConfigOrRefuse(ConfigRelease existing,
                                                         const std::string& pushed_sha) {
  if (existing.sha256() != pushed_sha) {
    return absl::AlreadyExistsError(absl::StrCat(
        "config ", existing.app(), "@", existing.version(), " exists with other content (sha256 ",
        existing.sha256().substr(0, 12), ", this push ", pushed_sha.substr(0, 12),
        "); push the change as a new version"));
  }
  return Catalog::PushedConfig{std::move(existing), /*created=*/false};
}

// The row of config release `version` of `app` whose bundle `bundle`
// serializes to `bytes`.
ConfigRelease ConfigRow(const std::string& app, const std::string& version,
                        const fleet::v1::ConfigBundle& bundle, const std::string& bytes,
                        const std::string& sha256, const std::string& actor) {
  ConfigRelease config;
  config.set_app(app);
  config.set_version(version);
  config.set_sha256(sha256);
  config.set_size(static_cast<int64_t>(bytes.size()));
  config.set_created_at_ms(NowMs());
  config.set_created_by(actor);
  for (const fleet::v1::ConfigFile& file : bundle.files()) {
    fleet::v1::ConfigFileInfo* info = config.add_files();
    info->set_path(file.path());
    info->set_mode(file.mode());
    info->set_size(static_cast<int64_t>(file.content().size()));
    info->set_secret(IsSecretPath(file.path()));
  }
  return config;
}

class BlobReleaseUpload final : public ReleaseUpload {
 public:
  BlobReleaseUpload(Store* store, fleet::v1::PushReleaseHeader header,
                    std::unique_ptr<BlobStore::Writer> writer)
      : store_(store), header_(std::move(header)), writer_(std::move(writer)) {}

  absl::Status Append(absl::string_view data) override {
    if (static_cast<int64_t>(writer_->size() + data.size()) > header_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("upload is larger than the announced ", header_.size(), " bytes"));
    }
    return writer_->Append(data);
  }

  absl::StatusOr<Release> Finish() override;

 private:
  // Stores `release`, whose artifact the writer holds, with its event.
  absl::StatusOr<Release> Record(Release release);

  Store* const store_;
  const fleet::v1::PushReleaseHeader header_;
  const std::unique_ptr<BlobStore::Writer> writer_;
};

absl::StatusOr<Release> BlobReleaseUpload::Finish() {
  const std::string label = VersionLabel(header_.app(), header_.version());
  if (static_cast<int64_t>(writer_->size()) != header_.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "upload of ", label, " ended after ", writer_->size(), " of ", header_.size(), " bytes"));
  }
  FLEET_ASSIGN_OR_RETURN(std::string sha, writer_->Seal());
  if (!header_.sha256().empty() && header_.sha256() != sha) {
    return absl::DataLossError(absl::StrCat("upload of ", label, " arrived with sha256 ", sha,
                                            ", not the announced ", header_.sha256()));
  }
  // What agents could not unpack is refused here, not by every host.
  FLEET_RETURN_IF_ERROR(CheckReleaseArchive(writer_->path(), absl::StrCat("the artifact of ", label)));
  absl::StatusOr<Release> existing = store_->GetRelease(header_.app(), header_.version());
  if (existing.ok()) return SameReleaseOrRefuse(*std::move(existing), sha, header_.signature());
  if (!absl::IsNotFound(existing.status())) return existing.status();

  Release release = Announced(header_, sha);
  release.set_created_at_ms(NowMs());
  release.set_created_by(header_.actor());
  *release.mutable_metadata() = header_.metadata();
  absl::StatusOr<Release> recorded = Record(release);
  if (absl::IsAlreadyExists(recorded.status())) {
    // Another push of this version won the race.
    FLEET_ASSIGN_OR_RETURN(Release other, store_->GetRelease(header_.app(), header_.version()));
    return SameReleaseOrRefuse(std::move(other), sha, header_.signature());
  }
  if (recorded.ok()) {
    spdlog::info("release {} pushed by {}: sha256 {}, {} bytes", label, header_.actor(), sha,
                 release.size());
  }
  return recorded;
}

absl::StatusOr<Release> BlobReleaseUpload::Record(Release release) {
  FLEET_ASSIGN_OR_RETURN(std::unique_ptr<StoreTransaction> txn, store_->Begin());
  // Against the spec as it is now, which may have changed during the
  // upload; the agents check again, with the spec they are sent.
  FLEET_ASSIGN_OR_RETURN(fleet::v1::App app, txn->GetApp(release.app()));
  FLEET_RETURN_IF_ERROR(VerifyReleaseSignature(release, app.spec().trusted_keys()));
  FLEET_RETURN_IF_ERROR(txn->InsertRelease(release));
  fleet::v1::Event e = CatalogEvent(
      release.created_at_ms(), release.app(), EventKind::kReleasePushed, header_.actor(),
      absl::StrCat(release.version(), " sha256 ", release.sha256(), " ", release.size(), " bytes"));
  FLEET_RETURN_IF_ERROR(txn->AddEvent(&e));
  // The blob before the row: a release row always has its artifact on disk.
  FLEET_RETURN_IF_ERROR(writer_->Commit().status());
  FLEET_RETURN_IF_ERROR(txn->Commit());
  return release;
}

}  // namespace

absl::StatusOr<Catalog::AppliedApp> Catalog::ApplyApp(const std::string& spec_yaml,
                                                      const std::string& source,
                                                      const std::string& actor) {
  FLEET_ASSIGN_OR_RETURN(fleet::v1::AppSpec spec, ParseAppSpec(spec_yaml, source));
  FLEET_ASSIGN_OR_RETURN(std::unique_ptr<StoreTransaction> txn, store_->Begin());
  AppliedApp applied;
  absl::StatusOr<fleet::v1::App> existing = txn->GetApp(spec.name());
  if (existing.ok()) {
    applied.app = *std::move(existing);
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  *applied.app.mutable_spec() = std::move(spec);
  applied.app.set_spec_yaml(spec_yaml);
  applied.app.set_updated_at_ms(NowMs());
  FLEET_RETURN_IF_ERROR(txn->UpsertApp(applied.app, &applied.created));
  fleet::v1::Event e =
      CatalogEvent(NowMs(), applied.app.spec().name(),
                   applied.created ? EventKind::kAppCreated : EventKind::kAppUpdated, actor,
                   absl::StrCat("spec applied from ", source));
  FLEET_RETURN_IF_ERROR(txn->AddEvent(&e));
  FLEET_RETURN_IF_ERROR(txn->Commit());
  return applied;
}

absl::StatusOr<std::unique_ptr<ReleaseUpload>> Catalog::StartReleasePush(
    const fleet::v1::PushReleaseHeader& header) {
  FLEET_ASSIGN_OR_RETURN(fleet::v1::App app, store_->GetApp(header.app()));
  if (!IsSafeName(header.version())) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid version '", header.version(),
                     "': use letters, digits, '.', '_' or '-', not starting with '.'"));
  }
  if (header.size() < 0 || header.size() > kMaxArtifactBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("artifact size ", header.size(), " is outside 0..", kMaxArtifactBytes));
  }
  // Refused before the upload starts, so nobody sends gigabytes to learn
  // that the signature is missing or made for something else.
  const std::string label = VersionLabel(header.app(), header.version());
  if (!header.signature().empty()) {
    FLEET_RETURN_IF_ERROR(CheckSignatureFormat(header.signature(), label));
  }
  if (!header.sha256().empty()) {
    FLEET_RETURN_IF_ERROR(
        VerifyReleaseSignature(Announced(header, header.sha256()), app.spec().trusted_keys()));
  } else if (app.spec().trusted_keys_size() > 0 && header.signature().empty()) {
    return VerifyReleaseSignature(Announced(header, ""), app.spec().trusted_keys());
  }
  FLEET_ASSIGN_OR_RETURN(std::unique_ptr<BlobStore::Writer> writer,
                         blobs_->NewWriter(static_cast<uint64_t>(header.size())));
  return std::make_unique<BlobReleaseUpload>(store_, header, std::move(writer));
}

absl::StatusOr<Catalog::PushedConfig> Catalog::PushConfig(
    const std::string& app, const std::string& version,
    const google::protobuf::RepeatedPtrField<fleet::v1::ConfigFile>& files,
    const std::string& actor) {
  FLEET_ASSIGN_OR_RETURN(fleet::v1::App stored_app, store_->GetApp(app));
  // The same files under a version pushed before are a no-op whatever the
  // spec says now, so a retried CI job passes; other files are refused.
  const fleet::v1::ConfigBundle bundle = SortedConfigBundle(files);
  const std::string bytes = SerializeConfigBundle(bundle);
  Sha256 pushed;
  pushed.Update(bytes);
  const std::string pushed_sha = pushed.HexDigest();
  absl::StatusOr<ConfigRelease> existing = store_->GetConfig(app, version);
  if (existing.ok()) return SameConfigOrRefuse(*std::move(existing), pushed_sha);
  if (!absl::IsNotFound(existing.status())) return existing.status();
  // CheckConfigPush returns this same bundle when the push is valid.
  FLEET_RETURN_IF_ERROR(CheckConfigPush(version, files, stored_app.spec(), {}).status());
  ConfigRelease config = ConfigRow(app, version, bundle, bytes, pushed_sha, actor);

  // The blob first: a config row always has its bundle on disk.
  FLEET_ASSIGN_OR_RETURN(std::unique_ptr<BlobStore::Writer> writer,
                         blobs_->NewWriter(bytes.size()));
  FLEET_RETURN_IF_ERROR(writer->Append(bytes));
  FLEET_ASSIGN_OR_RETURN(std::string stored, writer->Commit());
  if (stored != config.sha256()) {
    return absl::InternalError(
        absl::StrCat("config bundle stored as ", stored, ", expected ", config.sha256()));
  }
  int secrets = 0;
  for (const fleet::v1::ConfigFileInfo& info : config.files()) secrets += info.secret() ? 1 : 0;
  fleet::v1::Event e =
      CatalogEvent(config.created_at_ms(), app, EventKind::kConfigPushed, actor,
                   absl::StrCat("config ", version, ": ", config.files_size(), " files (", secrets,
                                " secret), sha256 ", config.sha256().substr(0, 12)));
  FLEET_ASSIGN_OR_RETURN(std::unique_ptr<StoreTransaction> txn, store_->Begin());
  absl::Status inserted = txn->InsertConfig(config);
  if (absl::IsAlreadyExists(inserted)) {
    // Another push of this version won the race.
    txn.reset();
    FLEET_ASSIGN_OR_RETURN(ConfigRelease other, store_->GetConfig(app, version));
    return SameConfigOrRefuse(std::move(other), config.sha256());
  }
  FLEET_RETURN_IF_ERROR(inserted);
  FLEET_RETURN_IF_ERROR(txn->AddEvent(&e));
  FLEET_RETURN_IF_ERROR(txn->Commit());
  spdlog::info("config {}@{} pushed by {}: {} files, {} bytes", app, version, actor,
               bundle.files_size(), bytes.size());
  return PushedConfig{std::move(config), /*created=*/true};
}

}  // namespace fleet::controller
