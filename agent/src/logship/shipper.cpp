#include "logship/shipper.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <set>

namespace fleetlet::logship {
namespace {

// Batches one app may send in one pass before the next app's turn.
constexpr int kBatchesPerTurn = 16;

}  // namespace

LogShipper::LogShipper(ShipperOptions options, CursorStore& cursors, LogSink& sink)
    : options_(std::move(options)), cursors_(cursors), sink_(sink) {}

LogShipper::~LogShipper() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
    auto s = stats();
    spdlog::info("log shipping stopped: {} lines sent ({} stored, {} already stored), {} refused",
                 s.sent, s.stored, s.duplicates, s.refused);
  }
}

ShipperStats LogShipper::stats() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

void LogShipper::scan() {
  if (!loaded_once_) {
    auto loaded = cursors_.load();
    if (!loaded) {
      spdlog::warn("log shipping: cursors: {} (shipping the logs from their oldest files)",
                   loaded.error().message());
    } else {
      loaded_ = std::move(*loaded);
    }
    loaded_once_ = true;
  }
  std::set<std::string> present;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options_.logs_root, ec)) {
    if (!entry.is_directory(ec)) continue;
    present.insert(entry.path().filename().string());
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    spdlog::warn("log shipping: list {}: {}", options_.logs_root.string(), ec.message());
    return;
  }
  // Logs deleted (the app was removed and its retention passed): forget the app.
  for (auto it = apps_.begin(); it != apps_.end();) {
    if (present.contains(it->first)) {
      ++it;
      continue;
    }
    if (auto st = cursors_.erase(it->first); !st) {
      spdlog::warn("log shipping: forget {}: {}", it->first, st.error().message());
    }
    it = apps_.erase(it);
  }
  for (const auto& [app, cursor] : loaded_) {
    if (!present.contains(app) && !apps_.contains(app)) (void)cursors_.erase(app);
  }
  for (const auto& app : present) {
    if (apps_.contains(app)) continue;
    Position saved;
    if (auto it = loaded_.find(app); it != loaded_.end()) saved = it->second;
    auto tailer = LogTailer::open(options_.logs_root / app, saved, options_.limits);
    if (!tailer) {
      spdlog::warn("log shipping: app {}: {}", app, tailer.error().message());
      continue;
    }
    if (tailer->lostFile()) {
      spdlog::warn(
          "log shipping: app {}: its log rotated past the last shipped line while "
          "nobody shipped it; shipping from its oldest file",
          app);
      std::lock_guard lock(stats_mu_);
      ++stats_.lost_files;
    }
    apps_.emplace(app, App{.tailer = std::move(*tailer), .saved = std::move(saved)});
  }
  loaded_.clear();
}

Status LogShipper::deliver(Held& h) {
  if (options_.service_up && !options_.service_up()) {
    return fail(ErrorCode::kUnavailable, "the console service is not connected");
  }
  auto sent = sink_.send(h.app, h.messages);
  if (!sent && sent.error().code() == ErrorCode::kInvalidArgument && !h.messages.empty()) {
    // Refused as a whole: find the culprits one by one.
    spdlog::warn("log shipping: {}", sent.error().message());
    SendResult sum;
    std::size_t refused = 0;
    for (const auto& m : h.messages) {
      auto one = sink_.send(h.app, {m});
      if (one) {
        sum.stored += one->stored;
        sum.duplicates += one->duplicates;
      } else if (one.error().code() == ErrorCode::kInvalidArgument) {
        spdlog::warn("log shipping: app {}: dropping message {}: {}", h.app, m.key,
                     one.error().message());
        ++refused;
      } else {
        // Down again: the whole batch goes again later (what was stored is recognized).
        return std::unexpected(one.error());
      }
    }
    std::lock_guard lock(stats_mu_);
    stats_.refused += refused;
    sent = sum;
  }
  if (!sent) return std::unexpected(sent.error());
  {
    std::lock_guard lock(stats_mu_);
    stats_.sent += h.messages.size();
    stats_.stored += sent->stored;
    stats_.duplicates += sent->duplicates;
  }
  if (auto it = apps_.find(h.app); it != apps_.end()) {
    if (auto st = cursors_.save(h.app, h.cursor); !st) {
      spdlog::warn("log shipping: save cursor of {}: {}", h.app, st.error().message());
    } else {
      it->second.saved = h.cursor;
    }
  }
  held_.reset();
  return {};
}

Result<std::size_t> LogShipper::runOnce() {
  scan();
  std::size_t shipped = 0;
  if (held_) {
    const std::size_t n = held_->messages.size();
    if (auto st = deliver(*held_); !st) {
      std::lock_guard lock(stats_mu_);
      ++stats_.failures;
      return std::unexpected(st.error());
    }
    shipped += n;
  }
  for (auto& [name, app] : apps_) {
    for (int turn = 0; turn < kBatchesPerTurn; ++turn) {
      auto messages = app.tailer.poll();
      if (!messages) {
        spdlog::warn("log shipping: app {}: {}", name, messages.error().message());
        break;
      }
      Position cursor = app.tailer.cursor();
      if (messages->empty()) {
        // Moving past malformed lines or into a new file moves the cursor too.
        if (cursor != app.saved) {
          if (auto st = cursors_.save(name, cursor); st) app.saved = cursor;
        }
        break;
      }
      const std::size_t n = messages->size();
      Held& held =
          held_.emplace(Held{.app = name, .messages = std::move(*messages), .cursor = cursor});
      if (auto st = deliver(held); !st) {
        std::lock_guard lock(stats_mu_);
        ++stats_.failures;
        return std::unexpected(st.error());
      }
      shipped += n;
    }
  }
  return shipped;
}

void LogShipper::start() {
  thread_ = std::jthread([this](const std::stop_token& stop) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    auto backoff = options_.poll_interval;
    bool was_down = false;
    while (!stop.stop_requested()) {
      auto shipped = runOnce();
      std::chrono::milliseconds wait = options_.poll_interval;
      if (!shipped) {
        if (!was_down) {
          spdlog::info("log shipping paused: {} (lines stay in the log files meanwhile)",
                       shipped.error().message());
        }
        was_down = true;
        wait = backoff;
        backoff = std::min(backoff * 2, options_.max_backoff);
      } else {
        if (was_down) spdlog::info("log shipping resumed");
        was_down = false;
        backoff = options_.poll_interval;
        if (*shipped > 0) continue;
      }
      cv.wait_for(lock, stop, wait, [] { return false; });
    }
  });
}

}  // namespace fleetlet::logship
