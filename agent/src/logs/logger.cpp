#include "logs/logger.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <cctype>
#include <cerrno>

#include "logs/cri.h"
#include "logs/line_splitter.h"
#include "logs/rotating_writer.h"

namespace fleetlet::logs {
namespace {

// Percent-encodes everything but RFC 3986 unreserved characters and '/', so that Go's
// url.Parse (path) and url.Query (values; it turns '+' into ' ') decode it unchanged.
std::string percentEncode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      out += char(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// One of the task's output pipes.
struct Source {
  UniqueFd fd;
  Stream stream;
  LineSplitter splitter;
};

constexpr size_t kReadChunk = size_t{64} * 1024;

}  // namespace

Status LoggerOptions::validate() const {
  if (max_size < kMinMaxSize) {
    return fail(ErrorCode::kInvalidArgument, "max-size {} is below the minimum of {} bytes",
                max_size, kMinMaxSize);
  }
  if (max_files < 1) {
    return fail(ErrorCode::kInvalidArgument, "max-files {} must be at least 1", max_files);
  }
  if (max_line < 1) return fail(ErrorCode::kInvalidArgument, "max-line must be at least 1");
  return {};
}

size_t LoggerOptions::effectiveMaxLine() const {
  return std::min<uint64_t>(max_line, max_size - kMaxCriOverhead);
}

Result<LoggerConfig> parseLoggerArgs(const std::vector<std::string>& args) {
  LoggerConfig config;
  CLI::App app{"fleetlet-logger"};
  app.set_help_flag();
  std::string dir;
  app.add_option("--dir", dir)->required();
  app.add_option("--max-size", config.options.max_size);
  app.add_option("--max-files", config.options.max_files);
  app.add_option("--max-line", config.options.max_line);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return fail(ErrorCode::kInvalidArgument, "fleetlet-logger arguments: {}", e.what());
  }
  config.dir = dir;
  if (!config.dir.is_absolute()) {
    return fail(ErrorCode::kInvalidArgument, "--dir {} is not an absolute path", dir);
  }
  FLEETLET_RETURN_IF_ERROR(config.options.validate());
  return config;
}

Result<std::string> loggerUri(const std::filesystem::path& logger_binary,
                              const LoggerConfig& config) {
  if (!logger_binary.is_absolute()) {
    return fail(ErrorCode::kInvalidArgument, "logger binary {} is not an absolute path",
                logger_binary.string());
  }
  if (!config.dir.is_absolute()) {
    return fail(ErrorCode::kInvalidArgument, "log dir {} is not an absolute path",
                config.dir.string());
  }
  FLEETLET_RETURN_IF_ERROR(config.options.validate());
  return fmt::format("binary://{}?--dir={}&--max-files={}&--max-line={}&--max-size={}",
                     percentEncode(logger_binary.string()), percentEncode(config.dir.string()),
                     config.options.max_files, config.options.max_line, config.options.max_size);
}

Result<LoggerStats> runLogger(const LoggerConfig& config, UniqueFd stdout_fd, UniqueFd stderr_fd,
                              UniqueFd ready_fd, int stop_fd, Clock& clock) {
  FLEETLET_RETURN_IF_ERROR(config.options.validate());
  FLEETLET_ASSIGN_OR_RETURN(
      auto writer, RotatingWriter::open(config.dir, {.max_size = config.options.max_size,
                                                     .max_files = config.options.max_files}));
  ready_fd.reset();  // The shim starts the task once this closes.

  size_t max_line = config.options.effectiveMaxLine();
  std::array<Source, 2> sources{
      Source{std::move(stdout_fd), Stream::kStdout, LineSplitter(max_line)},
      Source{std::move(stderr_fd), Stream::kStderr, LineSplitter(max_line)}};
  LoggerStats stats;
  uint64_t emitted = 0;
  std::string record;
  auto note = [&](const Status& st) {
    if (!st) stats.last_error = st.error().message();
  };
  auto emitFor = [&](Source& src) {
    return [&](std::string_view text, bool partial) {
      record.clear();
      appendCriRecord(record, clock.now(), src.stream, partial, text);
      ++emitted;
      note(writer.append(record));
    };
  };

  std::string buf(kReadChunk, '\0');
  bool stopping = false;
  while (sources[0].fd || sources[1].fd) {
    std::array<pollfd, 3> fds{};
    nfds_t n = 0;
    std::array<Source*, 2> polled{};
    for (auto& src : sources) {
      if (!src.fd) continue;
      polled[n] = &src;
      fds[n++] = {.fd = src.fd.get(), .events = POLLIN};
    }
    size_t stop_index = n;
    if (!stopping && stop_fd >= 0) fds[n++] = {.fd = stop_fd, .events = POLLIN};
    // Once stopping, the pipes' writers may never close: take what they hold, then leave.
    int ready = ::poll(fds.data(), n, stopping ? 0 : -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return failErrno(errno, "poll task output");
    }
    if (ready == 0) break;
    for (size_t i = 0; i < stop_index; ++i) {
      if (fds[i].revents == 0) continue;
      Source& src = *polled[i];
      ssize_t got = ::read(src.fd.get(), buf.data(), buf.size());
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {  // EOF, or a broken pipe that will never yield more.
        src.splitter.finish(emitFor(src));
        src.fd.reset();
        continue;
      }
      src.splitter.feed(std::string_view(buf.data(), size_t(got)), emitFor(src));
    }
    if (stop_index < n && fds[stop_index].revents != 0) stopping = true;
    note(writer.flush());
  }
  for (auto& src : sources) src.splitter.finish(emitFor(src));
  note(writer.flush());
  stats.dropped = writer.droppedRecords();
  stats.records = emitted - stats.dropped;
  stats.rotations = writer.rotations();
  return stats;
}

Result<UniqueFd> terminationSignalFd() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (int err = ::pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0) {
    return failErrno(err, "block SIGTERM");
  }
  UniqueFd fd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd) return failErrno(errno, "signalfd");
  return fd;
}

}  // namespace fleetlet::logs
