#include "shim/reaper.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fleetlet::shim {
namespace {

constexpr std::size_t kMaxUnclaimed = 1024;

}  // namespace

int exitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 255;
}

void Reaper::blockSigchld() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Result<std::unique_ptr<Reaper>> Reaper::start() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return failErrno(errno, "PR_SET_CHILD_SUBREAPER");
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  UniqueFd sfd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sfd) return failErrno(errno, "signalfd");
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return failErrno(errno, "eventfd");
  auto reaper = std::unique_ptr<Reaper>(new Reaper(std::move(sfd), std::move(wake)));
  reaper->thread_ = std::thread([r = reaper.get()] { r->loop(); });
  return reaper;
}

Reaper::Reaper(UniqueFd signal_fd, UniqueFd wake_fd)
    : signal_fd_(std::move(signal_fd)), wake_fd_(std::move(wake_fd)) {}

Reaper::~Reaper() {
  std::uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

void Reaper::loop() {
  for (;;) {
    // Reap first: children may have exited before the signalfd existed.
    reapAll();
    pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents & POLLIN) return;
    signalfd_siginfo info;
    while (::read(signal_fd_.get(), &info, sizeof(info)) == sizeof(info)) {
    }
  }
}

void Reaper::reapAll() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    ProcessExit exit{exitCodeOf(status), std::chrono::system_clock::now()};
    Callback callback;
    {
      std::lock_guard lock(mu_);
      auto it = watched_.find(pid);
      if (it == watched_.end()) {
        unclaimed_.emplace_back(pid, exit);
        if (unclaimed_.size() > kMaxUnclaimed) unclaimed_.pop_front();
        continue;
      }
      callback = std::move(it->second);
      watched_.erase(it);
    }
    callback(pid, exit);
  }
}

void Reaper::watch(pid_t pid, Callback callback) {
  std::unique_lock lock(mu_);
  for (auto it = unclaimed_.begin(); it != unclaimed_.end(); ++it) {
    if (it->first == pid) {
      ProcessExit exit = it->second;
      unclaimed_.erase(it);
      lock.unlock();
      // Not on the caller's thread: it may hold the lock the callback takes.
      std::thread([callback = std::move(callback), pid, exit] { callback(pid, exit); }).detach();
      return;
    }
  }
  watched_[pid] = std::move(callback);
}

void Reaper::forget(pid_t pid) {
  std::lock_guard lock(mu_);
  watched_.erase(pid);
}

pid_t Reaper::spawnWatched(const std::function<pid_t()>& spawn, Callback callback) {
  std::lock_guard lock(mu_);
  pid_t pid = spawn();
  if (pid > 0) watched_[pid] = std::move(callback);
  return pid;
}

}  // namespace fleetlet::shim
