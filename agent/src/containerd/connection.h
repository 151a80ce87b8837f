#pragma once
// A gRPC connection to one containerd (its unix socket), and the base of the typed service
// wrappers in this folder.
//
// Every wrapper is bound to one containerd namespace (and, optionally, one lease) and sends
// them as gRPC metadata on each call. Calls block. A Connection may be shared by threads;
// wrappers are cheap values that copy freely.
//
// The connection knows every call in flight through it, so that shutdown() can end them all
// at once: a daemon that is asked to stop must not sit out a 60 s wait for a containerd that
// is gone.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "error/error.h"

namespace fleetlet::containerd {

// Maps a gRPC status to a fleetlet Error (the one table for this boundary); `what` says
// which call failed ("content.write sha256:...").
Error fromGrpc(const grpc::Status& status, std::string_view what);

// The calls in flight on one connection (see Connection::shutdown).
class CallRegistry {
 public:
  // Registers `ctx`; when the registry is shut down already, cancels it before its call
  // starts (gRPC then fails the call at once with CANCELLED).
  void add(grpc::ClientContext* ctx);
  void remove(grpc::ClientContext* ctx);
  // Cancels every registered call and every later one.
  void shutdown();
  bool isShutdown() const;

 private:
  mutable std::mutex mu_;
  bool shutdown_ = false;                  // guarded by mu_
  std::set<grpc::ClientContext*> active_;  // guarded by mu_
};

// Deletes a call's context and unregisters it. Holds the registry alive.
struct CallContextDeleter {
  std::shared_ptr<CallRegistry> registry;
  void operator()(grpc::ClientContext* ctx) const;
};
// The context of one call; unregisters itself when it goes.
using CallContext = std::unique_ptr<grpc::ClientContext, CallContextDeleter>;

class Connection {
 public:
  // Connects to containerd's gRPC socket, waiting up to `timeout` until it answers Version.
  // Fails with kUnavailable naming the socket when containerd does not answer in time.
  static Result<std::shared_ptr<Connection>> connect(const std::string& socket_path,
                                                     std::chrono::milliseconds timeout);

  const std::string& socketPath() const { return socket_path_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  // containerd's version string; kUnavailable when it does not answer.
  Result<std::string> version() const;

  // A context for one call, registered until it is destroyed.
  CallContext newCall() const;
  // Cancels every call in flight, and fails every later call at once with kUnavailable
  // ("cancelled"). For stopping the process: there is no way back. Thread-safe.
  void shutdown() { calls_->shutdown(); }
  bool isShutdown() const { return calls_->isShutdown(); }

 private:
  Connection(std::string socket_path, std::shared_ptr<grpc::Channel> channel)
      : socket_path_(std::move(socket_path)), channel_(std::move(channel)) {}

  std::string socket_path_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<CallRegistry> calls_ = std::make_shared<CallRegistry>();
};

// How long a call waits for an unreachable (restarting) containerd before kUnavailable.
inline constexpr std::chrono::milliseconds kDefaultCallTimeout{60000};

// Namespace and lease that a call runs in.
struct Scope {
  std::string ns;
  std::string lease;  // empty: none
};

// Common part of the service wrappers.
class ServiceBase {
 public:
  ServiceBase(std::shared_ptr<Connection> connection, Scope scope)
      : connection_(std::move(connection)), scope_(std::move(scope)) {}

  const Scope& scope() const { return scope_; }

 protected:
  // A fresh context carrying the namespace and lease. While containerd is unreachable (it is
  // restarting) the call waits for it up to `timeout`, then fails with kUnavailable;
  // 0 means no deadline (Tasks.Wait, Diff.Apply of a large layer, streams).
  CallContext context(std::chrono::milliseconds timeout = kDefaultCallTimeout) const;

  const std::shared_ptr<grpc::Channel>& channel() const { return connection_->channel(); }
  const std::shared_ptr<Connection>& connection() const { return connection_; }

  std::shared_ptr<Connection> connection_;
  Scope scope_;
};

}  // namespace fleetlet::containerd
