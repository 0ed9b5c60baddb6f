#include "agent/output_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <sstream>
#include <utility>

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/text.h"

namespace fleet::agent {

using fleet::v1::ActivationOutput;
using fleet::v1::CommandRun;

namespace {

std::string Delimited(const google::protobuf::Message& message) {
  std::ostringstream out;
  google::protobuf::util::SerializeDelimitedToOstream(message, &out);
  return out.str();
}

bool SameRun(const CommandRun& a, const CommandRun& b) {
  return a.ok() && b.ok() && a.step() == b.step() && a.command() == b.command() &&
         a.status() == b.status() && a.output() == b.output();
}

// Parses one activation file; a torn or unreadable record ends it.
std::optional<ActivationOutput> ParseFile(const std::string& content) {
  google::protobuf::io::ArrayInputStream input(content.data(), static_cast<int>(content.size()));
  ActivationOutput activation;
  bool clean_eof = false;
  if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&activation, &input,
                                                                &clean_eof)) {
    return std::nullopt;
  }
  for (;;) {
    CommandRun run;
    if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&run, &input, &clean_eof)) break;
    if (run.step().empty() && activation.runs_size() > 0) {  // a repeat record
      CommandRun* last = activation.mutable_runs(activation.runs_size() - 1);
      last->set_repeats(last->repeats() + 1);
      last->set_last_at_ms(run.last_at_ms());
      continue;
    }
    *activation.add_runs() = std::move(run);
  }
  return activation;
}

// Leaves out the output of the oldest runs until `activations` fit in
// `max_bytes`.
void FitInto(std::vector<ActivationOutput>* activations, int64_t max_bytes) {
  int64_t size = 0;
  for (const ActivationOutput& a : *activations) size += static_cast<int64_t>(a.ByteSizeLong());
  for (ActivationOutput& a : *activations) {
    for (CommandRun& run : *a.mutable_runs()) {
      if (size <= max_bytes) return;
      if (run.output().empty()) continue;
      const std::string note =
          absl::StrCat("[", run.output().size(), " bytes of output left out of this answer]\n");
      size -= static_cast<int64_t>(run.output().size()) - static_cast<int64_t>(note.size());
      run.set_output(note);
    }
  }
}

}  // namespace

ActivationRecorder::ActivationRecorder(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

ActivationRecorder::~ActivationRecorder() {
  if (fd_ >= 0) close(fd_);
}

void ActivationRecorder::Record(const CommandRun& given) {
  if (fd_ < 0) return;
  // Proto strings must be UTF-8; programs print what they like.
  CommandRun kept = given;
  for (std::string* text :
       {kept.mutable_step(), kept.mutable_command(), kept.mutable_status(), kept.mutable_output()}) {
    *text = ValidUtf8(*text);
  }
  if (last_ && SameRun(*last_, kept)) {
    CommandRun repeat;
    repeat.set_last_at_ms(kept.started_at_ms());
    Append(repeat);
    return;
  }
  if (bytes_ + static_cast<int64_t>(kept.output().size()) > OutputLog::kMaxFileBytes) {
    kept.set_output(absl::StrCat("[", kept.output().size(), " bytes of output not kept: this ",
                                 "activation's output reached ",
                                 FormatBytes(OutputLog::kMaxFileBytes), "]\n"));
  }
  if (Append(kept)) last_ = std::move(kept);
}

bool ActivationRecorder::Append(const CommandRun& record) {
  const std::string data = Delimited(record);
  absl::Status st = WriteFully(fd_, data, path_);
  if (!st.ok()) {
    spdlog::warn("cannot keep command output: {}", st.message());
    close(fd_);
    fd_ = -1;
    return false;
  }
  bytes_ += static_cast<int64_t>(data.size());
  return true;
}

std::vector<std::string> OutputLog::Files(const std::string& app) const {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(AppDir(app), ec)) {
    std::string name = entry.path().filename().string();
    if (!name.empty() && name[0] != '.') names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());  // zero-padded start times: oldest first
  return names;
}

std::unique_ptr<ActivationRecorder> OutputLog::Begin(const ActivationOutput& header) {
  absl::MutexLock lock(&mu_);
  const std::string dir = AppDir(header.app());
  absl::Status st = MakeDirs(dir, 0700);
  const std::string path =
      absl::StrFormat("%s/%013d-%s", dir, header.started_at_ms(),
                      absl::BytesToHexString(header.command_id()));
  int fd = -1;
  if (st.ok()) {
    fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) st = absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", path));
  }
  if (st.ok()) st = WriteFully(fd, Delimited(header), path);
  if (!st.ok()) {
    spdlog::warn("{}: command output of this activation is not kept: {}", header.app(),
                 st.message());
    if (fd >= 0) close(fd);
    return nullptr;
  }
  std::vector<std::string> files = Files(header.app());
  for (size_t i = 0; i + kKeepActivations < files.size(); ++i) {
    unlink((dir + "/" + files[i]).c_str());
  }
  return std::make_unique<ActivationRecorder>(path, fd);
}

absl::StatusOr<std::vector<ActivationOutput>> OutputLog::Read(const std::string& app,
                                                              const std::string& rollout_id,
                                                              int limit,
                                                              int64_t max_bytes) const {
  std::vector<ActivationOutput> out;
  std::vector<std::string> files = Files(app);
  for (auto it = files.rbegin(); it != files.rend() && static_cast<int>(out.size()) < limit;
       ++it) {
    absl::StatusOr<std::string> content = ReadFile(AppDir(app) + "/" + *it);
    if (!content.ok()) {
      if (absl::IsNotFound(content.status())) continue;  // removed by a newer Begin
      return content.status();
    }
    std::optional<ActivationOutput> activation = ParseFile(*content);
    if (!activation) continue;  // torn before its header was whole
    if (!rollout_id.empty() && activation->rollout_id() != rollout_id) continue;
    out.push_back(*std::move(activation));
  }
  std::reverse(out.begin(), out.end());
  if (max_bytes > 0) FitInto(&out, max_bytes);
  return out;
}

}  // namespace fleet::agent
