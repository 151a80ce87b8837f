#include "cli/command_line.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "logs/time_range.h"
#include "manifest/parse.h"

namespace fleetlet::cli {
namespace {

bool isOption(const std::string& arg) { return arg.size() > 1 && arg.front() == '-'; }

// "apply, get, describe".
std::string subcommandNames(const CLI::App& command) {
  std::string out;
  for (const auto* sub : command.get_subcommands([](const CLI::App*) { return true; })) {
    out += out.empty() ? "" : ", ";
    out += sub->get_name();
  }
  return out;
}

// The last command given ("pull" of `image pull`) and the path to it ("image pull"; "" for
// none).
struct Given {
  const CLI::App* command;
  std::string path;
};

Given lastCommand(const CLI::App& app) {
  Given given{&app, ""};
  while (!given.command->get_subcommands().empty()) {
    given.command = given.command->get_subcommands().front();
    given.path += given.path.empty() ? "" : " ";
    given.path += given.command->get_name();
  }
  return given;
}

// What is wrong with a command line CLI11 took apart (or refused part way), when it is an
// unknown option, an unknown or missing subcommand, or a stray argument; nullopt otherwise.
std::optional<std::string> explain(const CLI::App& app, const Given& given) {
  std::vector<std::string> strays;
  for (const auto& arg : app.remaining(true)) {
    if (isOption(arg)) return fmt::format("unknown option {}", arg);
    strays.push_back(arg);
  }
  const CLI::App& command = *given.command;
  if (command.get_require_subcommand_min() > 0) {
    auto subs = command.get_subcommands([](const CLI::App*) { return true; });
    bool resources = !subs.empty() && subs.front()->get_group() == "Resources";
    std::string noun = resources ? "resource" : "command";
    std::string expected = subcommandNames(command);
    if (!strays.empty()) {
      std::string what = resources || given.path.empty() ? noun : given.path + " " + noun;
      return fmt::format("unknown {} \"{}\" (expected {})", what, strays.front(), expected);
    }
    if (given.path.empty()) return fmt::format("a command is required (expected {})", expected);
    return fmt::format("{} needs a {} (expected {})", given.path, noun, expected);
  }
  if (!strays.empty()) return fmt::format("unexpected argument \"{}\"", strays.front());
  return std::nullopt;
}

int usageError(const std::string& message, const Given& given) {
  fmt::print(stderr, "fleetletctl: {}\nRun 'fleetletctl{}{} --help' for usage.\n", message,
             given.path.empty() ? "" : " ", given.path);
  return kExitFailure;
}

}  // namespace

int reportFailure(const Error& error) {
  fmt::print(stderr, "fleetletctl: {}\n", error.message());
  return kExitFailure;
}

std::optional<int> parseCommandLine(CLI::App& app, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --help-all are "errors" with exit code 0: CLI11 prints the help.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    auto given = lastCommand(app);
    return usageError(explain(app, given).value_or(e.what()), given);
  }
  auto given = lastCommand(app);
  if (auto problem = explain(app, given)) return usageError(*problem, given);
  return std::nullopt;
}

CLI::Validator nonNegativeInteger() {
  return {[](std::string& text) -> std::string {
            int64_t value = 0;
            const char* end = text.data() + text.size();
            auto [ptr, ec] = std::from_chars(text.data(), end, value);
            if (text.empty() || ec != std::errc() || ptr != end || value < 0) {
              return fmt::format("\"{}\" is not a non-negative integer", text);
            }
            return {};
          },
          ""};
}

CLI::Validator appName() {
  return {[](std::string& name) -> std::string {
            auto st = manifest::checkAppName(name);
            return st ? std::string() : st.error().message();
          },
          ""};
}

CLI::Validator timeBound() {
  return {[](std::string& text) -> std::string {
            auto t = logs::parseTimeBound("time", text, std::chrono::system_clock::now());
            if (t) return {};
            std::string message = t.error().message();
            return message.substr(message.find(':') + 2);  // CLI11 names the option
          },
          ""};
}

Result<ApiClient::Range> resolveTimeRange(const std::string& since, const std::string& until) {
  const auto now = std::chrono::system_clock::now();
  logs::TimeRange range;
  ApiClient::Range out;
  if (!since.empty()) {
    FLEETLET_ASSIGN_OR_RETURN(range.since, logs::parseTimeBound("--since", since, now));
    out.since = logs::formatRfc3339Nano(range.since);
  }
  if (!until.empty()) {
    FLEETLET_ASSIGN_OR_RETURN(range.until, logs::parseTimeBound("--until", until, now));
    out.until = logs::formatRfc3339Nano(range.until);
  }
  if (!since.empty() && !until.empty()) {
    if (range.since >= range.until) {
      return fail(ErrorCode::kInvalidArgument, "--since ({}) is not before --until ({})", out.since,
                  out.until);
    }
  }
  return out;
}

CLI::Validator manifestFile() {
  return {[](std::string& path) -> std::string {
            std::error_code ec;
            if (path != "-" && std::filesystem::is_directory(path, ec)) {
              return fmt::format("{} is a directory; give a manifest file", path);
            }
            return {};
          },
          ""};
}

Result<std::string> readInput(const std::string& file) {
  std::ostringstream buffer;
  if (file == "-") {
    buffer << std::cin.rdbuf();
    return buffer.str();
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::unexpected(errnoError(errno, fmt::format("open {}", file)));
  buffer << in.rdbuf();
  if (in.bad()) return std::unexpected(errnoError(errno, fmt::format("read {}", file)));
  return buffer.str();
}

}  // namespace fleetlet::cli
