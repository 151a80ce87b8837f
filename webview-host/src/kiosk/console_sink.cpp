#include "kiosk/console_sink.h"

#include <spdlog/spdlog.h>

#include "http/client.h"

namespace fleetlet::webview {

namespace {

// The console service's severities: debug, info, warn, error.
std::string severityOf(const std::string& level) {
  if (level == "error" || level == "warn" || level == "debug") return level;
  return "info";
}

}  // namespace

ConsoleSink::ConsoleSink(std::string socket) : socket_(std::move(socket)) {
  thread_ = std::jthread([this](const std::stop_token& stop) { run(stop); });
}

ConsoleSink::~ConsoleSink() {
  thread_.request_stop();
  wake_.notify_all();
}

void ConsoleSink::post(const std::string& level, const std::string& text) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      queue_.pop_front();
      ++dropped_;
    }
    queue_.push_back({{"logName", "console"},
                      {"severity", severityOf(level)},
                      {"message", text},
                      {"labels", {{"console.method", level}}}});
  }
  wake_.notify_all();
}

uint64_t ConsoleSink::sent() const {
  std::lock_guard lock(mu_);
  return sent_;
}

uint64_t ConsoleSink::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void ConsoleSink::run(const std::stop_token& stop) {
  http::Client client({.unix_socket = socket_,
                       .connect_timeout = std::chrono::seconds(2),
                       .total_timeout = std::chrono::seconds(2)});
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, stop, [this] { return !queue_.empty(); });
    if (stop.stop_requested()) return;
    Json entry = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    http::ClientRequest request{.method = "POST", .url = "http://localhost/api/v1/logs"};
    request.headers.add("Content-Type", "application/json");
    request.body = entry.dump();
    auto answer = client.send(request);
    const bool ok = answer && answer->status / 100 == 2;
    if (!ok) {
      spdlog::debug("console service at {}: {}", socket_,
                    answer ? fmt::format("HTTP {}", answer->status) : answer.error().message());
    }
    lock.lock();
    if (ok) {
      ++sent_;
    } else {
      ++dropped_;
    }
  }
}

}  // namespace fleetlet::webview
