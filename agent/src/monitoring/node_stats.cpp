#include "monitoring/node_stats.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>
#include <vector>

namespace fleetlet::monitoring {
namespace {

constexpr std::array<std::string_view, 8> kCpuModes = {"user",   "nice", "system",  "idle",
                                                       "iowait", "irq",  "softirq", "steal"};

bool toNumber(std::string_view text, uint64_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

Result<std::string> slurp(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return failErrno(errno, "read {}", file.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::vector<std::string_view> splitWords(std::string_view line) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at < line.size()) {
    auto start = line.find_first_not_of(" \t", at);
    if (start == std::string_view::npos) break;
    auto end = line.find_first_of(" \t", start);
    if (end == std::string_view::npos) end = line.size();
    out.push_back(line.substr(start, end - start));
    at = end;
  }
  return out;
}

double CpuTimes::total() const {
  double sum = 0;
  for (const auto& [mode, s] : seconds) sum += s;
  return sum;
}

Result<CpuTimes> parseProcStat(std::string_view text, long ticks_per_second) {
  if (ticks_per_second <= 0) return fail(ErrorCode::kInvalidArgument, "ticks per second <= 0");
  CpuTimes out;
  bool found = false;
  size_t at = 0;
  while (at < text.size()) {
    auto end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    auto line = text.substr(at, end - at);
    at = end + 1;
    if (!line.starts_with("cpu")) continue;
    auto f = splitWords(line);
    if (f[0] != "cpu") {
      ++out.cpus;
      continue;
    }
    if (f.size() < 5) return fail(ErrorCode::kInvalidArgument, "/proc/stat: short cpu line");
    for (size_t i = 0; i < kCpuModes.size() && i + 1 < f.size(); ++i) {
      uint64_t ticks = 0;
      if (!toNumber(f[i + 1], ticks)) {
        return fail(ErrorCode::kInvalidArgument, "/proc/stat: cpu {}: \"{}\" is not a number",
                    kCpuModes[i], f[i + 1]);
      }
      out.seconds[std::string(kCpuModes[i])] =
          static_cast<double>(ticks) / static_cast<double>(ticks_per_second);
    }
    found = true;
  }
  if (!found) return fail(ErrorCode::kInvalidArgument, "/proc/stat: no cpu line");
  return out;
}

Result<MemoryInfo> parseMeminfo(std::string_view text) {
  MemoryInfo out;
  bool total = false;
  bool available = false;
  size_t at = 0;
  while (at < text.size()) {
    auto end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    auto f = splitWords(text.substr(at, end - at));
    at = end + 1;
    if (f.size() < 2) continue;
    uint64_t kib = 0;
    if (f[0] == "MemTotal:" && toNumber(f[1], kib)) {
      out.total_bytes = kib * 1024;
      total = true;
    } else if (f[0] == "MemAvailable:" && toNumber(f[1], kib)) {
      out.available_bytes = kib * 1024;
      available = true;
    }
  }
  if (!total || !available) {
    return fail(ErrorCode::kInvalidArgument, "/proc/meminfo: no MemTotal or MemAvailable");
  }
  return out;
}

Result<ProcessInfo> parseProcessStat(std::string_view stat, std::string_view statm,
                                     long ticks_per_second, long page_size) {
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  auto close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) {
    return fail(ErrorCode::kInvalidArgument, "stat: malformed");
  }
  auto f = splitWords(stat.substr(close + 1));
  // After the name: state(3) ... utime(14) stime(15), i.e. indexes 11 and 12 here.
  uint64_t utime = 0;
  uint64_t stime = 0;
  if (f.size() < 13 || !toNumber(f[11], utime) || !toNumber(f[12], stime)) {
    return fail(ErrorCode::kInvalidArgument, "stat: no utime/stime");
  }
  auto m = splitWords(statm.substr(0, statm.find('\n')));
  uint64_t resident_pages = 0;
  if (m.size() < 2 || !toNumber(m[1], resident_pages)) {
    return fail(ErrorCode::kInvalidArgument, "statm: no resident size");
  }
  return ProcessInfo{
      .cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks_per_second),
      .resident_bytes = resident_pages * static_cast<uint64_t>(page_size)};
}

Result<CpuTimes> readCpuTimes(const std::filesystem::path& proc) {
  FLEETLET_ASSIGN_OR_RETURN(auto text, slurp(proc / "stat"));
  return parseProcStat(text, ::sysconf(_SC_CLK_TCK));
}

Result<MemoryInfo> readMemoryInfo(const std::filesystem::path& proc) {
  FLEETLET_ASSIGN_OR_RETURN(auto text, slurp(proc / "meminfo"));
  return parseMeminfo(text);
}

Result<DiskInfo> readDiskInfo(const std::filesystem::path& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return failErrno(errno, "statvfs {}", dir.string());
  return DiskInfo{.total_bytes = static_cast<uint64_t>(st.f_blocks) * st.f_frsize,
                  .free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize};
}

Result<ProcessInfo> readSelf(const std::filesystem::path& proc) {
  FLEETLET_ASSIGN_OR_RETURN(auto stat, slurp(proc / "self" / "stat"));
  FLEETLET_ASSIGN_OR_RETURN(auto statm, slurp(proc / "self" / "statm"));
  return parseProcessStat(stat, statm, ::sysconf(_SC_CLK_TCK), ::sysconf(_SC_PAGESIZE));
}

}  // namespace fleetlet::monitoring
