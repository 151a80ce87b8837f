#pragma once
// HandoffSender: the agent side of the socket handoff (docs/socket-handoff.md). It owns the
// agent's copy of every listener handed to one service and keeps the service in step with
// that set across service restarts.
//
// Concurrency: all methods are thread-safe (one internal mutex) and may block: connecting
// and sending wait for the service, each send at most SenderOptions::send_timeout. There is no
// background thread: a lost connection is noticed and repaired only inside a call, typically
// reconnectIfNeeded() from the agent's periodic loop, or as soon as pollFd() polls readable.
//
// Delivery: add() and remove() always update the set; they send only while connected. When a
// send fails they reconnect once on the spot. Whatever could not be sent is delivered by the
// next successful (re)connect, which re-sends the whole set between sync_begin and sync_end,
// so the service drops listeners it should no longer have.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "error/error.h"
#include "os/unique_fd.h"

namespace fleetlet::handoff {

struct Message;

struct SenderOptions {
  // SO_SNDTIMEO of the connection: a service that stops reading is treated as gone after it.
  std::chrono::milliseconds send_timeout{2000};
};

class HandoffSender {
 public:
  explicit HandoffSender(SenderOptions options = {});
  // Closes the connection and every listener it owns. The service keeps its own copies until
  // it notices the closed connection (which removes nothing by itself).
  ~HandoffSender();
  HandoffSender(const HandoffSender&) = delete;
  HandoffSender& operator=(const HandoffSender&) = delete;

  // Remembers `service_socket` (the service's --handoff-socket) and connects to it (closing
  // an existing connection first), then sends the full set between sync markers. Fails with
  // kUnavailable (sysErrno ENOENT or ECONNREFUSED) when no service listens there yet; the path is
  // remembered anyway, so reconnectIfNeeded() keeps trying. kInvalidArgument for a path too long
  // for sockaddr_un.
  Status connect(const std::filesystem::path& service_socket);

  // Checks whether the connection is still up (the service never writes: readable or hung up
  // means it is gone) and, if not, reconnects and re-syncs. Returns success when connected
  // afterwards, kFailedPrecondition before connect() was called, kUnavailable while the
  // service is not there. Cheap when connected: one non-blocking poll().
  Status reconnectIfNeeded();

  bool connected() const;
  // The connection's fd, or -1: add it to an event loop (POLLIN/POLLHUP means the service went
  // away; then call reconnectIfNeeded()). Valid until the next call on this sender.
  int pollFd() const;

  // Takes ownership of `listener` (a listening socket, e.g. from listenInNetns) as the listener
  // `name` of `app`, replacing (and closing) an earlier one of that pair, and hands a duplicate
  // to the service. Fails with kInvalidArgument for an invalid name or fd (nothing changes then);
  // a failed delivery is not an error (see Delivery above).
  Status add(const std::string& app, const std::string& name, UniqueFd listener);
  // Forgets and closes the listener `name` of `app` (every listener of app when name is empty)
  // and tells the service. Removing what is not there is a no-op. Fails only with
  // kInvalidArgument for an invalid name.
  Status remove(const std::string& app, const std::string& name = "");

  // The agent's copy of a listener, or -1. Use it for checks such as socketNetnsInode(); the
  // sender keeps ownership.
  int find(const std::string& app, const std::string& name) const;
  // Every (app, name) held, sorted.
  std::vector<std::pair<std::string, std::string>> listeners() const;

 private:
  using Key = std::pair<std::string, std::string>;

  // All with mutex_ held.
  Status connectLocked();
  bool connectionAliveLocked() const;
  void disconnectLocked();
  // Sends `message`; on failure disconnects and tries one reconnect (which re-syncs).
  void deliverLocked(const Message& message);

  SenderOptions options_;
  mutable std::mutex mutex_;
  std::filesystem::path path_;         // guarded by mutex_
  UniqueFd connection_;                // guarded by mutex_
  std::map<Key, UniqueFd> listeners_;  // guarded by mutex_
};

}  // namespace fleetlet::handoff
