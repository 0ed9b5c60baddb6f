#include "common/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_env.h"

namespace fleet {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

ProcessResult MustRun(const ProcessSpec& spec) {
  absl::StatusOr<ProcessResult> result = DefaultProcessRunner()->Run(spec);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : ProcessResult();
}

ProcessResult MustRun(const std::string& command) {
  ProcessSpec spec;
  spec.command = command;
  return MustRun(spec);
}

// Whether `pid` is a live process; a zombie counts as gone (in a container
// nobody may reap orphans).
bool Alive(pid_t pid) {
  std::string stat;
  FILE* f = fopen(absl::StrCat("/proc/", pid, "/stat").c_str(), "r");
  if (f == nullptr) return false;
  char buf[512];
  size_t n = fread(buf, 1, sizeof(buf), f);
  fclose(f);
  stat.assign(buf, n);
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

pid_t ReadPid(const std::string& path) {
  int pid = 0;
  std::string text = fleet::testing::ReadTextFile(path);
  EXPECT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid)) << text;
  return pid;
}

TEST(PosixProcessRunnerTest, Run_ReportsExitCode) {
  ProcessResult result = MustRun("exit 3");
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.signal, 0);
  EXPECT_FALSE(result.timed_out);
  EXPECT_FALSE(result.ok());
}

TEST(PosixProcessRunnerTest, Run_SucceedsWithStatusZero) {
  ProcessResult result = MustRun("true");
  EXPECT_TRUE(result.ok());
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, "");
}

TEST(PosixProcessRunnerTest, Run_CapturesStdoutAndStderrInOrder) {
  ProcessResult result = MustRun("echo out; echo err >&2; echo again");
  EXPECT_EQ(result.output, "out\nerr\nagain\n");
}

TEST(PosixProcessRunnerTest, Run_KeepsFirstFourAndLastSixtyKiBOfLongOutput) {
  // 6 + 100000 + 1 + 4 = 100011 bytes: 100011 - 65536 = 34475 left out.
  ProcessResult result =
      MustRun("echo FIRST; head -c 100000 /dev/zero | tr '\\0' a; echo; echo END");

  const std::string cut = "\n[... 34475 bytes of output not kept ...]\n";
  ASSERT_EQ(result.output.size(), 64u * 1024 + cut.size());
  EXPECT_EQ(result.output.substr(0, 6), "FIRST\n");
  EXPECT_EQ(result.output.substr(4096, cut.size()), cut);
  EXPECT_EQ(result.output.substr(result.output.size() - 8), "aaa\nEND\n");
}

TEST(PosixProcessRunnerTest, Run_KeepsOutputUpTo64KiBWhole) {
  ProcessResult result = MustRun("head -c 65536 /dev/zero | tr '\\0' a");
  EXPECT_EQ(result.output, std::string(65536, 'a'));
}

TEST(PosixProcessRunnerTest, Run_GivesMinimalEnvironmentPlusSpecEnv) {
  ASSERT_EQ(setenv("FLEET_PROCESS_TEST_LEAK", "leaked", 1), 0);
  ProcessSpec spec;
  spec.command = "echo \"$FOO|$PATH|$LANG|${HOME:+home}|${FLEET_PROCESS_TEST_LEAK:-absent}\"";
  spec.env = {{"FOO", "bar baz"}};
  ProcessResult result = MustRun(spec);
  unsetenv("FLEET_PROCESS_TEST_LEAK");
  EXPECT_EQ(result.output,
            "bar baz|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|C.UTF-8|home|"
            "absent\n");
}

TEST(PosixProcessRunnerTest, Run_SpecEnvOverridesBase) {
  ProcessSpec spec;
  spec.command = "echo \"$PATH|$LANG\"";
  spec.env = {{"PATH", "/bin"}, {"LANG", "C"}};
  EXPECT_EQ(MustRun(spec).output, "/bin|C\n");
}

TEST(PosixProcessRunnerTest, Run_RunsInCwd) {
  fleet::testing::TempDir dir;
  fleet::testing::WriteTextFile(dir.Sub("marker"), "here\n");
  ProcessSpec spec;
  spec.command = "cat marker";
  spec.cwd = dir.path();
  EXPECT_EQ(MustRun(spec).output, "here\n");
}

TEST(PosixProcessRunnerTest, Run_FailsToStartInMissingCwd) {
  fleet::testing::TempDir dir;
  ProcessSpec spec;
  spec.command = "true";
  spec.cwd = dir.Sub("missing");
  absl::StatusOr<ProcessResult> result = DefaultProcessRunner()->Run(spec);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(result.status().message(),
            absl::StrCat("cannot run 'true': chdir to ", dir.Sub("missing"),
                         ": No such file or directory"));
}

TEST(PosixProcessRunnerTest, Run_RejectsNonPositiveTimeout) {
  ProcessSpec spec;
  spec.command = "true";
  spec.timeout = absl::ZeroDuration();
  absl::StatusOr<ProcessResult> result = DefaultProcessRunner()->Run(spec);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PosixProcessRunnerTest, Run_GivesEmptyStdin) {
  ProcessSpec spec;
  spec.command = "cat";
  spec.timeout = absl::Seconds(5);
  ProcessResult result = MustRun(spec);
  EXPECT_TRUE(result.ok()) << result.Describe();
  EXPECT_EQ(result.output, "");
}

TEST(PosixProcessRunnerTest, Run_DoesNotLeakDescriptorsIntoCommand) {
  // Opened without O_CLOEXEC, as careless code in another thread might.
  int fd = open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(dup2(fd, 57), 57);
  close(fd);
  ProcessResult result = MustRun("test -e /proc/self/fd/57 && echo leaked || echo clean");
  close(57);
  EXPECT_EQ(result.output, "clean\n");
}

TEST(PosixProcessRunnerTest, Run_ReportsKillingSignal) {
  ProcessResult result = MustRun("echo dying; kill -9 $$");
  EXPECT_EQ(result.signal, SIGKILL);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.Describe(), "killed by signal 9: dying");
}

TEST(PosixProcessRunnerTest, Run_StartsCommandWithDefaultSignalHandling) {
  // The test process ignores SIGTERM; the command must not inherit that.
  struct sigaction ignore {};
  struct sigaction old {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGTERM, &ignore, &old), 0);
  ProcessResult result = MustRun("kill -TERM $$; sleep 5");
  sigaction(SIGTERM, &old, nullptr);
  EXPECT_EQ(result.signal, SIGTERM);
}

TEST(PosixProcessRunnerTest, Run_TimeoutKillsWholeProcessGroup) {
  fleet::testing::TempDir dir;
  ProcessSpec spec;
  // The grandchild would outlive a kill of the shell alone.
  spec.command = absl::StrCat("sleep 30 & echo $! > ", dir.Sub("pid"), "; echo started; sleep 30");
  spec.timeout = absl::Milliseconds(300);
  absl::Time start = absl::Now();
  ProcessResult result = MustRun(spec);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(result.timed_out);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.output, "started\n");
  EXPECT_EQ(result.Describe(), "timed out after 300ms: started");
  pid_t grandchild = ReadPid(dir.Sub("pid"));
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(fleet::testing::WaitFor([&] { return !Alive(grandchild); }, absl::Seconds(5)))
      << "background sleep " << grandchild << " survived the timeout";
}

TEST(PosixProcessRunnerTest, Run_DoesNotWaitForBackgroundDaemon) {
  fleet::testing::TempDir dir;
  ProcessSpec spec;
  // The daemon keeps stdout and stderr open, as a service started by a
  // reload does; with a pipe for output this would hang for 30 s.
  spec.command = absl::StrCat("sleep 30 & echo $! > ", dir.Sub("pid"), "; echo started");
  spec.timeout = absl::Seconds(20);
  absl::Time start = absl::Now();
  ProcessResult result = MustRun(spec);
  absl::Duration took = absl::Now() - start;
  pid_t daemon = ReadPid(dir.Sub("pid"));
  EXPECT_TRUE(Alive(daemon));
  if (daemon > 0) kill(daemon, SIGKILL);
  EXPECT_LT(took, absl::Seconds(2));
  EXPECT_TRUE(result.ok()) << result.Describe();
  EXPECT_EQ(result.output, "started\n");
}

TEST(PosixProcessRunnerTest, Run_ReturnsQuicklyForShortCommand) {
  ProcessResult result = MustRun("true");
  EXPECT_LT(result.elapsed, absl::Milliseconds(500));
}

TEST(PosixProcessRunnerTest, Run_IsSafeFromSeveralThreads) {
  constexpr int kThreads = 6;
  constexpr int kRuns = 15;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &wrong] {
      for (int i = 0; i < kRuns; ++i) {
        ProcessSpec spec;
        spec.command = "echo \"$N\"; exit $((N % 7))";
        spec.env = {{"N", absl::StrCat(t * 100 + i)}};
        absl::StatusOr<ProcessResult> result = DefaultProcessRunner()->Run(spec);
        if (!result.ok() || result->output != absl::StrCat(t * 100 + i, "\n") ||
            result->exit_code != (t * 100 + i) % 7) {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(ProcessResultTest, Describe_NamesStatusAndLastNonEmptyLine) {
  ProcessResult result;
  result.exit_code = 3;
  result.output = "first\n  second line  \n\n  \n";
  EXPECT_EQ(result.Describe(), "exited with status 3: second line");
}

TEST(ProcessResultTest, Describe_NamesTheFirstLineThatReadsLikeTheCauseAndTheLast) {
  ProcessResult result;
  result.exit_code = 1;
  result.output =
      "connecting to db\nFATAL: password authentication failed for user \"app\"\nretrying\n"
      "see /var/log/db for details\n";
  EXPECT_EQ(result.Describe(),
            "exited with status 1: FATAL: password authentication failed for user \"app\" "
            "(last line: see /var/log/db for details)");
  result.output = "starting\nError: port 8080 in use\n";  // the cause is the last line
  EXPECT_EQ(result.Describe(), "exited with status 1: Error: port 8080 in use");
}

TEST(ProcessResultTest, Describe_OmitsColonWithoutOutput) {
  ProcessResult result;
  result.exit_code = 1;
  EXPECT_EQ(result.Describe(), "exited with status 1");
  result.exit_code = -1;
  result.signal = 9;
  EXPECT_EQ(result.Describe(), "killed by signal 9");
}

TEST(ProcessResultTest, Describe_NamesTimeout) {
  ProcessResult result;
  result.timed_out = true;
  result.signal = 0;
  result.elapsed = absl::Seconds(2);
  EXPECT_EQ(result.Describe(), "timed out after 2s");
}

TEST(ProcessResultTest, Describe_CutsLongLineAndControlCharacters) {
  ProcessResult result;
  result.exit_code = 2;
  result.output = std::string("progress 10%\rtab\there ") + std::string(500, 'x') + "\n";
  std::string text = result.Describe();
  EXPECT_THAT(text, ::testing::StartsWith("exited with status 2: tab here xxx"));
  EXPECT_THAT(text, EndsWith("x..."));
  EXPECT_EQ(text.size(), std::string("exited with status 2: ").size() + 200 + 3);
}

TEST(ProcessResultTest, Describe_DoesNotSplitUtf8Character) {
  ProcessResult result;
  result.exit_code = 1;
  // 199 ASCII bytes then a 2-byte character straddling the 200-byte cut.
  result.output = std::string(199, 'a') + "\xc3\xa9" + "tail";
  EXPECT_EQ(result.Describe(), "exited with status 1: " + std::string(199, 'a') + "...");
}

// Switching users needs root; CI runs the tests as root.
#define FLEET_REQUIRE_ROOT()                                      \
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users"

TEST(LookupUserTest, FindsUidGidGroupsAndHomeOfAUser) {
  absl::StatusOr<RunAs> nobody = LookupUser("nobody");
  ASSERT_TRUE(nobody.ok()) << nobody.status();
  EXPECT_EQ(nobody->user, "nobody");
  EXPECT_EQ(nobody->uid, 65534u);
  EXPECT_FALSE(nobody->groups.empty());
}

TEST(LookupUserTest, UnknownUserIsNotFound) {
  absl::StatusOr<RunAs> missing = LookupUser("fleet-no-such-user");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("user 'fleet-no-such-user' does not exist on this host"));
}

TEST(PosixProcessRunnerTest, RunAs_RunsWithTheUsersIdsGroupsAndEnvironment) {
  FLEET_REQUIRE_ROOT();
  absl::StatusOr<RunAs> nobody = LookupUser("nobody");
  ASSERT_TRUE(nobody.ok()) << nobody.status();
  ProcessSpec spec;
  spec.command = "echo $(id -u) $(id -g) \"$(id -G)\" $USER $LOGNAME $HOME";
  spec.run_as = *nobody;
  ProcessResult result = MustRun(spec);
  ASSERT_TRUE(result.ok()) << result.Describe();
  std::string groups;
  for (gid_t gid : nobody->groups) absl::StrAppend(&groups, groups.empty() ? "" : " ", gid);
  // The shell's quotes keep several groups one word; echo prints them bare.
  EXPECT_EQ(result.output, absl::StrCat(nobody->uid, " ", nobody->gid, " ", groups,
                                        " nobody nobody ", nobody->home, "\n"));
}

TEST(PosixProcessRunnerTest, RunAs_CannotReadWhatOnlyRootMayRead) {
  FLEET_REQUIRE_ROOT();
  fleet::testing::TempDir dir;
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
  std::string secret = dir.Sub("secret");
  fleet::testing::WriteTextFile(secret, "root only\n");
  ASSERT_EQ(chmod(secret.c_str(), 0600), 0);
  ProcessSpec spec;
  spec.command = "cat secret";
  spec.cwd = dir.path();
  EXPECT_TRUE(MustRun(spec).ok());  // as root
  spec.run_as = LookupUser("nobody").value();
  ProcessResult result = MustRun(spec);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("Permission denied"));
}

TEST(PosixProcessRunnerTest, RunAs_EntersTheWorkingDirectoryBeforeDroppingPrivileges) {
  FLEET_REQUIRE_ROOT();
  // Test dirs are 0700 and root's: the user could not walk into them, as
  // with an apps root only root may traverse. The cwd still works.
  fleet::testing::TempDir dir;
  ASSERT_EQ(mkdir(dir.Sub("release").c_str(), 0755), 0);
  ProcessSpec spec;
  spec.command = "pwd";
  spec.cwd = dir.Sub("release");
  spec.run_as = LookupUser("nobody").value();
  ProcessResult result = MustRun(spec);
  EXPECT_TRUE(result.ok()) << result.Describe();
}

// The switch happens in the vforked child by raw system calls: libc's
// wrappers would change every thread of the calling process, the agent.
TEST(PosixProcessRunnerTest, RunAs_LeavesTheCallerAndItsOtherThreadsRoot) {
  FLEET_REQUIRE_ROOT();
  std::atomic<bool> stop{false};
  std::thread other([&stop] {
    while (!stop.load()) usleep(1000);
  });
  ProcessSpec spec;
  spec.command = "id -u";
  spec.run_as = LookupUser("nobody").value();
  ProcessResult result = MustRun(spec);
  EXPECT_EQ(result.output, "65534\n");

  EXPECT_EQ(getuid(), 0u);
  EXPECT_EQ(geteuid(), 0u);
  EXPECT_EQ(getegid(), 0u);
  // Every thread's credentials, as the kernel keeps them per thread.
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::string status = fleet::testing::ReadTextFile(task.path().string() + "/status");
    EXPECT_THAT(status, HasSubstr("\nUid:\t0\t0\t0\t0\n")) << task.path();
    EXPECT_THAT(status, HasSubstr("\nGid:\t0\t0\t0\t0\n")) << task.path();
  }
  stop = true;
  other.join();
}

TEST(PosixProcessRunnerTest, RunAs_FailsToStartWhenTheSwitchIsRefused) {
  if (geteuid() == 0) GTEST_SKIP() << "root may switch to any user";
  ProcessSpec spec;
  spec.command = "true";
  spec.run_as = LookupUser("nobody").value();
  absl::StatusOr<ProcessResult> result = DefaultProcessRunner()->Run(spec);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(result.status().message(), HasSubstr("cannot switch to user 'nobody'"));
}

}  // namespace
}  // namespace fleet
