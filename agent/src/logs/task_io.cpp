#include "logs/task_io.h"

#include <sys/stat.h>

#include <system_error>

namespace fleetlet::logs {

Result<containerd::TaskIo> loggerIo(const std::filesystem::path& logger_binary,
                                    const std::filesystem::path& dir,
                                    const LoggerOptions& options) {
  FLEETLET_ASSIGN_OR_RETURN(auto uri, loggerUri(logger_binary, {.dir = dir, .options = options}));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return failErrno(ec.value(), "create log directory {}", dir.string());
  std::filesystem::permissions(dir,
                               std::filesystem::perms::owner_all |
                                   std::filesystem::perms::group_read |
                                   std::filesystem::perms::group_exec,
                               ec);
  if (ec) return failErrno(ec.value(), "chmod log directory {}", dir.string());
  return containerd::TaskIo{.stdin_uri = "", .stdout_uri = uri, .stderr_uri = uri};
}

}  // namespace fleetlet::logs
