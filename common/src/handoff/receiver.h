#pragma once
// HandoffReceiver: the service side of the socket handoff (docs/socket-handoff.md). It binds
// the service's handoff socket, accepts the agent's connection(s), decodes messages and turns
// them into on_add / on_remove callbacks.
//
// Concurrency
// - start() binds synchronously (bind errors are returned) and then runs one receiver thread
//   that blocks in poll() on the listening socket, the connections and a wake-up eventfd.
//   Every callback runs on that thread, one at a time, never concurrently with itself or the
//   other callback; a callback blocks the receiver while it runs.
// - listeners() and stats() are thread-safe. The destructor stops and joins the thread; it
//   must not be called from a callback. It calls no callbacks: what was handed over stays with
//   whoever on_add gave it to.
// - Callbacks must not throw (an exception is caught, logged and treated as a failed add).
//
// Semantics
// - add(app, listener, fd): on_add(app, listener, fd) owns fd. If (app, listener) is already
//   held with the same socket (same inode: a re-send after reconnecting) the new fd is closed
//   and nothing is called; with a different socket on_remove(app, listener) runs first. When
//   on_add fails the pair is not held (its fd is gone with it).
// - remove(app[, listener]): on_remove for that pair, or for every held listener of app.
//   Removing what is not held is a no-op.
// - sync_begin ... sync_end: at sync_end every pair held but not added since sync_begin gets
//   on_remove. A connection that closes mid-sync removes nothing.
// - A malformed message (see protocol.h) is logged, counted in stats().protocol_errors and
//   drops that connection; the agent reconnects and re-syncs. Received fds never leak.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "error/error.h"
#include "os/unique_fd.h"

namespace fleetlet::handoff {

struct ReceiverOptions {
  // The service's --handoff-socket. A stale socket file there is removed; a live one (a
  // process accepts connections) makes start() fail with kAlreadyExists; any other kind of
  // file with kFailedPrecondition.
  std::filesystem::path socket_path;
  // Applied before the socket appears under its name (bound under a temporary name, chmod,
  // rename), so no client ever sees wider permissions.
  mode_t mode = 0600;
  // Agent connections served at once; further ones are closed right after accept.
  std::size_t max_connections = 4;
};

struct ReceiverCallbacks {
  std::function<Status(const std::string& app, const std::string& listener, UniqueFd fd)> on_add;
  std::function<void(const std::string& app, const std::string& listener)> on_remove;
};

struct ReceiverStats {
  std::uint64_t connections = 0;      // accepted agent connections
  std::uint64_t messages = 0;         // valid messages applied
  std::uint64_t protocol_errors = 0;  // connections dropped for a malformed message
  std::uint64_t failed_adds = 0;      // on_add returned an error
};

class HandoffReceiver {
 public:
  // Binds options.socket_path and starts the receiver thread. Fails with kInvalidArgument for
  // a path too long for sockaddr_un or missing callbacks, kAlreadyExists / kFailedPrecondition
  // (see ReceiverOptions::socket_path), or the errno of socket/bind/listen/chmod/rename.
  static Result<std::unique_ptr<HandoffReceiver>> start(ReceiverOptions options,
                                                        ReceiverCallbacks callbacks);

  // Stops and joins the receiver thread, closes the connections and removes the socket file
  // (if it is still the one this receiver bound).
  ~HandoffReceiver();
  HandoffReceiver(const HandoffReceiver&) = delete;
  HandoffReceiver& operator=(const HandoffReceiver&) = delete;

  const std::filesystem::path& socketPath() const;
  // The (app, listener) pairs currently held (handed to on_add and not removed), sorted.
  std::vector<std::pair<std::string, std::string>> listeners() const;
  ReceiverStats stats() const;
  // The error that last dropped a connection, if any.
  std::optional<Error> lastProtocolError() const;

 private:
  class Impl;
  explicit HandoffReceiver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fleetlet::handoff
