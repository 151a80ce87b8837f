#pragma once
// Prometheus text exposition format 0.0.4 (the format every Prometheus and promtool reads):
//
//   # HELP fleetlet_app_memory_bytes Memory the app's cgroup uses now.
//   # TYPE fleetlet_app_memory_bytes gauge
//   fleetlet_app_memory_bytes{app="camera"} 16777216
//
// TextWriter writes one exposition. A family is opened with family() (its HELP and TYPE
// lines) and its samples follow; a family name is written once per exposition, so every
// sample of a family must be written before the next family opens. Label values and HELP
// text are escaped as the format requires (backslash, double quote, newline).
//
// Names are code, not input: a family or label name that is not a valid Prometheus name is a
// programming error that the unit tests catch; at run time the writer drops such a family
// (and its samples) and counts it in dropped() rather than emit an exposition no scraper reads.
//
// Concurrency: a TextWriter is used by one thread. The free functions are pure.

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fleetlet::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

enum class Type : std::uint8_t { kCounter, kGauge, kHistogram, kUntyped };

// Content-Type of an exposition in this format.
inline constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool validMetricName(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved).
bool validLabelName(std::string_view name);
// A sample value as the format writes it: integers without a fraction, others in the shortest
// form that reads back exactly, "+Inf", "-Inf", "NaN".
std::string formatValue(double value);

class TextWriter {
 public:
  // Opens family `name`: writes its HELP and TYPE lines. False (and nothing written) when the
  // name is invalid or was opened before in this exposition; its samples are then dropped.
  bool family(std::string_view name, Type type, std::string_view help);
  // A sample of the open family. `suffix` is appended to the family name ("_bucket", "_sum",
  // "_count" of a histogram; empty otherwise). Dropped when no valid family is open or a
  // label name is invalid.
  void sample(const Labels& labels, double value, std::string_view suffix = {});

  // Families or samples dropped for invalid names (see above).
  size_t dropped() const { return dropped_; }
  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  std::string current_;  // the open family, empty when none (or an invalid one) is open
  std::set<std::string, std::less<>> seen_;
  size_t dropped_ = 0;
};

}  // namespace fleetlet::metrics
