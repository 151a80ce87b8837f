#pragma once
// The plugin side of the CNI protocol (like containernetworking/plugins' pkg/skel): reads
// CNI_* from the environment and the configuration from stdin, checks what each command
// needs, dispatches ADD, CHECK, DEL and VERSION to one function each, and prints the result
// or the spec's error object {cniVersion, code, msg, details} on stdout.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "error/error.h"
#include "json/json.h"
#include "spec/types.h"

namespace fleetlet::cni {

struct SkelRequest {
  std::string container_id;  // CNI_CONTAINERID
  std::string netns;         // CNI_NETNS (may be empty for DEL)
  std::string ifname;        // CNI_IFNAME
  std::string args;          // CNI_ARGS
  std::string path;          // CNI_PATH
  Json config;               // stdin: the request configuration
  std::string cni_version;   // config.cniVersion
};

class PluginHandlers {
 public:
  virtual ~PluginHandlers() = default;
  // Returns the result to print (for a chained plugin: prevResult, possibly modified).
  virtual Result<Json> add(const SkelRequest& request) = 0;
  virtual Status check(const SkelRequest& request) = 0;
  // Must succeed when what it would remove is already gone.
  virtual Status del(const SkelRequest& request) = 0;
};

struct SkelOutcome {
  int exit_code = 0;
  std::string out;  // what to print on stdout
};

// One plugin run. `env` holds the process environment's CNI_* variables. Errors become
// error objects: bad environment -> 4, undecodable stdin -> 6, unsupported cniVersion -> 1,
// handler errors -> toCniCode(code) with the message as msg.
SkelOutcome runPlugin(PluginHandlers& handlers, const std::map<std::string, std::string>& env,
                      std::string_view stdin_data, std::string_view about);

// The process wrapper for main(): reads the environment and stdin, prints, returns the exit
// code.
int pluginMain(PluginHandlers& handlers, std::string_view about);

}  // namespace fleetlet::cni
