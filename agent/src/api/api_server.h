#pragma once
// ApiServer: fleetletd's local API (routes.h) on its unix socket, with its own http::Server.
//
//   auto api = api::ApiServer::start(node_service, {.socket_path = flags.api_socket});
//   if (!api) return fail(api.error());
//   ...                       // serves until
//   (*api)->stop();           // or destruction
//
// Thread-safety: start() and stop() from any thread but the server's own (not from a
// NodeService call made by a handler).

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "api/routes.h"
#include "core/node_service.h"
#include "error/error.h"

namespace fleetlet::http {
class Server;
}

namespace fleetlet::api {

inline constexpr const char* kDefaultSocketPath = "/run/fleetlet/fleetletd.sock";

struct ApiServerOptions {
  std::filesystem::path socket_path = kDefaultSocketPath;
  // Owner and group may talk to fleetletd; chgrp the socket to hand the CLI to a group.
  mode_t socket_mode = 0660;
  // Threads for NodeService calls and log reads (events followers hold none while they wait).
  int blocking_threads = 4;
  RouteConfig routes;
};

class ApiServer {
 public:
  // Creates the socket's parent directory (mode 0755) when missing, listens on socket_path
  // (a stale socket file is replaced) and starts serving on one I/O thread. Fails with
  // kAlreadyExists when another server answers on the socket, and with the errno of the
  // failed mkdir/bind/chmod/listen otherwise. `service` must outlive the ApiServer.
  static Result<std::unique_ptr<ApiServer>> start(core::NodeService& service,
                                                  ApiServerOptions options = {});
  // Stops (see stop()).
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Stops accepting, removes the socket file, ends streamed responses (events/logs
  // followers), lets requests in flight finish for up to `grace`. Blocks; idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

  const std::filesystem::path& socketPath() const { return socket_path_; }

 private:
  ApiServer(std::unique_ptr<http::Server> server, std::filesystem::path socket_path);

  std::unique_ptr<http::Server> server_;
  std::filesystem::path socket_path_;
};

// fleetletd's metrics alone (GET /metrics, GET /v1/top) on a TCP listener, for a Prometheus
// that cannot reach the unix socket (fleetletd --metrics-listen). Nothing else of the local
// API is served there.
class MetricsServer {
 public:
  // Listens on `address` (a literal IP address) and `port` (0: any free one) and serves on one
  // I/O thread. Fails with the errno of the failed bind/listen.
  static Result<std::unique_ptr<MetricsServer>> start(const MetricsEndpoints& endpoints,
                                                      const std::string& address,
                                                      std::uint16_t port);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // "127.0.0.1:9477" with the bound port.
  const std::string& address() const { return address_; }
  void stop();

 private:
  MetricsServer(std::unique_ptr<http::Server> server, std::string address);

  std::unique_ptr<http::Server> server_;
  std::string address_;
};

// Parses --metrics-listen: "PORT" (on 127.0.0.1), "ADDR:PORT" or "[V6ADDR]:PORT" into the
// address and port. kInvalidArgument naming the text otherwise.
Result<std::pair<std::string, std::uint16_t>> parseListenAddress(std::string_view text);

}  // namespace fleetlet::api
