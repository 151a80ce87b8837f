#pragma once
// Executor: gives containers their networks by running a CNI network configuration list
// (spec 1.0, section 3) — ADD in order with prevResult chaining, CHECK, DEL in reverse order —
// caching each attachment so that DEL works after a crash, and garbage-collecting the
// attachments whose owner is gone. Plugins run through a PluginRunner.
//
// Thread-safety: every method may be called from any thread; add/check/del/gc are serialized
// by mutex_ (plugins of one network share state: IPAM leases, the bridge), so a hung plugin
// delays the others by at most the plugin timeout. trafficCounters() does not take the lock.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "error/error.h"
#include "executor/attachment_cache.h"
#include "executor/network_config.h"
#include "executor/plugin_runner.h"
#include "firewall/counters.h"
#include "firewall/policy.h"
#include "spec/types.h"

namespace fleetlet::cni {

struct ExecutorOptions {
  // The network: the first *.conflist here, else the built-in default (network_config.h).
  std::filesystem::path conf_dir = kDefaultConfDir;
  DefaultNetworkOptions default_network;
  // Where plugin binaries are looked up, in order; also CNI_PATH.
  std::vector<std::filesystem::path> bin_dirs = {"/usr/lib/cni", "/usr/libexec/fleetlet/cni"};
  // One file per attachment (attachment_cache.h).
  std::filesystem::path cache_dir = "/var/lib/fleetlet/cni/attachments";
  // A plugin still running after this long is killed and its step fails.
  std::chrono::milliseconds plugin_timeout{30'000};
  // The namespace the plugins run in and whose nftables counters trafficCounters() reads;
  // the caller's when unset. Give the runner the same one.
  std::optional<std::filesystem::path> node_netns;
};

struct PortMapping {
  std::uint16_t host_port = 0;
  std::uint16_t container_port = 0;
  std::string protocol = "tcp";  // "tcp" or "udp"
  std::string host_ip;           // empty: every address
};

// What the caller asks for: one interface of one container in one network.
struct AttachmentRequest {
  std::string container_id;  // CNI_CONTAINERID; fleetletd uses one per app
  std::string ifname = "eth0";
  std::string app;                              // recorded in the cache, reported with counters
  std::filesystem::path netns;                  // CNI_NETNS: must exist
  std::vector<PortMapping> port_mappings;       // the `portMappings` capability
  std::optional<firewall::Policy> firewall;     // the `fleetletFirewall` capability
  Json extra_capability_args = Json::object();  // further capabilities by name
  std::map<std::string, std::string> args;      // CNI_ARGS (K=V;K=V)
  Json meta = Json::object();  // the caller's own data: cached with the attachment, never sent
  // The namespace existed before this request and may still hold `ifname` from an attachment
  // the cache no longer knows (the node lost its data directory while the namespace, which
  // lives elsewhere, stayed). When nothing is cached for it, every plugin's DEL runs first
  // without a prevResult (CNI requires DEL to tolerate that): the old interface, its lease
  // and its rules go before the ADD, which would otherwise fail on the interface's name.
  bool netns_may_hold_interface = false;
};

struct Attachment {
  std::string container_id;
  std::string ifname;
  std::string app;
  std::filesystem::path netns;
  AddResult result;  // the final plugin's result: the container's addresses, interfaces
  Json capability_args = Json::object();  // runtimeConfig by capability, as last applied
  Json meta = Json::object();             // AttachmentRequest::meta
};

// The runtimeConfig values a request carries, by capability name (portMappings,
// fleetletFirewall, extra ones): what Attachment::capability_args records.
Json capabilityArgs(const AttachmentRequest& request);

struct AppTraffic {
  std::string container_id;
  std::string ifname;
  std::string app;  // from the cache; empty for a chain the cache does not know
  firewall::AttachmentCounters counters;
};

struct GcReport {
  std::vector<std::string> removed;  // "<containerID>:<ifname>" of each attachment deleted
  std::vector<Error> errors;         // one per attachment that could not be deleted (kept)
};

class Executor {
 public:
  // Loads the network (conf_dir or the default). Fails with the loader's error (a bad
  // conflist names its file). `runner` must outlive the executor.
  static Result<std::unique_ptr<Executor>> create(ExecutorOptions options, PluginRunner& runner);

  // ADD: runs every plugin's ADD in order, each given the previous one's result as
  // prevResult, and returns the last result. The cache entry is written before the first
  // plugin runs and completed with the result after the last. An existing entry for the
  // same (container_id, ifname) is DELeted first, so a repeated add() converges. On failure
  // the plugins are DELeted in reverse order (with the last good result) and the entry is
  // removed, so nothing is left behind; if that clean-up fails too, the entry stays for a
  // later del() or gc(), and the error says so. Errors name the plugin: kInvalidArgument for
  // a bad request or configuration, kNotFound for a missing plugin binary or netns,
  // kUnavailable for a timeout, the plugin's CNI code mapped by fromCniCode() otherwise.
  Result<Attachment> add(const AttachmentRequest& request);

  // CHECK with the cached configuration and result. kNotFound when the attachment is not in
  // the cache; success without running plugins when the network sets disableCheck.
  Status check(const std::string& container_id, const std::string& ifname = "eth0");

  // Changes the `fleetletFirewall` capability of a cached attachment without touching its
  // interface or address: ADD of every plugin declaring that capability runs again with the
  // new policy and the cached final result as prevResult (fleetlet-firewall's ADD replaces the
  // attachment's rules and passes prevResult through), then the cache records the policy (and
  // `meta` in place of the attachment's meta, unless it is null).
  // kNotFound when the attachment is not cached or incomplete; a plugin's error names it, and
  // the cache then keeps the old policy (a later DEL removes whatever rules are in place).
  Status updateFirewall(const std::string& container_id, const std::string& ifname,
                        const firewall::Policy& policy, const Json& meta = nullptr);

  // DEL in reverse order with the cached configuration and result; success when the
  // attachment is not cached. Best effort: every plugin's DEL runs even when one before it
  // failed; the entry is removed only when all succeeded (else the first error is returned
  // and a later del() or gc() retries).
  Status del(const std::string& container_id, const std::string& ifname = "eth0");

  // DEL of an attachment the cache may not know (it was lost with the node's data directory
  // while `netns`, which lives elsewhere, kept the interface): del() when it is cached, else
  // every plugin's DEL in reverse order with the current network's configuration and no
  // prevResult (CNI requires DEL to tolerate that). Best effort as del().
  Status delForgotten(const std::string& container_id, const std::string& ifname,
                      const std::filesystem::path& netns);

  // DELs every cached attachment whose container id is not in `live`. Never stops early.
  GcReport gc(const std::set<std::string>& live_container_ids);

  // The cached attachments with a complete ADD (for a restarted caller to rebuild its view).
  Result<std::vector<Attachment>> attachments() const;

  // fleetlet-firewall's counters for every attachment it knows, with the app from the cache.
  Result<std::vector<AppTraffic>> trafficCounters() const;

  const NetworkConfigList& network() const { return network_; }
  const ExecutorOptions& options() const { return options_; }

 private:
  Executor(ExecutorOptions options, PluginRunner& runner, NetworkConfigList network)
      : options_(std::move(options)),
        runner_(runner),
        network_(std::move(network)),
        cache_(options_.cache_dir) {}

  // Runs one plugin; `prev` is prevResult (may be null). For ADD returns its result.
  Result<std::optional<AddResult>> invoke(std::string_view command, const NetworkConfigList& net,
                                          const PluginConf& plugin, const CachedAttachment& att,
                                          const Json* prev);
  // DEL of every plugin of the entry's network in reverse order; the first error.
  Status delChain(const CachedAttachment& entry, const Json* prev);
  Status delLocked(const std::string& container_id, const std::string& ifname);
  // DEL of `entry`, read from the cache by the caller, then its removal from the cache.
  Status delCachedLocked(const CachedAttachment& entry);

  ExecutorOptions options_;
  PluginRunner& runner_;
  NetworkConfigList network_;
  AttachmentCache cache_;
  mutable std::mutex mutex_;  // serializes add/check/del/gc
};

// Turns one plugin run into its ADD result (or nullopt for other commands) or an Error whose
// message names the plugin and command: a printed CNI error object's msg, details and code,
// otherwise the exit status and the tail of stderr; an ADD that exits 0 without a valid
// result is an error too. Pure; fuzzed.
Result<std::optional<AddResult>> interpretPluginOutput(std::string_view plugin,
                                                       std::string_view command,
                                                       const PluginOutput& output);

}  // namespace fleetlet::cni
