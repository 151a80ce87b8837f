#include "cli/progress_display.h"

#include <fmt/format.h>

namespace fleetlet::cli {

std::string humanBytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  auto v = static_cast<double>(bytes);
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, kUnits[unit]);
}

std::string ProgressDisplay::describe(const image::PullProgress& p) {
  using Phase = image::PullProgress::Phase;
  std::string label = fmt::format("{:<8} {}", image::toString(p.kind), p.digest.substr(0, 7 + 12));
  switch (p.phase) {
    case Phase::kExists:
      return fmt::format("{}  already present ({})", label, humanBytes(p.total));
    case Phase::kDownloaded:
      return fmt::format("{}  done ({})", label, humanBytes(p.total));
    case Phase::kUnpacked:
      return fmt::format("{}  unpacked", label);
    case Phase::kDownloading:
      break;
  }
  int width = 24;
  int filled = p.total > 0 ? static_cast<int>(width * p.done / p.total) : 0;
  return fmt::format("{}  [{}{}] {} / {}", label, std::string(static_cast<size_t>(filled), '='),
                     std::string(static_cast<size_t>(width - filled), ' '), humanBytes(p.done),
                     humanBytes(p.total));
}

void ProgressDisplay::update(const image::PullProgress& p) {
  using Phase = image::PullProgress::Phase;
  auto [it, inserted] = by_digest_.try_emplace(p.digest, lines_.size());
  if (inserted) lines_.push_back(Line{.label = p.digest, .last = p});
  Line& line = lines_[it->second];
  Phase previous = line.last.phase;
  line.last = p;
  if (interactive_) {
    redraw(p.phase != Phase::kDownloading);
    return;
  }
  // Plain output: a line when a blob starts downloading and when its state settles.
  if (p.phase == Phase::kDownloading && (!inserted && previous == Phase::kDownloading)) return;
  fmt::print(out_, "{}\n", describe(p));
  (void)std::fflush(out_);
}

void ProgressDisplay::redraw(bool force) {
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  if (drawn_ > 0) fmt::print(out_, "\x1b[{}A", drawn_);
  for (const auto& line : lines_) fmt::print(out_, "\x1b[2K{}\n", describe(line.last));
  drawn_ = lines_.size();
  (void)std::fflush(out_);
}

void ProgressDisplay::finish() {
  if (interactive_ && !lines_.empty()) redraw(true);
}

}  // namespace fleetlet::cli
