#include "webview/child_log.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <utility>

#include "logs/clock.h"
#include "logs/rotating_writer.h"

namespace fleetlet::webview {
namespace {

// Reads `out` and `err` to their ends, or until `stop` is readable, dropping the bytes.
void discard(int out, int err, int stop) {
  std::array<char, 4096> buf{};
  std::array<pollfd, 3> fds{pollfd{.fd = out, .events = POLLIN, .revents = 0},
                            pollfd{.fd = err, .events = POLLIN, .revents = 0},
                            pollfd{.fd = stop, .events = POLLIN, .revents = 0}};
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[2].revents != 0) return;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buf.data(), buf.size());
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) fds[i].fd = -1;  // its end
    }
  }
}

// A pipe: {read end, write end}, both close-on-exec.
Result<std::pair<UniqueFd, UniqueFd>> makePipe() {
  std::array<int, 2> ends{};
  if (::pipe2(ends.data(), O_CLOEXEC) != 0) return failErrno(errno, "pipe for the kiosk's log");
  return std::pair{UniqueFd(ends[0]), UniqueFd(ends[1])};
}

// A copy of `fd` for the logger, which closes what it is given when it returns.
Result<UniqueFd> copyOf(const UniqueFd& fd) {
  UniqueFd copy(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
  if (!copy) return failErrno(errno, "dup of the kiosk's log pipe");
  return copy;
}

}  // namespace

Result<ChildLog> ChildLog::start(const std::filesystem::path& dir,
                                 const logs::LoggerOptions& options) {
  // Made here as loggerIo makes a task's: a failure is the logger's to report (see above).
  (void)logs::makeLogDir(dir);
  FLEETLET_ASSIGN_OR_RETURN(auto out, makePipe());
  FLEETLET_ASSIGN_OR_RETURN(auto err, makePipe());
  UniqueFd stop(::eventfd(0, EFD_CLOEXEC));
  if (!stop) return failErrno(errno, "eventfd for the kiosk's log");
  // After a failed open the thread goes on reading the originals.
  FLEETLET_ASSIGN_OR_RETURN(UniqueFd logger_out, copyOf(out.first));
  FLEETLET_ASSIGN_OR_RETURN(UniqueFd logger_err, copyOf(err.first));
  std::thread thread([dir, options, out = std::move(out.first), err = std::move(err.first),
                      logger_out = std::move(logger_out), logger_err = std::move(logger_err),
                      stop = stop.get()]() mutable {
    logs::SystemClock clock;
    auto copied = logs::runLogger({.dir = dir, .options = options}, std::move(logger_out),
                                  std::move(logger_err), UniqueFd(), stop, clock);
    if (copied) {
      if (copied->dropped > 0) {
        spdlog::warn("[webview] the kiosk's log lost {} records: {}", copied->dropped,
                     copied->last_error);
      }
      return;
    }
    spdlog::warn("[webview] the kiosk's output is not logged: {}", copied.error().describe());
    discard(out.get(), err.get(), stop);
  });
  return ChildLog(std::move(out.second), std::move(err.second), std::move(stop), std::move(thread));
}

ChildLog::~ChildLog() {
  if (!thread_.joinable()) return;
  closeWriteEnds();
  const std::uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof one);
  thread_.join();
}

}  // namespace fleetlet::webview
