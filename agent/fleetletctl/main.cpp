// fleetletctl: the command-line client of fleetlet.
#include <CLI/CLI.hpp>

#include "cli/app_commands.h"
#include "cli/command_line.h"
#include "cli/completion.h"
#include "cli/image_commands.h"
#include "cli/manifest_commands.h"
#include "cli/top_command.h"
#include "log/log.h"
#include "version/version.h"

int main(int argc, char** argv) {
  CLI::App app{
      "fleetletctl — manage a fleetlet node.\n\n"
      "Examples:\n"
      "  fleetletctl image pull --plain-http 127.0.0.1:5000/fleetlet-test/busybox:1\n"
      "  fleetletctl image import busybox-oci.tar --name registry.local/busybox:1\n"
      "  fleetletctl image ls\n"
      "  fleetletctl apply -f node.yaml\n"
      "  fleetletctl get apps\n"
      "  fleetletctl describe app camera\n"
      "  fleetletctl logs camera -f --tail 20\n"
      "  fleetletctl restart camera\n"
      "  fleetletctl status\n"
      "  fleetletctl events -f\n"
      "  fleetletctl top\n"
      "  fleetletctl manifest sign -f node.yaml --key fleet.key -o node.dsse.json\n"
      "  source <(fleetletctl completion bash)\n"};
  app.set_version_flag("--version", fleetlet::versionLine("fleetletctl"));
  app.require_subcommand(1);
  // Inherited by the commands added below: the global options may follow a command too.
  app.fallthrough();
  auto flags = std::make_shared<fleetlet::cli::ContainerdFlags>();
  auto api_flags = std::make_shared<fleetlet::cli::ApiFlags>();
  std::string log_level = "warn";
  app.add_option("--address", flags->address, "containerd's gRPC socket")
      ->capture_default_str()
      ->envname("CONTAINERD_ADDRESS");
  app.add_option("-n,--namespace", flags->ns, "containerd namespace")
      ->capture_default_str()
      ->envname("CONTAINERD_NAMESPACE");
  app.add_option("--api-socket", api_flags->socket, "fleetletd's local API socket")
      ->capture_default_str()
      ->envname("FLEETLET_API_SOCKET");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  fleetlet::cli::Action action;
  fleetlet::cli::addImageCommands(app, flags, action);
  fleetlet::cli::addAppCommands(app, api_flags, action);
  fleetlet::cli::addTopCommand(app, api_flags, action);
  fleetlet::cli::addManifestCommands(app, action);
  fleetlet::cli::addCompletionCommand(app, "fleetletctl", action);
  if (auto exit_code = fleetlet::cli::parseCommandLine(app, argc, argv)) return *exit_code;
  if (auto st = fleetlet::setupLogging("fleetletctl", log_level); !st) {
    return fleetlet::cli::reportFailure(st.error());
  }
  return action ? action() : fleetlet::cli::kExitOk;
}
