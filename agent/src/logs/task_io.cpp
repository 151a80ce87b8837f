#include "logs/task_io.h"

#include "logs/rotating_writer.h"

namespace fleetlet::logs {

Result<containerd::TaskIo> loggerIo(const std::filesystem::path& logger_binary,
                                    const std::filesystem::path& dir,
                                    const LoggerOptions& options) {
  FLEETLET_ASSIGN_OR_RETURN(auto uri, loggerUri(logger_binary, {.dir = dir, .options = options}));
  FLEETLET_RETURN_IF_ERROR(makeLogDir(dir));
  return containerd::TaskIo{.stdin_uri = "", .stdout_uri = uri, .stderr_uri = uri};
}

}  // namespace fleetlet::logs
