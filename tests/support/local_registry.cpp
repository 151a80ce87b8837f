#include "support/local_registry.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "os/unique_fd.h"

namespace fleetlet::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int kAttempts = 5;
constexpr auto kStartTimeout = 20s;

std::string readFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

Result<uint16_t> freePort() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return failErrno(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return failErrno(errno, "bind 127.0.0.1:0");
  }
  socklen_t len = sizeof(addr);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return failErrno(errno, "getsockname");
  }
  return ntohs(addr.sin_port);
}

Result<int> httpGetStatus(const std::string& host, uint16_t port, const std::string& path) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return failErrno(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return fail(ErrorCode::kInvalidArgument, "not an IPv4 address: {}", host);
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return failErrno(errno, "connect {}:{}", host, port);
  }
  std::string request =
      fmt::format("GET {} HTTP/1.0\r\nHost: {}:{}\r\nConnection: close\r\n\r\n", path, host, port);
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return failErrno(errno, "send to {}:{}", host, port);
  }
  std::string response;
  char buf[512];
  while (response.find("\r\n") == std::string::npos) {
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    response.append(buf, static_cast<size_t>(n));
  }
  // "HTTP/1.1 200 OK"
  auto space = response.find(' ');
  if (!response.starts_with("HTTP/") || space == std::string::npos || space + 4 > response.size()) {
    return fail(ErrorCode::kUnavailable, "no HTTP status line from {}:{}", host, port);
  }
  return std::stoi(response.substr(space + 1, 3));
}

LocalRegistry::LocalRegistry(TempDir dir, uint16_t port, std::unique_ptr<ChildProcess> process)
    : dir_(std::move(dir)),
      storage_(dir_.path() / "storage"),
      port_(port),
      process_(std::move(process)) {}

LocalRegistry::~LocalRegistry() {
  if (process_) process_->stop(SIGTERM, 5s);
}

std::string LocalRegistry::address() const { return fmt::format("127.0.0.1:{}", port_); }

Result<LocalRegistry> LocalRegistry::start() {
  Error last(ErrorCode::kUnavailable, "not started");
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    FLEETLET_ASSIGN_OR_RETURN(TempDir dir, TempDir::create("fleetlet-registry"));
    auto registry = startOnce(std::move(dir));
    if (registry) return registry;
    // Only a lost port race is worth another try.
    if (registry.error().message().find("address already in use") == std::string::npos) {
      return registry;
    }
    last = registry.error();
  }
  return std::unexpected(last.wrap("start registry after {} attempts", kAttempts));
}

Result<LocalRegistry> LocalRegistry::startOnce(TempDir dir) {
  FLEETLET_ASSIGN_OR_RETURN(uint16_t port, freePort());
  const fs::path config = dir.path() / "config.yml";
  const fs::path log = dir.path() / "registry.log";
  {
    std::ofstream out(config);
    out << "version: 0.1\n"
        << "log:\n  level: info\n"
        << "storage:\n  filesystem:\n    rootdirectory: " << (dir.path() / "storage").string()
        << "\n  delete:\n    enabled: true\n"
        << "http:\n  addr: 127.0.0.1:" << port << "\n";
    if (!out) return fail(ErrorCode::kInternal, "write {}", config.string());
  }
  auto child = ChildProcess::spawn(SpawnOptions{
      .argv = {"docker-registry", "serve", config.string()},
      .stdout_path = log,
      .stderr_path = log,
  });
  if (!child) return std::unexpected(child.error().wrap("start docker-registry"));
  auto process = std::make_unique<ChildProcess>(std::move(*child));

  auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto exited = process->poll()) {
      return fail(ErrorCode::kUnavailable, "docker-registry on port {} exited ({}); log:\n{}", port,
                  exited->describe(), readFile(log));
    }
    auto status = httpGetStatus("127.0.0.1", port, "/v2/");
    if (status && *status == 200) return LocalRegistry(std::move(dir), port, std::move(process));
    std::this_thread::sleep_for(50ms);
  }
  return fail(ErrorCode::kUnavailable,
              "docker-registry on port {} did not answer in {} s; log:\n{}", port,
              kStartTimeout.count(), readFile(log));
}

}  // namespace fleetlet::testing
