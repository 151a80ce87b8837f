#include "api/api_server.h"

#include <sys/stat.h>

#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <charconv>
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

MetricsServer::MetricsServer(std::unique_ptr<http::Server> server, std::string address)
    : server_(std::move(server)), address_(std::move(address)) {}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::stop() {
  if (server_) server_->stop(std::chrono::milliseconds(1000));
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const MetricsEndpoints& endpoints,
                                                            const std::string& address,
                                                            std::uint16_t port) {
  http::ServerOptions server_options;
  server_options.io_threads = 1;
  server_options.blocking_threads = 1;
  server_options.default_body_limit = 0;
  server_options.cors_origin = std::nullopt;
  server_options.response_headers = {{"X-Content-Type-Options", "nosniff"}};
  auto server = std::make_unique<http::Server>(server_options);
  FLEETLET_RETURN_IF_ERROR(registerMetricsRoutes(*server, endpoints));
  auto listener = server->listenTcp(address, port, "metrics");
  if (!listener) return std::unexpected(listener.error().wrap("metrics listener"));
  FLEETLET_RETURN_IF_ERROR(server->start());
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(server), listener->address));
}

Result<std::pair<std::string, std::uint16_t>> parseListenAddress(std::string_view text) {
  std::string address = "127.0.0.1";
  std::string_view port_text = text;
  if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    address = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
      address = address.substr(1, address.size() - 2);
    }
    boost::system::error_code ec;
    boost::asio::ip::make_address(address, ec);
    if (ec || address.empty()) {
      return fail(ErrorCode::kInvalidArgument, "\"{}\": \"{}\" is not an IP address", text,
                  address);
    }
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return fail(ErrorCode::kInvalidArgument, "\"{}\": expected PORT, ADDR:PORT or [V6ADDR]:PORT",
                text);
  }
  return std::pair{address, static_cast<std::uint16_t>(port)};
}

}  // namespace fleetlet::api
