#include "services/service_links.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <fstream>

#include "handoff/netns_listener.h"
#include "handoff/protocol.h"

namespace fleetlet::services {

const std::vector<ServiceEndpoint>& endpoints() {
  static const std::vector<ServiceEndpoint> kEndpoints = {
      {.name = "events",
       .listener = "events",
       .port = 4454,
       .env = "AX_EVENT_SERVICE_URI",
       .path = "/api/"},
      {.name = "logs",
       .listener = "console",
       .port = 4457,
       .env = "AX_CONSOLE_SERVICE_URI",
       .path = "/api/"},
      {.name = "blobs",
       .listener = "blobs",
       .port = 4455,
       .env = "AX_BLOB_SERVICE_URI",
       .path = "/api/"},
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
  reconnector_ = std::jthread([this, retry](const std::stop_token& stop) {
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

handoff::HandoffSender* ServiceLinks::listedSender(const std::string& app,
                                                   const std::vector<std::string>& services,
                                                   const ServiceEndpoint& e) {
  handoff::HandoffSender* sender = senderFor(e);
  if (std::find(services.begin(), services.end(), e.name) == services.end()) {
    if (sender != nullptr) (void)sender->remove(app, e.listener);
    return nullptr;
  }
  if (sender == nullptr) {
    spdlog::warn("app {}: lists {}, but fleetletd has no handoff socket for its service", app,
                 e.name);
  }
  return sender;
}

Status ServiceLinks::link(const std::string& app, const std::vector<std::string>& services,
                          const std::filesystem::path& netns) {
  std::lock_guard lock(mu_);
  Status first;
  for (const auto& e : endpoints()) {
    handoff::HandoffSender* sender = listedSender(app, services, e);
    if (sender == nullptr) continue;
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

namespace {

// A listening unix stream socket at `path` (an old file there is replaced), mode 0600.
Result<UniqueFd> listenUnix(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string name = path.string();
  if (name.size() >= sizeof(address.sun_path)) {
    return fail(ErrorCode::kInvalidArgument, "unix socket path {} is longer than {} bytes", name,
                sizeof(address.sun_path) - 1);
  }
  std::memcpy(address.sun_path, name.c_str(), name.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return failErrno(errno, "socket for {}", name);
  ::unlink(name.c_str());
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return failErrno(errno, "bind {}", name);
  }
  if (::chmod(name.c_str(), 0600) != 0 || ::listen(fd.get(), handoff::kDefaultBacklog) != 0) {
    const int err = errno;
    ::unlink(name.c_str());
    return failErrno(err, "listen on {}", name);
  }
  return fd;
}

}  // namespace

Result<std::map<std::string, std::string>> ServiceLinks::linkUnix(
    const std::string& app, const std::vector<std::string>& services,
    const std::filesystem::path& dir) {
  std::lock_guard lock(mu_);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || ::chmod(dir.c_str(), 0700) != 0) {
    return fail(ErrorCode::kInvalidArgument, "app {}: cannot make {}: {}", app, dir.string(),
                ec ? ec.message() : std::strerror(errno));
  }
  std::map<std::string, std::string> sockets;
  for (const auto& e : endpoints()) {
    const auto path = dir / (e.name + ".sock");
    handoff::HandoffSender* sender = listedSender(app, services, e);
    if (sender == nullptr) {
      if (std::find(services.begin(), services.end(), e.name) == services.end()) {
        std::filesystem::remove(path, ec);
      }
      continue;
    }
    // Keep a listener whose socket file is still there (fleetletd made it in this run).
    if (sender->find(app, e.listener) >= 0 && std::filesystem::exists(path, ec)) {
      sockets[e.name] = path.string();
      continue;
    }
    auto fd = listenUnix(path);
    if (!fd && fd.error().code() == ErrorCode::kInvalidArgument) {
      return std::unexpected(fd.error().wrap("{} service of {}", e.name, app));
    }
    Status st = fd ? sender->add(app, e.listener, std::move(*fd)) : std::unexpected(fd.error());
    if (!st) {
      spdlog::warn("app {}: {} service: {}", app, e.name, st.error().message());
      continue;
    }
    sockets[e.name] = path.string();
    spdlog::info("app {}: {} on {} ({})", app, e.name, path.string(),
                 sender->connected() ? "handed to its service" : "for its service once connected");
  }
  return sockets;
}

namespace {

// "<service> <port>" lines of a host-listener ports file; missing or malformed lines are
// skipped.
std::map<std::string, std::uint16_t> readPorts(const std::filesystem::path& file) {
  std::map<std::string, std::uint16_t> ports;
  std::ifstream in(file);
  std::string name;
  unsigned port = 0;
  while (in >> name >> port) {
    if (port > 0 && port <= 65535) ports[name] = static_cast<std::uint16_t>(port);
  }
  return ports;
}

Status writePorts(const std::filesystem::path& file,
                  const std::map<std::string, std::uint16_t>& ports) {
  auto tmp = file;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [name, port] : ports) out << name << ' ' << port << '\n';
    if (!out) return fail(ErrorCode::kInternal, "write {}", tmp.string());
  }
  std::error_code ec;
  std::filesystem::rename(tmp, file, ec);
  if (ec) return fail(ErrorCode::kInternal, "rename {}: {}", tmp.string(), ec.message());
  return {};
}

}  // namespace

Result<std::map<std::string, std::string>> ServiceLinks::linkHost(
    const std::string& app, const std::vector<std::string>& services,
    const std::filesystem::path& ports_dir) {
  std::lock_guard lock(mu_);
  std::error_code ec;
  std::filesystem::create_directories(ports_dir, ec);
  if (ec) {
    return fail(ErrorCode::kInternal, "app {}: cannot make {}: {}", app, ports_dir.string(),
                ec.message());
  }
  const auto file = ports_dir / app;
  const auto known = readPorts(file);
  // fleetletd's own network namespace is the host's.
  const std::filesystem::path host_netns = "/proc/self/ns/net";
  const auto host_inode = handoff::netnsInode(host_netns);
  std::map<std::string, std::uint16_t> ports;
  std::map<std::string, std::string> env;
  for (const auto& e : endpoints()) {
    handoff::HandoffSender* sender = listedSender(app, services, e);
    if (sender == nullptr) continue;
    const auto was = known.find(e.name);
    // Keep a listener of this run that is on the host and on the recorded port.
    if (int held = sender->find(app, e.listener); held >= 0 && was != known.end()) {
      auto in = handoff::socketNetnsInode(held);
      auto port = handoff::boundPort(held);
      if (in && host_inode && *in == *host_inode && port && *port == was->second) {
        ports[e.name] = was->second;
        env[e.env] = fmt::format("http://127.0.0.1:{}{}", was->second, e.path);
        continue;
      }
    }
    auto fd = handoff::listenInNetns(host_netns, "127.0.0.1",
                                     was != known.end() ? was->second : std::uint16_t{0},
                                     handoff::kDefaultBacklog, /*reuse_port=*/true);
    if (!fd && was != known.end()) {
      spdlog::warn("app {}: {} service: port {} is taken ({}): a new one", app, e.name, was->second,
                   fd.error().message());
      fd = handoff::listenInNetns(host_netns, "127.0.0.1", 0, handoff::kDefaultBacklog,
                                  /*reuse_port=*/true);
    }
    if (!fd) {
      spdlog::warn("app {}: {} service: {}", app, e.name, fd.error().message());
      continue;
    }
    auto port = handoff::boundPort(fd->get());
    if (!port) {
      spdlog::warn("app {}: {} service: {}", app, e.name, port.error().message());
      continue;
    }
    if (auto st = sender->add(app, e.listener, std::move(*fd)); !st) {
      spdlog::warn("app {}: {} service: {}", app, e.name, st.error().message());
      continue;
    }
    ports[e.name] = *port;
    env[e.env] = fmt::format("http://127.0.0.1:{}{}", *port, e.path);
    spdlog::info("app {}: {} on the host's 127.0.0.1:{} ({})", app, e.name, *port,
                 sender->connected() ? "handed to its service" : "for its service once connected");
  }
  if (ports.empty()) {
    std::filesystem::remove(file, ec);
  } else if (ports != known) {
    if (auto st = writePorts(file, ports); !st) {
      return std::unexpected(st.error().wrap("host listeners of {}", app));
    }
  }
  return env;
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
