#include "executor/plugin_runner.h"

#include <optional>

#include "netns/netns.h"
#include "os/child_process.h"

namespace fleetlet::cni {

Result<PluginOutput> ProcessPluginRunner::run(const PluginInvocation& invocation) {
  RunOptions options{.argv = {invocation.binary.string()},
                     .env = invocation.env,
                     .input = invocation.stdin_data,
                     .timeout = invocation.timeout};
  std::optional<Result<CommandOutput>> ran;
  if (netns_) {
    FLEETLET_RETURN_IF_ERROR(netns::runInNetns(*netns_, [&] { ran.emplace(runCommand(options)); }));
  } else {
    ran.emplace(runCommand(options));
  }
  if (!ran) return fail(ErrorCode::kInternal, "run {}: not run", invocation.binary.string());
  if (!*ran) return std::unexpected(ran->error());
  CommandOutput& done = **ran;
  return PluginOutput{.exit_code = done.status.term_signal != 0 ? -1 : done.status.exit_code,
                      .term_signal = done.status.term_signal,
                      .timed_out = done.timed_out,
                      .out = std::move(done.out),
                      .err = std::move(done.err)};
}

}  // namespace fleetlet::cni
