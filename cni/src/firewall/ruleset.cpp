#include "firewall/ruleset.h"

#include <sys/socket.h>

#include <algorithm>

namespace fleetlet::cni::firewall {
namespace {

Json tableRef() { return Json{{"family", "inet"}, {"name", kTable}}; }

Json chainRef(std::string_view chain) {
  return Json{{"family", "inet"}, {"table", kTable}, {"name", chain}};
}

Json counterRef(std::string_view name) {
  return Json{{"family", "inet"}, {"table", kTable}, {"name", name}};
}

Json rule(std::string_view chain, Json expr, std::string_view comment = {}) {
  Json r = {{"family", "inet"}, {"table", kTable}, {"chain", chain}, {"expr", std::move(expr)}};
  if (!comment.empty()) r["comment"] = comment;
  return Json{{"add", {{"rule", std::move(r)}}}};
}

// ip saddr / ip6 daddr == <address or prefix>
Json matchAddress(const Cidr& cidr, std::string_view field) {
  Json right;
  int bits = cidr.isV4() ? 32 : 128;
  if (cidr.prefix == bits) {
    right = cidr.addressString();
  } else {
    right = Json{{"prefix", {{"addr", cidr.network().addressString()}, {"len", cidr.prefix}}}};
  }
  return Json{
      {"match",
       {{"op", "=="},
        {"left", {{"payload", {{"protocol", cidr.isV4() ? "ip" : "ip6"}, {"field", field}}}}},
        {"right", std::move(right)}}}};
}

Json accept() { return Json{{"accept", nullptr}}; }

void deleteKeyRules(const std::string& key, const TableState& state, Json& commands) {
  auto it = state.rules_by_key.find(key);
  if (it == state.rules_by_key.end()) return;
  for (const auto& [chain, handle] : it->second) {
    commands.push_back(
        Json{{"delete",
              {{"rule",
                {{"family", "inet"}, {"table", kTable}, {"chain", chain}, {"handle", handle}}}}}});
  }
}

bool isBaseChain(std::string_view chain) {
  return std::ranges::find(kBaseChains, chain) != std::end(kBaseChains);
}

}  // namespace

std::string attachmentKey(std::string_view container_id, std::string_view ifname) {
  return fmt::format("{}:{}", container_id, ifname);
}
std::string appChainName(std::string_view key) { return fmt::format("app:{}", key); }
std::string counterName(std::string_view kind, std::string_view key) {
  return fmt::format("{}:{}", kind, key);
}

Json listTableCommand() {
  return Json{{"nftables", Json::array({Json{{"list", {{"table", tableRef()}}}}})}};
}

TableState parseTableState(const Json& listing) {
  TableState state;
  auto items = listing.find("nftables");
  if (items == listing.end() || !items->is_array()) return state;
  for (const auto& item : *items) {
    if (!item.is_object()) continue;
    if (auto t = item.find("table"); t != item.end() && t->is_object()) {
      if (t->value("name", "") == kTable && t->value("family", "") == "inet") state.exists = true;
    }
    if (auto c = item.find("chain"); c != item.end() && c->is_object()) {
      if (c->value("table", "") == kTable) state.chains.insert(c->value("name", ""));
    }
    if (auto c = item.find("counter"); c != item.end() && c->is_object()) {
      if (c->value("table", "") == kTable) state.counters.insert(c->value("name", ""));
    }
    if (auto r = item.find("rule"); r != item.end() && r->is_object()) {
      if (r->value("table", "") != kTable) continue;
      std::string chain = r->value("chain", "");
      auto handle = r->find("handle");
      if (isBaseChain(chain)) {
        std::string comment = r->value("comment", "");
        if (!comment.empty() && handle != r->end() && handle->is_number_integer()) {
          state.rules_by_key[comment].emplace_back(chain, handle->get<std::int64_t>());
        }
      } else {
        ++state.chain_rule_counts[chain];
      }
    }
  }
  return state;
}

Json addBatch(const AttachmentRules& rules, const TableState& state) {
  Json commands = Json::array();
  commands.push_back(Json{{"add", {{"table", tableRef()}}}});
  for (std::string_view base : kBaseChains) {
    Json chain = chainRef(base);
    chain["type"] = "filter";
    chain["hook"] = base;
    chain["prio"] = 0;
    chain["policy"] = "accept";
    commands.push_back(Json{{"add", {{"chain", std::move(chain)}}}});
  }
  deleteKeyRules(rules.key, state, commands);

  const std::string chain = appChainName(rules.key);
  commands.push_back(Json{{"add", {{"chain", chainRef(chain)}}}});
  commands.push_back(Json{{"flush", {{"chain", chainRef(chain)}}}});
  for (std::string_view kind : {"egress", "ingress", "dropped"}) {
    commands.push_back(Json{{"add", {{"counter", counterRef(counterName(kind, rules.key))}}}});
  }

  // The app's chain.
  commands.push_back(
      rule(chain, Json::array({Json{{"counter", counterName("egress", rules.key)}}})));
  commands.push_back(
      rule(chain, Json::array({Json{{"match",
                                     {{"op", "in"},
                                      {"left", {{"ct", {{"key", "state"}}}}},
                                      {"right", Json::array({"established", "related"})}}}},
                               accept()})));
  bool has_v6 = std::ranges::any_of(rules.addresses, [](const Cidr& c) { return !c.isV4(); });
  if (has_v6) {
    commands.push_back(rule(
        chain,
        Json::array(
            {Json{{"match",
                   {{"op", "=="},
                    {"left", {{"payload", {{"protocol", "icmpv6"}, {"field", "type"}}}}},
                    {"right", Json{{"set", Json::array({"nd-router-solicit", "nd-neighbor-solicit",
                                                        "nd-neighbor-advert"})}}}}}},
             accept()})));
  }
  for (const auto& allowed : rules.policy.allow) {
    commands.push_back(rule(chain, Json::array({matchAddress(allowed, "daddr"), accept()})));
  }
  if (rules.policy.egress == Egress::kAll) {
    commands.push_back(rule(chain, Json::array({accept()})));
  } else if (rules.policy.egress == Egress::kLocal) {
    std::vector<Cidr> nets;
    nets.reserve(rules.addresses.size() + rules.local_networks.size());
    for (const auto& a : rules.addresses) nets.push_back(a.network());
    for (const auto& n : rules.local_networks) nets.push_back(n.network());
    std::ranges::sort(nets,
                      [](const Cidr& a, const Cidr& b) { return a.toString() < b.toString(); });
    auto dup = std::ranges::unique(nets);
    nets.erase(dup.begin(), dup.end());
    for (const auto& n : nets) {
      commands.push_back(rule(chain, Json::array({matchAddress(n, "daddr"), accept()})));
    }
  }
  commands.push_back(rule(
      chain, Json::array({Json{{"counter", counterName("dropped", rules.key)}},
                          Json{{"reject", {{"type", "icmpx"}, {"expr", "admin-prohibited"}}}}})));

  // The hooks: the app's packets jump to its chain; packets to it count as ingress.
  for (const auto& address : rules.addresses) {
    Cidr self = address;
    self.prefix = address.isV4() ? 32 : 128;
    Json jump = Json::array({matchAddress(self, "saddr"), Json{{"jump", {{"target", chain}}}}});
    Json count = Json::array(
        {matchAddress(self, "daddr"), Json{{"counter", counterName("ingress", rules.key)}}});
    commands.push_back(rule("forward", jump, rules.key));
    commands.push_back(rule("forward", count, rules.key));
    commands.push_back(rule("input", jump, rules.key));
    commands.push_back(rule("output", count, rules.key));
  }
  return Json{{"nftables", std::move(commands)}};
}

Json deleteBatch(const std::string& key, const TableState& state) {
  Json commands = Json::array();
  if (!state.exists) return Json{{"nftables", commands}};
  const std::string chain = appChainName(key);
  bool others = std::ranges::any_of(
      state.chains, [&](const std::string& c) { return !isBaseChain(c) && c != chain; });
  bool mine = state.chains.contains(chain) || state.rules_by_key.contains(key) ||
              std::ranges::any_of(state.counters, [&](const std::string& c) {
                return c == counterName("egress", key) || c == counterName("ingress", key) ||
                       c == counterName("dropped", key);
              });
  if (!others) {
    // The last attachment (or a stray table): nothing of fleetlet stays behind.
    commands.push_back(Json{{"delete", {{"table", tableRef()}}}});
    return Json{{"nftables", commands}};
  }
  if (!mine) return Json{{"nftables", commands}};
  deleteKeyRules(key, state, commands);
  if (state.chains.contains(chain)) {
    commands.push_back(Json{{"flush", {{"chain", chainRef(chain)}}}});
    commands.push_back(Json{{"delete", {{"chain", chainRef(chain)}}}});
  }
  for (std::string_view kind : {"egress", "ingress", "dropped"}) {
    if (state.counters.contains(counterName(kind, key))) {
      commands.push_back(Json{{"delete", {{"counter", counterRef(counterName(kind, key))}}}});
    }
  }
  return Json{{"nftables", commands}};
}

Status checkState(const AttachmentRules& rules, const TableState& state) {
  const std::string chain = appChainName(rules.key);
  if (!state.exists) return fail(ErrorCode::kNotFound, "table inet {} is missing", kTable);
  if (!state.chains.contains(chain))
    return fail(ErrorCode::kNotFound, "chain {} is missing", chain);
  if (state.chain_rule_counts.count(chain) == 0) {
    return fail(ErrorCode::kNotFound, "chain {} has no rules", chain);
  }
  for (std::string_view kind : {"egress", "ingress", "dropped"}) {
    if (!state.counters.contains(counterName(kind, rules.key))) {
      return fail(ErrorCode::kNotFound, "counter {} is missing", counterName(kind, rules.key));
    }
  }
  auto it = state.rules_by_key.find(rules.key);
  size_t expected = rules.addresses.size() * 4;
  size_t present = it == state.rules_by_key.end() ? 0 : it->second.size();
  if (present != expected) {
    return fail(ErrorCode::kNotFound, "{} of the {} hook rules of {} are present", present,
                expected, rules.key);
  }
  return {};
}

}  // namespace fleetlet::cni::firewall
