#pragma once
// ServiceLinks: the node services on each app's own localhost (docs/services.md).
//
// For an isolated app that lists `services`, a listener per service is created inside the
// app's network namespace (127.0.0.1:4454 events, :4457 logs, :4455 blobs) before its task
// starts and handed to the service that serves it (fleetlet-streams for events and logs,
// fleetlet-blobs for blobs) with the app's name, over the service's handoff socket
// (docs/socket-handoff.md). fleetletd keeps its own copy: while a service restarts, clients
// wait in the backlog, and the restarted service gets every listener again. A service the app
// does not list has nothing listening in its namespace. Apps learn the URIs from
// AX_EVENT_SERVICE_URI, AX_CONSOLE_SERVICE_URI and AX_BLOB_SERVICE_URI.
//
// Listeners are made with SO_REUSEPORT, so that a restarted fleetletd can make them again
// beside the copies the services still hold (the services then drop the old ones at the end
// of the re-sync).
//
// Thread-safety: all methods may be called from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "error/error.h"
#include "handoff/sender.h"
#include "manifest/types.h"

namespace fleetlet::services {

// One node service an app can list.
struct ServiceEndpoint {
  std::string name;      // in the manifest: "events", "logs", "blobs"
  std::string listener;  // in the handoff protocol: "events", "console", "blobs"
  uint16_t port = 0;     // on the app's localhost
  std::string env;       // the variable that carries its URI
  // The URI's path: "/api/", as ActyxOS gave it and @actyx/os-sdk 0.3.1 expects (it appends
  // "v1/events/publish", "v1/logs", ...).
  std::string path;
};
// events, logs, blobs.
const std::vector<ServiceEndpoint>& endpoints();

// AX_* = http://localhost:<port><path> for every service the app lists (for host-mode apps
// too: they reach the services' host listeners on the node's loopback).
std::map<std::string, std::string> serviceEnvironment(const manifest::App& app);

struct ServiceLinksOptions {
  // The services' --handoff-socket; empty: not linked (apps listing its services get a
  // warning and nothing listening).
  std::filesystem::path streams_socket;
  std::filesystem::path blobs_socket;
};

class ServiceLinks {
 public:
  // Connects to nothing until start(); then a thread reconnects every `retry` to services
  // that are not up (or went away) until destruction.
  explicit ServiceLinks(ServiceLinksOptions options,
                        std::chrono::milliseconds retry = std::chrono::milliseconds(200));

  // Connects to the services, handing them every listener linked so far. Call it once the
  // running apps are linked (after a restart, before that a connection would tell the
  // services to drop the listeners the previous fleetletd handed them, leaving the apps
  // without until they are linked again).
  void start();

  // Makes `app`'s listeners in `netns` match `services`: creates those it lacks (or whose
  // namespace was re-created under the same path), removes those no longer listed. Hands them
  // to their services when those are up (else on their next reconnect). Errors name the app
  // and the service; a listener that could not be made leaves the others in place.
  Status link(const std::string& app, const std::vector<std::string>& services,
              const std::filesystem::path& netns);
  // The same for an app without a network namespace of its own, a single-page app in the
  // kiosk (docs/webview.md, "Identity"): each listed service's listener is a unix socket
  // `<dir>/<service>.sock` (mode 0600, `dir` 0700; only the agent and the kiosk, its child,
  // reach it), handed to the service with the app's name like a namespace listener. Returns
  // service name → socket path for every listener in place (a listener that could not be made
  // is missing and logged). kInvalidArgument when a path would exceed a unix socket's 107
  // bytes, or `dir` cannot be made.
  Result<std::map<std::string, std::string>> linkUnix(const std::string& app,
                                                      const std::vector<std::string>& services,
                                                      const std::filesystem::path& dir);
  // The same for a native app on the host's network (docs/runtimes.md, "Services of
  // host-network native apps"): each listed service's listener is a TCP listener of its own
  // on the host's 127.0.0.1 at a port the kernel picks, handed to the service with the app's
  // name. The ports are kept in `<ports_dir>/<app>` ("<service> <port>" lines), so a restarted
  // fleetletd makes the listeners again on the ports the running app was told (SO_REUSEPORT
  // beside the services' copies); a port someone else took meanwhile is replaced by a new one
  // (logged: the app learns it when it is next created). Returns the AX_* variables
  // (http://127.0.0.1:<port><path>) of every listener in place; a listener that could not be
  // made is missing and logged. Anyone on the host can connect to these ports: the service
  // attributes what arrives to the app (the trade-off in docs/runtimes.md).
  Result<std::map<std::string, std::string>> linkHost(const std::string& app,
                                                      const std::vector<std::string>& services,
                                                      const std::filesystem::path& ports_dir);
  // Closes every listener of the app (fleetletd's copies and, through the services, theirs).
  void unlink(const std::string& app);
  // Unlinks every app not in `live`.
  void gc(const std::set<std::string>& live);
  // Reconnects to services that went away (a restart) and hands them every listener again.
  void reconnect();

  // Hands fleetlet-streams a listener of fleetletd's own (app handoff::kNodeApp, e.g. the
  // console service's ingest listener), replacing an earlier one of that name; kept and
  // re-handed like the apps' listeners, never removed by gc(). kFailedPrecondition when
  // fleetletd has no handoff socket for fleetlet-streams.
  Status linkNode(const std::string& listener, UniqueFd fd);
  // Whether fleetlet-streams is connected (so it holds every listener handed to it).
  bool streamsConnected() const;

  // The (app, listener) pairs held, for status and tests.
  std::vector<std::pair<std::string, std::string>> listeners() const;

 private:
  handoff::HandoffSender* senderFor(const ServiceEndpoint& e);
  // The sender of `e` when `app` lists it (warns when fleetletd has no handoff socket for it);
  // null otherwise, after removing a listener of a service the app no longer lists.
  handoff::HandoffSender* listedSender(const std::string& app,
                                       const std::vector<std::string>& services,
                                       const ServiceEndpoint& e);

  ServiceLinksOptions options_;
  handoff::HandoffSender streams_;
  handoff::HandoffSender blobs_;
  mutable std::mutex mu_;  // serializes link/unlink/gc
  std::atomic<bool> started_{false};
  std::jthread reconnector_;  // last: stopped first
};

}  // namespace fleetlet::services
