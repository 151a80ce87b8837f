#include "shim/manager.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <thread>

#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "shim/bundle_files.h"
#include "shim/cgroup.h"
#include "shim/proto_time.h"
#include "shim/publisher.h"
#include "shim/reaper.h"
#include "shim/runc_process.h"
#include "shim/task_service.h"
#include "ttrpc/server.h"
#include "ttrpc/socket.h"

namespace fleetlet::shim {
namespace {

namespace fs = std::filesystem;

constexpr int kListenerFd = 3;

std::string hex64(std::uint64_t v) { return fmt::format("{:016x}", v); }

std::uint64_t fnv1a64(std::string_view s, std::uint64_t seed) {
  std::uint64_t h = seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

void logLine(const ShimFlags& flags, std::string_view message) {
  (void)std::fprintf(stderr, "fleetlet-shim %s/%s: %.*s\n", flags.ns.c_str(), flags.id.c_str(),
                     static_cast<int>(message.size()), message.data());
}

fs::path bundleOf(const ShimFlags& flags) {
  if (!flags.bundle.empty()) return flags.bundle;
  std::error_code ec;
  return fs::current_path(ec);
}

}  // namespace

Result<ShimFlags> parseFlags(const std::vector<std::string>& args) {
  ShimFlags flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (!a.starts_with('-')) {
      if (!flags.action.empty()) {
        return fail(ErrorCode::kInvalidArgument, "unexpected argument '{}'", a);
      }
      flags.action = a;
      continue;
    }
    a.remove_prefix(a.starts_with("--") ? 2 : 1);
    std::string name(a.substr(0, a.find('=')));
    std::optional<std::string> value;
    if (auto eq = a.find('='); eq != std::string_view::npos) value = std::string(a.substr(eq + 1));
    if (name == "debug") {
      flags.debug = !value || *value == "true" || *value == "1";
      continue;
    }
    std::string* target = nullptr;
    if (name == "namespace")
      target = &flags.ns;
    else if (name == "address")
      target = &flags.address;
    else if (name == "publish-binary")
      target = &flags.publish_binary;
    else if (name == "id")
      target = &flags.id;
    else if (name == "bundle")
      target = &flags.bundle;
    else if (name == "socket" || name == "systemd-cgroup") {
      // Accepted for compatibility; unused.
      if (!value && i + 1 < args.size()) ++i;
      continue;
    } else {
      return fail(ErrorCode::kInvalidArgument, "unknown flag -{}", name);
    }
    if (!value) {
      if (i + 1 >= args.size())
        return fail(ErrorCode::kInvalidArgument, "flag -{} needs a value", name);
      value = args[++i];
    }
    *target = *value;
  }
  if (flags.action != "" && flags.action != "start" && flags.action != "delete") {
    return fail(ErrorCode::kInvalidArgument, "unknown action '{}' (start, delete)", flags.action);
  }
  if (flags.ns.empty()) return fail(ErrorCode::kInvalidArgument, "-namespace is required");
  if (flags.id.empty()) return fail(ErrorCode::kInvalidArgument, "-id is required");
  if (flags.id.find('/') != std::string::npos || flags.ns.find('/') != std::string::npos) {
    return fail(ErrorCode::kInvalidArgument, "-id and -namespace may not contain '/'");
  }
  return flags;
}

fs::path socketPathFor(const std::string& containerd_address, const std::string& ns,
                       const std::string& id) {
  std::string address = containerd_address;
  if (address.starts_with("unix://")) address.erase(0, 7);
  std::string key = (fs::path(address) / ns / id).lexically_normal().string();
  std::string name =
      hex64(fnv1a64(key, 14695981039346656037ull)) + hex64(fnv1a64(key, 0x9e3779b97f4a7c15ull));
  fs::path dir =
      address.empty() ? fs::path("/run/fleetlet-shim") : fs::path(address).parent_path() / "s";
  fs::path path = dir / name;
  if (path.string().size() >= sizeof(sockaddr_un{}.sun_path)) path = "/run/fleetlet-shim/" + name;
  return path;
}

int runStart(const ShimFlags& flags) {
  // containerd writes the runtime options to stdin and waits for us to read them.
  std::cin.ignore(std::numeric_limits<std::streamsize>::max());
  fs::path bundle = bundleOf(flags);
  fs::path socket = socketPathFor(flags.address, flags.ns, flags.id);
  std::error_code ec;
  fs::create_directories(socket.parent_path(), ec);
  std::string address = "unix://" + socket.string();

  auto listener = ttrpc::listenUnix(socket);
  if (!listener && listener.error().code() == ErrorCode::kAlreadyExists) {
    if (ttrpc::connectUnix(socket.string())) {
      // A live shim for this task already serves here: hand containerd its address.
      writeSmallFile(bundle / "address", address);
      std::cout << address << std::flush;
      return 0;
    }
    fs::remove(socket, ec);
    listener = ttrpc::listenUnix(socket);
  }
  if (!listener) {
    std::cerr << "start shim: " << listener.error().message() << "\n";
    return 1;
  }

  ShimFlags serve = flags;
  serve.action.clear();
  serve.bundle = bundle.string();
  const int listen_fd = listener->get();

  pid_t pid = ::fork();
  if (pid < 0) {
    std::cerr << "start shim: fork: " << std::strerror(errno) << "\n";
    return 1;
  }
  if (pid == 0) {
    // The server: its own session (containerd's restarts do not reach it), stdio on
    // /dev/null so containerd's pipes close, the listener on fd 3. This process has one
    // thread, so the child serves without an exec (that exec and the dynamic loading cost
    // every app start a few milliseconds; the Go shims re-exec because Go cannot fork).
    ::setsid();
    int null_fd = ::open("/dev/null", O_RDWR);
    if (null_fd < 0 || ::chdir(bundle.c_str()) != 0) ::_exit(1);
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    if (listen_fd == kListenerFd) {
      ::fcntl(kListenerFd, F_SETFD, 0);
    } else if (::dup2(listen_fd, kListenerFd) < 0) {
      ::_exit(1);
    }
    // Nothing else of the start process (no exec closes it for us).
    ::close_range(static_cast<unsigned>(kListenerFd) + 1, ~0U, 0);
    std::exit(runServe(serve));
  }
  writeSmallFile(bundle / "address", address);
  std::cout << address << std::flush;
  return 0;
}

int runDelete(const ShimFlags& flags) {
  fs::path bundle = bundleOf(flags);
  auto pid = static_cast<std::uint32_t>(parseLeadingNumber(readSmallFile(bundle / kInitPidFile)));
  RuncProcess::cleanupBundle(bundle, flags.id);
  std::string cgroup_path = readSmallFile(bundle / kCgroupFile);
  if (!cgroup_path.empty()) {
    Cgroup cgroup(cgroup_path);
    for (int attempt = 0; attempt < 200; ++attempt) {
      auto left = cgroup.pids();
      if (!left || left->empty()) break;
      for (pid_t p : *left) ::kill(p, SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (auto removed = cgroup.remove(); !removed) logLine(flags, removed.error().message());
  }
  std::error_code ec;
  fs::remove(bundle / kInitPidFile, ec);
  fs::remove(bundle / kCgroupFile, ec);
  fs::remove(socketPathFor(flags.address, flags.ns, flags.id), ec);

  containerd::task::v2::DeleteResponse response;
  response.set_pid(pid);
  response.set_exit_status(128 + SIGKILL);
  setTimestamp(response.mutable_exited_at(), std::chrono::system_clock::now());
  std::cout << response.SerializeAsString() << std::flush;
  return 0;
}

int runServe(const ShimFlags& flags) {
  Reaper::blockSigchld();
  (void)::signal(SIGPIPE, SIG_IGN);
  fs::path bundle = bundleOf(flags);
  // containerd reads the bundle's `log` fifo into its own log.
  int log_fd = ::open((bundle / "log").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (log_fd >= 0) {
    ::fcntl(log_fd, F_SETFL, ::fcntl(log_fd, F_GETFL) & ~O_NONBLOCK);
    ::dup2(log_fd, 2);
    ::close(log_fd);
  }
  auto reaper = Reaper::start();
  if (!reaper) {
    logLine(flags, reaper.error().message());
    return 1;
  }
  const char* ttrpc_address = std::getenv("TTRPC_ADDRESS");
  std::string events_address = ttrpc_address != nullptr ? ttrpc_address : flags.address + ".ttrpc";
  Publisher publisher(flags.ns, ttrpcForwarder(events_address, flags.ns));
  auto server = ttrpc::Server::adopt(UniqueFd(kListenerFd));
  std::string address =
      flags.address.starts_with("unix://") ? flags.address.substr(7) : flags.address;
  fs::path state_dir =
      address.empty() ? fs::path("/run/fleetlet-shim") : fs::path(address).parent_path();
  ShimContext ctx{.ns = flags.ns,
                  .id = flags.id,
                  .bundle = bundle,
                  .runc_root = state_dir / "runc" / flags.ns,
                  .request_exit = [&] {
                    std::thread([&] {
                      // Deliver /tasks/delete before going away.
                      publisher.drain(std::chrono::seconds(10));
                      server->shutdown();
                    }).detach();
                  }};
  TaskService service(std::move(ctx), **reaper, publisher);
  service.registerWith(*server);
  logLine(flags, "serving");
  server->serve();
  std::error_code ec;
  fs::remove(socketPathFor(flags.address, flags.ns, flags.id), ec);
  fs::remove(bundle / "address", ec);
  // Detached request threads may still wait (Wait on a connection containerd dropped):
  // leave without unwinding them.
  (void)std::fflush(stderr);
  ::_exit(0);
}

}  // namespace fleetlet::shim
