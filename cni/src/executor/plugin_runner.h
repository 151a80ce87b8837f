#pragma once
// PluginRunner: "run this CNI plugin binary with this environment and stdin", the executor's
// one door to the outside world. ProcessPluginRunner runs real binaries; unit tests fake it.
//
// Thread-safety: run() may be called from several threads at once (ProcessPluginRunner keeps
// no state between calls).

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "error/error.h"

namespace fleetlet::cni {

struct PluginInvocation {
  std::filesystem::path binary;               // absolute path of the plugin
  std::map<std::string, std::string> env;     // CNI_COMMAND, CNI_CONTAINERID, ... (on top of ours)
  std::string stdin_data;                     // the request configuration (JSON)
  std::chrono::milliseconds timeout{30'000};  // the plugin is killed after this long
};

struct PluginOutput {
  int exit_code = -1;  // -1 when killed by a signal
  int term_signal = 0;
  bool timed_out = false;
  std::string out;
  std::string err;
};

class PluginRunner {
 public:
  virtual ~PluginRunner() = default;
  // Runs the plugin to completion (or until the timeout, then kills it and its process group
  // and reports timed_out). Fails only when it could not be started (kNotFound for a missing
  // binary, the errno otherwise). Blocks for the plugin's run time.
  virtual Result<PluginOutput> run(const PluginInvocation& invocation) = 0;
};

// Runs plugins as child processes (common/os runCommand). With `netns`, plugins start inside
// that network namespace instead of the caller's: the node's namespace when fleetletd itself
// runs elsewhere, and a test's private "node" namespace in integration tests.
class ProcessPluginRunner final : public PluginRunner {
 public:
  explicit ProcessPluginRunner(std::optional<std::filesystem::path> netns = std::nullopt)
      : netns_(std::move(netns)) {}
  Result<PluginOutput> run(const PluginInvocation& invocation) override;

 private:
  std::optional<std::filesystem::path> netns_;
};

}  // namespace fleetlet::cni
