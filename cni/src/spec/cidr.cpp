#include "spec/cidr.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <charconv>

namespace fleetlet::cni {

bool Cidr::isV4() const { return family == AF_INET; }

Cidr Cidr::network() const {
  Cidr out = *this;
  int bits = isV4() ? 32 : 128;
  for (int i = prefix; i < bits; ++i) {
    out.address[static_cast<size_t>(i / 8)] &= static_cast<std::uint8_t>(~(0x80U >> (i % 8)));
  }
  return out;
}

bool Cidr::contains(const Cidr& other) const {
  if (family != other.family) return false;
  Cidr mine = network();
  Cidr theirs = other;
  theirs.prefix = prefix;
  return mine.address == theirs.network().address;
}

std::string Cidr::addressString() const {
  std::array<char, INET6_ADDRSTRLEN> buf{};
  ::inet_ntop(family, address.data(), buf.data(), buf.size());
  return buf.data();
}

std::string Cidr::toString() const { return fmt::format("{}/{}", addressString(), prefix); }

Result<Cidr> parseCidr(std::string_view text, bool prefix_optional) {
  auto bad = [&](std::string_view why) {
    return fail(ErrorCode::kInvalidArgument, "\"{}\" is not an IP prefix ({})", text, why);
  };
  if (text.size() > 64) return bad("too long");
  auto slash = text.find('/');
  std::string addr(text.substr(0, slash));
  Cidr out;
  if (::inet_pton(AF_INET, addr.c_str(), out.address.data()) == 1) {
    out.family = AF_INET;
  } else if (::inet_pton(AF_INET6, addr.c_str(), out.address.data()) == 1) {
    out.family = AF_INET6;
  } else {
    return bad("bad address");
  }
  int bits = out.isV4() ? 32 : 128;
  if (slash == std::string_view::npos) {
    if (!prefix_optional) return bad("missing /prefix");
    out.prefix = bits;
    return out;
  }
  auto digits = text.substr(slash + 1);
  int prefix = -1;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || prefix < 0 ||
      prefix > bits) {
    return bad("bad prefix length");
  }
  out.prefix = prefix;
  return out;
}

}  // namespace fleetlet::cni
