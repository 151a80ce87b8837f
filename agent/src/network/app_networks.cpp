#include "network/app_networks.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "manifest/parse.h"
#include "netns/netns.h"

namespace fleetlet::network {
namespace {

constexpr char kIfname[] = "eth0";

cni::firewall::Egress toCni(manifest::Network::Egress egress) {
  switch (egress) {
    case manifest::Network::Egress::kLocal:
      return cni::firewall::Egress::kLocal;
    case manifest::Network::Egress::kNone:
      return cni::firewall::Egress::kNone;
    case manifest::Network::Egress::kAll:
      break;
  }
  return cni::firewall::Egress::kAll;
}

// The policy as written, for the attachment's meta: {"egress": "none", "allow": ["db", ...]}.
Json policyMeta(const manifest::Network& network) {
  return Json{{"egress", cni::firewall::toString(toCni(network.egress))}, {"allow", network.allow}};
}

manifest::Network policyFromMeta(const Json& meta) {
  manifest::Network out;
  const std::string egress = meta.is_object() ? meta.value("egress", "all") : "all";
  if (egress == "local") out.egress = manifest::Network::Egress::kLocal;
  if (egress == "none") out.egress = manifest::Network::Egress::kNone;
  if (meta.is_object() && meta.contains("allow") && meta["allow"].is_array()) {
    for (const auto& a : meta["allow"]) {
      if (a.is_string()) out.allow.push_back(a.get<std::string>());
    }
  }
  return out;
}

Json capabilityValue(const cni::Attachment& att, std::string_view capability) {
  if (!att.capability_args.is_object()) return nullptr;
  auto it = att.capability_args.find(std::string(capability));
  return it == att.capability_args.end() ? Json(nullptr) : *it;
}

}  // namespace

Result<ResolvedPolicy> resolvePolicy(
    const manifest::Network& network,
    const std::map<std::string, std::vector<cni::Cidr>>& addresses) {
  ResolvedPolicy out;
  out.policy.egress = toCni(network.egress);
  for (const auto& entry : network.allow) {
    if (auto it = addresses.find(entry); it != addresses.end()) {
      out.policy.allow.insert(out.policy.allow.end(), it->second.begin(), it->second.end());
    } else if (auto cidr = cni::parseCidr(entry, /*prefix_optional=*/true)) {
      out.policy.allow.push_back(*cidr);
    } else if (manifest::checkAppName(entry)) {
      out.waiting_for.push_back(entry);
    } else {
      return fail(ErrorCode::kInvalidArgument,
                  "network.allow: \"{}\" is neither an app nor an address or CIDR", entry);
    }
  }
  auto key = [](const cni::Cidr& c) { return std::pair(c.family, c.toString()); };
  std::sort(out.policy.allow.begin(), out.policy.allow.end(),
            [&](const auto& a, const auto& b) { return key(a) < key(b); });
  out.policy.allow.erase(std::unique(out.policy.allow.begin(), out.policy.allow.end()),
                         out.policy.allow.end());
  return out;
}

std::vector<cni::PortMapping> portMappings(const manifest::Network& network) {
  std::vector<cni::PortMapping> out;
  out.reserve(network.expose.size());
  for (const auto& e : network.expose) {
    out.push_back(cni::PortMapping{
        .host_port = e.host_port, .container_port = e.port, .protocol = e.protocol, .host_ip = ""});
  }
  return out;
}

Result<std::unique_ptr<AppNetworks>> AppNetworks::create(cni::Executor& executor,
                                                         AppNetworksOptions options) {
  std::unique_ptr<AppNetworks> self(new AppNetworks(executor, std::move(options)));
  FLEETLET_ASSIGN_OR_RETURN(auto attachments, executor.attachments());
  for (auto& att : attachments) {
    // One attachment per app, its CNI container id the app's name; others are not ours.
    if (att.app.empty() || att.container_id != att.app || att.ifname != kIfname) continue;
    std::string app = att.app;
    manifest::Network policy = policyFromMeta(att.meta);
    self->apps_.emplace(app, Entry{.attachment = std::move(att), .policy = std::move(policy)});
  }
  // Namespaces without a record: their interfaces hold addresses IPAM no longer knows. They
  // are left as they are (their apps may run, still reachable) until the next ADD is due.
  std::error_code ec;
  for (const auto& pin : std::filesystem::directory_iterator(self->options_.netns_dir, ec)) {
    const std::string name = pin.path().filename().string();
    if (!name.starts_with(kNetnsPrefix)) continue;
    const std::string app = name.substr(std::strlen(kNetnsPrefix));
    if (self->apps_.contains(app) || !netns::NamedNetns::isPinned(pin.path())) continue;
    spdlog::warn(
        "network: app {}: its namespace has no attachment record (was the node's data "
        "directory removed?): its interface is replaced before the next attachment is made",
        app);
    self->forgotten_.insert(app);
    self->uncleared_.insert(app);
  }
  return self;
}

Status AppNetworks::clearForgottenLocked(const std::string& except) {
  for (auto it = uncleared_.begin(); it != uncleared_.end();) {
    if (*it == except) {
      ++it;
      continue;
    }
    if (auto st = executor_.delForgotten(*it, kIfname, netnsPath(*it)); !st) {
      return std::unexpected(
          st.error().wrap("remove the interface of app {}, whose address IPAM does not know", *it));
    }
    spdlog::info("network: app {}: removed the interface nobody had a record of", *it);
    it = uncleared_.erase(it);
  }
  return {};
}

bool AppNetworks::forgotten(const std::string& app) const {
  std::lock_guard lock(mu_);
  return forgotten_.contains(app);
}

std::filesystem::path AppNetworks::netnsPath(const std::string& app) const {
  return options_.netns_dir / (std::string(kNetnsPrefix) + app);
}

std::map<std::string, std::vector<cni::Cidr>> AppNetworks::addressesLocked() const {
  std::map<std::string, std::vector<cni::Cidr>> out;
  for (const auto& [name, entry] : apps_) {
    auto& list = out[name];
    for (const auto& ip : entry.attachment.result.ips) {
      cni::Cidr host = ip.address;
      host.prefix = host.isV4() ? 32 : 128;
      list.push_back(host);
    }
  }
  return out;
}

Status AppNetworks::attach(const manifest::App& app) {
  std::lock_guard lock(mu_);
  if (app.network.mode == manifest::Network::Mode::kHost) return detachLocked(app.name);

  const auto path = netnsPath(app.name);
  std::optional<netns::NamedNetns> fresh;  // removed again unless the attachment succeeds
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !netns::NamedNetns::isPinned(path)) {
    // Left by a kill between creating the pin file and mounting the namespace on it.
    spdlog::warn("app {}: {} is no namespace pin: made again", app.name, path.string());
    FLEETLET_RETURN_IF_ERROR(netns::NamedNetns::remove(path));
  }
  if (!std::filesystem::exists(path, ec)) {
    auto created =
        netns::NamedNetns::create(std::string(kNetnsPrefix) + app.name, options_.netns_dir);
    if (!created) return std::unexpected(created.error().wrap("network namespace of {}", app.name));
    fresh.emplace(std::move(*created));
  }

  auto ports = portMappings(app.network);
  auto addresses = addressesLocked();
  addresses.erase(app.name);
  FLEETLET_ASSIGN_OR_RETURN(auto resolved, resolvePolicy(app.network, addresses));
  const Json meta = policyMeta(app.network);
  const Json want_ports =
      cni::capabilityArgs({.port_mappings = ports}).value("portMappings", Json(nullptr));
  const Json want_policy = resolved.policy.toJson();

  auto it = apps_.find(app.name);
  if (it != apps_.end() && !fresh && it->second.attachment.netns == path &&
      capabilityValue(it->second.attachment, "portMappings") == want_ports) {
    auto& att = it->second.attachment;
    if (capabilityValue(att, cni::firewall::kCapability) == want_policy && att.meta == meta) {
      return {};  // nothing changed: no plugin runs
    }
    FLEETLET_RETURN_IF_ERROR(executor_.updateFirewall(app.name, kIfname, resolved.policy, meta));
    att.capability_args[std::string(cni::firewall::kCapability)] = want_policy;
    att.meta = meta;
    it->second.policy = app.network;
    spdlog::info("app {}: network policy now {}", app.name, want_policy.dump());
    return {};
  }

  // No ADD while another namespace holds an address IPAM does not know: it could be handed out.
  FLEETLET_RETURN_IF_ERROR(clearForgottenLocked(app.name));
  const bool holds_unknown_interface = uncleared_.contains(app.name);
  auto added = executor_.add({.container_id = app.name,
                              .ifname = kIfname,
                              .app = app.name,
                              .netns = path,
                              .port_mappings = std::move(ports),
                              .firewall = resolved.policy,
                              .extra_capability_args = Json::object(),
                              .args = {},
                              .meta = meta,
                              // A namespace kept without a record of its attachment (the
                              // data directory was lost) still holds the old interface.
                              .netns_may_hold_interface = holds_unknown_interface});
  if (!added) return std::unexpected(added.error().wrap("network of {}", app.name));
  if (fresh) fresh->release();  // the pin now belongs to the attachment: detach() removes it
  std::string address =
      added->result.ips.empty() ? "no address" : added->result.ips.front().address.toString();
  spdlog::info("app {}: attached to network {} as {}{}", app.name, executor_.network().name,
               address,
               resolved.waiting_for.empty()
                   ? ""
                   : fmt::format(" (allow waits for {})", fmt::join(resolved.waiting_for, ", ")));
  apps_[app.name] = Entry{.attachment = std::move(*added), .policy = app.network};
  forgotten_.erase(app.name);
  uncleared_.erase(app.name);
  refreshPeersLocked(app.name);
  return {};
}

Status AppNetworks::detach(const std::string& app) {
  std::lock_guard lock(mu_);
  return detachLocked(app);
}

Status AppNetworks::detachLocked(const std::string& app) {
  if (uncleared_.contains(app)) {
    FLEETLET_RETURN_IF_ERROR(executor_.delForgotten(app, kIfname, netnsPath(app)));
    uncleared_.erase(app);
  }
  FLEETLET_RETURN_IF_ERROR(executor_.del(app, kIfname));
  bool was_attached = apps_.erase(app) > 0;
  forgotten_.erase(app);
  FLEETLET_RETURN_IF_ERROR(netns::NamedNetns::remove(netnsPath(app)));
  if (was_attached) {
    spdlog::info("app {}: detached from network {}", app, executor_.network().name);
    refreshPeersLocked(app);
  }
  return {};
}

void AppNetworks::gc(const std::set<std::string>& live) {
  std::lock_guard lock(mu_);
  // Attachments first (complete or not: an ADD cut short by a crash is cached too).
  auto report = executor_.gc(live);
  for (const auto& key : report.removed) spdlog::info("network: removed attachment {}", key);
  for (const auto& e : report.errors) spdlog::warn("network: {}", e.message());
  // What the namespaces of gone apps held without a record (rules, the host-side veth) goes
  // with them; a failure is retried on the next call.
  for (auto it = uncleared_.begin(); it != uncleared_.end();) {
    if (live.contains(*it)) {
      ++it;
    } else if (auto st = executor_.delForgotten(*it, kIfname, netnsPath(*it)); !st) {
      spdlog::warn("network: {}", st.error().message());
      ++it;
    } else {
      it = uncleared_.erase(it);
    }
  }
  std::erase_if(forgotten_, [&](const std::string& app) {
    return !live.contains(app) && !uncleared_.contains(app);
  });
  for (auto it = apps_.begin(); it != apps_.end();) {
    if (live.contains(it->first)) {
      ++it;
    } else {
      it = apps_.erase(it);
    }
  }
  std::error_code ec;
  for (const auto& pin : std::filesystem::directory_iterator(options_.netns_dir, ec)) {
    const std::string name = pin.path().filename().string();
    if (!name.starts_with(kNetnsPrefix)) continue;
    const std::string app = name.substr(std::strlen(kNetnsPrefix));
    // Kept while what it holds without a record could not be DELeted: retried next time.
    if (live.contains(app) || uncleared_.contains(app)) continue;
    if (auto st = netns::NamedNetns::remove(pin.path()); !st) {
      spdlog::warn("network: remove namespace {}: {}", pin.path().string(), st.error().message());
    } else {
      spdlog::info("network: removed namespace {} (app {} is gone)", pin.path().string(), app);
    }
  }
  refreshPeersLocked("");
}

void AppNetworks::refreshPeersLocked(const std::string& changed) {
  const auto addresses = addressesLocked();
  for (auto& [name, entry] : apps_) {
    const auto& allow = entry.policy.allow;
    if (!changed.empty() && std::find(allow.begin(), allow.end(), changed) == allow.end()) continue;
    auto others = addresses;
    others.erase(name);
    auto resolved = resolvePolicy(entry.policy, others);
    if (!resolved) {
      spdlog::warn("app {}: {}", name, resolved.error().message());
      continue;
    }
    const Json want = resolved->policy.toJson();
    if (capabilityValue(entry.attachment, cni::firewall::kCapability) == want) continue;
    if (auto st = executor_.updateFirewall(name, kIfname, resolved->policy); !st) {
      spdlog::warn("app {}: network policy: {} (retried on the next resync)", name,
                   st.error().message());
      continue;
    }
    entry.attachment.capability_args[std::string(cni::firewall::kCapability)] = want;
    spdlog::info("app {}: network policy now {}", name, want.dump());
  }
}

std::vector<std::string> AppNetworks::addresses(const std::string& app) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  if (auto it = apps_.find(app); it != apps_.end()) {
    for (const auto& ip : it->second.attachment.result.ips) out.push_back(ip.address.toString());
  }
  return out;
}

Result<std::map<std::string, cni::firewall::AttachmentCounters>> AppNetworks::counters() const {
  FLEETLET_ASSIGN_OR_RETURN(auto traffic, executor_.trafficCounters());
  std::map<std::string, cni::firewall::AttachmentCounters> out;
  for (auto& t : traffic) {
    if (t.app.empty() || t.ifname != kIfname) continue;
    out[t.app] = t.counters;
  }
  return out;
}

}  // namespace fleetlet::network
