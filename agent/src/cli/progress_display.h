#pragma once
// Shows pull progress: on a terminal, one line per blob redrawn in place; otherwise (logs,
// CI, pipes) one plain line per blob as it starts and finishes, so output stays readable.

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "image/puller.h"

namespace fleetlet::cli {

class ProgressDisplay {
 public:
  // `interactive`: redraw in place (use isatty on the stream).
  ProgressDisplay(std::FILE* out, bool interactive) : out_(out), interactive_(interactive) {}

  void update(const image::PullProgress& p);
  // Final redraw on a terminal; nothing otherwise.
  void finish();

 private:
  struct Line {
    std::string label;
    image::PullProgress last;
  };
  void redraw(bool force);
  static std::string describe(const image::PullProgress& p);

  std::FILE* out_;
  bool interactive_;
  std::vector<Line> lines_;
  std::map<std::string, size_t> by_digest_;
  size_t drawn_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
};

// "12.3 MiB", "512 B".
std::string humanBytes(int64_t bytes);

}  // namespace fleetlet::cli
