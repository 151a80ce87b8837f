#include "support/private_containerd.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

#include "os/unique_fd.h"
#include "support/system_state.h"
#include "support/temp_dir.h"

namespace fleetlet::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr auto kStartTimeout = 20s;
constexpr auto kStopGrace = 10s;

bool socketAccepts(const fs::path& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string p = path.string();
  if (p.size() >= sizeof(addr.sun_path)) return false;
  std::copy(p.begin(), p.end(), addr.sun_path);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

}  // namespace

fs::path PrivateContainerd::shimDir() {
  const char* env = std::getenv("FLEETLET_TEST_SHIM_DIR");
  fs::path dir = env != nullptr && *env != '\0' ? fs::path(env) : fs::path(FLEETLET_BUILD_SHIM_DIR);
  std::error_code ec;
  return fs::exists(dir / "containerd-shim-fleetlet-v1", ec) ? dir : fs::path();
}

Result<PrivateContainerd> PrivateContainerd::start(const fs::path& dir, fs::path shim_dir) {
  std::error_code ec;
  fs::path abs = fs::absolute(dir, ec).lexically_normal();
  if (ec) return failErrno(ec.value(), "absolute path of {}", dir.string());
  // sun_path holds 108 bytes including the NUL; the ttrpc socket name is the longest.
  if ((abs / "containerd.sock.ttrpc").string().size() >= sizeof(sockaddr_un{}.sun_path)) {
    return fail(ErrorCode::kInvalidArgument,
                "private containerd: directory {} is too long for a unix socket path",
                abs.string());
  }
  fs::create_directories(abs, ec);
  if (ec) return failErrno(ec.value(), "create {}", abs.string());
  PrivateContainerd instance(abs, std::move(shim_dir));
  FLEETLET_RETURN_IF_ERROR(instance.writeConfig());
  FLEETLET_RETURN_IF_ERROR(instance.startDaemon());
  return instance;
}

Result<PrivateContainerd> PrivateContainerd::start() {
  FLEETLET_ASSIGN_OR_RETURN(TempDir dir, TempDir::create("fleetlet-containerd"));
  return start(dir.release());
}

Result<PrivateContainerd> PrivateContainerd::startWithShimsFrom(fs::path shim_dir) {
  FLEETLET_ASSIGN_OR_RETURN(TempDir dir, TempDir::create("fleetlet-containerd"));
  return start(dir.release(), std::move(shim_dir));
}

PrivateContainerd::PrivateContainerd(PrivateContainerd&& other) noexcept
    : dir_(std::exchange(other.dir_, {})),
      shim_dir_(std::move(other.shim_dir_)),
      daemon_(std::move(other.daemon_)) {}

PrivateContainerd::~PrivateContainerd() {
  if (dir_.empty()) return;  // Moved from.
  cleanup();
}

std::string PrivateContainerd::uniqueId(std::string_view prefix) {
  static std::atomic<int> counter{0};
  return fmt::format("{}-{}-{}", prefix, ::getpid(), counter.fetch_add(1));
}

pid_t PrivateContainerd::pid() const { return daemon_ ? daemon_->pid() : -1; }

Status PrivateContainerd::writeConfig() const {
  const std::string d = dir_.string();
  std::ofstream out(dir_ / "config.toml", std::ios::trunc);
  out << "# Written by fleetlet's PrivateContainerd test fixture.\n"
      << "version = 2\n"
      << "root = \"" << d << "/root\"\n"
      << "state = \"" << d << "/state\"\n"
      << "disabled_plugins = [\n"
      << "  \"io.containerd.grpc.v1.cri\",\n"
      << "  \"io.containerd.snapshotter.v1.aufs\",\n"
      << "  \"io.containerd.snapshotter.v1.btrfs\",\n"
      << "  \"io.containerd.snapshotter.v1.devmapper\",\n"
      << "  \"io.containerd.snapshotter.v1.zfs\",\n"
      << "]\n\n"
      << "[grpc]\n  address = \"" << socket().string() << "\"\n\n"
      << "[ttrpc]\n  address = \"" << ttrpcSocket().string() << "\"\n\n"
      << "[debug]\n  level = \"info\"\n\n"
      << "[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"" << d << "/opt\"\n";
  out.close();
  if (!out) return fail(ErrorCode::kInternal, "write {}/config.toml", d);
  return {};
}

Status PrivateContainerd::startDaemon() {
  if (daemon_ && !daemon_->poll()) return {};
  std::error_code ec;
  fs::remove(socket(), ec);
  fs::remove(ttrpcSocket(), ec);
  SpawnOptions options{
      .argv = {"containerd", "--config", (dir_ / "config.toml").string()},
      .stdout_path = logPath(),
      .stderr_path = logPath(),
  };
  // Shims are found on containerd's PATH: the fleetlet shim's directory goes first.
  if (!shim_dir_.empty()) {
    const char* path = std::getenv("PATH");
    options.env["PATH"] = shim_dir_.string() + ":" + (path != nullptr ? path : "/usr/bin:/bin");
  }
  auto child = ChildProcess::spawn(options);
  if (!child) return std::unexpected(child.error().wrap("start private containerd"));
  daemon_ = std::make_unique<ChildProcess>(std::move(*child));

  auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto exited = daemon_->poll()) {
      daemon_.reset();
      return fail(ErrorCode::kUnavailable, "private containerd in {} exited ({}); log:\n{}",
                  dir_.string(), exited->describe(), logTail());
    }
    if (socketAccepts(socket())) {
      auto version = ctr({"version"});
      if (!version) return std::unexpected(version.error().wrap("run ctr"));
      if (version->status.success()) return {};
    }
    std::this_thread::sleep_for(50ms);
  }
  daemon_->stop(SIGKILL, 1s);
  daemon_.reset();
  return fail(ErrorCode::kUnavailable,
              "private containerd in {} did not answer within {} s; log:\n{}", dir_.string(),
              kStartTimeout.count(), logTail());
}

void PrivateContainerd::stopDaemon(int signal) {
  if (!daemon_) return;
  daemon_->stop(signal, kStopGrace);
  daemon_.reset();
}

Status PrivateContainerd::restart() {
  stopDaemon(SIGTERM);
  return startDaemon();
}

Result<CommandOutput> PrivateContainerd::ctr(std::vector<std::string> args, std::string ns) const {
  std::vector<std::string> argv = {"ctr", "--address", socket().string(), "-n", std::move(ns)};
  argv.insert(argv.end(), std::make_move_iterator(args.begin()),
              std::make_move_iterator(args.end()));
  return runCommand(argv);
}

Result<std::string> PrivateContainerd::ctrOk(std::vector<std::string> args, std::string ns) const {
  std::string what = "ctr";
  for (const auto& a : args) what += " " + a;
  FLEETLET_ASSIGN_OR_RETURN(CommandOutput out, ctr(std::move(args), std::move(ns)));
  if (!out.status.success()) {
    return fail(ErrorCode::kInternal, "{}: {}: {}", what, out.status.describe(), out.err);
  }
  return std::move(out.out);
}

std::string PrivateContainerd::logTail(size_t count) const {
  std::ifstream in(logPath());
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(line);
    if (tail.size() > count) tail.pop_front();
  }
  std::string out;
  for (const auto& l : tail) out += l + "\n";
  return out;
}

void PrivateContainerd::removeAllTasks() {
  auto namespaces = ctr({"--timeout", "20s", "namespaces", "ls", "-q"});
  if (!namespaces || !namespaces->status.success()) return;
  for (const auto& ns : lines(namespaces->out)) {
    if (auto tasks = ctr({"--timeout", "20s", "tasks", "ls", "-q"}, ns);
        tasks && tasks->status.success()) {
      for (const auto& task : lines(tasks->out)) {
        (void)ctr({"--timeout", "20s", "tasks", "kill", "-a", "-s", "SIGKILL", task}, ns);
        (void)ctr({"--timeout", "20s", "tasks", "delete", "-f", task}, ns);
      }
    }
    if (auto containers = ctr({"--timeout", "20s", "containers", "ls", "-q"}, ns);
        containers && containers->status.success()) {
      for (const auto& container : lines(containers->out)) {
        (void)ctr({"--timeout", "20s", "containers", "delete", container}, ns);
      }
    }
  }
}

void PrivateContainerd::cleanup() {
  if (daemon_ && !daemon_->poll()) removeAllTasks();
  stopDaemon(SIGTERM);
  if (int shims = killShimsOf(socket(), 5s); shims > 0) {
    std::cerr << "PrivateContainerd: killed " << shims << " leftover shim(s) of " << dir_ << "\n";
  }
  if (auto unmounted = unmountAllUnder(dir_); !unmounted) {
    std::cerr << "PrivateContainerd: " << unmounted.error().message() << "\n";
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
  if (ec) std::cerr << "PrivateContainerd: remove " << dir_ << ": " << ec.message() << "\n";
}

}  // namespace fleetlet::testing
