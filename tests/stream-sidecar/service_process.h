#pragma once
// The real fleetlet-streams binary (FLEETLET_STREAMS_BIN, set by ctest) as a child process of a
// test, listening on port 0; the bound port is read from its log.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "os/child_process.h"

namespace fleetlet::streams::testing {

struct ServiceProcess {
  ChildProcess process;
  std::uint16_t port = 0;  // the event service; 0 when it did not come up
  std::filesystem::path log;
};

// Starts the binary with data dir `dir`/data (or `data_dir`), source id `source_id`, its log
// in `dir`/service-<run>.log, plus `extra_args`. Fails the test (EXPECT) and returns nullopt
// when it cannot be spawned; port stays 0 when it did not log its address (then the process
// may have exited: see `log`).
std::optional<ServiceProcess> startServiceProcess(const std::filesystem::path& dir, int run,
                                                  const std::vector<std::string>& extra_args = {},
                                                  const std::string& source_id = "node-d",
                                                  std::filesystem::path data_dir = {});

// The process's VmHWM (peak) or VmRSS from /proc/<pid>/status, in bytes; 0 when unreadable.
std::uint64_t peakRssBytes(pid_t pid);
std::uint64_t rssBytes(pid_t pid);

}  // namespace fleetlet::streams::testing
