#include "logs/line_splitter.h"

#include <cstdlib>

namespace fleetlet::logs {

LineSplitter::LineSplitter(size_t max_line) : max_line_(max_line) {
  if (max_line_ == 0) std::abort();  // A broken invariant: options are validated first.
  pending_.reserve(max_line_);
}

void LineSplitter::feed(std::string_view bytes, const Emit& emit) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    bool terminated = nl != std::string_view::npos;
    std::string_view segment = bytes.substr(0, terminated ? nl : bytes.size());
    bytes.remove_prefix(terminated ? nl + 1 : bytes.size());

    // Cut partial pieces while the line holds more than max_line_ bytes.
    while (pending_.size() + segment.size() > max_line_) {
      if (pending_.empty()) {
        emit(segment.substr(0, max_line_), true);
        segment.remove_prefix(max_line_);
      } else {
        size_t room = max_line_ - pending_.size();
        pending_.append(segment.substr(0, room));
        segment.remove_prefix(room);
        emit(pending_, true);
        pending_.clear();
      }
    }
    if (!terminated) {
      pending_.append(segment);
    } else if (pending_.empty()) {
      emit(segment, false);
    } else {
      pending_.append(segment);
      emit(pending_, false);
      pending_.clear();
    }
  }
}

void LineSplitter::finish(const Emit& emit) {
  if (pending_.empty()) return;
  emit(pending_, false);
  pending_.clear();
}

}  // namespace fleetlet::logs
