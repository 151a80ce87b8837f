#include "services/service_links.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>

#include "handoff/netns_listener.h"
#include "handoff/protocol.h"

namespace fleetlet::services {

const std::vector<ServiceEndpoint>& endpoints() {
  static const std::vector<ServiceEndpoint> kEndpoints = {
      {.name = "events",
       .listener = "events",
       .port = 4454,
       .env = "AX_EVENT_SERVICE_URI",
       .path = "/api/v1/events/"},
      {.name = "logs",
       .listener = "console",
       .port = 4457,
       .env = "AX_CONSOLE_SERVICE_URI",
       .path = "/api/v1/logs/"},
      {.name = "blobs",
       .listener = "blobs",
       .port = 4455,
       .env = "AX_BLOB_SERVICE_URI",
       .path = "/api/v1/blobs/"},
  };
  return kEndpoints;
}

std::map<std::string, std::string> serviceEnvironment(const manifest::App& app) {
  std::map<std::string, std::string> env;
  for (const auto& e : endpoints()) {
    if (std::find(app.services.begin(), app.services.end(), e.name) == app.services.end()) {
      continue;
    }
    env[e.env] = fmt::format("http://localhost:{}{}", e.port, e.path);
  }
  return env;
}

ServiceLinks::ServiceLinks(ServiceLinksOptions options, std::chrono::milliseconds retry)
    : options_(std::move(options)) {
  reconnector_ = std::jthread([this, retry](std::stop_token stop) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    for (;;) {
      cv.wait_for(lock, stop, retry, [] { return false; });
      if (stop.stop_requested()) return;
      reconnect();
    }
  });
}

void ServiceLinks::start() {
  if (started_.exchange(true)) return;
  for (auto [sender, path, what] :
       {std::tuple{&streams_, options_.streams_socket, "fleetlet-streams"},
        std::tuple{&blobs_, options_.blobs_socket, "fleetlet-blobs"}}) {
    if (path.empty()) continue;
    if (auto st = sender->connect(path); !st) {
      spdlog::info("{} is not up at {} yet ({}): apps' listeners are handed to it once it is", what,
                   path.string(), st.error().message());
    } else {
      spdlog::info("handed {} listeners to {}", sender->listeners().size(), what);
    }
  }
}

handoff::HandoffSender* ServiceLinks::senderFor(const ServiceEndpoint& e) {
  if (e.listener == "blobs") return options_.blobs_socket.empty() ? nullptr : &blobs_;
  return options_.streams_socket.empty() ? nullptr : &streams_;
}

Status ServiceLinks::link(const std::string& app, const std::vector<std::string>& services,
                          const std::filesystem::path& netns) {
  std::lock_guard lock(mu_);
  Status first;
  for (const auto& e : endpoints()) {
    handoff::HandoffSender* sender = senderFor(e);
    const bool listed = std::find(services.begin(), services.end(), e.name) != services.end();
    if (!listed) {
      if (sender != nullptr) (void)sender->remove(app, e.listener);
      continue;
    }
    if (sender == nullptr) {
      spdlog::warn("app {}: lists {}, but fleetletd has no handoff socket for its service", app,
                   e.name);
      continue;
    }
    // Keep a listener that lives in the app's current namespace.
    if (int held = sender->find(app, e.listener); held >= 0) {
      auto in = handoff::socketNetnsInode(held);
      auto want = handoff::netnsInode(netns);
      if (in && want && *in == *want) continue;
    }
    auto fd = handoff::listenInNetns(netns, "127.0.0.1", e.port, handoff::kDefaultBacklog,
                                     /*reuse_port=*/true);
    Status st = fd ? sender->add(app, e.listener, std::move(*fd)) : std::unexpected(fd.error());
    if (!st) {
      spdlog::warn("app {}: {} service: {}", app, e.name, st.error().message());
      if (first) first = std::unexpected(st.error().wrap("{} service of {}", e.name, app));
      continue;
    }
    spdlog::info("app {}: {} on its localhost:{} ({})", app, e.name, e.port,
                 sender->connected() ? "handed to its service" : "for its service once connected");
  }
  return first;
}

void ServiceLinks::unlink(const std::string& app) {
  std::lock_guard lock(mu_);
  (void)streams_.remove(app);
  (void)blobs_.remove(app);
}

void ServiceLinks::gc(const std::set<std::string>& live) {
  std::set<std::string> gone;
  for (const auto& [app, name] : listeners()) {
    if (!live.contains(app) && app != handoff::kNodeApp) gone.insert(app);
  }
  for (const auto& app : gone) {
    spdlog::info("app {}: its service listeners are closed (the app is gone)", app);
    unlink(app);
  }
}

void ServiceLinks::reconnect() {
  if (!started_) return;
  if (!options_.streams_socket.empty()) (void)streams_.reconnectIfNeeded();
  if (!options_.blobs_socket.empty()) (void)blobs_.reconnectIfNeeded();
}

Status ServiceLinks::linkNode(const std::string& listener, UniqueFd fd) {
  if (options_.streams_socket.empty()) {
    return fail(ErrorCode::kFailedPrecondition,
                "fleetletd has no handoff socket for fleetlet-streams");
  }
  std::lock_guard lock(mu_);
  return streams_.add(std::string(handoff::kNodeApp), listener, std::move(fd));
}

bool ServiceLinks::streamsConnected() const { return streams_.connected(); }

std::vector<std::pair<std::string, std::string>> ServiceLinks::listeners() const {
  auto out = streams_.listeners();
  auto more = blobs_.listeners();
  out.insert(out.end(), more.begin(), more.end());
  return out;
}

}  // namespace fleetlet::services
