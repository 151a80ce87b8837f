// containerd-shim-fleetlet-v1: containerd runtime v2 shim for native apps. See
// shim/manager.h for the subcommands and docs/runtimes.md for use.
#include <unistd.h>

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
  if (flags->action == "start") {
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
      std::cerr << "containerd-shim-fleetlet-v1: cannot find its own executable\n";
      return 1;
    }
    return fleetlet::shim::runStart(*flags, std::string(self, static_cast<std::size_t>(n)));
  }
  if (flags->action == "delete") return fleetlet::shim::runDelete(*flags);
  return fleetlet::shim::runServe(*flags);
}
