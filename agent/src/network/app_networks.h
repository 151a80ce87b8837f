#pragma once
// AppNetworks: every container app's own network namespace and its CNI attachment
// (docs/networking.md, "In fleetletd").
//
// An app `web` gets the namespace pinned at <netns_dir>/fleetlet-web and one attachment to the
// executor's network whose CNI container id is the app's name. Both belong to the app, not to
// one of its containers: a replacement container joins the same namespace, keeps the same
// address, and the attachment is made again only when the app's exposed ports change. A
// changed policy is applied in place (Executor::updateFirewall). The pins outlive fleetletd on
// purpose (apps keep running across agent restarts): gc() and detach() own their removal.
//
// `network.allow` names other apps; they are resolved to those apps' current addresses. A
// named app that has no address yet is left out until it gets one: attaching or detaching an
// app updates the policy of every app that names it, and gc() repairs any policy that drifted.
//
// Thread-safety: all methods may be called from any thread; they are serialized (the
// executor runs one plugin chain at a time anyway).

#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "error/error.h"
#include "executor/executor.h"
#include "firewall/counters.h"
#include "manifest/types.h"

namespace fleetlet::network {

inline constexpr char kNetnsPrefix[] = "fleetlet-";

struct AppNetworksOptions {
  std::filesystem::path netns_dir = "/run/netns";
};

// The firewall policy of `network`: egress as written; `allow` CIDRs as written and app names
// as the addresses in `addresses` (full-length prefixes). Names without an address are
// returned in `waiting_for`. kInvalidArgument for an entry that is neither (the manifest
// validator refuses those before they get here).
struct ResolvedPolicy {
  cni::firewall::Policy policy;
  std::vector<std::string> waiting_for;
};
Result<ResolvedPolicy> resolvePolicy(
    const manifest::Network& network,
    const std::map<std::string, std::vector<cni::Cidr>>& addresses);

// The port mappings of `network.expose` for the `portMappings` capability.
std::vector<cni::PortMapping> portMappings(const manifest::Network& network);

class AppNetworks {
 public:
  // `executor` must outlive this object. Reads the executor's attachments (a restarted
  // fleetletd resumes with what the last one made).
  static Result<std::unique_ptr<AppNetworks>> create(cni::Executor& executor,
                                                     AppNetworksOptions options);

  // Where the app's namespace is pinned (whether or not it exists now).
  std::filesystem::path netnsPath(const std::string& app) const;

  // Makes the app's namespace and attachment match `app.network` before a task starts: creates
  // the pin (with `lo` up) when missing, attaches it when it is not attached or its ports
  // changed, updates the policy when only that changed, and runs no plugin when nothing did.
  // On failure nothing new is left behind (a pin this call created is removed). For an app in
  // `mode: host` it detaches whatever an earlier isolated version left.
  Status attach(const manifest::App& app);

  // DEL of the app's attachment, then the pin. Succeeds when neither exists. Call once the
  // app's containers are gone.
  Status detach(const std::string& app);

  // Detaches every app not in `live` (attachments, and pins under netns_dir named
  // fleetlet-<app>), and re-applies any policy that no longer matches the addresses of the apps
  // it names. Best effort: each problem is logged and retried on the next call.
  void gc(const std::set<std::string>& live);

  // True for an app whose namespace was kept without a record of its attachment (the node lost
  // its data directory, where the CNI cache and IPAM leases are, while the namespaces stayed),
  // until attach() — which a running task may call in place — attaches it again. What such
  // namespaces hold is left alone until an ADD is due; then, before it, every one of them is
  // DELeted (Executor::delForgotten), so that IPAM cannot hand out an address one still holds.
  bool forgotten(const std::string& app) const;

  // The app's addresses ("10.90.0.5/16"), empty when it is not attached.
  std::vector<std::string> addresses(const std::string& app) const;

  // fleetlet-firewall's counters per app.
  Result<std::map<std::string, cni::firewall::AttachmentCounters>> counters() const;

 private:
  AppNetworks(cni::Executor& executor, AppNetworksOptions options)
      : executor_(executor), options_(std::move(options)) {}

  struct Entry {
    cni::Attachment attachment;
    // The policy as the manifest wrote it (egress, allow with app names), kept in the
    // attachment's meta so that a restarted fleetletd can re-resolve it.
    manifest::Network policy;
  };

  std::map<std::string, std::vector<cni::Cidr>> addressesLocked() const;
  // DELs what the namespaces in uncleared_ hold, `except` that app's (its own ADD does it).
  Status clearForgottenLocked(const std::string& except);
  Status detachLocked(const std::string& app);
  // Re-resolves the policy of every attached app that names `changed` (all apps when empty)
  // and updates those that differ. Problems are logged.
  void refreshPeersLocked(const std::string& changed);

  cni::Executor& executor_;
  AppNetworksOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> apps_;  // guarded by mu_: the attached apps
  std::set<std::string> forgotten_;    // guarded by mu_: see forgotten()
  std::set<std::string> uncleared_;    // guarded by mu_: forgotten, interface not DELeted yet
};

}  // namespace fleetlet::network
