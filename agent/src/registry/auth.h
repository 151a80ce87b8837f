#pragma once
// HTTP authentication pieces of the registry client: WWW-Authenticate challenges (RFC 7235)
// and Basic credentials. Pure and thread-safe.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"

namespace fleetlet::registry {

struct Challenge {
  std::string scheme;  // lower-case: "bearer", "basic", ...
  // Auth params with lower-case names and unquoted values ("realm", "service", "scope").
  std::map<std::string, std::string> params;
  // The token68 form ("Negotiate abc=="), when the challenge used it instead of params.
  std::string token68;

  // The value of `name` (lower-case), or nullopt.
  std::optional<std::string> param(std::string_view name) const;
};

// Parses a WWW-Authenticate value holding one or more challenges, e.g.
//   Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"
// Quoted strings may contain commas and backslash escapes; parameter names are
// case-insensitive. Fails with kInvalidArgument naming the byte offset on malformed input
// (unterminated quote, missing scheme, "=" without a value).
Result<std::vector<Challenge>> parseChallenges(std::string_view header);

// "Basic <base64(username:password)>".
std::string basicAuthorization(std::string_view username, std::string_view password);

}  // namespace fleetlet::registry
