// Artifact download: streamed into a *.part file while hashing, verified
// against the release's sha256 and size before anything opens it.
#ifndef FLEET_AGENT_FETCH_H_
#define FLEET_AGENT_FETCH_H_

#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include "absl/status/status.h"
#include "fleet/v1/agent.grpc.pb.h"
#include "fleet/v1/types.pb.h"

namespace fleet::agent {

class ArtifactSource {
 public:
  virtual ~ArtifactSource() = default;
  // Downloads the artifact of `release` into `part_path`, resuming from the
  // bytes already there. On OK the file is complete and its sha256 and size
  // match the release. On a mismatch returns DataLoss ("artifact sha256
  // mismatch for web@v2: expected 3fa9…, got 01bc…") and removes the file.
  // On any other failure the file may hold part of the artifact; the
  // caller removes it (Deployer does, so a full disk never stays full). A
  // full disk is ResourceExhausted. The file is created 0600.
  virtual absl::Status Fetch(const fleet::v1::Release& release, const std::string& part_path) = 0;
};

// Fetches from the controller's AgentService.FetchArtifact. A broken stream
// is resumed from the current offset, a few times.
class GrpcArtifactSource : public ArtifactSource {
 public:
  GrpcArtifactSource(std::shared_ptr<grpc::Channel> channel, std::string host_id)
      : stub_(fleet::v1::AgentService::NewStub(channel)), host_id_(std::move(host_id)) {}
  absl::Status Fetch(const fleet::v1::Release& release, const std::string& part_path) override;

 private:
  std::unique_ptr<fleet::v1::AgentService::Stub> stub_;
  std::string host_id_;
};

// Checks size and sha256 of a downloaded file against the release; removes
// the file and returns DataLoss when they differ.
absl::Status VerifyArtifact(const fleet::v1::Release& release, const std::string& path);

}  // namespace fleet::agent

#endif  // FLEET_AGENT_FETCH_H_
