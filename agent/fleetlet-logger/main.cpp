// fleetlet-logger: containerd binary logging driver that writes a task's stdout (fd 3) and
// stderr (fd 4) into a size-capped, rotated CRI log; closes fd 5 when ready. See
// agent/src/logs/logger.h and docs/logs.md.
#include <fcntl.h>
#include <fmt/format.h>

#include <string>
#include <string_view>
#include <vector>

#include "logs/logger.h"
#include "version/version.h"

namespace {

constexpr char kUsage[] =
    "usage: fleetlet-logger --dir DIR [--max-size BYTES] [--max-files N] [--max-line BYTES]\n"
    "Started by containerd's shim with the task's stdout on fd 3, stderr on fd 4 and a\n"
    "readiness pipe on fd 5; stdio URI binary:///path/fleetlet-logger?--dir=DIR&...\n";

fleetlet::UniqueFd inheritedFd(int fd) {
  return fleetlet::UniqueFd(::fcntl(fd, F_GETFD) == -1 ? -1 : fd);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fleetlet::logs;
  if (argc == 2 && std::string_view(argv[1]) == "--version") {
    fmt::print("{}\n", fleetlet::versionLine("fleetlet-logger"));
    return 0;
  }
  auto config = parseLoggerArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (!config) {
    fmt::print(stderr, "fleetlet-logger: {}\n{}", config.error().message(), kUsage);
    return 2;
  }
  auto stop = terminationSignalFd();
  if (!stop) {
    fmt::print(stderr, "fleetlet-logger: {}\n", stop.error().message());
    return 1;
  }
  SystemClock clock;
  auto stats =
      runLogger(*config, inheritedFd(3), inheritedFd(4), inheritedFd(5), stop->get(), clock);
  if (!stats) {
    fmt::print(stderr, "fleetlet-logger: {}\n", stats.error().message());
    return 1;
  }
  if (stats->dropped > 0) {
    fmt::print(stderr, "fleetlet-logger: dropped {} records: {}\n", stats->dropped,
               stats->last_error);
  }
  return 0;
}
