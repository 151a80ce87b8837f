#pragma once
// ChildProcess: a spawned program that is killed and reaped when its owner lets go.
//
// Thread-safety: a ChildProcess is used from one thread at a time.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "error/error.h"

namespace fleetlet {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH when it has no '/'.
  // Extra environment on top of the parent's.
  std::map<std::string, std::string> env;
  std::optional<std::filesystem::path> cwd;
  // Where stdout/stderr go: a file (created or appended) or, when unset, the parent's.
  std::optional<std::filesystem::path> stdout_path;
  std::optional<std::filesystem::path> stderr_path;
  // Or an open fd of the parent's (a pipe's write end) given to the child as its stdout or
  // stderr; the parent's copy stays open and its own. Takes precedence over the path.
  int stdout_fd = -1;
  int stderr_fd = -1;
  // Start the child in a new process group so signals reach its children too.
  bool new_process_group = true;
};

// How a child ended: exit_code for a normal exit, or term_signal when killed.
struct ExitStatus {
  int exit_code = -1;
  int term_signal = 0;
  bool success() const { return term_signal == 0 && exit_code == 0; }
  std::string describe() const;
};

struct CommandOutput;
struct RunOptions;

class ChildProcess {
 public:
  // Starts the program. Fails with kNotFound when the binary does not exist.
  static Result<ChildProcess> spawn(const SpawnOptions& options);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Sends SIGKILL (to the group if one was made) and reaps, unless already reaped.
  ~ChildProcess();

  pid_t pid() const { return pid_; }

  // Non-blocking: the exit status once the child has ended, else nullopt.
  std::optional<ExitStatus> poll();
  // Blocks until the child ends.
  ExitStatus wait();
  // Sends `signal`, waits up to `grace` for the child to end, then SIGKILLs and reaps it. With
  // a process group, the rest of the group (started by the child) gets what is left of `grace`
  // to end after the child and is then SIGKILLed: nothing in it outlives stop().
  ExitStatus stop(int signal, std::chrono::milliseconds grace);
  // Sends a signal without waiting. Fails if the child was already reaped.
  Status signal(int sig);

 private:
  friend Result<CommandOutput> runCommand(const RunOptions& options);
  ChildProcess(pid_t pid, bool group) : pid_(pid), group_(group) {}
  void killAndReap();

  pid_t pid_ = -1;
  bool group_ = false;
  std::optional<ExitStatus> status_;
};

struct CommandOutput {
  ExitStatus status;
  std::string out;
  std::string err;
  // The program outlived RunOptions::timeout and was killed (status says SIGKILL then).
  bool timed_out = false;
};

struct RunOptions {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH when it has no '/'.
  // Extra environment on top of the parent's.
  std::map<std::string, std::string> env;
  // Written to the program's stdin, which is then closed (an empty stdin when empty).
  std::string input;
  // When set, the program and its process group are SIGKILLed once it has run this long (or
  // still holds stdout/stderr open); the output up to then is returned with timed_out set.
  std::optional<std::chrono::milliseconds> timeout;
};

// Runs a program to completion (in a process group of its own) feeding it `input` and
// capturing stdout and stderr. Fails only when the program cannot be started or the pipes
// fail; a non-zero exit or a timeout is reported in the CommandOutput. Blocks for as long as
// the program runs (at most about `timeout`).
Result<CommandOutput> runCommand(const RunOptions& options);

// Runs a program to completion and captures its stdout and stderr. Fails only when the
// program cannot be started; a non-zero exit is reported in `status`.
Result<CommandOutput> runCommand(const std::vector<std::string>& argv,
                                 const std::map<std::string, std::string>& env = {});

}  // namespace fleetlet
