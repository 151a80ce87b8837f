// containerd itself drives containerd-shim-fleetlet-v1: a private containerd whose PATH
// holds the freshly built shim, and `ctr run --runtime io.containerd.fleetlet.v1 --rootfs /`.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "os/child_process.h"
#include "os/unique_fd.h"
#include "shim/cgroup.h"
#include "support/private_containerd.h"
#include "support/require_root.h"
#include "support/temp_dir.h"
#include "support/test_images.h"
#include "ttrpc/client.h"
#include "ttrpc/socket.h"

namespace fleetlet::shim {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::PrivateContainerd;

constexpr const char* kRuntime = "io.containerd.fleetlet.v1";
constexpr const char* kNs = "shimtest";

std::string readFile(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Polls `ready` until it holds or `limit` passes (containerd acts asynchronously).
template <typename F>
bool eventually(F ready, std::chrono::milliseconds limit = 20s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return ready();
}

class ShimIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::isRoot()) return;
    // containerd finds containerd-shim-fleetlet-v1 on its PATH.
    std::string path = std::string(FLEETLET_SHIM_DIR) + ":" + std::getenv("PATH");
    ::setenv("PATH", path.c_str(), 1);
    auto containerd = PrivateContainerd::start();
    ASSERT_TRUE(containerd) << containerd.error().message();
    containerd_ = std::make_unique<PrivateContainerd>(std::move(*containerd));
    // watchEvents() labels the namespace to see its subscription work: it must exist.
    ASSERT_TRUE(containerd_->ctrOk({"namespaces", "create", kNs}, kNs));
  }
  static void TearDownTestSuite() {
    containerd_.reset();
    // The tasks' cgroups went with them; their namespace's parent stays (as runc's do).
    std::error_code ec;
    if (fs::exists("/sys/fs/cgroup")) {
      for (const auto& hierarchy : fs::directory_iterator("/sys/fs/cgroup", ec)) {
        ::rmdir((hierarchy.path() / kNs).c_str());
      }
      ::rmdir((fs::path("/sys/fs/cgroup") / kNs).c_str());
    }
  }
  void SetUp() override {
    FLEETLET_REQUIRE_ROOT();
    ASSERT_NE(containerd_, nullptr);
  }

  // `ctr <args>` in the test namespace, killed after 60 s.
  static CommandOutput ctr(std::vector<std::string> args) {
    std::vector<std::string> argv = {"ctr", "--address", containerd_->socket().string(), "-n", kNs};
    argv.insert(argv.end(), args.begin(), args.end());
    auto out = runCommand(RunOptions{.argv = argv, .timeout = 60s});
    EXPECT_TRUE(out) << out.error().message();
    return out ? *out : CommandOutput{};
  }

  // `ctr run [extra] --runtime fleetlet --rootfs / <id> <command...>`.
  static CommandOutput run(const std::string& id, std::vector<std::string> command,
                           std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"run"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"--runtime", kRuntime, "--rootfs", "/", id});
    args.insert(args.end(), command.begin(), command.end());
    return ctr(args);
  }

  // `ctr run --rm` of `command` with its output going to a binary:// logger that runs `script`
  // from `dir`; the logger's $2 (the URI's path argument) is dir/captured.
  static CommandOutput runWithLogger(const fs::path& dir, const std::string& script,
                                     const std::string& id, const std::string& command) {
    fs::path logger = dir / "logger.sh";
    std::ofstream(logger) << "#!/bin/sh\n" << script;
    fs::permissions(logger, fs::perms::owner_all);
    return run(id, {"/bin/sh", "-c", command},
               {"--rm", "--log-uri",
                "binary://" + logger.string() + "?path=" + (dir / "captured").string()});
  }

  // Native mode (a host binary, --rootfs /) or container mode (the busybox test image through
  // runc): the same checks run in both.
  enum class Mode : std::uint8_t { kNative, kContainer };

  // Imports the busybox test image once; its name for `ctr run`.
  static std::string containerImage() {
    static bool imported = false;
    if (!imported) {
      auto images = testing::TestImages::build();
      EXPECT_TRUE(images) << images.error().message();
      if (!images) return "";
      auto out = ctr({"images", "import", images->busyboxOciTar().string()});
      EXPECT_TRUE(out.status.success()) << out.err;
      imported = out.status.success();
    }
    return std::string(testing::TestImages::kBusyboxTarRef);
  }

  // `ctr run [extra] --runtime fleetlet` of `command`: on the host's root (native) or in the
  // busybox image (container).
  static CommandOutput runIn(Mode mode, const std::string& id, std::vector<std::string> command,
                             std::vector<std::string> extra = {}) {
    if (mode == Mode::kNative) return run(id, std::move(command), std::move(extra));
    std::vector<std::string> args = {"run"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"--runtime", kRuntime, containerImage(), id});
    args.insert(args.end(), command.begin(), command.end());
    return ctr(args);
  }

  // The line of `events` where `topic` is first published for container `id`; -1: never.
  static long eventLine(const std::string& events, const std::string& topic,
                        const std::string& id) {
    std::istringstream in(events);
    std::string line;
    for (long n = 0; std::getline(in, line); ++n) {
      if (line.find(topic) != std::string::npos &&
          line.find("\"container_id\":\"" + id + "\"") != std::string::npos) {
        return n;
      }
    }
    return -1;
  }

  static void expectCreateStartExitDeleteInOrder(Mode mode);
  static void expectAnOomEventWhenTheMemoryLimitIsHit(Mode mode);
  static void expectAKilledShimCleanedUpWithTheExitReported(Mode mode);
  static void expectTheTaskToSurviveAContainerdCrash(Mode mode);

  static std::string taskStatus(const std::string& id) {
    auto out = ctr({"task", "ls"});
    std::istringstream in(out.out);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string task, pid, status;
      fields >> task >> pid >> status;
      if (task == id) return status;
    }
    return "";
  }

  static fs::path bundle(const std::string& id) {
    return containerd_->dir() / "state" / "io.containerd.runtime.v2.task" / kNs / id;
  }

  // The pid of the shim serving `id`, from /proc.
  static pid_t shimPid(const std::string& id) {
    for (const auto& entry : fs::directory_iterator("/proc")) {
      std::string name = entry.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string cmdline = readFile(entry.path() / "cmdline");
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      if (cmdline.find("containerd-shim-fleetlet-v1") != std::string::npos &&
          cmdline.find(" -id " + id + " ") != std::string::npos &&
          cmdline.find(containerd_->socket().string()) != std::string::npos) {
        return std::stoi(name);
      }
    }
    return -1;
  }

  // `ctr events` into a file until destroyed.
  struct EventLog {
    fs::path file;
    std::unique_ptr<ChildProcess> process;
    std::string text() const { return readFile(file); }
  };
  static EventLog watchEvents(const std::string& name) {
    EventLog log{containerd_->dir() / (name + ".events"), nullptr};
    auto child = ChildProcess::spawn(
        SpawnOptions{.argv = {"ctr", "--address", containerd_->socket().string(), "events"},
                     .stdout_path = log.file,
                     .stderr_path = log.file});
    EXPECT_TRUE(child) << child.error().message();
    if (child) log.process = std::make_unique<ChildProcess>(std::move(*child));
    // ctr events subscribes asynchronously: label the namespace until the update shows up.
    for (int attempt = 0; attempt < 100; ++attempt) {
      std::string probe = name + "-" + std::to_string(attempt);
      EXPECT_TRUE(ctr({"namespaces", "label", kNs, "probe=" + probe}).status.success());
      if (eventually([&] { return log.text().find(probe) != std::string::npos; }, 200ms)) break;
    }
    return log;
  }

  // Runs the shim's `start` subcommand as containerd does, for a bundle of the test's own (ctr
  // cannot create a task without starting it, nor ask for ambient capabilities); events go
  // to the private containerd. Returns the shim's address, "" on failure.
  static std::string startOwnShim(const fs::path& bundle_dir, const std::string& id) {
    const std::string script =
        "cd \"$0\" && exec \"$1\" -namespace \"$2\" -address \"$3\" "
        "-publish-binary /bin/false -id \"$4\" start";
    auto started = runCommand(RunOptions{
        .argv = {"/bin/sh", "-c", script, bundle_dir.string(), std::string(FLEETLET_SHIM_BINARY),
                 kNs, containerd_->socket().string(), id},
        .env = {{"TTRPC_ADDRESS", containerd_->ttrpcSocket().string()}},
        .timeout = 30s});
    EXPECT_TRUE(started && started->status.success()) << (started ? started->err : "");
    return started && started->status.success() ? started->out : std::string();
  }
  static ttrpc::RpcResult<std::string> callShim(ttrpc::Client& client, const char* method,
                                                const google::protobuf::Message& request) {
    return client.call("containerd.task.v2.Task", method, request.SerializeAsString(),
                       {.metadata = {{"containerd-namespace-ttrpc", kNs}}, .timeout = 20s});
  }

  static std::unique_ptr<PrivateContainerd> containerd_;
};

std::unique_ptr<PrivateContainerd> ShimIntegrationTest::containerd_;

TEST_F(ShimIntegrationTest, RunPrintsOutputAndReturnsTheExitCode) {
  std::string id = PrivateContainerd::uniqueId("shim-run");
  auto out = run(id, {"/bin/sh", "-c", "echo hello native; echo oops >&2; exit 7"}, {"--rm"});
  EXPECT_EQ(out.status.exit_code, 7) << out.err;
  EXPECT_EQ(out.out, "hello native\n");
  EXPECT_NE(out.err.find("oops"), std::string::npos) << out.err;
  // --rm deleted the task and the container; the shim went away with them.
  EXPECT_TRUE(eventually([&] { return shimPid(id) < 0; }));
}

void ShimIntegrationTest::expectCreateStartExitDeleteInOrder(Mode mode) {
  auto events = watchEvents(mode == Mode::kNative ? "order" : "order-container");
  std::string id = PrivateContainerd::uniqueId("shim-order");
  auto out = runIn(mode, id, {"/bin/true"}, {"--rm"});
  ASSERT_EQ(out.status.exit_code, 0) << out.err;
  auto position = [&](const std::string& topic) { return eventLine(events.text(), topic, id); };
  ASSERT_TRUE(eventually([&] { return position("/tasks/delete") >= 0; })) << events.text();
  long create = position("/tasks/create"), start = position("/tasks/start"),
       exit = position("/tasks/exit"), del = position("/tasks/delete");
  EXPECT_GE(create, 0);
  EXPECT_LT(create, start);
  EXPECT_LT(start, exit);
  EXPECT_LT(exit, del);
}

TEST_F(ShimIntegrationTest, AProgramThatExitsAtOnceStillYieldsCreateStartExitDeleteInOrder) {
  expectCreateStartExitDeleteInOrder(Mode::kNative);
}

TEST_F(ShimIntegrationTest, ContainerModeAProgramThatExitsAtOnceYieldsEventsInOrder) {
  expectCreateStartExitDeleteInOrder(Mode::kContainer);
}

TEST_F(ShimIntegrationTest, DetachedTaskAnswersLsPsMetricsKillAndDelete) {
  std::string id = PrivateContainerd::uniqueId("shim-detached");
  auto started = run(id, {"/bin/sleep", "1000"}, {"-d"});
  ASSERT_TRUE(started.status.success()) << started.err;
  EXPECT_EQ(taskStatus(id), "RUNNING");

  auto ps = ctr({"task", "ps", id});
  ASSERT_TRUE(ps.status.success()) << ps.err;
  auto ls = ctr({"task", "ls"});
  std::string pid = readFile(bundle(id) / "init.pid");
  EXPECT_NE(ls.out.find(pid + " "), std::string::npos) << ls.out;
  ASSERT_FALSE(pid.empty()) << ls.out;
  EXPECT_NE(ps.out.find(pid), std::string::npos) << ps.out;
  EXPECT_TRUE(fs::exists("/proc/" + pid));

  auto metrics = ctr({"task", "metrics", id});
  ASSERT_TRUE(metrics.status.success()) << metrics.err;
  EXPECT_NE(metrics.out.find("pids.current"), std::string::npos) << metrics.out;

  // Deleting a running task is refused and changes nothing.
  auto early = ctr({"task", "delete", id});
  EXPECT_FALSE(early.status.success());
  EXPECT_EQ(taskStatus(id), "RUNNING");

  auto killed = ctr({"task", "kill", "-s", "SIGTERM", id});
  ASSERT_TRUE(killed.status.success()) << killed.err;
  ASSERT_TRUE(eventually([&] { return taskStatus(id) == "STOPPED"; }));
  auto deleted = ctr({"task", "delete", id});
  ASSERT_TRUE(deleted.status.success()) << deleted.err;
  EXPECT_EQ(taskStatus(id), "");
  EXPECT_FALSE(fs::exists("/proc/" + pid));
  EXPECT_TRUE(ctr({"container", "rm", id}).status.success());
  EXPECT_TRUE(eventually([&] { return shimPid(id) < 0; }));
}

TEST_F(ShimIntegrationTest, KillAllEndsTheAppsChildrenToo) {
  std::string id = PrivateContainerd::uniqueId("shim-killall");
  ASSERT_TRUE(
      run(id, {"/bin/sh", "-c", "sleep 1000 & sleep 1000 & wait"}, {"-d"}).status.success());
  ASSERT_TRUE(eventually([&] {
    auto ps = ctr({"task", "ps", id});
    return std::count(ps.out.begin(), ps.out.end(), '\n') >= 4;  // header + sh + 2 sleeps
  }));
  // Every pid of the task (sh and both sleeps), from `ctr task ps`.
  std::vector<std::string> pids;
  {
    std::istringstream in(ctr({"task", "ps", id}).out);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::string pid = line.substr(0, line.find(' '));
      if (!pid.empty()) pids.push_back(pid);
    }
  }
  ASSERT_EQ(pids.size(), 3u);
  for (const auto& pid : pids) ASSERT_TRUE(fs::exists("/proc/" + pid)) << pid;
  ASSERT_TRUE(ctr({"task", "kill", "-a", "-s", "SIGKILL", id}).status.success());
  ASSERT_TRUE(eventually([&] { return taskStatus(id) == "STOPPED"; }));
  // Before Delete (which would end leftovers itself): the children died with the kill.
  for (const auto& pid : pids) {
    EXPECT_TRUE(eventually([&] { return !fs::exists("/proc/" + pid); })) << pid;
  }
  EXPECT_TRUE(ctr({"task", "delete", id}).status.success());
  EXPECT_TRUE(ctr({"container", "rm", id}).status.success());
}

// A task that is created and never started (containerd deletes it when Start fails, or when
// its client goes away in between) is deleted cleanly: its waiting child ends, and the shim
// answers on. ctr cannot create without starting, so the test plays containerd: it runs the
// shim's `start` subcommand in a bundle of its own and sends Create and Delete.
TEST_F(ShimIntegrationTest, DeletingACreatedTaskThatNeverStartedEndsItAndTheShimAnswersOn) {
  std::string id = PrivateContainerd::uniqueId("shim-created");
  auto dir = testing::TempDir::create("shim-created");
  ASSERT_TRUE(dir);
  fs::path bundle_dir = dir->path() / id;
  fs::create_directories(bundle_dir);
  std::ofstream(bundle_dir / "config.json") << R"({"ociVersion": "1.0.2",
    "process": {"args": ["/bin/sleep", "1000"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                "env": ["PATH=/usr/bin:/bin"]},
    "root": {"path": "/"},
    "annotations": {"io.fleetlet.sandbox": "process"},
    "linux": {"cgroupsPath": "/)" << kNs << "/"
                                            << id << R"("}})";
  auto address = startOwnShim(bundle_dir, id);
  ASSERT_FALSE(address.empty());
  auto client = ttrpc::Client::connect(address);
  ASSERT_TRUE(client) << client.error().message();
  auto call = [&](const char* method, const google::protobuf::Message& request) {
    return callShim(**client, method, request);
  };

  containerd::task::v2::CreateTaskRequest create;
  create.set_id(id);
  create.set_bundle(bundle_dir.string());
  auto created = call("Create", create);
  ASSERT_TRUE(created) << created.error().message;
  containerd::task::v2::CreateTaskResponse create_response;
  ASSERT_TRUE(create_response.ParseFromString(*created));
  const std::string pid = std::to_string(create_response.pid());
  ASSERT_TRUE(fs::exists("/proc/" + pid));

  containerd::task::v2::DeleteRequest remove;
  remove.set_id(id);
  auto deleted = call("Delete", remove);
  ASSERT_TRUE(deleted) << deleted.error().message;
  containerd::task::v2::DeleteResponse delete_response;
  ASSERT_TRUE(delete_response.ParseFromString(*deleted));
  EXPECT_EQ(std::to_string(delete_response.pid()), pid);
  EXPECT_TRUE(eventually([&] { return !fs::exists("/proc/" + pid); })) << pid;

  // The shim is still there and knows the task is gone.
  containerd::task::v2::StateRequest state;
  state.set_id(id);
  auto after = call("State", state);
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, ttrpc::StatusCode::kNotFound) << after.error().message;

  containerd::task::v2::ShutdownRequest shutdown;
  shutdown.set_id(id);
  (void)call("Shutdown", shutdown);
  client->reset();
  EXPECT_TRUE(eventually([&] { return !fs::exists(address.substr(7)); }));
}

TEST_F(ShimIntegrationTest, SandboxedAppCannotWriteTheHostSeeHomesOrGainPrivileges) {
  std::string id = PrivateContainerd::uniqueId("shim-sandbox");
  auto out = run(id,
                 {"/bin/sh", "-c",
                  "touch /usr/fleetlet-shim-test 2>&1; ls -A /root | wc -l; "
                  "grep -E '^(Uid|NoNewPrivs|CapEff|CapPrm|Seccomp):' /proc/self/status; "
                  "touch /tmp/private && echo tmp-writable"},
                 {"--rm"});
  ASSERT_EQ(out.status.exit_code, 0) << out.err;
  EXPECT_NE(out.out.find("Read-only file system"), std::string::npos) << out.out;
  EXPECT_FALSE(fs::exists("/usr/fleetlet-shim-test"));
  EXPECT_NE(out.out.find("\n0\n"), std::string::npos) << "/root is hidden: " << out.out;
  EXPECT_EQ(out.out.find("Uid:\t0"), std::string::npos) << "runs as its own user: " << out.out;
  EXPECT_NE(out.out.find("NoNewPrivs:\t1"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("CapEff:\t0000000000000000"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("CapPrm:\t0000000000000000"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("Seccomp:\t2"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("tmp-writable"), std::string::npos) << out.out;
  EXPECT_FALSE(fs::exists("/tmp/private")) << "/tmp is private";
}

// The filter's argument checks: clone with a namespace flag, clone3 (ENOSYS, so libc falls back
// to clone), io_uring and unsafe personality values are refused; a plain fork and the safe
// personality values are not. Raw syscalls through python3's ctypes (x86_64 numbers).
TEST_F(ShimIntegrationTest, SandboxedAppCannotMakeNamespacesUseIoUringOrChangeItsPersonality) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "syscall numbers below are x86_64's";
#endif
  if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "needs /usr/bin/python3";
  const std::string script = R"(
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(name, nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_ulong(a) for a in args])
    if r == 0 and name.startswith("clone"):
        os._exit(0)
    if r > 0 and name.startswith("clone"):
        os.waitpid(r, 0)
    print(name, "ok" if r >= 0 else os.strerror(ctypes.get_errno()))
SIGCHLD = 17
call("clone-fork", 56, SIGCHLD, 0, 0, 0, 0)
for flag, label in [(0x10000000, "user"), (0x20000, "mnt"), (0x20000000, "pid"),
                    (0x40000000, "net"), (0x02000000, "cgroup"), (0x04000000, "uts"),
                    (0x08000000, "ipc")]:
    call("clone-new" + label, 56, SIGCHLD | flag, 0, 0, 0, 0)
call("clone3", 435, 0, 0)
call("unshare-user", 272, 0x10000000)
call("io_uring_setup", 425, 1, 0)
call("io_uring_enter", 426, 0, 0, 0, 0, 0, 0)
call("io_uring_register", 427, 0, 0, 0, 0)
call("personality-query", 135, 0xffffffff)
call("personality-linux", 135, 0)
call("personality-linux32", 135, 0x0008)
call("personality-uname26", 135, 0x20000)
call("personality-no-aslr", 135, 0x0040000)
call("personality-read-implies-exec", 135, 0x0400000)
call("personality-high-bit", 135, 0x80000000)
call("personality-query-but-one", 135, 0xfffffffe)
call("personality-linux-again", 135, 0)
)";
  std::string id = PrivateContainerd::uniqueId("shim-seccomp");
  auto out = run(id, {"/usr/bin/python3", "-c", script}, {"--rm"});
  ASSERT_EQ(out.status.exit_code, 0) << out.err;
  const std::string eperm = "Operation not permitted";
  const std::string enosys = "Function not implemented";
  EXPECT_EQ(out.out,
            "clone-fork ok\n"
            "clone-newuser " +
                eperm + "\nclone-newmnt " + eperm + "\nclone-newpid " + eperm + "\nclone-newnet " +
                eperm + "\nclone-newcgroup " + eperm + "\nclone-newuts " + eperm +
                "\nclone-newipc " + eperm +
                "\n"
                "clone3 " +
                enosys +
                "\n"
                "unshare-user " +
                eperm +
                "\n"
                "io_uring_setup " +
                eperm + "\nio_uring_enter " + eperm + "\nio_uring_register " + eperm +
                "\n"
                "personality-query ok\npersonality-linux ok\npersonality-linux32 ok\n"
                "personality-uname26 ok\n"
                "personality-no-aslr " +
                eperm + "\npersonality-read-implies-exec " + eperm + "\npersonality-high-bit " +
                eperm + "\npersonality-query-but-one " + eperm +
                "\n"
                "personality-linux-again ok\n");
}

TEST_F(ShimIntegrationTest, SetuidBinariesGiveASandboxedAppNothing) {
  // A setuid-root copy of id(1), bound into the app: it must still report the app's uid.
  auto dir = testing::TempDir::create("shim-setuid");
  ASSERT_TRUE(dir);
  fs::path id_copy = dir->path() / "id";
  fs::copy_file("/usr/bin/id", id_copy);
  ASSERT_EQ(::chmod(id_copy.c_str(), 04755), 0);
  ASSERT_EQ(::chmod(dir->path().c_str(), 0755), 0);
  std::string id = PrivateContainerd::uniqueId("shim-setuid");
  auto out = run(
      id, {"/mnt/id", "-u"},
      {"--rm", "--mount", "type=bind,src=" + dir->path().string() + ",dst=/mnt,options=rbind:ro"});
  ASSERT_EQ(out.status.exit_code, 0) << out.out << out.err;
  EXPECT_NE(out.out, "0\n") << "the setuid bit raised the app to root";
  EXPECT_FALSE(out.out.empty());
}

TEST_F(ShimIntegrationTest, ContainedLevelHasItsOwnNetworkWithLoopbackOnly) {
  std::string id = PrivateContainerd::uniqueId("shim-contained");
  auto out = run(id, {"/bin/sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"},
                 {"--rm", "--annotation", "io.fleetlet.sandbox=contained"});
  ASSERT_EQ(out.status.exit_code, 0) << out.err;
  EXPECT_EQ(out.out, "lo\n");
}

TEST_F(ShimIntegrationTest, ProcessLevelRunsAsTheSpecsUserWithoutAMountNamespace) {
  std::string id = PrivateContainerd::uniqueId("shim-process");
  auto out = run(id, {"/bin/sh", "-c", "id -u; readlink /proc/self/ns/mnt"},
                 {"--rm", "--annotation", "io.fleetlet.sandbox=process"});
  ASSERT_EQ(out.status.exit_code, 0) << out.err;
  std::string host_mnt = fs::read_symlink("/proc/self/ns/mnt").string();
  EXPECT_EQ(out.out, "0\n" + host_mnt + "\n");
}

TEST_F(ShimIntegrationTest, BadSandboxLevelIsRefusedNamingIt) {
  std::string id = PrivateContainerd::uniqueId("shim-badlevel");
  auto out = run(id, {"/bin/true"}, {"--rm", "--annotation", "io.fleetlet.sandbox=jail"});
  EXPECT_FALSE(out.status.success());
  EXPECT_NE(out.err.find("io.fleetlet.sandbox"), std::string::npos) << out.err;
  EXPECT_NE(out.err.find("jail"), std::string::npos) << out.err;
  (void)ctr({"container", "rm", id});
}

void ShimIntegrationTest::expectAnOomEventWhenTheMemoryLimitIsHit(Mode mode) {
  auto events = watchEvents(mode == Mode::kNative ? "oom" : "oom-container");
  std::string id = PrivateContainerd::uniqueId("shim-oom");
  // 64 MiB in one shell variable against a 16 MiB limit.
  auto out = runIn(mode, id,
                   {"/bin/sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived"},
                   {"--rm", "--memory-limit", "16777216"});
  EXPECT_NE(out.status.exit_code, 0);
  EXPECT_EQ(out.out.find("survived"), std::string::npos);
  EXPECT_TRUE(eventually([&] { return eventLine(events.text(), "/tasks/oom", id) >= 0; }))
      << events.text();
}

TEST_F(ShimIntegrationTest, MemoryLimitEndsTheAppWithAnOomEvent) {
  expectAnOomEventWhenTheMemoryLimitIsHit(Mode::kNative);
}

TEST_F(ShimIntegrationTest, ContainerModeMemoryLimitEndsTheContainerWithAnOomEvent) {
  expectAnOomEventWhenTheMemoryLimitIsHit(Mode::kContainer);
}

TEST_F(ShimIntegrationTest, FileLoggerAppendsBothStreamsToOneFile) {
  auto dir = testing::TempDir::create("shim-log");
  ASSERT_TRUE(dir);
  fs::path log = dir->path() / "logs" / "app.log";
  std::string id = PrivateContainerd::uniqueId("shim-filelog");
  auto out = run(id, {"/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2"},
                 {"--rm", "--log-uri", "file://" + log.string()});
  ASSERT_EQ(out.status.exit_code, 0) << out.err;
  EXPECT_EQ(readFile(log), "to-stdout\nto-stderr\n");
}

TEST_F(ShimIntegrationTest, BinaryLoggerGetsTheStreamsOnFds3And4) {
  auto dir = testing::TempDir::create("shim-binlog");
  ASSERT_TRUE(dir);
  // The logger protocol: fd 3 stdout, fd 4 stderr, fd 5 ready; args from the URI's query.
  std::string id = PrivateContainerd::uniqueId("shim-binlog");
  auto out = runWithLogger(dir->path(),
                           "exec 5>&-\n"
                           "cat <&3 > \"$2.out\" & cat <&4 > \"$2.err\" & wait\n"
                           "echo \"$CONTAINER_NAMESPACE/$CONTAINER_ID\" > \"$2.env\"\n",
                           id, "echo out-line; echo err-line >&2");
  ASSERT_EQ(out.status.exit_code, 0) << out.err;
  const std::string base = (dir->path() / "captured").string();
  EXPECT_EQ(readFile(base + ".out"), "out-line\n");
  EXPECT_EQ(readFile(base + ".err"), "err-line\n");
  EXPECT_EQ(readFile(base + ".env"), std::string(kNs) + "/" + id + "\n");
}

// The task's delete ends its logger as containerd's shims do (SIGTERM, then up to 12 s for it
// to exit) and answers only once it has: the log is complete when `ctr run --rm` returns, even
// from a logger that ignores SIGTERM and takes its time after the pipes close.
TEST_F(ShimIntegrationTest, DeleteReturnsOnlyOnceTheBinaryLoggerHasWrittenEverything) {
  auto dir = testing::TempDir::create("shim-binlog-end");
  ASSERT_TRUE(dir);
  auto out = runWithLogger(dir->path(),
                           "trap '' TERM\n"
                           "exec 5>&-\n"
                           "cat <&3 > \"$2.out\"\n"
                           "sleep 0.5\n"
                           "echo done > \"$2.done\"\n",
                           PrivateContainerd::uniqueId("shim-binlog-end"),
                           "for i in 1 2 3; do echo line $i; done");
  ASSERT_EQ(out.status.exit_code, 0) << out.err;
  const std::string base = (dir->path() / "captured").string();
  EXPECT_EQ(readFile(base + ".done"), "done\n") << "delete returned before the logger";
  EXPECT_EQ(readFile(base + ".out"), "line 1\nline 2\nline 3\n");
}

// Device allow-list: a sandboxed app's /dev holds the default nodes and the spec's
// linux.devices (ctr --device); a host node that is not listed is not there.
TEST_F(ShimIntegrationTest, OnlyListedDevicesAppearInASandboxedAppsDev) {
  // Two host nodes of the test's own (char 1:3, like /dev/null), writable by the app's user.
  const std::string tag = std::to_string(::getpid());
  const fs::path allowed = "/dev/fleetlet-test-allowed-" + tag;
  const fs::path other = "/dev/fleetlet-test-other-" + tag;
  for (const auto& node : {allowed, other}) {
    ::unlink(node.c_str());
    ASSERT_EQ(::mknod(node.c_str(), S_IFCHR | 0666, ::makedev(1, 3)), 0) << node;
    ASSERT_EQ(::chmod(node.c_str(), 0666), 0);
  }
  std::string id = PrivateContainerd::uniqueId("shim-devices");
  auto out =
      run(id,
          {"/bin/sh", "-c",
           "echo x > " + allowed.string() + " && echo allowed-writable; ls " + other.string() +
               " 2>&1 || echo other-absent; ls /dev/sda /dev/mem 2>&1 | "
               "grep -c 'No such file'; echo y > /dev/null && echo null-ok"},
          {"--rm", "--device", allowed.string()});
  ::unlink(allowed.c_str());
  ::unlink(other.c_str());
  ASSERT_EQ(out.status.exit_code, 0) << out.err;
  EXPECT_NE(out.out.find("allowed-writable\n"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("other-absent\n"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("\n2\n"), std::string::npos) << "host disks hidden: " << out.out;
  EXPECT_NE(out.out.find("null-ok\n"), std::string::npos) << out.out;
}

// CPU limit: ctr --cpus 0.5 becomes a CFS quota of 50 ms per 100 ms in the app's cgroup, and a
// busy app is throttled by it.
TEST_F(ShimIntegrationTest, CpuLimitIsAQuotaInTheAppsCgroupThatThrottlesIt) {
  std::string id = PrivateContainerd::uniqueId("shim-cpu");
  ASSERT_TRUE(
      run(id, {"/bin/sh", "-c", "while :; do :; done"}, {"-d", "--cpus", "0.5"}).status.success());
  std::string cgroup = readFile(bundle(id) / "cgroup.path");
  ASSERT_FALSE(cgroup.empty());
  if (cgroup.starts_with('/')) cgroup.erase(0, 1);
  const bool v2 = fs::exists("/sys/fs/cgroup/cgroup.controllers");
  const fs::path dir =
      v2 ? fs::path("/sys/fs/cgroup") / cgroup : fs::path("/sys/fs/cgroup/cpu") / cgroup;
  if (v2) {
    EXPECT_EQ(readFile(dir / "cpu.max"), "50000 100000\n");
  } else {
    EXPECT_EQ(readFile(dir / "cpu.cfs_quota_us"), "50000\n");
    EXPECT_EQ(readFile(dir / "cpu.cfs_period_us"), "100000\n");
  }
  auto throttled = [&] {
    std::istringstream in(readFile(dir / "cpu.stat"));
    for (std::string key, value; in >> key >> value;) {
      if (key == "nr_throttled") return std::stol(value);
    }
    return 0L;
  };
  EXPECT_TRUE(eventually([&] { return throttled() > 0; }, 10s)) << readFile(dir / "cpu.stat");
  ASSERT_TRUE(ctr({"task", "kill", "-s", "SIGKILL", id}).status.success());
  ASSERT_TRUE(eventually([&] { return taskStatus(id) == "STOPPED"; }));
  EXPECT_TRUE(ctr({"task", "delete", id}).status.success());
  EXPECT_TRUE(ctr({"container", "rm", id}).status.success());
}

TEST_F(ShimIntegrationTest, UpdateChangesTheLimitsOfARunningTask) {
  std::string id = PrivateContainerd::uniqueId("shim-update");
  ASSERT_TRUE(run(id, {"/bin/sleep", "1000"}, {"-d"}).status.success());
  std::string cgroup = readFile(bundle(id) / "cgroup.path");
  ASSERT_FALSE(cgroup.empty());
  // containerd's Update, sent straight to the shim's socket.
  auto client = ttrpc::Client::connect(readFile(bundle(id) / "address"));
  ASSERT_TRUE(client) << client.error().message();
  containerd::task::v2::UpdateTaskRequest update;
  update.set_id(id);
  update.mutable_resources()->set_type_url(
      "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources");
  update.mutable_resources()->set_value(R"({"memory": {"limit": 33554432}, "pids": {"limit": 7}})");
  auto reply = (*client)->call("containerd.task.v2.Task", "Update", update.SerializeAsString(),
                               {.metadata = {{"containerd-namespace-ttrpc", kNs}}});
  ASSERT_TRUE(reply) << reply.error().message;
  Cgroup cg(cgroup);
  CgroupStats stats = cg.stats();
  EXPECT_EQ(stats.memory_limit, 33554432u);
  EXPECT_EQ(stats.pids_limit, 7u);
  // A bad one names its problem and changes nothing.
  update.mutable_resources()->set_value("[1]");
  auto bad = (*client)->call("containerd.task.v2.Task", "Update", update.SerializeAsString());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ttrpc::StatusCode::kInvalidArgument);
  EXPECT_EQ(cg.stats().memory_limit, 33554432u);
  client->reset();
  ASSERT_TRUE(ctr({"task", "kill", "-s", "SIGKILL", id}).status.success());
  ASSERT_TRUE(eventually([&] { return taskStatus(id) == "STOPPED"; }));
  EXPECT_TRUE(ctr({"task", "delete", id}).status.success());
  EXPECT_TRUE(ctr({"container", "rm", id}).status.success());
}

// A capability listed as ambient stays with a non-root app after setuid and exec (and only
// that one); one outside the bounding set is refused naming it.
TEST_F(ShimIntegrationTest, AmbientCapabilitiesAreGrantedToANonRootApp) {
  std::string id = PrivateContainerd::uniqueId("shim-ambient");
  auto dir = testing::TempDir::create("shim-ambient");
  ASSERT_TRUE(dir);
  fs::path bundle_dir = dir->path() / id;
  fs::create_directories(bundle_dir);
  const fs::path out_file = dir->path() / "out";
  std::ofstream(out_file).close();
  auto write_spec = [&](const std::string& bounding, const std::string& ambient) {
    std::ofstream(bundle_dir / "config.json", std::ios::trunc) << R"({"ociVersion": "1.0.2",
      "process": {"args": ["/bin/sh", "-c", "grep -E '^Cap(Eff|Amb)' /proc/self/status; id -u"],
                  "cwd": "/", "user": {"uid": 1000, "gid": 1000}, "env": ["PATH=/usr/bin:/bin"],
                  "capabilities": {"bounding": [)" << bounding << R"(], "ambient": [)"
                                                               << ambient << R"(]}},
      "root": {"path": "/"},
      "linux": {"cgroupsPath": "/)" << kNs << "/" << id << R"("}})";
  };
  write_spec(R"("CAP_NET_BIND_SERVICE", "CAP_CHOWN")", R"("CAP_NET_BIND_SERVICE")");
  auto address = startOwnShim(bundle_dir, id);
  ASSERT_FALSE(address.empty());
  auto client = ttrpc::Client::connect(address);
  ASSERT_TRUE(client) << client.error().message();
  auto call = [&](const char* method, const google::protobuf::Message& request) {
    return callShim(**client, method, request);
  };
  containerd::task::v2::CreateTaskRequest create;
  create.set_id(id);
  create.set_bundle(bundle_dir.string());
  create.set_stdout(out_file.string());
  create.set_stderr(out_file.string());
  auto created = call("Create", create);
  ASSERT_TRUE(created) << created.error().message;
  containerd::task::v2::StartRequest start;
  start.set_id(id);
  ASSERT_TRUE(call("Start", start)) << readFile(out_file);
  containerd::task::v2::WaitRequest wait;
  wait.set_id(id);
  auto waited = call("Wait", wait);
  ASSERT_TRUE(waited) << waited.error().message;
  // CAP_NET_BIND_SERVICE is bit 10: 0x400, effective and ambient; CAP_CHOWN is not kept.
  EXPECT_EQ(readFile(out_file), "CapEff:\t0000000000000400\nCapAmb:\t0000000000000400\n1000\n");
  containerd::task::v2::DeleteRequest remove;
  remove.set_id(id);
  ASSERT_TRUE(call("Delete", remove));

  containerd::task::v2::ShutdownRequest shutdown;
  shutdown.set_id(id);
  (void)call("Shutdown", shutdown);
  client->reset();
  EXPECT_TRUE(eventually([&] { return !fs::exists(address.substr(7)); }));

  // Ambient but not in the bounding set: Create fails naming the capability (a new task: one
  // shim serves one).
  id += "-bad";
  bundle_dir = dir->path() / id;
  fs::create_directories(bundle_dir);
  write_spec(R"("CAP_CHOWN")", R"("CAP_NET_BIND_SERVICE")");
  address = startOwnShim(bundle_dir, id);
  ASSERT_FALSE(address.empty());
  auto bad_client = ttrpc::Client::connect(address);
  ASSERT_TRUE(bad_client) << bad_client.error().message();
  create.set_id(id);
  create.set_bundle(bundle_dir.string());
  auto refused = callShim(**bad_client, "Create", create);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("CAP_NET_BIND_SERVICE"), std::string::npos)
      << refused.error().message;
  shutdown.set_id(id);
  (void)callShim(**bad_client, "Shutdown", shutdown);
}

// `ctr task exec` in a sandboxed native app: the exec runs as the app (its uid), in its mount
// namespace (/root hidden, private /tmp shared with the app), in its cgroup, and its output and
// exit code come back; Exec in a task that is not running and a taken exec id are refused.
TEST_F(ShimIntegrationTest, ExecRunsInsideTheAppsSandboxAndReturnsItsOutputAndExitCode) {
  std::string id = PrivateContainerd::uniqueId("shim-exec");
  ASSERT_TRUE(run(id, {"/bin/sh", "-c", "echo from-the-app > /tmp/mark; exec sleep 1000"}, {"-d"})
                  .status.success());
  const std::string pid = readFile(bundle(id) / "init.pid");
  ASSERT_FALSE(pid.empty());
  std::string app_uid;
  ASSERT_TRUE(eventually([&] {
    std::istringstream in(readFile("/proc/" + pid + "/status"));
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("Uid:")) {
        std::istringstream fields(line.substr(4));
        fields >> app_uid;
      }
    }
    return !app_uid.empty() && app_uid != "0";
  }));
  ASSERT_TRUE(eventually([&] {
    return ctr({"task", "exec", "--exec-id", "peek", id, "/bin/cat", "/tmp/mark"}).out ==
           "from-the-app\n";
  }));
  auto out = ctr({"task", "exec", "--exec-id", "probe1", id, "/bin/sh", "-c",
                  "id -u; ls -A /root | wc -l; grep -q " + id +
                      " /proc/self/cgroup && echo in-the-apps-cgroup; echo to-stderr >&2; exit 4"});
  EXPECT_EQ(out.status.exit_code, 4) << out.err;
  EXPECT_EQ(out.out, app_uid + "\n0\nin-the-apps-cgroup\n") << out.err;
  EXPECT_NE(out.err.find("to-stderr"), std::string::npos) << out.err;
  // The exec is gone from the task's processes once it ended; the app runs on.
  EXPECT_EQ(taskStatus(id), "RUNNING");
  EXPECT_TRUE(fs::exists("/proc/" + pid));
  auto missing = ctr({"task", "exec", "--exec-id", "nope", id, "/no/such/program"});
  EXPECT_FALSE(missing.status.success());
  EXPECT_NE(missing.err.find("/no/such/program"), std::string::npos) << missing.err;

  ASSERT_TRUE(ctr({"task", "kill", "-s", "SIGKILL", id}).status.success());
  ASSERT_TRUE(eventually([&] { return taskStatus(id) == "STOPPED"; }));
  auto late = ctr({"task", "exec", "--exec-id", "late", id, "/bin/true"});
  EXPECT_FALSE(late.status.success());
  EXPECT_TRUE(ctr({"task", "delete", id}).status.success());
  EXPECT_TRUE(ctr({"container", "rm", id}).status.success());
}

// Container mode: the same shim runs an image through runc, as io.containerd.runc.v2 would.
TEST_F(ShimIntegrationTest, ContainerModeRunsAnImageThroughRunc) {
  const std::string image = containerImage();
  ASSERT_FALSE(image.empty());
  // ctr sends runtime options to io.containerd.runc.v2 only: the shim's default runc root,
  // beside containerd's socket, keeps this instance's runc state in its own directory.
  const fs::path runc_state = containerd_->dir() / "runc" / kNs;

  std::string id = PrivateContainerd::uniqueId("shim-container");
  auto out = ctr({"run", "--rm", "--runtime", kRuntime, image, id});
  EXPECT_EQ(out.status.exit_code, 0) << out.err;
  EXPECT_EQ(out.out, testing::TestImages::kBusyboxOutput);

  std::string failing = PrivateContainerd::uniqueId("shim-container-exit");
  auto exit5 = ctr({"run", "--rm", "--runtime", kRuntime, image, failing, "/bin/sh", "-c",
                    "echo in-container; exit 5"});
  EXPECT_EQ(exit5.status.exit_code, 5) << exit5.err;
  EXPECT_EQ(exit5.out, "in-container\n");

  std::string detached = PrivateContainerd::uniqueId("shim-container-d");
  ASSERT_TRUE(ctr({"run", "-d", "--runtime", kRuntime, image, detached, "/bin/sleep", "1000"})
                  .status.success());
  EXPECT_EQ(taskStatus(detached), "RUNNING");
  EXPECT_TRUE(fs::exists(runc_state / detached));
  EXPECT_TRUE(ctr({"task", "ps", detached}).status.success());
  ASSERT_TRUE(ctr({"task", "kill", "-s", "SIGKILL", detached}).status.success());
  ASSERT_TRUE(eventually([&] { return taskStatus(detached) == "STOPPED"; }));
  auto deleted = ctr({"task", "delete", detached});
  EXPECT_TRUE(deleted.status.success()) << deleted.err;
  EXPECT_TRUE(ctr({"container", "rm", detached}).status.success());
  // runc's state and the rootfs mount went with the task.
  EXPECT_FALSE(fs::exists(runc_state / detached));
  EXPECT_FALSE(fs::exists(bundle(detached)));
}

TEST_F(ShimIntegrationTest, GarbageOnTheShimSocketDoesNotCrashIt) {
  std::string id = PrivateContainerd::uniqueId("shim-garbage");
  ASSERT_TRUE(run(id, {"/bin/sleep", "1000"}, {"-d"}).status.success());
  std::string address = readFile(bundle(id) / "address");
  ASSERT_TRUE(address.starts_with("unix://")) << address;
  for (const std::string& junk :
       {std::string(5000, '\xff'), std::string("\0\0\0\x03\0\0\0\x01\x01\0abc", 13),
        std::string("\x7f\xff\xff\xff\0\0\0\x01\x01\0", 10)}) {
    auto fd = ttrpc::connectUnix(address);
    ASSERT_TRUE(fd) << fd.error().message();
    ASSERT_TRUE(ttrpc::writeAll(fd->get(), junk));
  }
  EXPECT_EQ(taskStatus(id), "RUNNING");
  EXPECT_TRUE(ctr({"task", "ps", id}).status.success());
  ASSERT_TRUE(ctr({"task", "kill", "-s", "SIGKILL", id}).status.success());
  ASSERT_TRUE(eventually([&] { return taskStatus(id) == "STOPPED"; }));
  EXPECT_TRUE(ctr({"task", "delete", id}).status.success());
  EXPECT_TRUE(ctr({"container", "rm", id}).status.success());
}

void ShimIntegrationTest::expectAKilledShimCleanedUpWithTheExitReported(Mode mode) {
  auto events = watchEvents(mode == Mode::kNative ? "shimkill" : "shimkill-container");
  std::string id = PrivateContainerd::uniqueId("shim-kill9");
  ASSERT_TRUE(runIn(mode, id, {"/bin/sleep", "1000"}, {"-d"}).status.success());
  pid_t shim = shimPid(id);
  ASSERT_GT(shim, 0);
  std::string pid = readFile(bundle(id) / "init.pid");
  ASSERT_FALSE(pid.empty());
  ASSERT_EQ(::kill(shim, SIGKILL), 0);
  // containerd runs `delete`, which ends the app, and publishes the exit itself.
  EXPECT_TRUE(eventually([&] {
    std::string text = events.text();
    return eventLine(text, "/tasks/exit", id) >= 0 &&
           text.find("\"exit_status\":137") != std::string::npos;
  })) << events.text();
  EXPECT_TRUE(eventually([&] { return !fs::exists("/proc/" + pid); }));
  EXPECT_TRUE(eventually([&] { return taskStatus(id).empty(); }));
  EXPECT_TRUE(ctr({"container", "rm", id}).status.success());
  if (mode == Mode::kContainer) {
    // `delete` released runc's state too.
    EXPECT_FALSE(fs::exists(containerd_->dir() / "runc" / kNs / id));
  }
}

TEST_F(ShimIntegrationTest, KilledShimIsCleanedUpAndContainerdReportsTheExit) {
  expectAKilledShimCleanedUpWithTheExitReported(Mode::kNative);
}

TEST_F(ShimIntegrationTest, ContainerModeKilledShimIsCleanedUpAndContainerdReportsTheExit) {
  expectAKilledShimCleanedUpWithTheExitReported(Mode::kContainer);
}

void ShimIntegrationTest::expectTheTaskToSurviveAContainerdCrash(Mode mode) {
  std::string id = PrivateContainerd::uniqueId("shim-restart");
  ASSERT_TRUE(runIn(mode, id, {"/bin/sleep", "1000"}, {"-d"}).status.success());
  std::string pid = readFile(bundle(id) / "init.pid");
  ASSERT_FALSE(pid.empty());
  containerd_->stopDaemon(SIGKILL);
  ASSERT_TRUE(containerd_->startDaemon());
  EXPECT_EQ(taskStatus(id), "RUNNING");
  EXPECT_TRUE(fs::exists("/proc/" + pid));
  // The shim reconnected its events: an exit after the restart is seen.
  auto events = watchEvents(mode == Mode::kNative ? "restart" : "restart-container");
  ASSERT_TRUE(ctr({"task", "kill", "-s", "SIGKILL", id}).status.success());
  EXPECT_TRUE(eventually([&] { return taskStatus(id) == "STOPPED"; }));
  EXPECT_TRUE(eventually([&] { return eventLine(events.text(), "/tasks/exit", id) >= 0; }))
      << events.text();
  EXPECT_TRUE(ctr({"task", "delete", id}).status.success());
  EXPECT_TRUE(ctr({"container", "rm", id}).status.success());
}

TEST_F(ShimIntegrationTest, TaskSurvivesAContainerdCrashAndIsReconnected) {
  expectTheTaskToSurviveAContainerdCrash(Mode::kNative);
}

TEST_F(ShimIntegrationTest, ContainerModeTaskSurvivesAContainerdCrashAndIsReconnected) {
  expectTheTaskToSurviveAContainerdCrash(Mode::kContainer);
}

// Container mode: `runc exec` runs the process in the container's namespaces and cgroup.
TEST_F(ShimIntegrationTest, ContainerModeExecRunsInTheContainerAndReturnsItsOutputAndExitCode) {
  std::string id = PrivateContainerd::uniqueId("shim-cexec");
  ASSERT_TRUE(runIn(Mode::kContainer, id,
                    {"/bin/sh", "-c", "echo from-the-app > /mark; exec sleep 1000"}, {"-d"})
                  .status.success());
  const std::string pid = readFile(bundle(id) / "init.pid");
  ASSERT_FALSE(pid.empty());
  // The container's own root and pid namespace: the app is pid 1 there.
  ASSERT_TRUE(eventually([&] {
    return ctr({"task", "exec", "--exec-id", "peek", id, "/bin/cat", "/mark"}).out ==
           "from-the-app\n";
  }));
  auto out =
      ctr({"task", "exec", "--exec-id", "probe1", id, "/bin/sh", "-c",
           "cat /etc/fleetlet-test/motd; tr '\\0' ' ' < /proc/1/cmdline; echo; grep -q " + id +
               " /proc/self/cgroup && echo in-the-containers-cgroup; "
               "echo to-stderr >&2; exit 4"});
  EXPECT_EQ(out.status.exit_code, 4) << out.err;
  EXPECT_EQ(out.out, "motd from layer 3\nsleep 1000 \nin-the-containers-cgroup\n") << out.err;
  EXPECT_NE(out.err.find("to-stderr"), std::string::npos) << out.err;
  // The exec ended; the app runs on, and a second exec with another id works too.
  EXPECT_EQ(taskStatus(id), "RUNNING");
  EXPECT_TRUE(fs::exists("/proc/" + pid));
  EXPECT_EQ(ctr({"task", "exec", "--exec-id", "probe2", id, "/bin/true"}).status.exit_code, 0);
  auto missing = ctr({"task", "exec", "--exec-id", "nope", id, "/no/such/program"});
  EXPECT_FALSE(missing.status.success());
  EXPECT_NE(missing.err.find("/no/such/program"), std::string::npos) << missing.err;
  // A long exec is ended with the task.
  ASSERT_TRUE(
      ctr({"task", "exec", "-d", "--exec-id", "long", id, "/bin/sleep", "999"}).status.success());
  ASSERT_TRUE(ctr({"task", "kill", "-a", "-s", "SIGKILL", id}).status.success());
  ASSERT_TRUE(eventually([&] { return taskStatus(id) == "STOPPED"; }));
  auto late = ctr({"task", "exec", "--exec-id", "late", id, "/bin/true"});
  EXPECT_FALSE(late.status.success());
  EXPECT_TRUE(ctr({"task", "delete", id}).status.success());
  EXPECT_TRUE(ctr({"container", "rm", id}).status.success());
}

}  // namespace
}  // namespace fleetlet::shim
