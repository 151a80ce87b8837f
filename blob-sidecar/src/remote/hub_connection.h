#pragma once
// HubConnection: the blob service's NATS connection to its site hub (the same hub and options
// as fleetlet-streams' --nats, docs/replication.md). It connects in the background and keeps
// reconnecting; subscriptions made while it is away are sent once it is back.
//
// Concurrency: a natsConnection is thread-safe; this object is immutable after connect().

#include <memory>
#include <string>
#include <vector>

#include "error/error.h"

struct __natsConnection;  // nats.c's natsConnection, kept out of this header

namespace fleetlet::remote {

struct HubOptions {
  // nats://host:port or tls://host:port; all servers of the hub.
  std::vector<std::string> urls;
  std::string site = "site";
  // This node's name on the site (the blob service's --source).
  std::string node;
  // Credentials: user and password, or a NATS credentials file (JWT and seed).
  std::string user;
  std::string password;
  std::string credentials_file;
  // TLS: a CA to trust (turns TLS on), a client certificate and key.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
};

class HubConnection {
 public:
  // Checks the site and node names and starts connecting; does not wait for the hub. Fails
  // with kInvalidArgument for a bad option, kUnavailable when nats.c cannot start.
  static Result<std::unique_ptr<HubConnection>> connect(const HubOptions& options);
  // Closes the connection (after its subscriptions' owners are gone).
  ~HubConnection();
  HubConnection(const HubConnection&) = delete;
  HubConnection& operator=(const HubConnection&) = delete;

  __natsConnection* get() const { return nc_; }
  bool connected() const;
  // The largest message the hub accepts (0 until connected).
  int64_t maxPayload() const;
  const HubOptions& options() const { return options_; }

 private:
  explicit HubConnection(HubOptions options) : options_(std::move(options)) {}
  const HubOptions options_;
  __natsConnection* nc_ = nullptr;
};

// "a,b,c" into URLs; kInvalidArgument for an empty one.
Result<std::vector<std::string>> splitUrls(std::string_view text);

}  // namespace fleetlet::remote
