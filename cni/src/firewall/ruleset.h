#pragma once
// fleetlet-firewall's nftables layout, as pure functions from what should exist and what
// does exist (a JSON listing of the table) to one JSON command batch.
//
//   table inet fleetlet
//     chain forward  (hook forward, policy accept)  ip saddr A jump <app chain>   comment <key>
//                                                   ip daddr A counter ingress:<key>
//     chain input    (hook input,   policy accept)  ip saddr A jump <app chain>   comment <key>
//     chain output   (hook output,  policy accept)  ip daddr A counter ingress:<key>
//     chain app:<key>                               counter egress:<key>
//                                                   ct state established,related accept
//                                                   [icmpv6 neighbour discovery accept]
//                                                   ip daddr <allow> accept ...
//                                                   <egress: all -> accept, local -> ip daddr
//                                                    <local networks> accept, none -> nothing>
//                                                   counter dropped:<key> reject
//     counter egress:<key>, ingress:<key>, dropped:<key>
//
// <key> is "<containerID>:<ifname>" (':' is in neither); A is each address of the
// attachment. Traffic between apps on one bridge reaches the forward hook only through
// br_netfilter (net.bridge.bridge-nf-call-iptables=1), which the plugin checks.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "error/error.h"
#include "firewall/policy.h"
#include "json/json.h"
#include "spec/cidr.h"

namespace fleetlet::cni::firewall {

inline constexpr std::string_view kTable = "fleetlet";
inline constexpr std::string_view kBaseChains[] = {"forward", "input", "output"};

std::string attachmentKey(std::string_view container_id, std::string_view ifname);
std::string appChainName(std::string_view key);
std::string counterName(std::string_view kind, std::string_view key);  // egress|ingress|dropped

struct AttachmentRules {
  std::string key;
  Policy policy;
  std::vector<Cidr> addresses;       // the attachment's own (prefix = its subnet)
  std::vector<Cidr> local_networks;  // for egress local (its subnets are added too)
};

// What exists in the table, from `list table inet fleetlet` (JSON, with handles).
struct TableState {
  bool exists = false;
  std::set<std::string> chains;  // all chains, base chains included
  std::set<std::string> counters;
  // Base chain rules by comment (the attachment key): (chain, handle).
  std::map<std::string, std::vector<std::pair<std::string, std::int64_t>>> rules_by_key;
  // Rule count per non-base chain (for CHECK).
  std::map<std::string, size_t> chain_rule_counts;
};
TableState parseTableState(const Json& listing);

// {"nftables": [{"list": {"table": ...}}]}
Json listTableCommand();

// Creates the table and base chains if missing, removes the key's old base rules, and
// (re)creates its chain, rules and counters. Idempotent: run twice, the same ruleset.
Json addBatch(const AttachmentRules& rules, const TableState& state);
// Removes everything of `key`; the whole table when no other attachment remains. An empty
// batch ({"nftables": []}) when there is nothing to remove.
Json deleteBatch(const std::string& key, const TableState& state);
// kNotFound naming what is missing when the key's chain, counters or base rules are absent.
Status checkState(const AttachmentRules& rules, const TableState& state);

}  // namespace fleetlet::cni::firewall
