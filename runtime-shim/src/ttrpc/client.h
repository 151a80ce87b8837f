#pragma once
// A ttrpc client on a unix socket (the shim's events to containerd, and tests).
//
// Thread-safe: calls from several threads share one connection, each on its own odd stream
// id; one reader thread hands each response to the call waiting for its stream. When the
// connection breaks, every waiting and later call fails with kUnavailable; make a new Client
// to reconnect.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "error/error.h"
#include "os/unique_fd.h"
#include "ttrpc/frame.h"

namespace fleetlet::ttrpc {

struct CallOptions {
  std::vector<std::pair<std::string, std::string>> metadata;
  // Sent as timeout_nano and used as the local wait limit; none = wait until the answer or
  // the connection breaks.
  std::optional<std::chrono::nanoseconds> timeout;
};

class Client {
 public:
  // Connects to a socket path (a "unix://" prefix is accepted). kUnavailable when nobody
  // listens.
  static Result<std::unique_ptr<Client>> connect(std::string_view address);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  // Closes the connection (pending calls fail with kUnavailable) and joins the reader.
  ~Client();

  // Sends `payload` (a serialized request message) to service/method and returns the
  // serialized response, or the server's status. Connection failures and a passed timeout
  // give kUnavailable / kDeadlineExceeded. Blocks until then.
  RpcResult<std::string> call(std::string_view service, std::string_view method,
                              std::string_view payload, const CallOptions& options = {});

 private:
  struct Pending {
    bool done = false;
    RpcResult<std::string> result;
  };
  explicit Client(UniqueFd fd);
  void readLoop();
  void failAll(const std::string& why);

  UniqueFd fd_;
  std::mutex write_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint32_t next_stream_ = 1;              // guarded by mu_
  std::map<std::uint32_t, Pending*> pending_;  // guarded by mu_
  std::optional<std::string> broken_;          // guarded by mu_: why the connection died
  std::thread reader_;
};

}  // namespace fleetlet::ttrpc
