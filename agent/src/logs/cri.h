#pragma once
// The CRI container log format, as containerd's CRI plugin writes it and kubelet reads it:
// one record per line,
//
//   <time RFC3339Nano> <stdout|stderr> <F|P> <text>\n
//
// where P ("partial") means the entry's text continues in the stream's next record and F
// ("full") ends it. Text never contains '\n'. Pure functions; no I/O.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "error/error.h"
#include "time/rfc3339.h"

namespace fleetlet::logs {

using TimePoint = std::chrono::system_clock::time_point;

enum class Stream : std::uint8_t { kStdout, kStderr };
// "stdout" or "stderr".
std::string_view toString(Stream stream);

// A record's bytes besides its text are at most this many: a 30-byte time, " stdout P "
// and '\n'. The logger keeps records within a file size cap with it.
inline constexpr size_t kMaxCriOverhead = 48;

// One parsed line. `text` points into the line given to parseCriLine.
struct CriRecord {
  TimePoint time;
  Stream stream = Stream::kStdout;
  bool partial = false;
  std::string_view text;
};

// Go's time.RFC3339Nano in UTC, as containerd writes it: "2026-11-21T06:00:57.1234Z" (trailing
// zeros of the fraction dropped, no fraction when it is zero).
std::string formatRfc3339Nano(TimePoint time);
// RFC 3339 parsing lives in common (time/rfc3339.h).
using fleetlet::parseRfc3339;

// Appends one record, '\n' included, to `out`. `text` must not contain '\n'.
void appendCriRecord(std::string& out, TimePoint time, Stream stream, bool partial,
                     std::string_view text);

// Parses one line (without its '\n'). kInvalidArgument saying what is wrong when the line is
// not a CRI record.
Result<CriRecord> parseCriLine(std::string_view line);

}  // namespace fleetlet::logs
