#pragma once
// fleetletctl's command line around CLI11: the exit-code contract, usage errors that name the
// problem, and the validators its commands share.
//
// Exit codes (docs/local-api.md, "Exit codes"), the one table of fleetletctl:
//   0  success; also --help
//   1  any failure: a usage error, fleetletd or containerd unreachable, a request refused
// A failure prints "fleetletctl: <reason>" on stderr (a usage error adds a line pointing to
// --help) and nothing on stdout.

#include <CLI/CLI.hpp>
#include <optional>

#include "cli/api_client.h"
#include "error/error.h"

namespace fleetlet::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;

// Prints "fleetletctl: <message>" on stderr; returns kExitFailure.
int reportFailure(const Error& error);

// Parses argv into `app`. Returns nullopt when the chosen command's action should run;
// otherwise the exit code, after printing the help that was asked for (kExitOk) or the usage
// error (kExitFailure): "unknown option --bogus", "unknown command \"x\" (expected apply,
// ...)", "unknown resource \"pods\" (expected apps)" — a command whose subcommands are in the
// help group "Resources" names them resources —, "get: a resource is required (expected
// apps)", "unexpected argument \"x\"", or CLI11's message for the option at fault
// ("--after: \"1.5\" is not a non-negative integer"). Call after every command was added.
std::optional<int> parseCommandLine(CLI::App& app, int argc, const char* const* argv);

// Validators whose messages name the problem (CLI11 puts the option's name in front):
// a decimal integer >= 0 that fits int64 ("\"1.5\" is not a non-negative integer");
CLI::Validator nonNegativeInteger();
// a name manifest::checkAppName() accepts ("invalid app name \"../x\" (...)");
CLI::Validator appName();
// An RFC 3339 time or a duration before now (logs/time_range.h: parseTimeBound).
CLI::Validator timeBound();
// --since/--until (either may be empty) as absolute RFC 3339 times; kInvalidArgument when one
// does not parse or since is not before until.
Result<ApiClient::Range> resolveTimeRange(const std::string& since, const std::string& until);
// a manifest to read: "-" (stdin) or a path that is not a directory ("X is a directory; give
// a manifest file"). A missing file is left to the command, which names the open error.
CLI::Validator manifestFile();

// The whole of `file`, or of stdin for "-". The error names the file and errno.
Result<std::string> readInput(const std::string& file);

}  // namespace fleetlet::cli
