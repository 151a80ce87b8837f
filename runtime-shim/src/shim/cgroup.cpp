#include "shim/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "shim/bundle_files.h"

namespace fleetlet::shim {
namespace {

namespace fs = std::filesystem;
constexpr long kCgroup2Magic = 0x63677270;

Status writeFile(const fs::path& file, std::string_view value) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return failErrno(errno, "open {}", file.string());
  UniqueFd owner(fd);
  if (::write(fd, value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    int err = errno;
    return std::unexpected(
        Error(ErrorCode::kInvalidArgument,
              fmt::format("write '{}' to {}: {}", value, file.string(), std::strerror(err)), err));
  }
  return {};
}

std::uint64_t readU64(const fs::path& file) {
  // "max" (no limit) and anything unreadable read as 0.
  return parseLeadingNumber(readSmallFile(file));
}

std::uint64_t keyedValue(const fs::path& file, std::string_view key) {
  std::istringstream in(readSmallFile(file));
  std::string k;
  std::uint64_t v = 0;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

}  // namespace

Cgroup::Cgroup(std::string path, fs::path root, std::optional<bool> unified)
    : path_(std::move(path)), root_(std::move(root)) {
  while (path_.starts_with('/')) path_.erase(0, 1);
  if (unified) {
    unified_ = *unified;
  } else {
    struct statfs fs_info {};
    unified_ = ::statfs(root_.c_str(), &fs_info) == 0 && fs_info.f_type == kCgroup2Magic;
  }
}

fs::path Cgroup::dir(std::string_view controller) const {
  return unified_ ? root_ / path_ : root_ / controller / path_;
}

std::vector<std::string> Cgroup::controllers() const {
  if (unified_) return {""};
  std::vector<std::string> out;
  for (const char* c : {"memory", "cpu", "cpuacct", "pids"}) {
    // cpu and cpuacct may be one mount (cpu,cpuacct) reached through both symlinks.
    if (fs::exists(root_ / c)) out.emplace_back(c);
  }
  return out;
}

Status Cgroup::create() const {
  if (path_.empty()) return fail(ErrorCode::kInvalidArgument, "cgroup path is empty");
  if (unified_) {
    // Enable the controllers on the way down so the leaf gets memory, cpu and pids files.
    fs::path at = root_;
    for (const auto& part : fs::path(path_)) {
      (void)writeFile(at / "cgroup.subtree_control", "+memory +cpu +pids");
      at /= part;
      if (::mkdir(at.c_str(), 0755) != 0 && errno != EEXIST) {
        return failErrno(errno, "create cgroup {}", at.string());
      }
    }
    return {};
  }
  for (const auto& c : controllers()) {
    std::error_code ec;
    fs::create_directories(dir(c), ec);
    if (ec) return failErrno(ec.value(), "create cgroup {}", dir(c).string());
  }
  return {};
}

Status Cgroup::addProcess(pid_t pid) const {
  std::string value = std::to_string(pid);
  for (const auto& c : controllers()) {
    FLEETLET_RETURN_IF_ERROR(writeFile(dir(c) / "cgroup.procs", value));
  }
  return {};
}

Status Cgroup::apply(const Resources& r) const {
  if (unified_) {
    fs::path d = dir("");
    if (r.memory_limit) {
      FLEETLET_RETURN_IF_ERROR(writeFile(
          d / "memory.max", *r.memory_limit < 0 ? "max" : std::to_string(*r.memory_limit)));
    }
    if (r.cpu_quota || r.cpu_period) {
      std::string quota = r.cpu_quota && *r.cpu_quota > 0 ? std::to_string(*r.cpu_quota) : "max";
      FLEETLET_RETURN_IF_ERROR(
          writeFile(d / "cpu.max", quota + " " + std::to_string(r.cpu_period.value_or(100000))));
    }
    if (r.cpu_shares && *r.cpu_shares >= 2) {
      // runc's conversion of v1 shares [2, 262144] to v2 weight [1, 10000].
      std::uint64_t weight = 1 + ((*r.cpu_shares - 2) * 9999) / 262142;
      FLEETLET_RETURN_IF_ERROR(writeFile(d / "cpu.weight", std::to_string(weight)));
    }
    if (r.pids_limit) {
      FLEETLET_RETURN_IF_ERROR(
          writeFile(d / "pids.max", *r.pids_limit <= 0 ? "max" : std::to_string(*r.pids_limit)));
    }
    return {};
  }
  if (r.memory_limit && fs::exists(dir("memory"))) {
    FLEETLET_RETURN_IF_ERROR(
        writeFile(dir("memory") / "memory.limit_in_bytes", std::to_string(*r.memory_limit)));
  }
  if (fs::exists(dir("cpu"))) {
    if (r.cpu_shares) {
      FLEETLET_RETURN_IF_ERROR(writeFile(dir("cpu") / "cpu.shares", std::to_string(*r.cpu_shares)));
    }
    if (r.cpu_period) {
      FLEETLET_RETURN_IF_ERROR(
          writeFile(dir("cpu") / "cpu.cfs_period_us", std::to_string(*r.cpu_period)));
    }
    if (r.cpu_quota) {
      FLEETLET_RETURN_IF_ERROR(
          writeFile(dir("cpu") / "cpu.cfs_quota_us", std::to_string(*r.cpu_quota)));
    }
  }
  if (r.pids_limit && fs::exists(dir("pids"))) {
    FLEETLET_RETURN_IF_ERROR(writeFile(dir("pids") / "pids.max",
                                       *r.pids_limit <= 0 ? "max" : std::to_string(*r.pids_limit)));
  }
  return {};
}

Result<std::vector<pid_t>> Cgroup::pids() const {
  auto cs = controllers();
  if (cs.empty())
    return fail(ErrorCode::kNotFound, "no cgroup controllers under {}", root_.string());
  fs::path procs = dir(cs.front()) / "cgroup.procs";
  std::ifstream in(procs);
  if (!in) return fail(ErrorCode::kNotFound, "cgroup {} does not exist", procs.string());
  std::vector<pid_t> out;
  pid_t pid = 0;
  while (in >> pid) out.push_back(pid);
  return out;
}

Status Cgroup::signalAll(int signal) const {
  FLEETLET_ASSIGN_OR_RETURN(auto pids, this->pids());
  if (pids.empty()) return fail(ErrorCode::kNotFound, "no process left in cgroup {}", path_);
  for (pid_t pid : pids) ::kill(pid, signal);
  return {};
}

CgroupStats Cgroup::stats() const {
  CgroupStats s;
  if (unified_) {
    fs::path d = dir("");
    s.memory_usage = readU64(d / "memory.current");
    s.memory_max_usage = readU64(d / "memory.peak");
    s.memory_limit = readU64(d / "memory.max");
    s.cpu_usage_ns = keyedValue(d / "cpu.stat", "usage_usec") * 1000;
    s.pids_current = readU64(d / "pids.current");
    s.pids_limit = readU64(d / "pids.max");
  } else {
    s.memory_usage = readU64(dir("memory") / "memory.usage_in_bytes");
    s.memory_max_usage = readU64(dir("memory") / "memory.max_usage_in_bytes");
    s.memory_limit = readU64(dir("memory") / "memory.limit_in_bytes");
    s.cpu_usage_ns = readU64(dir("cpuacct") / "cpuacct.usage");
    s.pids_current = readU64(dir("pids") / "pids.current");
    s.pids_limit = readU64(dir("pids") / "pids.max");
  }
  s.oom_kills = oomKills();
  return s;
}

std::uint64_t Cgroup::oomKills() const {
  if (unified_) return keyedValue(dir("") / "memory.events", "oom_kill");
  return keyedValue(dir("memory") / "memory.oom_control", "oom_kill");
}

Result<UniqueFd> Cgroup::oomNotifier() const {
  if (unified_) {
    UniqueFd in(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!in) return failErrno(errno, "inotify_init1");
    fs::path events = dir("") / "memory.events";
    if (::inotify_add_watch(in.get(), events.c_str(), IN_MODIFY) < 0) {
      return failErrno(errno, "watch {}", events.string());
    }
    return in;
  }
  fs::path control = dir("memory") / "memory.oom_control";
  UniqueFd oom(::open(control.c_str(), O_RDONLY | O_CLOEXEC));
  if (!oom) return failErrno(errno, "open {}", control.string());
  UniqueFd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!efd) return failErrno(errno, "eventfd");
  FLEETLET_RETURN_IF_ERROR(writeFile(dir("memory") / "cgroup.event_control",
                                     fmt::format("{} {}", efd.get(), oom.get())));
  return efd;
}

Status Cgroup::remove() const {
  for (const auto& c : controllers()) {
    fs::path d = dir(c);
    if (::rmdir(d.c_str()) != 0 && errno != ENOENT) {
      int err = errno;
      return std::unexpected(
          Error(err == EBUSY ? ErrorCode::kFailedPrecondition : ErrorCode::kInternal,
                fmt::format("remove cgroup {}: {}", d.string(), std::strerror(err)), err));
    }
  }
  return {};
}

}  // namespace fleetlet::shim
