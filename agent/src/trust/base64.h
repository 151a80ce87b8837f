#pragma once
// Base64 (RFC 4648) for DSSE envelopes. Pure functions.

#include <optional>
#include <string>
#include <string_view>

namespace fleetlet::trust {

// Standard alphabet with '=' padding.
std::string base64Encode(std::string_view bytes);

// Accepts the standard and the URL-safe alphabet (DSSE allows both), with or without '='
// padding. nullopt for any other character, misplaced padding, or a length that cannot be
// base64 (a 1-character final group, non-zero unused bits).
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace fleetlet::trust
