#include "kiosk/control_server.h"

#include <gio/gunixsocketaddress.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>

namespace fleetlet::webview {
namespace {

// One client connection: read a line, answer it, close.
struct Connection {
  GObjectPtr<GSocketConnection> socket;
  GObjectPtr<GDataInputStream> input;
  std::string answer;
  Kiosk* kiosk = nullptr;
};

void finish(Connection* connection) {
  g_io_stream_close(G_IO_STREAM(connection->socket.get()), nullptr, nullptr);
  std::unique_ptr<Connection> owned(connection);
}

void send(Connection* connection, std::string answer) {
  connection->answer = std::move(answer);
  connection->answer += '\n';
  GOutputStream* out = g_io_stream_get_output_stream(G_IO_STREAM(connection->socket.get()));
  g_output_stream_write_all_async(
      out, connection->answer.data(), connection->answer.size(), G_PRIORITY_DEFAULT, nullptr,
      [](GObject* source, GAsyncResult* result, gpointer data) {
        g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), result, nullptr, nullptr);
        finish(static_cast<Connection*>(data));
      },
      connection);
}

void onLine(GObject* source, GAsyncResult* result, gpointer data) {
  auto* connection = static_cast<Connection*>(data);
  gsize length = 0;
  gchar* line = g_data_input_stream_read_line_finish_utf8(G_DATA_INPUT_STREAM(source), result,
                                                          &length, nullptr);
  if (line == nullptr) {
    finish(connection);
    return;
  }
  std::string text(line, length);
  g_free(line);
  auto request = parseControlRequest(text);
  if (!request) {
    send(connection, controlError(request.error()));
    return;
  }
  connection->kiosk->handle(
      *request, [connection](std::string answer) { send(connection, std::move(answer)); });
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::listen(const std::filesystem::path& path,
                                                             Kiosk& kiosk) {
  std::unique_ptr<ControlServer> server(new ControlServer(path, kiosk));
  ::unlink(path.c_str());
  server->service_.reset(g_socket_service_new());
  GObjectPtr<GSocketAddress> address(g_unix_socket_address_new(path.c_str()));
  GError* error = nullptr;
  if (!g_socket_listener_add_address(G_SOCKET_LISTENER(server->service_.get()), address.get(),
                                     G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, nullptr,
                                     nullptr, &error)) {
    std::string message = error->message;
    g_error_free(error);
    return fail(ErrorCode::kUnavailable, "control socket {}: {}", path.string(), message);
  }
  if (::chmod(path.c_str(), 0600) != 0) {
    return failErrno(errno, "chmod control socket {}", path.string());
  }
  g_signal_connect(server->service_.get(), "incoming", G_CALLBACK(&ControlServer::onIncoming),
                   server.get());
  g_socket_service_start(server->service_.get());
  return server;
}

ControlServer::~ControlServer() {
  g_socket_service_stop(service_.get());
  g_socket_listener_close(G_SOCKET_LISTENER(service_.get()));
  g_signal_handlers_disconnect_by_data(service_.get(), this);
  ::unlink(path_.c_str());
}

gboolean ControlServer::onIncoming(GSocketService* /*service*/, GSocketConnection* socket,
                                   GObject* /*source*/, gpointer data) {
  auto* self = static_cast<ControlServer*>(data);
  auto* connection = std::make_unique<Connection>().release();  // freed by finish()
  connection->socket = retain(socket);
  connection->kiosk = &self->kiosk_;
  connection->input.reset(
      g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(socket))));
  g_data_input_stream_read_line_async(connection->input.get(), G_PRIORITY_DEFAULT, nullptr, &onLine,
                                      connection);
  return TRUE;
}

}  // namespace fleetlet::webview
