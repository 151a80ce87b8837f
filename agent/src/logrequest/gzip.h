#pragma once
// Log lines into one gzip file (RFC 1952, zlib's deflate) of bounded size.
//
// Pure functions; thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"

namespace fleetlet::logrequest {

// `data` as a gzip member (zlib, level 6). kInternal if zlib fails.
Result<std::string> gzip(std::string_view data);
// The bytes a gzip member holds. kInvalidArgument when it is not one.
Result<std::string> gunzip(std::string_view data);

struct Packed {
  std::string gzip;
  size_t lines = 0;        // lines of `lines` in the gzip
  size_t total_lines = 0;  // lines given
  bool truncated = false;  // lines.size() - lines oldest ones left out
};

// Compresses `lines` (each ending in '\n') into at most `max_bytes` of gzip. When they do not
// all fit, the newest that do are kept (the end of a log says most about how it ended),
// preceded by one line saying so: "[fleetlet: truncated: the oldest 812 of 2000 lines left
// out to fit maxBytes 65536]". kInvalidArgument when not even that line fits.
Result<Packed> packLines(const std::vector<std::string>& lines, int64_t max_bytes);

}  // namespace fleetlet::logrequest
