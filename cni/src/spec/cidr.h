#pragma once
// IP addresses and prefixes as CNI results and policies spell them ("10.1.0.5/16", "fd00::1").
// Pure functions, no I/O.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "error/error.h"

namespace fleetlet::cni {

struct Cidr {
  int family = 0;                          // AF_INET or AF_INET6
  std::array<std::uint8_t, 16> address{};  // the first 4 bytes for IPv4
  int prefix = 0;                          // 0..32 or 0..128

  bool isV4() const;
  // The address with the host bits cleared: 10.1.0.5/16 -> 10.1.0.0/16.
  Cidr network() const;
  // Whether `other`'s address lies in this prefix (same family).
  bool contains(const Cidr& other) const;
  // The address alone ("10.1.0.5") and with its prefix ("10.1.0.5/16").
  std::string addressString() const;
  std::string toString() const;
  bool operator==(const Cidr&) const = default;
};

// "10.1.0.5/16", "fd00::/8"; with `prefix_optional`, a bare address gets a full-length prefix
// (/32 or /128). kInvalidArgument naming the text when it is not one.
Result<Cidr> parseCidr(std::string_view text, bool prefix_optional = false);

}  // namespace fleetlet::cni
