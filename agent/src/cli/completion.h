#pragma once
// Shell completion for a CLI11 command line (`fleetletctl completion bash|zsh`). The script is
// generated from the app itself: every command path, its subcommands (and aliases) and the
// options it accepts — its own and, as CLI11's fallthrough allows, those of the commands above
// it — so it never drifts from the parser. Option values complete as file names (bash) or
// not at all (zsh).

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <string_view>

namespace fleetlet::cli {

// A bash script defining a completion function for `program` and registering it with
// `complete`; source it (`source <(fleetletctl completion bash)`) or install it under
// /usr/share/bash-completion/completions/<program>.
std::string bashCompletion(const CLI::App& app, std::string_view program);

// A zsh script for `program`: a #compdef file for a directory in $fpath
// (/usr/share/zsh/vendor-completions/_<program>), or sourced after compinit.
std::string zshCompletion(const CLI::App& app, std::string_view program);

// Adds `completion bash|zsh`, which prints the script for `app` on stdout.
void addCompletionCommand(CLI::App& app, std::string program, std::function<int()>& action);

}  // namespace fleetlet::cli
