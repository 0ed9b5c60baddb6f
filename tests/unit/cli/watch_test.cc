// Following a rollout over WatchRollout against an in-process fake
// controller: merging updates, reconnecting through outages and restarts,
// what is printed, and the exit code of a finished rollout.
#include "cli/watch.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "cli/fleetctl.h"
#include "cli/rollout_stream.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_env.h"

namespace fleet::cli {
namespace {

using fleet::v1::HostTask;
using fleet::v1::Rollout;
using fleet::v1::RolloutUpdate;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

HostTask Task(const std::string& host, fleet::v1::TaskState state, const std::string& reason = "") {
  HostTask t;
  t.set_host_id(host);
  t.set_state(state);
  t.set_reason(reason);
  return t;
}

RolloutUpdate Update(bool snapshot, fleet::v1::RolloutState state, std::vector<HostTask> tasks) {
  RolloutUpdate u;
  u.set_snapshot(snapshot);
  Rollout* r = u.mutable_rollout();
  r->set_id("7");
  r->set_app("web");
  r->set_version("v2");
  r->set_from_version("v1");
  r->set_kind(fleet::v1::ROLLOUT_KIND_DEPLOY);
  r->set_state(state);
  r->mutable_plan()->add_waves()->set_target("100%");
  for (HostTask& t : tasks) *r->add_tasks() = std::move(t);
  return u;
}

RolloutUpdate Snapshot(fleet::v1::RolloutState state = fleet::v1::ROLLOUT_STATE_ACTIVATING) {
  return Update(true, state,
                {Task("web-01", fleet::v1::TASK_STATE_ACTIVATING),
                 Task("web-02", fleet::v1::TASK_STATE_STAGED)});
}

// One WatchRollout call of the fake: the updates it writes, then how it ends.
struct Script {
  std::vector<RolloutUpdate> updates;
  grpc::Status end;
  bool hold = false;  // after the updates, wait for the call to be cancelled
};

// Answers each WatchRollout call with the next script; the last one repeats.
class FakeController final : public fleet::v1::FleetService::Service {
 public:
  explicit FakeController(std::vector<Script> scripts) : scripts_(scripts.begin(), scripts.end()) {}

  grpc::Status WatchRollout(grpc::ServerContext* ctx, const fleet::v1::WatchRolloutRequest*,
                            grpc::ServerWriter<RolloutUpdate>* writer) override {
    Script script;
    {
      absl::MutexLock lock(&mu_);
      ++calls_;
      script = scripts_.front();
      if (scripts_.size() > 1) scripts_.pop_front();
    }
    for (const RolloutUpdate& u : script.updates) writer->Write(u);
    while (script.hold && !ctx->IsCancelled()) absl::SleepFor(absl::Milliseconds(10));
    return script.end;
  }

  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  absl::Mutex mu_;
  std::deque<Script> scripts_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

class WatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = fleet::testing::FreePort();
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials());
    stub_ = fleet::v1::FleetService::NewStub(channel_);
    policy_.initial_backoff = absl::Milliseconds(10);
    policy_.max_backoff = absl::Milliseconds(50);
    policy_.give_up_after = absl::Seconds(10);
  }
  void TearDown() override { StopServer(); }

  void Serve(std::vector<Script> scripts) {
    fake_ = std::make_unique<FakeController>(std::move(scripts));
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("127.0.0.1:", port_), grpc::InsecureServerCredentials());
    builder.RegisterService(fake_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void StopServer() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
    server_.reset();
  }

  static ContextFactory Contexts() {
    return [] { return std::make_unique<grpc::ClientContext>(); };
  }

  // Every event of `stream` up to and including kEnded.
  static std::vector<StreamEvent> Drain(RolloutStream* stream) {
    std::vector<StreamEvent> events;
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      std::optional<StreamEvent> e = stream->Next(absl::Milliseconds(100));
      if (!e) continue;
      events.push_back(*e);
      if (e->kind == StreamEvent::Kind::kEnded) break;
    }
    return events;
  }

  static std::vector<std::string> Kinds(const std::vector<StreamEvent>& events) {
    std::vector<std::string> out;
    for (const StreamEvent& e : events) {
      switch (e.kind) {
        case StreamEvent::Kind::kUpdate:
          out.push_back(e.update.snapshot() ? "snapshot" : "update");
          break;
        case StreamEvent::Kind::kReconnecting:
          out.push_back("reconnecting");
          break;
        case StreamEvent::Kind::kEnded:
          out.push_back(e.status.ok() ? "ended" : absl::StrCat("ended: ", e.status.ToString()));
          break;
      }
    }
    return out;
  }

  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<fleet::v1::FleetService::Stub> stub_;
  ReconnectPolicy policy_;
  std::unique_ptr<FakeController> fake_;
  std::unique_ptr<grpc::Server> server_;
};

TEST(FollowedRolloutTest, Apply_MergesOwnFieldsAndChangedTasksIntoTheSnapshot) {
  FollowedRollout followed;
  followed.Apply(Snapshot());
  RolloutUpdate delta = Update(false, fleet::v1::ROLLOUT_STATE_ROLLING_BACK,
                               {Task("web-02", fleet::v1::TASK_STATE_FAILED, "probe failed"),
                                Task("web-03", fleet::v1::TASK_STATE_PENDING)});
  delta.mutable_rollout()->set_reason("probe failed on web-02");
  followed.Apply(delta);
  const Rollout& r = followed.rollout();
  EXPECT_EQ(r.state(), fleet::v1::ROLLOUT_STATE_ROLLING_BACK);
  EXPECT_EQ(r.reason(), "probe failed on web-02");
  ASSERT_EQ(r.tasks_size(), 3);
  EXPECT_EQ(r.tasks(0).state(), fleet::v1::TASK_STATE_ACTIVATING);
  EXPECT_EQ(r.tasks(1).state(), fleet::v1::TASK_STATE_FAILED);
  EXPECT_EQ(r.tasks(2).host_id(), "web-03");

  // A new snapshot (after a reconnect) replaces everything.
  followed.Apply(Update(true, fleet::v1::ROLLOUT_STATE_ROLLED_BACK,
                        {Task("web-01", fleet::v1::TASK_STATE_REVERTED)}));
  EXPECT_EQ(followed.rollout().tasks_size(), 1);
  EXPECT_EQ(followed.rollout().state(), fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
}

TEST(ExitCodeTest, ExitCodeFor_ThreeOnlyWhenAHostMayStillRunTheNewRelease) {
  Rollout r = Snapshot(fleet::v1::ROLLOUT_STATE_SUCCEEDED).rollout();
  EXPECT_EQ(ExitCodeFor(r), kExitOk);

  r.set_state(fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
  r.mutable_tasks(0)->set_state(fleet::v1::TASK_STATE_REVERTED);
  r.mutable_tasks(1)->set_state(fleet::v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(ExitCodeFor(r), kExitRolledBack);

  // Every host failed and switched itself back, one never answered.
  r.mutable_tasks(0)->set_state(fleet::v1::TASK_STATE_FAILED);
  r.mutable_tasks(1)->set_state(fleet::v1::TASK_STATE_LOST);
  EXPECT_EQ(ExitCodeFor(r), kExitRollbackIncomplete);

  r.mutable_tasks(1)->set_state(fleet::v1::TASK_STATE_REVERT_FAILED);
  r.set_state(fleet::v1::ROLLOUT_STATE_FAILED);
  EXPECT_EQ(ExitCodeFor(r), kExitRollbackIncomplete);

  // A rollback whose hosts all failed went nowhere new; one that switched
  // some of them left the fleet split.
  r.set_kind(fleet::v1::ROLLOUT_KIND_ROLLBACK);
  r.mutable_tasks(1)->set_state(fleet::v1::TASK_STATE_FAILED);
  EXPECT_EQ(ExitCodeFor(r), kExitRolledBack);
  r.mutable_tasks(0)->set_state(fleet::v1::TASK_STATE_HEALTHY);
  EXPECT_EQ(ExitCodeFor(r), kExitRollbackIncomplete);

  // A deploy superseded by a rollback keeps its healthy tasks; the rollback
  // takes them back.
  r.set_kind(fleet::v1::ROLLOUT_KIND_DEPLOY);
  r.set_state(fleet::v1::ROLLOUT_STATE_ROLLED_BACK);
  r.mutable_tasks(1)->set_state(fleet::v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(ExitCodeFor(r), kExitRolledBack);
}

TEST_F(WatchTest, Stream_ReconnectsAfterUnavailableAndEndsAfterTheTerminalUpdate) {
  Serve({{{Snapshot()}, grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down")},
         {{Snapshot(), Update(false, fleet::v1::ROLLOUT_STATE_SUCCEEDED, {})}, grpc::Status::OK}});
  RolloutStream stream(stub_.get(), Contexts(), "7", policy_);
  std::vector<StreamEvent> events = Drain(&stream);
  EXPECT_THAT(Kinds(events),
              ElementsAre("snapshot", "reconnecting", "snapshot", "update", "ended"));
  EXPECT_EQ(events[1].status.message(), "shutting down");
}

TEST_F(WatchTest, Stream_CancelledCallIsAnOutageNotAnError) {
  Serve({{{}, grpc::Status(grpc::StatusCode::CANCELLED, "CANCELLED")},
         {{Snapshot(fleet::v1::ROLLOUT_STATE_SUCCEEDED)}, grpc::Status::OK}});
  RolloutStream stream(stub_.get(), Contexts(), "7", policy_);
  EXPECT_THAT(Kinds(Drain(&stream)), ElementsAre("reconnecting", "snapshot", "ended"));
}

TEST_F(WatchTest, Stream_SurvivesTheControllerGoingAwayAndComingBackOnItsPort) {
  Serve({{{Snapshot()}, grpc::Status::OK, /*hold=*/true}});
  RolloutStream stream(stub_.get(), Contexts(), "7", policy_);
  std::optional<StreamEvent> first = stream.Next(absl::Seconds(10));
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->update.snapshot());

  StopServer();
  std::optional<StreamEvent> lost = stream.Next(absl::Seconds(10));
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->kind, StreamEvent::Kind::kReconnecting);
  absl::SleepFor(absl::Milliseconds(300));  // a few failed calls while it is away
  Serve({{{Snapshot(fleet::v1::ROLLOUT_STATE_SUCCEEDED)}, grpc::Status::OK}});
  EXPECT_THAT(Kinds(Drain(&stream)), ElementsAre("snapshot", "ended"));
}

TEST_F(WatchTest, Stream_GivesUpWhenTheControllerStaysAwayNamingTheRollout) {
  policy_.give_up_after = absl::Milliseconds(300);
  RolloutStream stream(stub_.get(), Contexts(), "7", policy_);
  std::vector<StreamEvent> events = Drain(&stream);
  ASSERT_THAT(Kinds(events), ::testing::SizeIs(2));
  EXPECT_EQ(events[0].kind, StreamEvent::Kind::kReconnecting);
  EXPECT_EQ(events[1].status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(events[1].status.message(),
              HasSubstr("may still be running: follow it with fleetctl rollout watch 7"));
}

TEST_F(WatchTest, Stream_OtherErrorsEndItAtOnce) {
  Serve({{{}, grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown rollout '7'")}});
  RolloutStream stream(stub_.get(), Contexts(), "7", policy_);
  EXPECT_THAT(Kinds(Drain(&stream)), ElementsAre("ended: NOT_FOUND: unknown rollout '7'"));
  EXPECT_EQ(fake_->calls(), 1);
}

TEST_F(WatchTest, WatchRollout_JsonLinesPrintsEachUpdateOnALineOfItsOwn) {
  Serve({{{Snapshot(),
           Update(false, fleet::v1::ROLLOUT_STATE_ACTIVATING,
                  {Task("web-02", fleet::v1::TASK_STATE_ACTIVATING)}),
           Update(false, fleet::v1::ROLLOUT_STATE_SUCCEEDED,
                  {Task("web-01", fleet::v1::TASK_STATE_HEALTHY),
                   Task("web-02", fleet::v1::TASK_STATE_HEALTHY)})},
          grpc::Status::OK}});
  WatchOptions options;
  options.output = WatchOutput::kJsonLines;
  options.reconnect = policy_;
  std::ostringstream out, err;
  absl::StatusOr<Rollout> r = WatchRollout(stub_.get(), Contexts(), "7", options, out, err);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->state(), fleet::v1::ROLLOUT_STATE_SUCCEEDED);
  EXPECT_EQ(r->tasks_size(), 2);
  std::vector<std::string> lines = absl::StrSplit(out.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << out.str();
  EXPECT_THAT(lines[0], HasSubstr("\"snapshot\":true"));
  EXPECT_THAT(lines[2], HasSubstr("\"state\":\"succeeded\""));
  EXPECT_EQ(err.str(), "");
}

TEST_F(WatchTest, WatchRollout_TextLogsOneLinePerChangeAndSaysWhenItReconnects) {
  Serve({{{Snapshot()}, grpc::Status(grpc::StatusCode::UNAVAILABLE, "Socket closed")},
         {{Update(true, fleet::v1::ROLLOUT_STATE_ROLLING_BACK,
                  {Task("web-01", fleet::v1::TASK_STATE_FAILED, "/healthz returned 502"),
                   Task("web-02", fleet::v1::TASK_STATE_STAGED)}),
           Update(false, fleet::v1::ROLLOUT_STATE_ROLLED_BACK,
                  {Task("web-02", fleet::v1::TASK_STATE_CANCELLED)})},
          grpc::Status::OK}});
  WatchOptions options;
  options.reconnect = policy_;
  std::ostringstream out, err;
  absl::StatusOr<Rollout> r = WatchRollout(stub_.get(), Contexts(), "7", options, out, err);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ExitCodeFor(*r), kExitRolledBack);
  EXPECT_EQ(err.str(), "fleetctl: controller unavailable; reconnecting... (Socket closed)\n");
  const std::string text = out.str();
  EXPECT_THAT(text, HasSubstr("wave 1/1 100%"));
  EXPECT_THAT(text, HasSubstr("web-01  failed: /healthz returned 502\n"));
  EXPECT_THAT(text, HasSubstr("web-02  cancelled\n"));
  EXPECT_THAT(text, HasSubstr("rollout 7 rolled_back\n"));
  // web-02 was staged before and after the outage: told once; the header
  // once.
  EXPECT_THAT(text, HasSubstr("rollout 7 of web: v1 \u2192 v2 on 2 hosts\n"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 9) << text;
}

TEST_F(WatchTest, WatchRollout_ElapsedCountsFromTheRolloutsStartNotFromAttaching) {
  RolloutUpdate snapshot = Snapshot();
  // Started 90 s ago, finished 60 s after it started.
  const int64_t started = absl::ToUnixMillis(absl::Now() - absl::Seconds(90));
  snapshot.mutable_rollout()->set_created_at_ms(started);
  RolloutUpdate end = Update(false, fleet::v1::ROLLOUT_STATE_SUCCEEDED,
                             {Task("web-01", fleet::v1::TASK_STATE_HEALTHY)});
  end.mutable_rollout()->set_created_at_ms(started);
  end.mutable_rollout()->set_finished_at_ms(started + 60000);
  Serve({{{snapshot, end}, grpc::Status::OK}});
  WatchOptions options;
  options.reconnect = policy_;
  std::ostringstream out, err;
  ASSERT_TRUE(WatchRollout(stub_.get(), Contexts(), "7", options, out, err).ok());
  EXPECT_THAT(out.str(), HasSubstr(" 90."));  // the header, at attach time
  EXPECT_THAT(out.str(), HasSubstr(" 60.0s  rollout 7 succeeded\n")) << out.str();
}

TEST_F(WatchTest, WatchRollout_TextShowsThePromoteHintWhileWaitingAtAGate) {
  RolloutUpdate waiting = Update(false, fleet::v1::ROLLOUT_STATE_PAUSED,
                                 {Task("web-01", fleet::v1::TASK_STATE_HEALTHY)});
  waiting.mutable_rollout()->set_awaiting_promote(true);
  Serve({{{Snapshot(), waiting,
           Update(false, fleet::v1::ROLLOUT_STATE_SUCCEEDED,
                  {Task("web-02", fleet::v1::TASK_STATE_HEALTHY)})},
          grpc::Status::OK}});
  WatchOptions options;
  options.reconnect = policy_;
  std::ostringstream out, err;
  ASSERT_TRUE(WatchRollout(stub_.get(), Contexts(), "7", options, out, err).ok());
  EXPECT_THAT(out.str(),
              HasSubstr("rollout 7 paused (waiting for promote: run fleetctl rollout promote 7)\n"));
}

TEST_F(WatchTest, WatchRollout_TextMarksAHostThatDisconnectsAndComesBack) {
  // The stream stays open (hold) until the host list was asked about a few
  // times: web-02 away on the first answers, back after.
  Serve({{{Snapshot()}, grpc::Status::OK, /*hold=*/true}});
  std::atomic<int> asked{0};
  WatchOptions options;
  options.reconnect = policy_;
  options.reconnect.give_up_after = absl::Milliseconds(300);  // after the server stopped
  options.disconnected_hosts = [&]() -> absl::StatusOr<std::set<std::string>> {
    const int n = ++asked;
    if (n == 4) StopServer();
    if (n <= 2) return std::set<std::string>{"web-02", "other-host"};
    return std::set<std::string>{};
  };
  std::ostringstream out, err;
  (void)WatchRollout(stub_.get(), Contexts(), "7", options, out, err);
  const std::string text = out.str();
  EXPECT_THAT(text, HasSubstr("web-02  disconnected: its agent is gone; it fails after the host "
                              "timeout unless it returns\n"));
  EXPECT_THAT(text, HasSubstr("web-02  connected again\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("other-host")));
  EXPECT_EQ(text.find("web-01  disconnected"), std::string::npos);
}

}  // namespace
}  // namespace fleet::cli
