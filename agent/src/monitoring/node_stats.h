#pragma once
// The node's own numbers for metrics: CPU time by mode (/proc/stat), memory (/proc/meminfo),
// the filesystem of a directory (statvfs), and this process' CPU time and resident memory
// (/proc/self/stat, /proc/self/statm).
//
// Concurrency: pure parsers; the readers read files and may block briefly on them.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"

namespace fleetlet::monitoring {

struct CpuTimes {
  // Seconds spent per mode ("user", "nice", "system", "idle", "iowait", "irq", "softirq",
  // "steal"), summed over every CPU.
  std::map<std::string, double> seconds;
  int cpus = 0;  // the "cpuN" lines
  double total() const;
};

struct MemoryInfo {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;  // MemAvailable
};

struct DiskInfo {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;  // available to unprivileged users (f_bavail)
};

struct ProcessInfo {
  double cpu_seconds = 0;  // user + system
  uint64_t resident_bytes = 0;
};

// The words of `line`, split at runs of spaces and tabs (views into `line`).
std::vector<std::string_view> splitWords(std::string_view line);

// `text` of /proc/stat. kInvalidArgument when its "cpu" line is missing or malformed.
Result<CpuTimes> parseProcStat(std::string_view text, long ticks_per_second);
// `text` of /proc/meminfo. kInvalidArgument when MemTotal or MemAvailable is missing.
Result<MemoryInfo> parseMeminfo(std::string_view text);
// `stat` and `statm` of one process. kInvalidArgument when malformed.
Result<ProcessInfo> parseProcessStat(std::string_view stat, std::string_view statm,
                                     long ticks_per_second, long page_size);

// Readers of the live files under `proc` ("/proc"); errors name the file.
Result<CpuTimes> readCpuTimes(const std::filesystem::path& proc = "/proc");
Result<MemoryInfo> readMemoryInfo(const std::filesystem::path& proc = "/proc");
Result<DiskInfo> readDiskInfo(const std::filesystem::path& dir);
Result<ProcessInfo> readSelf(const std::filesystem::path& proc = "/proc");

}  // namespace fleetlet::monitoring
