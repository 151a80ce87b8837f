#pragma once
// Base64 (RFC 4648, standard alphabet) decoding. Pure, thread-safe.

#include <string>
#include <string_view>

#include "error/error.h"

namespace fleetlet {

// Decodes `text`; '=' padding is optional, whitespace (\r \n space tab) is skipped. Any other
// byte outside the alphabet is kInvalidArgument naming its offset.
Result<std::string> base64Decode(std::string_view text);

}  // namespace fleetlet
