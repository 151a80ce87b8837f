#include "handoff/http_adapter.h"

#include <set>

#include "handoff/protocol.h"

namespace fleetlet::handoff {

std::string appTag(std::string_view app) {
  if (app == kNodeApp) return std::string(kNodeTag);
  std::string tag(kAppTagPrefix);
  tag += app;
  return tag;
}

std::optional<std::string_view> appFromTag(std::string_view tag) {
  if (!tag.starts_with(kAppTagPrefix) || tag.size() == kAppTagPrefix.size()) return std::nullopt;
  return tag.substr(kAppTagPrefix.size());
}

Result<std::unique_ptr<HandoffReceiver>> startHttpHandoff(
    ReceiverOptions options, const std::map<std::string, http::Server*>& routes) {
  std::set<http::Server*> servers;
  for (const auto& [name, server] : routes) {
    FLEETLET_RETURN_IF_ERROR(validateName("listener", name));
    if (server == nullptr) {
      return fail(ErrorCode::kInvalidArgument, "handoff route {}: no server", name);
    }
    if (!servers.insert(server).second) {
      return fail(ErrorCode::kInvalidArgument,
                  "handoff route {}: server already routed under another listener name", name);
    }
  }
  ReceiverCallbacks callbacks;
  callbacks.on_add = [routes](const std::string& app, const std::string& listener,
                              UniqueFd fd) -> Status {
    auto it = routes.find(listener);
    if (it == routes.end()) {
      return fail(ErrorCode::kNotFound, "this service has no listener called \"{}\"", listener);
    }
    FLEETLET_RETURN_IF_ERROR(it->second->adoptListener(std::move(fd), appTag(app)));
    return {};
  };
  callbacks.on_remove = [routes](const std::string& app, const std::string& listener) {
    auto it = routes.find(listener);
    if (it == routes.end()) return;
    // kNotFound: the server was stopped or never had it; nothing to close either way.
    (void)it->second->closeListeners(appTag(app));
  };
  return HandoffReceiver::start(std::move(options), std::move(callbacks));
}

}  // namespace fleetlet::handoff
