#include "firewall/plugin.h"

#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "os/unique_fd.h"

namespace fleetlet::cni::firewall {
namespace {

// Holds an exclusive flock on a file for its lifetime.
class FileLock {
 public:
  static Result<FileLock> acquire(const std::filesystem::path& path) {
    std::error_code ec;
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) return failErrno(errno, "open lock {}", path.string());
    while (::flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) return failErrno(errno, "lock {}", path.string());
    }
    return FileLock(std::move(fd));
  }

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing it releases the lock
};

Result<Cidr> fromSockaddr(const sockaddr* addr, const sockaddr* mask) {
  Cidr out;
  int prefix = 0;
  if (addr->sa_family == AF_INET) {
    out.family = AF_INET;
    std::memcpy(out.address.data(), &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, 4);
    if (mask != nullptr) {
      std::uint32_t m = ntohl(reinterpret_cast<const sockaddr_in*>(mask)->sin_addr.s_addr);
      prefix = __builtin_popcount(m);
    }
  } else {
    out.family = AF_INET6;
    std::memcpy(out.address.data(), &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, 16);
    if (mask != nullptr) {
      const auto* m = reinterpret_cast<const sockaddr_in6*>(mask)->sin6_addr.s6_addr;
      for (int i = 0; i < 16; ++i) prefix += __builtin_popcount(m[i]);
    }
  }
  out.prefix = prefix;
  return out.network();
}

Status writeSysctl(const std::string& path, std::string_view value) {
  std::ofstream out(path);
  if (!out) return fail(ErrorCode::kInternal, "cannot open {} for writing", path);
  out << value;
  out.flush();
  if (!out) return fail(ErrorCode::kInternal, "cannot write {}", path);
  return {};
}

std::string readSmall(const std::string& path) {
  std::ifstream in(path);
  std::string value;
  in >> value;
  return value;
}

}  // namespace

Result<std::vector<Cidr>> SystemHostNetwork::directlyConnected() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return failErrno(errno, "getifaddrs");
  std::vector<Cidr> out;
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr || (it->ifa_flags & IFF_LOOPBACK) != 0) continue;
    if (it->ifa_addr->sa_family != AF_INET && it->ifa_addr->sa_family != AF_INET6) continue;
    if (auto cidr = fromSockaddr(it->ifa_addr, it->ifa_netmask)) out.push_back(*cidr);
  }
  ::freeifaddrs(list);
  return out;
}

Status SystemHostNetwork::ensureBridgeNetfilter(bool ipv6) {
  std::vector<std::string> keys = {"/proc/sys/net/bridge/bridge-nf-call-iptables"};
  if (ipv6) keys.emplace_back("/proc/sys/net/bridge/bridge-nf-call-ip6tables");
  for (const auto& key : keys) {
    if (::access(key.c_str(), F_OK) != 0) {
      return fail(ErrorCode::kFailedPrecondition,
                  "{} is missing: load br_netfilter (modprobe br_netfilter), without it traffic "
                  "between apps on the bridge would bypass the firewall",
                  key);
    }
    if (readSmall(key) != "1") FLEETLET_RETURN_IF_ERROR(writeSysctl(key, "1"));
  }
  return {};
}

Result<AttachmentRules> FirewallPlugin::rulesFor(const SkelRequest& request, bool need_local) {
  AttachmentRules rules;
  if (!isValidContainerId(request.container_id)) {
    return fail(ErrorCode::kInvalidArgument, "CNI_CONTAINERID \"{}\" is not a valid container id",
                request.container_id);
  }
  if (!isValidInterfaceName(request.ifname)) {
    return fail(ErrorCode::kInvalidArgument, "CNI_IFNAME \"{}\" is not an interface name",
                request.ifname);
  }
  rules.key = attachmentKey(request.container_id, request.ifname);
  if (appChainName(rules.key).size() > 250) {
    return fail(ErrorCode::kInvalidArgument, "container id too long for an nftables chain name");
  }
  FLEETLET_ASSIGN_OR_RETURN(rules.policy, parsePolicy(request.config, "config"));
  if (auto rc = request.config.find("runtimeConfig"); rc != request.config.end()) {
    if (auto p = rc->find(kCapability); p != rc->end() && !p->is_null()) {
      FLEETLET_ASSIGN_OR_RETURN(
          rules.policy,
          parsePolicy(*p, fmt::format("runtimeConfig.{}", kCapability), rules.policy));
    }
  }
  auto prev = request.config.find("prevResult");
  if (prev == request.config.end() || prev->is_null()) {
    return fail(ErrorCode::kInvalidArgument,
                "prevResult is missing: fleetlet-firewall is a chained plugin and must follow an "
                "interface plugin (bridge)");
  }
  FLEETLET_ASSIGN_OR_RETURN(auto result, parseAddResultJson(*prev));
  for (const auto& ip : result.ips) {
    // Only the container's own addresses: an IP on a host interface is not the app's.
    if (ip.interface && static_cast<size_t>(*ip.interface) < result.interfaces.size() &&
        result.interfaces[static_cast<size_t>(*ip.interface)].sandbox.empty()) {
      continue;
    }
    rules.addresses.push_back(ip.address);
  }
  if (rules.addresses.empty()) {
    return fail(ErrorCode::kInvalidArgument, "prevResult has no container address to filter");
  }
  if (need_local && rules.policy.egress == Egress::kLocal) {
    FLEETLET_ASSIGN_OR_RETURN(rules.local_networks, host_.directlyConnected());
  }
  return rules;
}

Result<TableState> FirewallPlugin::readState() {
  auto listing = nft_.run(listTableCommand());
  if (!listing) {
    if (listing.error().code() == ErrorCode::kNotFound) return TableState{};
    return std::unexpected(listing.error());
  }
  return parseTableState(*listing);
}

Result<Json> FirewallPlugin::add(const SkelRequest& request) {
  FLEETLET_ASSIGN_OR_RETURN(auto rules, rulesFor(request, /*need_local=*/true));
  bool ipv6 = std::ranges::any_of(rules.addresses, [](const Cidr& c) { return !c.isV4(); });
  if (auto st = host_.ensureBridgeNetfilter(ipv6); !st) {
    if (rules.policy.egress != Egress::kAll || !rules.policy.allow.empty()) {
      return std::unexpected(st.error());
    }
    // egress all loses only the count of app-to-app traffic; say so and go on.
    (void)std::fprintf(stderr, "fleetlet-firewall: %s\n", st.error().message().c_str());
  }
  FLEETLET_ASSIGN_OR_RETURN(auto lock, FileLock::acquire(lock_path_));
  FLEETLET_ASSIGN_OR_RETURN(auto state, readState());
  if (auto done = nft_.run(addBatch(rules, state)); !done) {
    return std::unexpected(done.error().wrap("install the rules of {}", rules.key));
  }
  return request.config.at("prevResult");
}

Status FirewallPlugin::check(const SkelRequest& request) {
  FLEETLET_ASSIGN_OR_RETURN(auto rules, rulesFor(request, /*need_local=*/false));
  FLEETLET_ASSIGN_OR_RETURN(auto lock, FileLock::acquire(lock_path_));
  FLEETLET_ASSIGN_OR_RETURN(auto state, readState());
  return checkState(rules, state);
}

Status FirewallPlugin::del(const SkelRequest& request) {
  // DEL needs only the key: no prevResult, no policy (both may be gone after a crash).
  if (!isValidContainerId(request.container_id) || !isValidInterfaceName(request.ifname)) {
    return {};  // nothing of ours can exist under an invalid name
  }
  std::string key = attachmentKey(request.container_id, request.ifname);
  FLEETLET_ASSIGN_OR_RETURN(auto lock, FileLock::acquire(lock_path_));
  FLEETLET_ASSIGN_OR_RETURN(auto state, readState());
  Json batch = deleteBatch(key, state);
  if (batch["nftables"].empty()) return {};
  if (auto done = nft_.run(batch); !done) {
    return std::unexpected(done.error().wrap("remove the rules of {}", key));
  }
  return {};
}

}  // namespace fleetlet::cni::firewall
