#include "cli/top_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>
#include <vector>

#include "cli/api_client.h"
#include "cli/command_line.h"

namespace fleetlet::cli {
namespace {

double number(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0;
}

bool has(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number();
}

// A CPU share over [before, after] as "12.5%" (100% = one core); "-" without both readings.
std::string cpuShare(const Json* before, const Json& after, double seconds) {
  if (before == nullptr || seconds <= 0 || !has(*before, "cpuSeconds") ||
      !has(after, "cpuSeconds")) {
    return "-";
  }
  double used = number(after, "cpuSeconds") - number(*before, "cpuSeconds");
  return fmt::format("{:.1f}%", std::max(0.0, used) / seconds * 100);
}

std::string memory(const Json& app) {
  if (!has(app, "memoryBytes")) return "-";
  const double used = number(app, "memoryBytes");
  if (!has(app, "memoryLimitBytes")) return humanBytes(used);
  const double limit = number(app, "memoryLimitBytes");
  return fmt::format("{}/{} ({:.0f}%)", humanBytes(used), humanBytes(limit),
                     limit > 0 ? used / limit * 100 : 0);
}

std::string network(const Json& app) {
  auto it = app.find("network");
  if (it == app.end()) return "-";
  return fmt::format("{}/{}", humanBytes(number(*it, "ingressBytes")),
                     humanBytes(number(*it, "egressBytes")));
}

int runTop(ApiClient& client, std::chrono::milliseconds interval, bool terminal) {
  auto before = client.getJson("/v1/top");
  if (!before) return reportFailure(before.error().wrap("top"));
  for (;;) {
    std::this_thread::sleep_for(interval);
    auto after = client.getJson("/v1/top");
    if (!after) return reportFailure(after.error().wrap("top"));
    auto table = formatTop(*before, *after);
    if (!terminal) {
      fmt::print("{}", table);
      return kExitOk;
    }
    // Home and clear, then the table: a redraw in place.
    fmt::print("\x1b[H\x1b[2J{}", table);
    std::fflush(stdout);
    before = std::move(after);
  }
}

}  // namespace

std::string humanBytes(double bytes) {
  static constexpr std::array<const char*, 5> kUnits = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return fmt::format("{:.0f}B", bytes);
  size_t unit = 0;
  bytes /= 1024;
  while (bytes >= 1024 && unit + 1 < kUnits.size()) {
    bytes /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f}{}", bytes, kUnits[unit]);
}

std::string formatTop(const Json& before, const Json& after) {
  const double seconds = number(after, "time") - number(before, "time");
  std::string out;
  const Json empty = Json::object();
  const auto& node = after.contains("node") ? after["node"] : empty;
  const auto& node_before = before.contains("node") ? before["node"] : empty;
  std::string cpu = "-";
  if (has(node, "cpuSeconds") && has(node_before, "cpuSeconds")) {
    const double total = number(node, "cpuSeconds") - number(node_before, "cpuSeconds");
    const double idle = number(node, "idleSeconds") - number(node_before, "idleSeconds");
    if (total > 0) cpu = fmt::format("{:.1f}%", (total - idle) / total * 100);
  }
  out += fmt::format(
      "node: cpu {} of {} cpus, memory {} available of {}, disk {} free of {}, "
      "containerd {}\n",
      cpu, number(node, "cpus"), humanBytes(number(node, "memoryAvailableBytes")),
      humanBytes(number(node, "memoryTotalBytes")), humanBytes(number(node, "diskFreeBytes")),
      humanBytes(number(node, "diskTotalBytes")),
      node.value("containerdUp", false) ? "up" : "DOWN");
  std::map<std::string, const Json*> earlier;
  if (before.contains("apps")) {
    for (const auto& a : before["apps"]) earlier[a.value("name", "")] = &a;
  }
  std::vector<std::array<std::string, 7>> rows{
      {"NAME", "STATE", "CPU", "MEMORY", "PIDS", "RESTARTS", "NET IN/OUT"}};
  if (after.contains("apps")) {
    for (const auto& a : after["apps"]) {
      const std::string name = a.value("name", "");
      auto it = earlier.find(name);
      std::string state = a.value("state", "");
      if (!a.value("healthy", true)) state += " (unhealthy)";
      rows.push_back({name, state, cpuShare(it == earlier.end() ? nullptr : it->second, a, seconds),
                      memory(a), has(a, "pids") ? fmt::format("{}", number(a, "pids")) : "-",
                      fmt::format("{}", a.value("restarts", 0)), network(a)});
    }
  }
  std::array<size_t, 7> width{};
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += i + 1 < r.size() ? fmt::format("{:<{}}  ", r[i], width[i]) : r[i];
    }
    out += line + "\n";
  }
  return out;
}

void addTopCommand(CLI::App& app, const std::shared_ptr<ApiFlags>& flags, Action& action) {
  auto interval = std::make_shared<double>(2.0);
  auto* top = app.add_subcommand(
      "top",
      "The apps' CPU, memory against their limit, pids, restarts and network; redrawn on a "
      "terminal, printed once otherwise");
  top->group("Node (through fleetletd)");
  top->add_option("--interval", *interval,
                  "Seconds between the two readings a CPU share needs, and between redraws")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 3600.0));
  top->callback([flags, interval, &action] {
    action = [=] {
      ApiClient client(flags->socket);
      const auto ms = std::chrono::milliseconds(static_cast<int64_t>(*interval * 1000));
      return runTop(client, ms, ::isatty(STDOUT_FILENO) == 1);
    };
  });
}

}  // namespace fleetlet::cli
