#include "api/api_server.h"

#include <sys/stat.h>

#include <cerrno>
#include <system_error>

#include "http/server.h"

namespace fleetlet::api {

ApiServer::ApiServer(std::unique_ptr<http::Server> server, std::filesystem::path socket_path)
    : server_(std::move(server)), socket_path_(std::move(socket_path)) {}

ApiServer::~ApiServer() { stop(); }

Result<std::unique_ptr<ApiServer>> ApiServer::start(core::NodeService& service,
                                                    ApiServerOptions options) {
  auto parent = options.socket_path.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    bool created = std::filesystem::create_directories(parent, ec);
    if (ec) return failErrno(ec.value(), "creating {}", parent.string());
    // create_directories applies the umask; the directory of a socket needs search rights for
    // the group the socket is shared with. An existing directory is left as it is.
    if (created && ::chmod(parent.c_str(), 0755) != 0) {
      return failErrno(errno, "chmod {}", parent.string());
    }
  }
  http::ServerOptions server_options;
  server_options.io_threads = 1;
  server_options.blocking_threads = options.blocking_threads;
  server_options.default_body_limit = std::uint64_t{64} * 1024;
  server_options.cors_origin = std::nullopt;  // a unix socket has no browser callers
  auto server = std::make_unique<http::Server>(server_options);
  FLEETLET_RETURN_IF_ERROR(registerRoutes(*server, service, options.routes));
  auto listener = server->listenUnix(options.socket_path.string(), "local", options.socket_mode);
  if (!listener) return std::unexpected(listener.error().wrap("local API"));
  FLEETLET_RETURN_IF_ERROR(server->start());
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(server), options.socket_path));
}

void ApiServer::stop(std::chrono::milliseconds grace) {
  if (server_) server_->stop(grace);
}

}  // namespace fleetlet::api
