#pragma once
// PrivateContainerd: a containerd of the test's own, sharing nothing with the system one
// but the kernel. Everything lives under one directory:
//   config.toml  containerd.sock  containerd.sock.ttrpc  containerd.log  root/ state/ opt/
// The CRI plugin is disabled. containerd 1.6 still puts shim sockets under
// /run/containerd/s/ (named by a hash of our socket path, so they never clash), and runc
// keeps its state under /run/containerd/runc/<namespace>/<id> and containers' cgroups under
// /<namespace>/<id> unless the client says otherwise. Those two ARE shared between
// instances: tests that may run in parallel must use container ids from uniqueId() (or pass
// runcRoot() as the runc options' Root).
//
// Needs root. Thread-safety: one thread at a time; ctr() may run from any thread.

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"
#include "os/child_process.h"

namespace fleetlet::testing {

class PrivateContainerd {
 public:
  // Takes ownership of `dir` (created if missing; removed on destruction), writes the config
  // and starts containerd (with `shim_dir`, by default shimDir(), first on its PATH, so it
  // finds containerd-shim-fleetlet-v1 there), then waits up to 20 s until `ctr version`
  // answers. Fails with kNotFound when containerd is not installed, kInvalidArgument when the
  // socket path would exceed the unix socket limit, kUnavailable (with the log's last lines) when
  // the daemon exits or does not answer in time.
  static Result<PrivateContainerd> start(const std::filesystem::path& dir,
                                         std::filesystem::path shim_dir = shimDir());
  // Same, in a fresh /tmp/fleetlet-containerd-XXXXXX.
  static Result<PrivateContainerd> start();
  // Same, with the shims of `shim_dir` (e.g. an installed package's usr/bin).
  static Result<PrivateContainerd> startWithShimsFrom(std::filesystem::path shim_dir);

  // The directory of the containerd-shim-fleetlet-v1 the tests run: $FLEETLET_TEST_SHIM_DIR
  // when set, else the build's. Empty when neither holds the binary.
  static std::filesystem::path shimDir();

  PrivateContainerd(PrivateContainerd&&) noexcept;
  PrivateContainerd& operator=(PrivateContainerd&&) = delete;
  PrivateContainerd(const PrivateContainerd&) = delete;
  PrivateContainerd& operator=(const PrivateContainerd&) = delete;
  // Kills and deletes every task in every namespace, deletes the containers, stops containerd
  // (SIGTERM, SIGKILL after 10 s), kills leftover shims of this instance only, unmounts
  // everything under dir() (deepest first, MNT_DETACH) and removes dir(). Never throws;
  // problems go to stderr.
  ~PrivateContainerd();

  const std::filesystem::path& dir() const { return dir_; }
  // The gRPC unix socket (a path, no "unix://").
  std::filesystem::path socket() const { return dir_ / "containerd.sock"; }
  std::filesystem::path ttrpcSocket() const { return dir_ / "containerd.sock.ttrpc"; }
  std::filesystem::path logPath() const { return dir_ / "containerd.log"; }
  // A directory inside dir() for runc's state (io.containerd.runc.v2 options Root, or
  // `ctr run --runc-root`), so that it cannot clash with other instances.
  std::filesystem::path runcRoot() const { return dir_ / "runc"; }
  // "<prefix>-<pid of this test process>-<counter>": a container id no other test process
  // uses at the same time.
  static std::string uniqueId(std::string_view prefix);
  // The daemon's pid, or -1 while it is stopped.
  pid_t pid() const;

  // Runs `ctr --address <socket> -n <ns> <args...>` to completion. Fails only when ctr cannot
  // be started; check `status` for its exit.
  Result<CommandOutput> ctr(std::vector<std::string> args, std::string ns = "fleetlet") const;
  // Like ctr() but a non-zero exit is an error carrying ctr's stderr; returns stdout.
  Result<std::string> ctrOk(std::vector<std::string> args, std::string ns = "fleetlet") const;

  // Stops the daemon with `signal` (SIGKILL simulates a crash), leaving tasks and shims
  // running, as a real containerd restart does. No-op when already stopped.
  void stopDaemon(int signal = SIGTERM);
  // Starts the daemon again on the same directory and waits until it answers.
  Status startDaemon();
  // stopDaemon(SIGTERM) then startDaemon().
  Status restart();

  // The last `lines` lines of containerd.log, for failure messages.
  std::string logTail(size_t lines = 30) const;

 private:
  PrivateContainerd(std::filesystem::path dir, std::filesystem::path shim_dir)
      : dir_(std::move(dir)), shim_dir_(std::move(shim_dir)) {}
  Status writeConfig() const;
  void removeAllTasks();
  void cleanup();

  std::filesystem::path dir_;
  std::filesystem::path shim_dir_;
  std::unique_ptr<ChildProcess> daemon_;
};

}  // namespace fleetlet::testing
