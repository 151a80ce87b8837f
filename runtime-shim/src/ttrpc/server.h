#pragma once
// A ttrpc server on a unix socket: containerd's side of every shim call.
//
// Threads: one accept thread, one reader thread per connection, and one thread per request
// (like the Go server's goroutine per request), so a blocking method (Task.Wait) never holds
// up the others on the same connection. A connection carries at most kMaxInFlight requests
// at once; more are answered RESOURCE_EXHAUSTED. Responses are written whole under the
// connection's write lock. Garbage from a peer (bad protobuf, even stream ids, oversized
// frames) is answered with an error status on that stream; the server never crashes on it.
// Only peers with the server's own uid or uid 0 are accepted (SO_PEERCRED), as the Go shim's
// UnixSocketRequireSameUser does.
//
// Methods are registered before serve(); handlers run concurrently and must be thread-safe.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "error/error.h"
#include "os/unique_fd.h"
#include "ttrpc/frame.h"

namespace fleetlet::ttrpc {

struct RequestContext {
  std::vector<std::pair<std::string, std::string>> metadata;
  // The client's deadline (timeout_nano), if it set one.
  std::optional<std::chrono::nanoseconds> timeout;

  // The first value of metadata `key`, or "" when absent.
  std::string_view get(std::string_view key) const;
};

// Returns the serialized response message, or the status to answer with.
using Handler = std::function<RpcResult<std::string>(const RequestContext&, std::string_view)>;

class Server {
 public:
  static constexpr std::size_t kMaxInFlight = 128;

  // Binds and listens on `path` (which must not exist).
  static Result<std::unique_ptr<Server>> listen(const std::filesystem::path& path);
  // Serves an already listening socket (the shim's `start` hands it over as fd 3).
  static std::unique_ptr<Server> adopt(UniqueFd listener);

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // shutdown(), then waits for every connection and request thread to finish. Handlers must
  // return in bounded time once the server is shutting down.
  ~Server();

  // Not thread-safe: call before serve(). Unknown methods answer UNIMPLEMENTED.
  void registerMethod(std::string_view service, std::string_view method, Handler handler);

  // Accepts and serves until shutdown(). Blocks.
  void serve();
  // Stops accepting, closes every connection. Safe from any thread, including a handler.
  void shutdown();

  int listenerFd() const { return listener_.get(); }

 private:
  struct Connection;
  explicit Server(UniqueFd listener);
  void serveConnection(const std::shared_ptr<Connection>& conn);
  void handleFrame(const std::shared_ptr<Connection>& conn, Frame frame);
  void runRequest(const std::shared_ptr<Connection>& conn, std::uint32_t stream,
                  const std::string& payload);
  void threadStarted();
  void threadDone();

  UniqueFd listener_;
  UniqueFd wake_;  // eventfd: readable once shutdown() ran
  std::atomic<bool> stopping_{false};
  std::map<std::string, Handler, std::less<>> methods_;  // "/service/method"; read-only in serve()

  std::mutex threads_mu_;
  std::condition_variable threads_cv_;
  std::size_t threads_ = 0;                             // guarded by threads_mu_
  std::vector<std::weak_ptr<Connection>> connections_;  // guarded by threads_mu_
};

}  // namespace fleetlet::ttrpc
