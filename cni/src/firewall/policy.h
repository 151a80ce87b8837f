#pragma once
// The network policy fleetlet-firewall enforces for one attachment (docs/networking.md):
//
//   egress: all    the app may open connections anywhere (the default)
//           local  only to the node's own networks: the app's bridge subnet and the networks
//                  the node is directly connected to
//           none   it may open none; replies on connections others opened to it still pass
//   allow:  [CIDR] destinations opened on top of `egress`
//
// It reaches the plugin as the `fleetletFirewall` capability (runtimeConfig) or as plugin
// configuration keys `egress` and `allow`; runtimeConfig wins. Pure, no I/O.

#include <cstdint>
#include <string_view>
#include <vector>

#include "error/error.h"
#include "json/json.h"
#include "spec/cidr.h"

namespace fleetlet::cni::firewall {

// The capability name in the conflist and the key of runtimeConfig.
inline constexpr std::string_view kCapability = "fleetletFirewall";

enum class Egress : std::uint8_t { kAll, kLocal, kNone };
std::string_view toString(Egress egress);

struct Policy {
  Egress egress = Egress::kAll;
  std::vector<Cidr> allow;

  // {"egress": "local", "allow": ["10.0.0.0/8"]}
  Json toJson() const;
  bool operator==(const Policy&) const = default;
};

// Reads `egress` and `allow` from `object` on top of `base` (keys absent keep base's).
// kInvalidArgument naming "<path>.egress" or "<path>.allow[i]" for a bad value.
Result<Policy> parsePolicy(const Json& object, std::string_view path, Policy base = {});

}  // namespace fleetlet::cni::firewall
