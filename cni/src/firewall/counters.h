#pragma once
// Per-attachment traffic counters kept by fleetlet-firewall (named nftables counters
// egress:<key>, ingress:<key>, dropped:<key>, see ruleset.h).

#include <cstdint>
#include <map>
#include <string>

#include "error/error.h"
#include "firewall/nftables.h"
#include "json/json.h"

namespace fleetlet::cni::firewall {

struct Counter {
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  bool operator==(const Counter&) const = default;
};

struct AttachmentCounters {
  Counter egress;   // every packet the app sent that left its namespace
  Counter ingress;  // every packet sent to the app from outside its namespace
  Counter dropped;  // egress packets the policy refused
};

// Counters by attachment key ("<containerID>:<ifname>") from a JSON table or counter listing.
std::map<std::string, AttachmentCounters> parseCounters(const Json& listing);

// Lists the table's counters in the calling thread's namespace. An absent table (no
// attachment yet) is an empty map.
Result<std::map<std::string, AttachmentCounters>> readCounters(Nftables& nft);

}  // namespace fleetlet::cni::firewall
