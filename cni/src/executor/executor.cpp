#include "executor/executor.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "firewall/nftables.h"
#include "netns/netns.h"

namespace fleetlet::cni {
namespace {

// At most `limit` bytes of `text` for a message, control characters escaped.
std::string excerpt(std::string_view text, size_t limit = 200) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  bool cut = text.size() > limit;
  if (cut) text = text.substr(text.size() - limit);  // the end says what went wrong
  std::string out;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return cut ? "..." + out : out;
}

std::string joinPath(const std::vector<std::filesystem::path>& dirs) {
  std::string out;
  for (const auto& d : dirs) {
    if (!out.empty()) out += ':';
    out += d.string();
  }
  return out;
}

std::string attachmentKey(const std::string& container_id, const std::string& ifname) {
  return container_id + ":" + ifname;
}

}  // namespace

Json capabilityArgs(const AttachmentRequest& request) {
  Json out =
      request.extra_capability_args.is_object() ? request.extra_capability_args : Json::object();
  if (!request.port_mappings.empty()) {
    Json mappings = Json::array();
    for (const auto& m : request.port_mappings) {
      Json entry = {
          {"hostPort", m.host_port}, {"containerPort", m.container_port}, {"protocol", m.protocol}};
      if (!m.host_ip.empty()) entry["hostIP"] = m.host_ip;
      mappings.push_back(std::move(entry));
    }
    out["portMappings"] = std::move(mappings);
  }
  if (request.firewall) out[std::string(firewall::kCapability)] = request.firewall->toJson();
  return out;
}

namespace {

Status validate(const AttachmentRequest& request) {
  if (!isValidContainerId(request.container_id)) {
    return fail(ErrorCode::kInvalidArgument,
                "attachment: container id \"{}\" must start alphanumeric and hold only "
                "[A-Za-z0-9_.-]",
                request.container_id);
  }
  if (!isValidInterfaceName(request.ifname)) {
    return fail(ErrorCode::kInvalidArgument, "attachment {}: \"{}\" is not an interface name",
                request.container_id, request.ifname);
  }
  for (const auto& [k, v] : request.args) {
    if (k.empty() || k.find_first_of("=;") != std::string::npos ||
        v.find(';') != std::string::npos) {
      return fail(ErrorCode::kInvalidArgument,
                  "attachment {}: CNI argument \"{}\" must not be empty or hold '=' or ';'",
                  request.container_id, k);
    }
  }
  for (const auto& m : request.port_mappings) {
    if (m.host_port == 0 || m.container_port == 0 || (m.protocol != "tcp" && m.protocol != "udp")) {
      return fail(ErrorCode::kInvalidArgument,
                  "attachment {}: port mapping {}->{}/{} needs non-zero ports and tcp or udp",
                  request.container_id, m.host_port, m.container_port, m.protocol);
    }
  }
  struct stat st {};
  if (request.netns.empty() || ::stat(request.netns.c_str(), &st) != 0) {
    return fail(ErrorCode::kNotFound, "attachment {}: network namespace \"{}\" does not exist",
                request.container_id, request.netns.string());
  }
  return {};
}

}  // namespace

Result<std::optional<AddResult>> interpretPluginOutput(std::string_view plugin,
                                                       std::string_view command,
                                                       const PluginOutput& output) {
  bool ok = !output.timed_out && output.term_signal == 0 && output.exit_code == 0;
  if (!ok) {
    // Spec 1.0 plugins print the error object on stdout; some older ones on stderr.
    for (const std::string* stream : {&output.out, &output.err}) {
      auto object = parseErrorObject(*stream);
      if (!object) continue;
      std::string text = object->msg;
      if (!object->details.empty()) text += ": " + object->details;
      return fail(fromCniCode(object->code), "CNI plugin \"{}\" {} failed: {} (CNI error {})",
                  plugin, command, excerpt(text, 1000), object->code);
    }
    std::string how = output.term_signal != 0
                          ? fmt::format("killed by signal {}", output.term_signal)
                          : fmt::format("exit code {}", output.exit_code);
    std::string said = excerpt(output.err.empty() ? output.out : output.err);
    return fail(ErrorCode::kInternal, "CNI plugin \"{}\" {} failed: {}{}{}", plugin, command, how,
                said.empty() ? "" : ": ", said);
  }
  if (command != "ADD") return std::optional<AddResult>();
  auto result = parseAddResult(output.out);
  if (!result) {
    return fail(ErrorCode::kInternal, "CNI plugin \"{}\" ADD printed no valid result ({}): \"{}\"",
                plugin, result.error().message(), excerpt(output.out));
  }
  return std::optional<AddResult>(std::move(*result));
}

Result<std::unique_ptr<Executor>> Executor::create(ExecutorOptions options, PluginRunner& runner) {
  FLEETLET_ASSIGN_OR_RETURN(auto network, loadNetwork(options.conf_dir, options.default_network));
  return std::unique_ptr<Executor>(new Executor(std::move(options), runner, std::move(network)));
}

Result<std::optional<AddResult>> Executor::invoke(std::string_view command,
                                                  const NetworkConfigList& net,
                                                  const PluginConf& plugin,
                                                  const CachedAttachment& att, const Json* prev) {
  std::filesystem::path binary;
  for (const auto& dir : options_.bin_dirs) {
    auto candidate = dir / plugin.type;
    if (::access(candidate.c_str(), X_OK) == 0) {
      binary = candidate;
      break;
    }
  }
  if (binary.empty()) {
    return fail(ErrorCode::kNotFound, "CNI plugin \"{}\" {}: no executable in {}", plugin.type,
                command, joinPath(options_.bin_dirs));
  }
  PluginInvocation invocation{
      .binary = binary,
      .env = {{"CNI_COMMAND", std::string(command)},
              {"CNI_CONTAINERID", att.container_id},
              {"CNI_NETNS", att.netns.string()},
              {"CNI_IFNAME", att.ifname},
              {"CNI_ARGS", att.cni_args},
              {"CNI_PATH", joinPath(options_.bin_dirs)}},
      .stdin_data = dumpJson(requestConfig(net, plugin, att.capability_args, prev)),
      .timeout = options_.plugin_timeout};
  auto output = runner_.run(invocation);
  if (!output) {
    return std::unexpected(output.error().wrap("CNI plugin \"{}\" {}", plugin.type, command));
  }
  if (output->timed_out) {
    return fail(ErrorCode::kUnavailable,
                "CNI plugin \"{}\" {} did not finish within {} ms and was killed", plugin.type,
                command, options_.plugin_timeout.count());
  }
  return interpretPluginOutput(plugin.type, command, *output);
}

Status Executor::delChain(const CachedAttachment& entry, const Json* prev) {
  auto net = parseConfListJson(
      entry.network, "cached network of " + attachmentKey(entry.container_id, entry.ifname));
  if (!net) return std::unexpected(net.error());
  Status first;
  for (auto it = net->plugins.rbegin(); it != net->plugins.rend(); ++it) {
    auto done = invoke("DEL", *net, *it, entry, prev);
    if (!done && first) first = std::unexpected(done.error());
  }
  return first;
}

Result<Attachment> Executor::add(const AttachmentRequest& request) {
  FLEETLET_RETURN_IF_ERROR(validate(request));
  std::lock_guard lock(mutex_);
  // A leftover of an earlier add (a crash, a repeated call) is removed first.
  FLEETLET_ASSIGN_OR_RETURN(auto cached, cache_.get(request.container_id, request.ifname));
  if (cached) {
    if (auto st = delCachedLocked(*cached); !st) {
      return std::unexpected(st.error().wrap("add {}: remove the earlier attachment",
                                             attachmentKey(request.container_id, request.ifname)));
    }
  }
  std::string cni_args;
  for (const auto& [k, v] : request.args) {
    if (!cni_args.empty()) cni_args += ';';
    cni_args += k;
    cni_args += '=';
    cni_args += v;
  }
  CachedAttachment entry{.container_id = request.container_id,
                         .ifname = request.ifname,
                         .app = request.app,
                         .netns = request.netns,
                         .network = network_.raw,
                         .capability_args = capabilityArgs(request),
                         .cni_args = cni_args,
                         .meta = request.meta.is_object() ? request.meta : Json::object(),
                         .result = std::nullopt};
  if (!cached && request.netns_may_hold_interface) {
    // An attachment nobody remembers: its plugins' DELs, with this request's configuration.
    if (auto st = delChain(entry, nullptr); !st) {
      return std::unexpected(st.error().wrap("add {}: remove an attachment the cache lost",
                                             attachmentKey(request.container_id, request.ifname)));
    }
  }
  FLEETLET_RETURN_IF_ERROR(cache_.put(entry));

  std::optional<AddResult> last;
  for (const auto& plugin : network_.plugins) {
    auto added = invoke("ADD", network_, plugin, entry, last ? &last->raw : nullptr);
    if (!added) {
      Error err =
          added.error().wrap("add {} to network {}",
                             attachmentKey(request.container_id, request.ifname), network_.name);
      if (auto cleaned = delChain(entry, last ? &last->raw : nullptr); !cleaned) {
        return std::unexpected(Error(err.code(),
                                     fmt::format("{}; clean-up failed too (kept for a later "
                                                 "del or gc): {}",
                                                 err.message(), cleaned.error().message()),
                                     err.sysErrno()));
      }
      (void)cache_.remove(entry.container_id, entry.ifname);
      return std::unexpected(err);
    }
    std::optional<AddResult> result = std::move(*added);
    if (!result) return fail(ErrorCode::kInternal, "CNI plugin \"{}\" ADD: no result", plugin.type);
    last = std::move(*result);
  }
  if (!last) return fail(ErrorCode::kInternal, "network {} has no plugins", network_.name);
  entry.result = last->raw;
  FLEETLET_RETURN_IF_ERROR(cache_.put(entry));
  return Attachment{.container_id = entry.container_id,
                    .ifname = entry.ifname,
                    .app = entry.app,
                    .netns = entry.netns,
                    .result = std::move(*last),
                    .capability_args = entry.capability_args,
                    .meta = entry.meta};
}

Status Executor::check(const std::string& container_id, const std::string& ifname) {
  std::lock_guard lock(mutex_);
  FLEETLET_ASSIGN_OR_RETURN(auto entry, cache_.get(container_id, ifname));
  if (!entry || !entry->result) {
    return fail(ErrorCode::kNotFound, "check {}: no attachment of that id",
                attachmentKey(container_id, ifname));
  }
  FLEETLET_ASSIGN_OR_RETURN(auto net, parseConfListJson(entry->network, "cached network"));
  if (net.disable_check) return {};
  for (const auto& plugin : net.plugins) {
    auto checked = invoke("CHECK", net, plugin, *entry, &*entry->result);
    if (!checked) {
      return std::unexpected(checked.error().wrap("check {}", attachmentKey(container_id, ifname)));
    }
  }
  return {};
}

Status Executor::updateFirewall(const std::string& container_id, const std::string& ifname,
                                const firewall::Policy& policy, const Json& meta) {
  std::lock_guard lock(mutex_);
  const std::string key = attachmentKey(container_id, ifname);
  FLEETLET_ASSIGN_OR_RETURN(auto entry, cache_.get(container_id, ifname));
  if (!entry || !entry->result) {
    return fail(ErrorCode::kNotFound, "update firewall of {}: no attachment of that id", key);
  }
  FLEETLET_ASSIGN_OR_RETURN(auto net,
                            parseConfListJson(entry->network, "cached network of " + key));
  CachedAttachment updated = *entry;
  if (!updated.capability_args.is_object()) updated.capability_args = Json::object();
  updated.capability_args[std::string(firewall::kCapability)] = policy.toJson();
  if (meta.is_object()) updated.meta = meta;
  for (const auto& plugin : net.plugins) {
    if (!plugin.capabilities.contains(std::string(firewall::kCapability))) continue;
    auto added = invoke("ADD", net, plugin, updated, &*entry->result);
    if (!added) return std::unexpected(added.error().wrap("update firewall of {}", key));
  }
  return cache_.put(updated);
}

Status Executor::del(const std::string& container_id, const std::string& ifname) {
  std::lock_guard lock(mutex_);
  return delLocked(container_id, ifname);
}

Status Executor::delLocked(const std::string& container_id, const std::string& ifname) {
  FLEETLET_ASSIGN_OR_RETURN(auto entry, cache_.get(container_id, ifname));
  if (!entry) return {};
  return delCachedLocked(*entry);
}

Status Executor::delCachedLocked(const CachedAttachment& entry) {
  const Json* prev = entry.result ? &*entry.result : nullptr;
  if (auto st = delChain(entry, prev); !st) {
    return std::unexpected(
        st.error().wrap("del {}", attachmentKey(entry.container_id, entry.ifname)));
  }
  return cache_.remove(entry.container_id, entry.ifname);
}

Status Executor::delForgotten(const std::string& container_id, const std::string& ifname,
                              const std::filesystem::path& netns) {
  std::lock_guard lock(mutex_);
  FLEETLET_ASSIGN_OR_RETURN(auto cached, cache_.get(container_id, ifname));
  if (cached) return delCachedLocked(*cached);
  const CachedAttachment entry{.container_id = container_id,
                               .ifname = ifname,
                               .app = container_id,
                               .netns = netns,
                               .network = network_.raw,
                               .capability_args = Json::object(),
                               .cni_args = {},
                               .meta = Json::object(),
                               .result = std::nullopt};
  if (auto st = delChain(entry, nullptr); !st) {
    return std::unexpected(
        st.error().wrap("del {} (not cached)", attachmentKey(container_id, ifname)));
  }
  return {};
}

GcReport Executor::gc(const std::set<std::string>& live_container_ids) {
  std::lock_guard lock(mutex_);
  GcReport report;
  auto keys = cache_.list();
  if (!keys) {
    report.errors.push_back(keys.error().wrap("gc"));
    return report;
  }
  for (const auto& [container_id, ifname] : *keys) {
    if (live_container_ids.contains(container_id)) continue;
    if (auto st = delLocked(container_id, ifname); !st) {
      report.errors.push_back(st.error().wrap("gc"));
    } else {
      report.removed.push_back(attachmentKey(container_id, ifname));
    }
  }
  return report;
}

Result<std::vector<Attachment>> Executor::attachments() const {
  std::lock_guard lock(mutex_);
  FLEETLET_ASSIGN_OR_RETURN(auto keys, cache_.list());
  std::vector<Attachment> out;
  for (const auto& [container_id, ifname] : keys) {
    FLEETLET_ASSIGN_OR_RETURN(auto entry, cache_.get(container_id, ifname));
    if (!entry || !entry->result) continue;
    FLEETLET_ASSIGN_OR_RETURN(auto result, parseAddResultJson(*entry->result));
    out.push_back(Attachment{.container_id = entry->container_id,
                             .ifname = entry->ifname,
                             .app = entry->app,
                             .netns = entry->netns,
                             .result = std::move(result),
                             .capability_args = entry->capability_args,
                             .meta = entry->meta});
  }
  return out;
}

Result<std::vector<AppTraffic>> Executor::trafficCounters() const {
  std::optional<Result<std::map<std::string, firewall::AttachmentCounters>>> read;
  auto readHere = [&] {
    firewall::LibNftables nft;
    read.emplace(firewall::readCounters(nft));
  };
  if (options_.node_netns) {
    FLEETLET_RETURN_IF_ERROR(netns::runInNetns(*options_.node_netns, readHere));
  } else {
    readHere();
  }
  if (!read) return fail(ErrorCode::kInternal, "read firewall counters: not run");
  if (!*read) return std::unexpected(read->error());
  std::vector<AppTraffic> out;
  for (const auto& [key, counters] : **read) {
    auto colon = key.rfind(':');
    AppTraffic traffic{.container_id = key.substr(0, colon),
                       .ifname = colon == std::string::npos ? "" : key.substr(colon + 1),
                       .app = "",
                       .counters = counters};
    auto entry = cache_.get(traffic.container_id, traffic.ifname);
    std::optional<CachedAttachment> cached = entry ? *entry : std::nullopt;
    if (cached) traffic.app = cached->app;
    out.push_back(std::move(traffic));
  }
  return out;
}

}  // namespace fleetlet::cni
