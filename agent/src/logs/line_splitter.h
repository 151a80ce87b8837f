#pragma once
// LineSplitter cuts one stream's bytes into the texts of CRI records.
//
// A line ends at '\n' (not included). A line longer than `max_line` bytes becomes pieces of
// exactly `max_line` bytes marked partial, then a final piece with the rest (a line of exactly
// `max_line` bytes is one full piece). Bytes after the last '\n' wait for more input.
// Pure logic; one splitter per stream, used from one thread.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace fleetlet::logs {

class LineSplitter {
 public:
  // Receives each piece: its text (valid only during the call) and whether it is partial.
  using Emit = std::function<void(std::string_view text, bool partial)>;

  // `max_line` must be at least 1.
  explicit LineSplitter(size_t max_line);

  // Emits every piece `bytes` completes, in order.
  void feed(std::string_view bytes, const Emit& emit);
  // End of stream: emits what waits after the last '\n' as a full piece (nothing when
  // nothing waits).
  void finish(const Emit& emit);

  // Bytes waiting for the rest of their line.
  size_t buffered() const { return pending_.size(); }

 private:
  size_t max_line_;
  std::string pending_;  // Never longer than max_line_.
};

}  // namespace fleetlet::logs
