#pragma once
// ControlServer: the kiosk's control socket (a unix socket, mode 0600, no TCP), served on the
// GTK main loop: one JSON request line per connection, one JSON answer line (see
// core/control_protocol.h).

#include <gio/gio.h>

#include <filesystem>
#include <memory>

#include "error/error.h"
#include "kiosk/gobject_ptr.h"
#include "kiosk/kiosk.h"

namespace fleetlet::webview {

class ControlServer {
 public:
  // Listens on `path` (a stale socket file there is replaced). `kiosk` must outlive the
  // server. Fails with the reason when the socket cannot be made.
  static Result<std::unique_ptr<ControlServer>> listen(const std::filesystem::path& path,
                                                       Kiosk& kiosk);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

 private:
  ControlServer(std::filesystem::path path, Kiosk& kiosk) : path_(std::move(path)), kiosk_(kiosk) {}
  static gboolean onIncoming(GSocketService* service, GSocketConnection* connection,
                             GObject* source, gpointer self);

  std::filesystem::path path_;
  Kiosk& kiosk_;
  GObjectPtr<GSocketService> service_;
};

}  // namespace fleetlet::webview
