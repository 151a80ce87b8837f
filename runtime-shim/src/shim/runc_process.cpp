#include "shim/runc_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "shim/bundle_files.h"

namespace fleetlet::shim {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLogFile = "runc-log.json";
constexpr const char* kPidFile = "runc.pid";
constexpr const char* kRootFile = "runc.root";
constexpr const char* kBinaryFile = "runc.binary";

// The last error runc logged, or "".
std::string lastRuncError(const fs::path& bundle) {
  std::ifstream in(bundle / kLogFile);
  std::string line, last;
  while (std::getline(in, line)) {
    auto entry = nlohmann::json::parse(line, nullptr, false);
    if (entry.is_object() && entry.value("level", "") == "error") last = entry.value("msg", "");
  }
  return last;
}

// Runs runc to completion through the reaper (the only waitpid in the shim). `stdio` are
// the fds for 0, 1, 2 (-1: /dev/null). Returns runc's exit code.
Result<int> runRunc(Reaper& reaper, const RuncConfig& config, std::vector<std::string> args,
                    int in = -1, int out = -1, int err = -1) {
  std::vector<std::string> full = {
      config.binary,  "--root", config.root, "--log", (config.bundle / kLogFile).string(),
      "--log-format", "json"};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(full.size() + 1);
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  auto done = std::make_shared<std::promise<int>>();
  auto result = done->get_future();
  pid_t pid = reaper.spawnWatched(
      [&] {
        pid_t child = ::fork();
        if (child == 0) {
          sigset_t none;
          sigemptyset(&none);
          ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
          (void)::signal(SIGPIPE, SIG_DFL);
          int null_fd = ::open("/dev/null", O_RDWR);
          if (null_fd < 0) ::_exit(126);
          ::dup2(in >= 0 ? in : null_fd, 0);
          ::dup2(out >= 0 ? out : null_fd, 1);
          ::dup2(err >= 0 ? err : null_fd, 2);
          ::chdir(config.bundle.c_str());
          ::execvp(argv[0], argv.data());
          ::_exit(127);
        }
        return child;
      },
      [done](pid_t, ProcessExit exit) { done->set_value(exit.status); });
  if (pid < 0) return failErrno(errno, "fork {}", config.binary);
  return result.get();
}

Result<int> mountFlags(const std::vector<std::string>& options, std::string& data) {
  static const std::map<std::string_view, std::pair<bool, unsigned long>> kFlags = {
      {"ro", {true, MS_RDONLY}},       {"rw", {false, MS_RDONLY}},
      {"nosuid", {true, MS_NOSUID}},   {"suid", {false, MS_NOSUID}},
      {"nodev", {true, MS_NODEV}},     {"dev", {false, MS_NODEV}},
      {"noexec", {true, MS_NOEXEC}},   {"exec", {false, MS_NOEXEC}},
      {"bind", {true, MS_BIND}},       {"rbind", {true, MS_BIND | MS_REC}},
      {"noatime", {true, MS_NOATIME}}, {"relatime", {true, MS_RELATIME}},
  };
  unsigned long flags = 0;
  for (const auto& o : options) {
    if (auto it = kFlags.find(o); it != kFlags.end()) {
      if (it->second.first) {
        flags |= it->second.second;
      } else {
        flags &= ~it->second.second;
      }
    } else {
      if (!data.empty()) data += ',';
      data += o;
    }
  }
  return static_cast<int>(flags);
}

}  // namespace

Result<std::unique_ptr<RuncProcess>> RuncProcess::create(const RuncConfig& config,
                                                         const std::vector<RootfsMount>& rootfs,
                                                         OpenedStdio io, Reaper& reaper,
                                                         Reaper::Callback on_exit) {
  auto process = std::unique_ptr<RuncProcess>(new RuncProcess(config, reaper));
  writeSmallFile(config.bundle / kRootFile, config.root);
  writeSmallFile(config.bundle / kBinaryFile, config.binary);
  fs::path target = config.bundle / "rootfs";
  if (!rootfs.empty()) {
    if (rootfs.size() > 1) {
      return fail(ErrorCode::kInvalidArgument, "{} rootfs mounts; the shim mounts one",
                  rootfs.size());
    }
    std::error_code ec;
    fs::create_directories(target, ec);
    std::string data;
    FLEETLET_ASSIGN_OR_RETURN(int flags, mountFlags(rootfs[0].options, data));
    if (::mount(rootfs[0].source.c_str(), target.c_str(), rootfs[0].type.c_str(),
                static_cast<unsigned long>(flags), data.empty() ? nullptr : data.c_str()) != 0) {
      return failErrno(errno, "mount the {} rootfs at {}", rootfs[0].type, target.string());
    }
    process->mounted_ = true;
  }
  std::error_code ec;
  fs::remove(config.bundle / kLogFile, ec);
  fs::remove(config.bundle / kPidFile, ec);
  FLEETLET_ASSIGN_OR_RETURN(int code,
                            runRunc(reaper, config,
                                    {"create", "--bundle", config.bundle.string(), "--pid-file",
                                     (config.bundle / kPidFile).string(), config.id},
                                    io.in.get(), io.out.get(), io.err.get()));
  if (code != 0) {
    process->cleaned_ = true;  // nothing was created
    if (process->mounted_) ::umount2(target.c_str(), MNT_DETACH);
    process->mounted_ = false;
    std::string why = lastRuncError(config.bundle);
    return fail(ErrorCode::kInvalidArgument, "runc create {}: {}", config.id,
                why.empty() ? fmt::format("exit status {}", code) : why);
  }
  process->pid_ = static_cast<pid_t>(parseLeadingNumber(readSmallFile(config.bundle / kPidFile)));
  if (process->pid_ <= 0) {
    return fail(ErrorCode::kInternal, "runc create {} wrote no pid file", config.id);
  }
  // The init may already have died: watch() delivers a past exit too.
  reaper.watch(process->pid_, std::move(on_exit));
  return process;
}

RuncProcess::~RuncProcess() {
  if (!cleaned_) (void)releaseRuncState();
}

Status RuncProcess::start() {
  FLEETLET_ASSIGN_OR_RETURN(int code, runRunc(reaper_, config_, {"start", config_.id}));
  if (code != 0) {
    std::string why = lastRuncError(config_.bundle);
    return fail(ErrorCode::kInvalidArgument, "runc start {}: {}", config_.id,
                why.empty() ? fmt::format("exit status {}", code) : why);
  }
  started_ = true;
  return {};
}

Result<pid_t> RuncProcess::exec(const std::string& exec_id, const std::string& process_json,
                                OpenedStdio io, Reaper::Callback on_exit) {
  const fs::path process_file = config_.bundle / fmt::format("exec-{}.json", exec_id);
  const fs::path pid_file = config_.bundle / fmt::format("exec-{}.pid", exec_id);
  writeSmallFile(process_file, process_json);
  std::error_code ec;
  fs::remove(pid_file, ec);
  auto code = runRunc(reaper_, config_,
                      {"exec", "--detach", "--process", process_file.string(), "--pid-file",
                       pid_file.string(), config_.id},
                      io.in.get(), io.out.get(), io.err.get());
  fs::remove(process_file, ec);
  if (!code) return std::unexpected(code.error());
  if (*code != 0) {
    std::string why = lastRuncError(config_.bundle);
    return fail(ErrorCode::kInvalidArgument, "runc exec {}: {}", exec_id,
                why.empty() ? fmt::format("exit status {}", *code) : why);
  }
  const auto pid = static_cast<pid_t>(parseLeadingNumber(readSmallFile(pid_file)));
  fs::remove(pid_file, ec);
  if (pid <= 0) return fail(ErrorCode::kInternal, "runc exec {} wrote no pid file", exec_id);
  // Reparented to the shim (a subreaper) when runc exited; an exit already seen is delivered.
  reaper_.watch(pid, std::move(on_exit));
  return pid;
}

Status RuncProcess::cleanup() { return releaseRuncState(); }

Status RuncProcess::releaseRuncState() {
  if (cleaned_) return {};
  cleaned_ = true;
  auto code = runRunc(reaper_, config_, {"delete", "--force", config_.id});
  if (mounted_) {
    ::umount2((config_.bundle / "rootfs").c_str(), MNT_DETACH);
    mounted_ = false;
  }
  if (!code) return std::unexpected(code.error());
  if (*code != 0) {
    return fail(ErrorCode::kInternal, "runc delete {}: {}", config_.id,
                lastRuncError(config_.bundle));
  }
  return {};
}

void RuncProcess::cleanupBundle(const fs::path& bundle, const std::string& id) {
  std::string root = readSmallFile(bundle / kRootFile);
  std::string binary = readSmallFile(bundle / kBinaryFile);
  if (root.empty()) return;  // not a container task
  pid_t pid = ::fork();
  if (pid == 0) {
    int null_fd = ::open("/dev/null", O_RDWR);
    ::dup2(null_fd, 1);
    ::execlp(binary.empty() ? "runc" : binary.c_str(), "runc", "--root", root.c_str(), "delete",
             "--force", id.c_str(), nullptr);
    ::_exit(127);
  }
  if (pid > 0) {
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  ::umount2((bundle / "rootfs").c_str(), MNT_DETACH);
}

}  // namespace fleetlet::shim
