#pragma once
// A task's cgroup, v1 (one directory per controller) or v2 (one unified directory), chosen
// by what is mounted at the root. The path is the spec's linux.cgroupsPath, relative to each
// hierarchy's root ("/fleetlet/app" → /sys/fs/cgroup/memory/fleetlet/app on v1).
//
// v1 controllers used: memory, cpu, cpuacct, pids (those mounted; others are left alone).
// v2: memory, cpu and pids are enabled in every ancestor's cgroup.subtree_control.
// Thread-safety: const methods may run concurrently; apply() and remove() are serialised by
// the caller.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "error/error.h"
#include "os/unique_fd.h"
#include "shim/spec.h"

namespace fleetlet::shim {

struct CgroupStats {
  std::uint64_t memory_usage = 0;
  std::uint64_t memory_max_usage = 0;  // the peak (v2: memory.peak, 0 before Linux 5.19)
  std::uint64_t memory_limit = 0;
  std::uint64_t cpu_usage_ns = 0;
  std::uint64_t pids_current = 0;
  std::uint64_t pids_limit = 0;  // 0 = unlimited
  std::uint64_t oom_kills = 0;
};

class Cgroup {
 public:
  // Names the cgroup without touching the filesystem. The version is what is mounted at
  // `root` unless `unified` says (tests use a plain directory as the root).
  Cgroup(std::string path, std::filesystem::path root = "/sys/fs/cgroup",
         std::optional<bool> unified = std::nullopt);

  bool unified() const { return unified_; }
  const std::string& path() const { return path_; }

  // Creates the directories (existing ones are reused).
  Status create() const;
  // Moves `pid` in (every controller).
  Status addProcess(pid_t pid) const;
  // Writes the limits that are set; others stay as they are. kInvalidArgument naming the
  // file the kernel refused.
  Status apply(const Resources& resources) const;
  // Every process in the cgroup.
  Result<std::vector<pid_t>> pids() const;
  // Signals every process in the cgroup; kNotFound when it holds none.
  Status signalAll(int signal) const;
  CgroupStats stats() const;
  // An eventfd that becomes readable on each OOM kill (v1 memory.oom_control via
  // cgroup.event_control), or an inotify fd on memory.events (v2); read oomKills() after.
  Result<UniqueFd> oomNotifier() const;
  std::uint64_t oomKills() const;
  // Removes the directories; processes still inside make it fail with kFailedPrecondition.
  Status remove() const;

 private:
  std::filesystem::path dir(std::string_view controller) const;
  std::vector<std::string> controllers() const;

  std::string path_;
  std::filesystem::path root_;
  bool unified_ = false;
};

}  // namespace fleetlet::shim
