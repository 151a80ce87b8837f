#include "os/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>

#include "os/unique_fd.h"

extern char** environ;

namespace fleetlet {
namespace {

// True while a process of group `pgid` still runs (zombies, which wait for init to reap them,
// do not count: kill(-pgid, 0) would).
bool groupRuns(pid_t pgid) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;  // ended meanwhile
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    char state = 0;
    pid_t ppid = 0;
    pid_t pgrp = 0;
    if (rest >> state >> ppid >> pgrp && pgrp == pgid && state != 'Z' && state != 'X') return true;
  }
  return false;
}

ExitStatus fromWaitStatus(int wstatus) {
  ExitStatus s;
  if (WIFEXITED(wstatus)) s.exit_code = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) s.term_signal = WTERMSIG(wstatus);
  return s;
}

// Owns posix_spawn's attribute and file-action objects.
struct SpawnSetup {
  posix_spawn_file_actions_t actions{};
  posix_spawnattr_t attr{};
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

std::vector<std::string> mergedEnvironment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string_view::npos && extra.contains(std::string(entry.substr(0, eq)))) continue;
    env.emplace_back(entry);
  }
  for (const auto& [k, v] : extra) {
    std::string entry = k;
    entry += '=';
    entry += v;
    env.push_back(std::move(entry));
  }
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Spawns with stdin/stdout/stderr going to the given fds (or -1 to keep the parent's).
Result<pid_t> spawnWithFds(const SpawnOptions& options, int out_fd, int err_fd, int in_fd = -1) {
  if (options.argv.empty()) return fail(ErrorCode::kInvalidArgument, "spawn: empty argv");
  SpawnSetup setup;
  if (in_fd >= 0) posix_spawn_file_actions_adddup2(&setup.actions, in_fd, STDIN_FILENO);
  if (out_fd >= 0) posix_spawn_file_actions_adddup2(&setup.actions, out_fd, STDOUT_FILENO);
  if (err_fd >= 0) posix_spawn_file_actions_adddup2(&setup.actions, err_fd, STDERR_FILENO);
  if (options.cwd) posix_spawn_file_actions_addchdir_np(&setup.actions, options.cwd->c_str());
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (options.new_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&setup.attr, 0);
  }
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&setup.attr, &empty);
  sigset_t defaults;
  sigfillset(&defaults);
  posix_spawnattr_setsigdefault(&setup.attr, &defaults);
  posix_spawnattr_setflags(&setup.attr, flags);

  std::vector<std::string> args = options.argv;
  std::vector<std::string> env = mergedEnvironment(options.env);
  auto argp = pointers(args);
  auto envp = pointers(env);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argp[0], &setup.actions, &setup.attr, argp.data(), envp.data());
  if (rc != 0) return failErrno(rc, "spawn {}", options.argv[0]);
  return pid;
}

// write() that turns a closed reader into EPIPE without a SIGPIPE for the process: the signal
// is blocked on this thread for the call and a pending one is consumed.
ssize_t writeNoSigpipe(int fd, std::string_view data) {
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t put = ::write(fd, data.data(), data.size());
  int saved = errno;
  if (put < 0 && saved == EPIPE) {
    const timespec zero{};
    while (::sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return put;
}

Result<UniqueFd> openOutput(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return failErrno(errno, "open {}", path.string());
  return UniqueFd(fd);
}

}  // namespace

std::string ExitStatus::describe() const {
  if (term_signal != 0) return fmt::format("killed by signal {}", term_signal);
  return fmt::format("exit code {}", exit_code);
}

Result<ChildProcess> ChildProcess::spawn(const SpawnOptions& options) {
  UniqueFd out;
  UniqueFd err;
  if (options.stdout_path && options.stdout_fd < 0) {
    FLEETLET_ASSIGN_OR_RETURN(out, openOutput(*options.stdout_path));
  }
  if (options.stderr_path && options.stderr_fd < 0) {
    FLEETLET_ASSIGN_OR_RETURN(err, openOutput(*options.stderr_path));
  }
  const int out_fd = options.stdout_fd >= 0 ? options.stdout_fd : out.get();
  const int err_fd = options.stderr_fd >= 0 ? options.stderr_fd : err.get();
  FLEETLET_ASSIGN_OR_RETURN(pid_t pid, spawnWithFds(options, out_fd, err_fd));
  return ChildProcess(pid, options.new_process_group);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), group_(other.group_), status_(other.status_) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    killAndReap();
    pid_ = std::exchange(other.pid_, -1);
    group_ = other.group_;
    status_ = other.status_;
  }
  return *this;
}

ChildProcess::~ChildProcess() { killAndReap(); }

void ChildProcess::killAndReap() {
  if (pid_ <= 0 || status_) return;
  if (group_) ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  wait();
}

std::optional<ExitStatus> ChildProcess::poll() {
  if (status_ || pid_ <= 0) return status_;
  int wstatus = 0;
  pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
  if (r == pid_) status_ = fromWaitStatus(wstatus);
  return status_;
}

ExitStatus ChildProcess::wait() {
  if (status_ || pid_ <= 0) return status_.value_or(ExitStatus{});
  int wstatus = 0;
  pid_t r = -1;
  do {
    r = ::waitpid(pid_, &wstatus, 0);
  } while (r < 0 && errno == EINTR);
  status_ = r == pid_ ? fromWaitStatus(wstatus) : ExitStatus{};
  return *status_;
}

ExitStatus ChildProcess::stop(int sig, std::chrono::milliseconds grace) {
  if (auto done = poll()) return *done;
  ::kill(pid_, sig);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (!poll() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!status_) {
    killAndReap();
    return status_.value_or(ExitStatus{});
  }
  if (group_) {
    // What the program started in its group (a browser's helper processes, say) gets the rest
    // of the grace to end after it, then SIGKILL, and stop() returns once none of it runs. The
    // group's id cannot be taken by a new group while a member lives (a zombie included), and
    // the group is signalled only while one runs.
    while (groupRuns(pid_) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (groupRuns(pid_)) {
      ::kill(-pid_, SIGKILL);
      const auto killed = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      while (groupRuns(pid_) && std::chrono::steady_clock::now() < killed) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  }
  return *status_;
}

Status ChildProcess::signal(int sig) {
  if (pid_ <= 0 || poll()) return fail(ErrorCode::kFailedPrecondition, "process has exited");
  if (::kill(pid_, sig) != 0) return failErrno(errno, "kill {}", pid_);
  return {};
}

Result<CommandOutput> runCommand(const std::vector<std::string>& argv,
                                 const std::map<std::string, std::string>& env) {
  return runCommand(RunOptions{.argv = argv, .env = env});
}

Result<CommandOutput> runCommand(const RunOptions& options) {
  std::array<int, 2> in_pipe{};
  std::array<int, 2> out_pipe{};
  std::array<int, 2> err_pipe{};
  if (::pipe2(in_pipe.data(), O_CLOEXEC) != 0) return failErrno(errno, "pipe");
  UniqueFd in_r(in_pipe[0]);
  UniqueFd in_w(in_pipe[1]);
  if (::pipe2(out_pipe.data(), O_CLOEXEC) != 0) return failErrno(errno, "pipe");
  UniqueFd out_r(out_pipe[0]);
  UniqueFd out_w(out_pipe[1]);
  if (::pipe2(err_pipe.data(), O_CLOEXEC) != 0) return failErrno(errno, "pipe");
  UniqueFd err_r(err_pipe[0]);
  UniqueFd err_w(err_pipe[1]);
  // Non-blocking stdin: a program that never reads must not block us past the timeout.
  if (::fcntl(in_w.get(), F_SETFL, O_NONBLOCK) != 0) return failErrno(errno, "fcntl stdin");

  SpawnOptions spawn{.argv = options.argv, .env = options.env, .new_process_group = true};
  FLEETLET_ASSIGN_OR_RETURN(pid_t pid, spawnWithFds(spawn, out_w.get(), err_w.get(), in_r.get()));
  ChildProcess child(pid, true);
  in_r.reset();
  out_w.reset();
  err_w.reset();
  if (options.input.empty()) in_w.reset();

  CommandOutput result;
  const auto deadline = options.timeout
                            ? std::optional(std::chrono::steady_clock::now() + *options.timeout)
                            : std::nullopt;
  std::array<pollfd, 3> fds{pollfd{out_r.get(), POLLIN, 0}, pollfd{err_r.get(), POLLIN, 0},
                            pollfd{in_w.valid() ? in_w.get() : -1, POLLOUT, 0}};
  std::array<std::string*, 2> sinks{&result.out, &result.err};
  size_t written = 0;
  int open_count = 2;
  std::array<char, 65536> buf{};
  while (open_count > 0) {
    int wait_ms = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        result.timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(left.count()) + 1;
    }
    int n = ::poll(fds.data(), fds.size(), wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return failErrno(errno, "poll");
    }
    if (fds[2].fd >= 0 && fds[2].revents != 0) {
      ssize_t put = writeNoSigpipe(in_w.get(), std::string_view(options.input).substr(written));
      if (put > 0) written += static_cast<size_t>(put);
      if (written == options.input.size() || (put < 0 && errno != EAGAIN && errno != EINTR)) {
        fds[2].fd = -1;
        in_w.reset();  // EOF (or EPIPE: the program closed its stdin)
      }
    }
    for (size_t i = 0; i < sinks.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t got = ::read(fds[i].fd, buf.data(), buf.size());
      if (got > 0) {
        sinks[i]->append(buf.data(), static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  if (result.timed_out) {
    result.status = child.stop(SIGKILL, std::chrono::milliseconds(0));
  } else {
    result.status = child.wait();
  }
  return result;
}

}  // namespace fleetlet
