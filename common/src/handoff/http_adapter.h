#pragma once
// Wires a HandoffReceiver to fleetlet::http::Server instances: each handed-over listener is
// adopted by the server its listener name routes to, tagged with the app's identity.
//
// Tag convention: a handed-over listener of app A is adopted with tag "app:A" (appTag(A)).
// Handlers read the app from request.listenerTag() with appFromTag(); any other tag (the
// service's own host listeners, e.g. "host") yields nullopt. The listener name ("events",
// "console", "blobs") is not part of the tag: it selects the server.
//
// Concurrency: the callbacks run on the receiver thread and call Server::adoptListener() and
// Server::closeListeners(), which are thread-safe and may be called while the server runs
// (server.h). Every routed server must outlive the returned receiver: destroy the receiver
// first.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "error/error.h"
#include "handoff/protocol.h"
#include "handoff/receiver.h"
#include "http/server.h"

namespace fleetlet::handoff {

inline constexpr std::string_view kAppTagPrefix = "app:";

// Listeners handed over under kNodeApp (protocol.h: fleetletd's own) are adopted with this
// tag, not "app:fleetlet.node": they carry no app identity, and handlers that trust fleetletd
// (the console service's ingest route) check for it.
inline constexpr std::string_view kNodeTag = "node";

// "app:<app>"; kNodeTag for kNodeApp.
std::string appTag(std::string_view app);
// The app of a tag made by appTag(), or nullopt for any other tag (kNodeTag included).
std::optional<std::string_view> appFromTag(std::string_view tag);

// Starts a receiver whose listeners go to `routes[listener name]`. remove closes the server's
// listeners tagged appTag(app) (connections already accepted go on; the agent's duplicate keeps
// the socket itself open until it is removed there too). A listener name without a route is
// refused: its fd is closed and the add counts as failed (logged). Fails like
// HandoffReceiver::start(), and with kInvalidArgument when a route is null or two names route
// to the same server (removing one would close the other: the tag has no listener name).
Result<std::unique_ptr<HandoffReceiver>> startHttpHandoff(
    ReceiverOptions options, const std::map<std::string, http::Server*>& routes);

}  // namespace fleetlet::handoff
