#pragma once
// The CNI specification's data types (spec 1.0, and 0.4.0 whose shapes are the same for what
// fleetlet reads): plugin results, error objects, network configuration lists, and the one
// table that maps CNI error codes to fleetlet error codes and back.
//
// Pure functions, no I/O: every parser here reads untrusted bytes (a plugin's stdout, a file
// an administrator dropped) and turns anything malformed into kInvalidArgument naming the
// field ("result.ips[0].address: ..."). Fuzzed by tests/fuzz (target cni_result).

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"
#include "json/json.h"
#include "spec/cidr.h"

namespace fleetlet::cni {

// The spec versions fleetlet speaks, oldest first.
inline constexpr std::string_view kSupportedVersions[] = {"0.4.0", "1.0.0"};
inline constexpr std::string_view kLatestVersion = "1.0.0";
bool isSupportedVersion(std::string_view version);

// Well-known error codes of the spec (section 5).
namespace error_code {
inline constexpr int kIncompatibleVersion = 1;
inline constexpr int kUnsupportedField = 2;
inline constexpr int kUnknownContainer = 3;
inline constexpr int kInvalidEnvironment = 4;
inline constexpr int kIoFailure = 5;
inline constexpr int kDecodeFailure = 6;
inline constexpr int kInvalidConfig = 7;
inline constexpr int kTryAgainLater = 11;
inline constexpr int kNotAvailable = 50;
// Plugin-specific codes (100+) of fleetlet's own plugins.
inline constexpr int kFleetletInternal = 100;  // nftables, the kernel, the file system
}  // namespace error_code

// The one table per boundary (STYLE.md): CNI code -> fleetlet code ...
ErrorCode fromCniCode(int cni_code);
// ... and fleetlet code -> CNI code for errors fleetlet's plugins print.
int toCniCode(ErrorCode code);

// {"cniVersion", "code", "msg", "details"}: what a failing plugin prints.
struct ErrorObject {
  std::string cni_version;
  int code = 0;
  std::string msg;
  std::string details;

  Json toJson() const;
};
// A JSON object with an integer `code` and a string `msg` (`details` optional).
Result<ErrorObject> parseErrorObjectJson(const Json& value);
Result<ErrorObject> parseErrorObject(std::string_view text);

struct Interface {
  std::string name;
  std::string mac;
  std::string sandbox;  // the netns path, or empty for a host interface
};

struct IpConfig {
  Cidr address;                  // "10.1.0.5/16"
  std::optional<Cidr> gateway;   // a bare address (/32 or /128)
  std::optional<int> interface;  // index into AddResult::interfaces
};

struct Route {
  Cidr dst;
  std::optional<Cidr> gw;
};

// A successful ADD's result. `raw` is exactly what the plugin printed (unknown fields too):
// it is what the next plugin gets as prevResult and what the cache keeps.
struct AddResult {
  std::string cni_version;
  std::vector<Interface> interfaces;
  std::vector<IpConfig> ips;
  std::vector<Route> routes;
  Json raw;
};
Result<AddResult> parseAddResultJson(const Json& value);
Result<AddResult> parseAddResult(std::string_view text);

// One entry of a conflist's `plugins`.
struct PluginConf {
  std::string type;                    // the binary's name
  std::set<std::string> capabilities;  // those set to true
  Json raw;                            // the object as written (capabilities included)
};

// A network configuration list (spec section 1).
struct NetworkConfigList {
  std::string name;
  std::string cni_version;  // the version selected: the highest supported one offered
  bool disable_check = false;
  std::vector<PluginConf> plugins;
  Json raw;
};
// Validates name, versions (picks the highest supported of cniVersion and cniVersions;
// kFailedPrecondition when none is), plugins (a non-empty list of objects whose `type` is a
// file name) and refuses the keys the runtime generates (runtimeConfig, prevResult, args).
// `source` names the input in messages (a file path).
Result<NetworkConfigList> parseConfListJson(const Json& value, std::string_view source);
Result<NetworkConfigList> parseConfList(std::string_view text, std::string_view source);

// The JSON a plugin gets on stdin for one invocation (spec section 3): the plugin object minus
// `capabilities`, plus cniVersion and name, `runtimeConfig` with the capability arguments the
// plugin declared (omitted when none), and `prevResult` when given.
Json requestConfig(const NetworkConfigList& network, const PluginConf& plugin,
                   const Json& capability_args, const Json* prev_result);

// A CNI container id: non-empty, starts alphanumeric, then alphanumerics, '_', '.', '-'.
bool isValidContainerId(std::string_view id);
// A Linux interface name: 1..15 bytes, no '/', ':' or whitespace, not "." or "..".
bool isValidInterfaceName(std::string_view name);

// JSON text that never throws (invalid UTF-8 is replaced).
std::string dumpJson(const Json& value);

}  // namespace fleetlet::cni
