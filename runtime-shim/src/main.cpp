// containerd-shim-fleetlet-v1: containerd runtime v2 shim for native apps. See
// shim/manager.h for the subcommands and docs/runtimes.md for use.

#include <iostream>
#include <string>
#include <vector>

#include "shim/manager.h"
#include "version/version.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // -v is what containerd's own shims answer to.
  if (args.size() == 1 && (args[0] == "--version" || args[0] == "-v")) {
    std::cout << fleetlet::versionLine("containerd-shim-fleetlet-v1") << "\n";
    return 0;
  }
  auto flags = fleetlet::shim::parseFlags(args);
  if (!flags) {
    std::cerr << "containerd-shim-fleetlet-v1: " << flags.error().message() << "\n";
    return 2;
  }
  if (flags->action == "start") return fleetlet::shim::runStart(*flags);
  if (flags->action == "delete") return fleetlet::shim::runDelete(*flags);
  return fleetlet::shim::runServe(*flags);
}
