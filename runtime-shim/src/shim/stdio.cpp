#include "shim/stdio.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

namespace fleetlet::shim {
namespace {

namespace fs = std::filesystem;

int percentDecode(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && percentDecode(s[i + 1]) >= 0 &&
        percentDecode(s[i + 2]) >= 0) {
      out += static_cast<char>(percentDecode(s[i + 1]) * 16 + percentDecode(s[i + 2]));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

Result<UniqueFd> openNull(int flags) {
  UniqueFd fd(::open("/dev/null", flags | O_CLOEXEC));
  if (!fd) return failErrno(errno, "open /dev/null");
  return fd;
}

Result<UniqueFd> openInput(const std::string& path) {
  if (path.empty()) return openNull(O_RDONLY);
  // O_NONBLOCK so the open does not wait for a writer; cleared before the app gets it.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return failErrno(errno, "open stdin {}", path);
  int flags = ::fcntl(fd.get(), F_GETFL);
  ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

Result<UniqueFd> openOutput(const std::string& path) {
  if (path.empty()) return openNull(O_WRONLY);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return failErrno(errno, "stdio {}", path);
  // A fifo opened read-write never blocks and never fails for want of a reader.
  int flags = S_ISFIFO(st.st_mode) ? O_RDWR : (O_WRONLY | O_APPEND);
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (!fd) return failErrno(errno, "open stdio {}", path);
  return fd;
}

struct Pipe {
  UniqueFd r, w;
};

Result<Pipe> makePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return failErrno(errno, "pipe");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

Result<OpenedStdio> startLogger(std::string_view uri, const std::string& ns, const std::string& id,
                                const LoggerSpawner& spawn) {
  std::string_view rest = uri.substr(std::string_view("binary://").size());
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string path = unescape(rest);
  if (path.empty() || path[0] != '/') {
    return fail(ErrorCode::kInvalidArgument, "logger URI '{}' needs an absolute path", uri);
  }
  // Each query key, then its value when it has one, as containerd's shims do.
  std::vector<std::string> args{path};
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (kv.empty()) continue;
    auto eq = kv.find('=');
    args.push_back(unescape(kv.substr(0, eq)));
    if (eq != std::string_view::npos && eq + 1 < kv.size())
      args.push_back(unescape(kv.substr(eq + 1)));
  }
  if (::access(path.c_str(), X_OK) != 0) return failErrno(errno, "logger {}", path);

  FLEETLET_ASSIGN_OR_RETURN(Pipe out, makePipe());
  FLEETLET_ASSIGN_OR_RETURN(Pipe err, makePipe());
  FLEETLET_ASSIGN_OR_RETURN(Pipe ready, makePipe());
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string env_id = "CONTAINER_ID=" + id;
  std::string env_ns = "CONTAINER_NAMESPACE=" + ns;
  const int out_r = out.r.get(), err_r = err.r.get(), ready_w = ready.w.get();

  SpawnedLogger spawned = spawn([&] {
    // In the child: fds 3, 4, 5 as the logger protocol wants them, stdio to /dev/null, and
    // the signal mask and dispositions a fresh process has (the shim blocks SIGCHLD and
    // ignores SIGPIPE; both would survive exec).
    sigset_t none;
    sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    (void)::signal(SIGPIPE, SIG_DFL);
    int null_fd = ::open("/dev/null", O_RDWR);
    int o = ::fcntl(out_r, F_DUPFD, 10), e = ::fcntl(err_r, F_DUPFD, 10),
        r = ::fcntl(ready_w, F_DUPFD, 10);
    if (null_fd < 0 || o < 0 || e < 0 || r < 0) ::_exit(126);
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    ::dup2(o, 3);
    ::dup2(e, 4);
    ::dup2(r, 5);
    // The temporary copies would keep the pipes open (fd 5's EOF is the ready signal).
    for (int fd : {o, e, r, null_fd}) {
      if (fd > 5) ::close(fd);
    }
    ::setsid();
    // The environment holds only these two, as containerd's shims give it.
    char* envp[] = {env_id.data(), env_ns.data(), nullptr};
    ::execve(argv[0], argv.data(), envp);
    ::_exit(127);
  });
  if (spawned.pid < 0) return failErrno(errno, "fork logger {}", path);
  out.r.reset();
  err.r.reset();
  ready.w.reset();
  // The logger signals readiness by writing to or closing fd 5 (or by dying).
  pollfd p{ready.r.get(), POLLIN, 0};
  if (::poll(&p, 1, 30'000) <= 0) {
    return fail(ErrorCode::kUnavailable, "logger {} did not become ready within 30 s", path);
  }
  return OpenedStdio{UniqueFd(), std::move(out.w), std::move(err.w), std::move(spawned.pidfd)};
}

}  // namespace

// Debian 12's glibc 2.36 declares pidfd_open and pidfd_send_signal without C linkage in
// <sys/pidfd.h> (fixed in 2.37): the system calls themselves.
UniqueFd pidfdOf(pid_t pid) {
  return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

namespace {
int sendSignal(const UniqueFd& pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0));
}
}  // namespace

void finishLogger(const UniqueFd& pidfd, std::chrono::milliseconds grace) {
  if (!pidfd) return;
  auto exited = [&](std::chrono::milliseconds within) {
    pollfd p{pidfd.get(), POLLIN, 0};
    int ready = 0;
    do {
      ready = ::poll(&p, 1, static_cast<int>(within.count()));
    } while (ready < 0 && errno == EINTR);
    return ready != 0;  // an error (the pidfd is unusable): nothing to wait for
  };
  if (sendSignal(pidfd, SIGTERM) != 0) return;  // already gone
  if (exited(grace)) return;
  (void)sendSignal(pidfd, SIGKILL);
  (void)exited(std::chrono::seconds(2));
}

Result<OpenedStdio> openStdio(const StdioPaths& paths, const std::string& ns, const std::string& id,
                              const LoggerSpawner& spawn) {
  OpenedStdio io;
  FLEETLET_ASSIGN_OR_RETURN(io.in, openInput(paths.stdin_path));
  std::string_view out = paths.stdout_path;
  if (out.starts_with("binary://")) {
    FLEETLET_ASSIGN_OR_RETURN(OpenedStdio logged, startLogger(out, ns, id, spawn));
    io.out = std::move(logged.out);
    io.err = std::move(logged.err);
    io.logger = std::move(logged.logger);
    return io;
  }
  if (out.starts_with("file://")) {
    fs::path file = unescape(out.substr(7));
    if (!file.is_absolute()) {
      return fail(ErrorCode::kInvalidArgument, "log file URI '{}' needs an absolute path", out);
    }
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
    if (!fd) return failErrno(errno, "open log file {}", file.string());
    io.err.reset(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
    io.out = std::move(fd);
    return io;
  }
  if (out.find("://") != std::string_view::npos) {
    return fail(ErrorCode::kInvalidArgument,
                "stdout '{}': unknown scheme (use a path, file:// or binary://)", out);
  }
  FLEETLET_ASSIGN_OR_RETURN(io.out, openOutput(paths.stdout_path));
  FLEETLET_ASSIGN_OR_RETURN(io.err, openOutput(paths.stderr_path));
  return io;
}

}  // namespace fleetlet::shim
