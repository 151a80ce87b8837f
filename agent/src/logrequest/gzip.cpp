#include "logrequest/gzip.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>

namespace fleetlet::logrequest {
namespace {

constexpr int kGzipWindow = 15 + 16;  // deflate's 32 KiB window, gzip framing

}  // namespace

Result<std::string> gzip(std::string_view data) {
  z_stream zs{};
  if (deflateInit2(&zs, 6, Z_DEFLATED, kGzipWindow, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return fail(ErrorCode::kInternal, "gzip: deflateInit2 failed");
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())), '\0');
  // zlib's API takes non-const input; it does not write to it.
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  const auto written = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return fail(ErrorCode::kInternal, "gzip: deflate returned {}", rc);
  out.resize(written);
  return out;
}

Result<std::string> gunzip(std::string_view data) {
  z_stream zs{};
  if (inflateInit2(&zs, kGzipWindow) != Z_OK) {
    return fail(ErrorCode::kInternal, "gunzip: inflateInit2 failed");
  }
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  std::string buf(size_t{64} * 1024, '\0');
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf.data());
    zs.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf.data(), buf.size() - zs.avail_out);
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END)
    return fail(ErrorCode::kInvalidArgument, "gunzip: not a whole gzip member ({})", rc);
  return out;
}

Result<Packed> packLines(const std::vector<std::string>& lines, int64_t max_bytes) {
  const auto limit = static_cast<size_t>(std::max<int64_t>(0, max_bytes));
  Packed out{.gzip = {}, .lines = lines.size(), .total_lines = lines.size(), .truncated = false};
  // Keep the newest `keep` lines; shrink by the ratio the last try overshot until it fits.
  size_t keep = lines.size();
  for (;;) {
    std::string text;
    if (keep < lines.size()) {
      text = fmt::format(
          "[fleetlet: truncated: the oldest {} of {} lines left out to fit maxBytes {}]\n",
          lines.size() - keep, lines.size(), max_bytes);
    }
    for (size_t i = lines.size() - keep; i < lines.size(); ++i) text += lines[i];
    FLEETLET_ASSIGN_OR_RETURN(auto packed, gzip(text));
    if (packed.size() <= limit) {
      out.gzip = std::move(packed);
      out.lines = keep;
      out.truncated = keep < lines.size();
      return out;
    }
    if (keep == 0) {
      return fail(ErrorCode::kInvalidArgument,
                  "maxBytes {} is too small for even the truncation notice ({} bytes)", max_bytes,
                  packed.size());
    }
    const double ratio = static_cast<double>(limit) / static_cast<double>(packed.size());
    size_t next = static_cast<size_t>(static_cast<double>(keep) * ratio * 0.95);
    keep = std::min(next, keep - 1);
  }
}

}  // namespace fleetlet::logrequest
