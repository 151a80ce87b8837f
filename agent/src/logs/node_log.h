#pragma once
// fleetletd's own log, kept on disk like an app's: every message also goes, as CRI records of
// the stream "stderr", to <dir>/current.log with the same rotation as apps' logs
// (rotating_writer.h). `fleetletctl logs --node` and the cloud's log requests read it with the
// same reader (reader.h). Messages are written (not fsynced) as they are logged, so a kill -9
// loses none that were logged.
//
// Thread-safety: the sink is an spdlog sink with its own mutex.

#include <spdlog/sinks/sink.h>

#include <filesystem>
#include <memory>

#include "error/error.h"
#include "logs/rotating_writer.h"

namespace fleetlet::logs {

// Creates `dir` (0750) and opens its log. Lines are "<level> [<logger>] <message>" (the time is
// the record's); a message of several lines becomes several records; one longer than 16 KiB
// is cut there.
Result<std::shared_ptr<spdlog::sinks::sink>> openNodeLogSink(const std::filesystem::path& dir,
                                                             RotationPolicy policy = {});

}  // namespace fleetlet::logs
