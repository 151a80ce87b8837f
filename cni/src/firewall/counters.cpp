#include "firewall/counters.h"

#include <algorithm>

#include "firewall/ruleset.h"

namespace fleetlet::cni::firewall {

std::map<std::string, AttachmentCounters> parseCounters(const Json& listing) {
  std::map<std::string, AttachmentCounters> out;
  auto items = listing.find("nftables");
  if (items == listing.end() || !items->is_array()) return out;
  for (const auto& item : *items) {
    if (!item.is_object()) continue;
    auto c = item.find("counter");
    if (c == item.end() || !c->is_object() || c->value("table", "") != kTable) continue;
    std::string name = c->value("name", "");
    auto colon = name.find(':');
    if (colon == std::string::npos) continue;
    std::string kind = name.substr(0, colon);
    std::string key = name.substr(colon + 1);
    auto number = [&](const char* field) -> std::uint64_t {
      auto it = c->find(field);
      if (it == c->end() || !it->is_number_integer()) return 0;
      return it->is_number_unsigned()
                 ? it->get<std::uint64_t>()
                 : static_cast<std::uint64_t>(std::max<std::int64_t>(0, it->get<std::int64_t>()));
    };
    Counter value{.packets = number("packets"), .bytes = number("bytes")};
    if (kind == "egress") {
      out[key].egress = value;
    } else if (kind == "ingress") {
      out[key].ingress = value;
    } else if (kind == "dropped") {
      out[key].dropped = value;
    }
  }
  return out;
}

Result<std::map<std::string, AttachmentCounters>> readCounters(Nftables& nft) {
  auto listing = nft.run(listTableCommand());
  if (!listing) {
    if (listing.error().code() == ErrorCode::kNotFound) {
      return std::map<std::string, AttachmentCounters>();
    }
    return std::unexpected(listing.error().wrap("read firewall counters"));
  }
  return parseCounters(*listing);
}

}  // namespace fleetlet::cni::firewall
