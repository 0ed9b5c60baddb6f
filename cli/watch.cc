#include "cli/watch.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cli/fleetctl.h"
#include "cli/output.h"
#include "cli/rollout_text.h"
#include "common/rollout_state.h"

namespace fleet::cli {
namespace {

using fleet::v1::Rollout;
using fleet::v1::RolloutUpdate;

// The live block is redrawn at most this often while updates pour in, and
// at least once a second for its clock.
constexpr absl::Duration kRedrawInterval = absl::Milliseconds(100);
constexpr absl::Duration kClockInterval = absl::Seconds(1);

constexpr absl::Duration kHostPollInterval = absl::Seconds(1);

std::string Elapsed(absl::Duration d) {
  return absl::StrFormat("%5.1fs", absl::ToDoubleSeconds(d));
}

// Time since the rollout started (until it finished), whenever the watch
// attached; since `attached` for a rollout without a start time.
absl::Duration SinceStart(const Rollout& r, absl::Time attached) {
  if (r.created_at_ms() <= 0) return absl::Now() - attached;
  const absl::Time end = IsTerminal(r.state()) && r.finished_at_ms() > 0
                             ? absl::FromUnixMillis(r.finished_at_ms())
                             : absl::Now();
  return std::max(absl::ZeroDuration(), end - absl::FromUnixMillis(r.created_at_ms()));
}

// "rollout 7 of web: v1 → v2"
std::string Header(const Rollout& r) {
  return absl::StrCat(KindName(r), " ", r.id(), " of ", r.app(), ": ", OrDash(r.from_version()),
                      " \u2192 ", r.version());
}

// The line for a host that went away or came back while the rollout runs.
std::string ConnectivityLine(const std::string& host, bool connected, bool color) {
  return connected ? absl::StrCat(host, "  ", Paint("connected", color), " again")
                   : absl::StrCat(host, "  ", Paint("disconnected", color),
                                  ": its agent is gone; it fails after the host timeout unless "
                                  "it returns");
}

// Shows the progress of a followed rollout.
class ProgressView {
 public:
  virtual ~ProgressView() = default;
  // `update` arrived; `r` is the whole rollout with it applied.
  virtual void Show(const Rollout& r, const RolloutUpdate& update, absl::Duration elapsed) = 0;
  // Nothing arrived for a while (kRedrawInterval).
  virtual void Tick(const Rollout& /*r*/, absl::Duration /*elapsed*/) {}
  // Something else was printed on the terminal (stderr).
  virtual void Interrupted() {}
  // Host `host` of the rollout disconnected, or came back.
  virtual void Connectivity(const std::string& /*host*/, bool /*connected*/,
                            absl::Duration /*elapsed*/) {}
};

// kText on a terminal: failures scroll above a block (the rollout and one
// line per wave) that is redrawn in place.
class LiveBlock final : public ProgressView {
 public:
  LiveBlock(std::ostream& out, bool color) : out_(out), color_(color) {}

  void Show(const Rollout& r, const RolloutUpdate& update, absl::Duration elapsed) override {
    for (const auto& t : update.rollout().tasks()) {
      fleet::v1::TaskState& seen = seen_[t.host_id()];
      if (seen == t.state()) continue;
      seen = t.state();
      if (!t.reason().empty()) {
        absl::StrAppend(&scroll_, Elapsed(elapsed), "  ", t.host_id(), "  ",
                        Paint(TaskStateName(t.state()), color_), ": ", t.reason(), "\n");
      }
    }
    dirty_ = true;
    if (IsTerminal(r.state()) || absl::Now() - drawn_at_ >= kRedrawInterval) Draw(r, elapsed);
  }

  void Tick(const Rollout& r, absl::Duration elapsed) override {
    if (dirty_ || absl::Now() - drawn_at_ >= kClockInterval) Draw(r, elapsed);
  }

  // The block stays where it is; the next one is drawn below.
  void Interrupted() override { drawn_lines_ = 0; }

  void Connectivity(const std::string& host, bool connected, absl::Duration elapsed) override {
    absl::StrAppend(&scroll_, Elapsed(elapsed), "  ", ConnectivityLine(host, connected, color_),
                    "\n");
    dirty_ = true;
  }

 private:
  void Draw(const Rollout& r, absl::Duration elapsed) {
    std::string text;
    for (int i = 0; i < drawn_lines_; ++i) text += "\033[1A\033[2K";
    text += scroll_;
    absl::StrAppend(&text, Header(r), "  ", Paint(RolloutStateName(r.state()), color_), "  ",
                    Elapsed(elapsed), "\n");
    drawn_lines_ = 1;
    if (r.awaiting_promote()) {
      absl::StrAppend(&text, PromoteHint(r), "\n");
      ++drawn_lines_;
    }
    const int waves = std::max(1, r.plan().waves_size());
    for (int w = 0; w < waves; ++w) absl::StrAppend(&text, WaveLine(r, w), "\n");
    drawn_lines_ += waves;
    if (IsTerminal(r.state()) && !r.reason().empty()) {
      absl::StrAppend(&text, "reason: ", r.reason(), "\n");
      ++drawn_lines_;
    }
    out_ << text << std::flush;
    scroll_.clear();
    dirty_ = false;
    drawn_at_ = absl::Now();
  }

  std::ostream& out_;
  const bool color_;
  std::map<std::string, fleet::v1::TaskState> seen_;
  std::string scroll_;  // lines to print above the next block
  int drawn_lines_ = 0;
  bool dirty_ = false;
  absl::Time drawn_at_ = absl::InfinitePast();
};

// kText elsewhere (CI logs): one line per change of a wave, a host or the
// rollout.
class LineLog final : public ProgressView {
 public:
  LineLog(std::ostream& out, bool color) : out_(out), color_(color) {}

  void Show(const Rollout& r, const RolloutUpdate& update, absl::Duration elapsed) override {
    const std::string at = Elapsed(elapsed);
    if (update.snapshot() && !headed_) {
      headed_ = true;
      out_ << at << "  " << Header(r) << " on " << r.tasks_size() << " hosts\n";
    }
    if (r.current_wave() != seen_wave_ && r.state() == fleet::v1::ROLLOUT_STATE_ACTIVATING) {
      seen_wave_ = r.current_wave();
      out_ << at << "  " << WaveLine(r, seen_wave_).substr(2) << "\n";
    }
    for (const auto& t : update.rollout().tasks()) {
      fleet::v1::TaskState& seen = seen_[t.host_id()];
      if (seen == t.state()) continue;
      seen = t.state();
      out_ << at << "  " << t.host_id() << "  " << Paint(TaskStateName(t.state()), color_);
      if (!t.reason().empty()) out_ << ": " << t.reason();
      out_ << "\n";
    }
    if (r.state() != seen_state_) {
      seen_state_ = r.state();
      out_ << at << "  " << KindName(r) << " " << r.id() << " "
           << Paint(RolloutStateName(r.state()), color_);
      if (r.awaiting_promote()) out_ << " (" << PromoteHint(r) << ")";
      if (!r.reason().empty()) out_ << ": " << r.reason();
      out_ << "\n";
    }
    out_.flush();
  }

  void Connectivity(const std::string& host, bool connected, absl::Duration elapsed) override {
    out_ << Elapsed(elapsed) << "  " << ConnectivityLine(host, connected, color_) << "\n"
         << std::flush;
  }

 private:
  std::ostream& out_;
  const bool color_;
  bool headed_ = false;
  std::map<std::string, fleet::v1::TaskState> seen_;
  fleet::v1::RolloutState seen_state_ = fleet::v1::ROLLOUT_STATE_UNSPECIFIED;
  int seen_wave_ = -1;
};

// kJsonLines: every update on a line of its own.
class JsonLines final : public ProgressView {
 public:
  explicit JsonLines(std::ostream& out) : out_(out) {}

  void Show(const Rollout&, const RolloutUpdate& update, absl::Duration) override {
    out_ << ToJson(update).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
         << "\n"
         << std::flush;
  }

 private:
  std::ostream& out_;
};

// kJson: nothing until the end.
class Quiet final : public ProgressView {
 public:
  void Show(const Rollout&, const RolloutUpdate&, absl::Duration) override {}
};

std::unique_ptr<ProgressView> MakeView(const WatchOptions& options, std::ostream& out) {
  switch (options.output) {
    case WatchOutput::kJson:
      return std::make_unique<Quiet>();
    case WatchOutput::kJsonLines:
      return std::make_unique<JsonLines>(out);
    case WatchOutput::kText:
      break;
  }
  if (options.terminal) return std::make_unique<LiveBlock>(out, options.color);
  return std::make_unique<LineLog>(out, options.color);
}


// Tells `view` about hosts of `r` that disconnected or came back since
// `away` was taken (and updates it).
void CheckConnectivity(const WatchOptions& options, const Rollout& r, absl::Duration elapsed,
                       ProgressView* view, std::set<std::string>* away) {
  absl::StatusOr<std::set<std::string>> now = options.disconnected_hosts();
  if (!now.ok()) return;
  for (const auto& t : r.tasks()) {
    const bool was_away = away->count(t.host_id()) > 0;
    const bool is_away = now->count(t.host_id()) > 0;
    if (was_away != is_away) view->Connectivity(t.host_id(), !is_away, elapsed);
  }
  *away = *std::move(now);
}

}  // namespace

absl::StatusOr<Rollout> WatchRollout(fleet::v1::FleetService::StubInterface* api,
                                     ContextFactory contexts, const std::string& id,
                                     const WatchOptions& options, std::ostream& out,
                                     std::ostream& err) {
  std::unique_ptr<ProgressView> view = MakeView(options, out);
  FollowedRollout followed;
  bool have_snapshot = false;
  const absl::Time attached = absl::Now();
  const bool poll_hosts = options.output == WatchOutput::kText && options.disconnected_hosts;
  std::set<std::string> away;  // hosts seen disconnected
  absl::Time polled = absl::InfinitePast();
  RolloutStream stream(api, std::move(contexts), id, options.reconnect);
  while (true) {
    std::optional<StreamEvent> event = stream.Next(kRedrawInterval);
    const Rollout& r = followed.rollout();
    if (poll_hosts && have_snapshot && !IsTerminal(r.state()) &&
        absl::Now() - polled >= kHostPollInterval) {
      polled = absl::Now();
      CheckConnectivity(options, r, SinceStart(r, attached), view.get(), &away);
    }
    if (!event) {
      if (have_snapshot) view->Tick(r, SinceStart(r, attached));
      continue;
    }
    switch (event->kind) {
      case StreamEvent::Kind::kUpdate:
        have_snapshot = have_snapshot || event->update.snapshot();
        followed.Apply(event->update);
        view->Show(followed.rollout(), event->update, SinceStart(followed.rollout(), attached));
        break;
      case StreamEvent::Kind::kReconnecting:
        err << "fleetctl: controller unavailable; reconnecting... (" << event->status.message()
            << ")\n"
            << std::flush;
        view->Interrupted();
        break;
      case StreamEvent::Kind::kEnded:
        if (!event->status.ok()) return event->status;
        return followed.rollout();
    }
  }
}

int ExitCodeFor(const Rollout& r) {
  if (r.state() == fleet::v1::ROLLOUT_STATE_SUCCEEDED) return kExitOk;
  const bool failed = r.state() == fleet::v1::ROLLOUT_STATE_FAILED;
  const bool rollback = r.kind() == fleet::v1::ROLLOUT_KIND_ROLLBACK;
  if (failed && !rollback) return kExitRollbackIncomplete;
  for (const auto& t : r.tasks()) {
    if (t.state() == fleet::v1::TASK_STATE_LOST ||
        t.state() == fleet::v1::TASK_STATE_REVERT_FAILED) {
      return kExitRollbackIncomplete;
    }
    // A rollback is not undone: its healthy hosts stay switched while the
    // others did not follow.
    if (failed && t.state() == fleet::v1::TASK_STATE_HEALTHY) return kExitRollbackIncomplete;
  }
  return kExitRolledBack;
}

}  // namespace fleet::cli
