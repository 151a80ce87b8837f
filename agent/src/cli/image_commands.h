#pragma once
// `fleetletctl image …`: pull, import, ls and rm, talking to containerd directly.

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

namespace fleetlet::cli {

struct ContainerdFlags {
  std::string address = "/run/containerd/containerd.sock";
  std::string ns = "fleetlet";
};

// What a parsed command line asks for; returns the process exit code.
using Action = std::function<int()>;

// Adds the `image` command group to `app`. Parsing a subcommand stores its action in
// `action`; main() runs it after setting up logging.
void addImageCommands(CLI::App& app, const std::shared_ptr<ContainerdFlags>& flags, Action& action);

}  // namespace fleetlet::cli
