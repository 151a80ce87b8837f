#include "monitoring/agent_metrics.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace fleetlet::monitoring {
namespace {

using metrics::Labels;
using metrics::TextWriter;
using metrics::Type;

double seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// Writes one gauge family with a sample per app that has the value.
template <typename F>
void perApp(TextWriter& out, const Sample& s, std::string_view name, Type type,
            std::string_view help, F value) {
  bool opened = false;
  for (const auto& a : s.apps) {
    std::optional<double> v = value(a);
    if (!v) continue;
    if (!opened) opened = out.family(name, type, help);
    if (!opened) return;
    out.sample({{"app", a.status.name}}, *v);
  }
}

// The per-app families read from the app's cgroup; a value of nullopt leaves the app out.
struct UsageFamily {
  const char* name;
  Type type;
  const char* help;
  std::optional<double> (*value)(const containerd::TaskMetrics&);
};

std::optional<double> optional(const std::optional<uint64_t>& v) {
  if (!v) return std::nullopt;
  return static_cast<double>(*v);
}

const UsageFamily kUsageFamilies[] = {
    {"fleetlet_app_cpu_seconds_total", Type::kCounter,
     "CPU time the app's cgroup used (user and system) since its task started.",
     [](const containerd::TaskMetrics& t) -> std::optional<double> {
       return static_cast<double>(t.cpu_ns) / 1e9;
     }},
    {"fleetlet_app_memory_bytes", Type::kGauge,
     "Memory charged to the app's cgroup now (page cache and tmpfs included).",
     [](const containerd::TaskMetrics& t) -> std::optional<double> {
       return static_cast<double>(t.memory_bytes);
     }},
    {"fleetlet_app_memory_max_bytes", Type::kGauge,
     "The most memory the app's cgroup has used since its task started.",
     [](const containerd::TaskMetrics& t) -> std::optional<double> {
       if (t.memory_max_bytes == 0) return std::nullopt;
       return static_cast<double>(t.memory_max_bytes);
     }},
    {"fleetlet_app_memory_limit_bytes", Type::kGauge, "The app's memory limit (absent: none).",
     [](const containerd::TaskMetrics& t) { return optional(t.memory_limit_bytes); }},
    {"fleetlet_app_pids", Type::kGauge, "Processes and threads in the app's cgroup now.",
     [](const containerd::TaskMetrics& t) -> std::optional<double> {
       return static_cast<double>(t.pids);
     }},
    {"fleetlet_app_pids_limit", Type::kGauge, "The app's pids limit (absent: none).",
     [](const containerd::TaskMetrics& t) { return optional(t.pids_limit); }},
    {"fleetlet_app_oom_kills_total", Type::kCounter,
     "Processes of the app's current task the OOM killer ended.",
     [](const containerd::TaskMetrics& t) -> std::optional<double> {
       return static_cast<double>(t.oom_kills);
     }},
};

template <typename T>
std::optional<T> logged(Result<T> r, std::string_view what) {
  if (r) return std::move(*r);
  spdlog::debug("metrics: {}: {}", what, r.error().message());
  return std::nullopt;
}

}  // namespace

const std::vector<double> AgentMetrics::kDurationBuckets = {0.001, 0.005, 0.01, 0.05, 0.1,
                                                            0.5,   1,     5,    30,   120};

AgentMetrics::AgentMetrics(AgentMetricsSources sources)
    : sources_(std::move(sources)),
      passes_("fleetlet_reconcile_passes_total",
              "Reconcile work items finished: one app worked on, or a resync of every container.",
              {"kind"}),
      pass_duration_("fleetlet_reconcile_duration_seconds",
                     "How long one reconcile work item (an app's pass or a resync) took.",
                     kDurationBuckets),
      pulls_("fleetlet_image_pulls_total", "Image pulls by result (an image present is no pull).",
             {"result"}),
      pull_bytes_("fleetlet_image_pull_bytes_total", "Layer bytes transferred by image pulls.") {
  passes_.touch({"app"});
  passes_.touch({"resync"});
  pulls_.touch({"ok"});
  pulls_.touch({"error"});
}

void AgentMetrics::worked(const std::string& app, std::chrono::nanoseconds took) {
  passes_.inc({app.empty() ? "resync" : "app"});
  pass_duration_.observe(std::chrono::duration<double>(took).count());
}

void AgentMetrics::pulled(const Status& outcome, int64_t fetched_bytes) {
  pulls_.inc({outcome ? "ok" : "error"});
  if (fetched_bytes > 0) pull_bytes_.inc({}, static_cast<double>(fetched_bytes));
}

Sample AgentMetrics::sample() const {
  const auto began = std::chrono::steady_clock::now();
  Sample s;
  s.at = std::chrono::system_clock::now();
  s.cpu = logged(readCpuTimes(sources_.proc), "node cpu");
  s.memory = logged(readMemoryInfo(sources_.proc), "node memory");
  if (!sources_.data_dir.empty()) s.disk = logged(readDiskInfo(sources_.data_dir), "data disk");
  s.self = logged(readSelf(sources_.proc), "fleetletd process");
  std::map<std::string, containerd::TaskMetrics> tasks;
  if (sources_.task_metrics) {
    auto t = logged(sources_.task_metrics(), "containerd task metrics");
    s.containerd_up = t.has_value();
    if (t) tasks = std::move(*t);
  }
  std::map<std::string, core::AppNetworkStatus> network;
  if (sources_.network) {
    if (auto n = logged(sources_.network(), "firewall counters")) network = std::move(*n);
  }
  if (sources_.apps) {
    if (auto apps = logged(sources_.apps(), "apps")) {
      for (auto& a : *apps) {
        AppSample out{.status = std::move(a)};
        if (auto it = tasks.find(out.status.container_id);
            it != tasks.end() && !out.status.container_id.empty()) {
          out.resources = it->second;
        }
        if (auto it = network.find(out.status.name); it != network.end()) {
          out.network = it->second;
        }
        s.apps.push_back(std::move(out));
      }
    }
  }
  if (sources_.outbox) s.outbox = logged(sources_.outbox(), "status outbox");
  if (sources_.cloud_polls) s.cloud_polls = sources_.cloud_polls();
  s.took_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  return s;
}

std::string AgentMetrics::render(const Sample& s) const {
  TextWriter out;
  // --- apps ---
  for (const auto& f : kUsageFamilies) {
    perApp(out, s, f.name, f.type, f.help, [&f](const AppSample& a) -> std::optional<double> {
      if (!a.resources) return std::nullopt;
      return f.value(*a.resources);
    });
  }
  if (out.family("fleetlet_app_restarts_total", Type::kCounter,
                 "Restarts of the app since fleetletd started, by kind of reason (exit, oom, "
                 "health, manual, other).")) {
    for (const auto& a : s.apps) {
      for (const auto& [reason, n] : a.status.restarts_by_reason) {
        out.sample({{"app", a.status.name}, {"reason", reason}}, static_cast<double>(n));
      }
    }
  }
  perApp(out, s, "fleetlet_app_healthy", Type::kGauge,
         "1 while the app passes its health check (or has none), 0 after a failed one.",
         [](const AppSample& a) -> std::optional<double> { return a.status.healthy ? 1 : 0; });
  if (out.family("fleetlet_app_state", Type::kGauge,
                 "1 for the app's current state (running, backoff, pulling, ...; "
                 "docs/local-api.md).")) {
    for (const auto& a : s.apps) {
      out.sample({{"app", a.status.name}, {"state", a.status.state}}, 1);
    }
  }
  for (auto [name, help, packets] :
       {std::tuple{"fleetlet_app_network_bytes_total",
                   "Bytes through the app's firewall by direction (egress, ingress, dropped).",
                   false},
        std::tuple{"fleetlet_app_network_packets_total",
                   "Packets through the app's firewall by direction (egress, ingress, dropped).",
                   true}}) {
    bool opened = false;
    for (const auto& a : s.apps) {
      if (!a.network) continue;
      if (!opened && !(opened = out.family(name, Type::kCounter, help))) break;
      for (auto [direction, c] :
           {std::pair{"egress", a.network->egress}, std::pair{"ingress", a.network->ingress},
            std::pair{"dropped", a.network->dropped}}) {
        out.sample({{"app", a.status.name}, {"direction", direction}},
                   static_cast<double>(packets ? c.packets : c.bytes));
      }
    }
  }
  // --- node ---
  if (s.cpu && out.family("fleetlet_node_cpu_seconds_total", Type::kCounter,
                          "CPU time of the node, summed over its CPUs, by mode.")) {
    for (const auto& [mode, v] : s.cpu->seconds) out.sample({{"mode", mode}}, v);
  }
  if (s.cpu && out.family("fleetlet_node_cpus", Type::kGauge, "CPUs of the node.")) {
    out.sample({}, s.cpu->cpus);
  }
  if (s.memory) {
    if (out.family("fleetlet_node_memory_total_bytes", Type::kGauge, "The node's memory.")) {
      out.sample({}, static_cast<double>(s.memory->total_bytes));
    }
    if (out.family("fleetlet_node_memory_available_bytes", Type::kGauge,
                   "Memory available for new work without swapping (MemAvailable).")) {
      out.sample({}, static_cast<double>(s.memory->available_bytes));
    }
  }
  if (s.disk) {
    const Labels path{{"path", sources_.data_dir.string()}};
    if (out.family("fleetlet_node_disk_total_bytes", Type::kGauge,
                   "Size of the filesystem holding fleetletd's data directory.")) {
      out.sample(path, static_cast<double>(s.disk->total_bytes));
    }
    if (out.family("fleetlet_node_disk_free_bytes", Type::kGauge,
                   "Free space (for unprivileged users) on the data directory's filesystem.")) {
      out.sample(path, static_cast<double>(s.disk->free_bytes));
    }
  }
  if (out.family("fleetlet_containerd_up", Type::kGauge,
                 "1 when containerd answered this scrape's Tasks.Metrics call.")) {
    out.sample({}, s.containerd_up ? 1 : 0);
  }
  // --- fleetletd ---
  passes_.write(out);
  pass_duration_.write(out);
  pulls_.write(out);
  pull_bytes_.write(out);
  if (!s.cloud_polls.empty() &&
      out.family("fleetlet_cloud_polls_total", Type::kCounter,
                 "Polls of the cloud's manifest URL by result (not_modified, applied, "
                 "unchanged, refused, failed).")) {
    for (const auto& [result, n] : s.cloud_polls) {
      out.sample({{"result", result}}, static_cast<double>(n));
    }
  }
  if (s.outbox) {
    if (out.family("fleetlet_status_outbox_reports", Type::kGauge,
                   "Status reports waiting in the outbox for the cloud.")) {
      out.sample({}, static_cast<double>(s.outbox->first));
    }
    if (out.family("fleetlet_status_outbox_bytes", Type::kGauge,
                   "Bytes of the status reports waiting in the outbox.")) {
      out.sample({}, static_cast<double>(s.outbox->second));
    }
  }
  if (s.self) {
    if (out.family("process_cpu_seconds_total", Type::kCounter,
                   "CPU time fleetletd used (user and system).")) {
      out.sample({}, s.self->cpu_seconds);
    }
    if (out.family("process_resident_memory_bytes", Type::kGauge, "fleetletd's resident memory.")) {
      out.sample({}, static_cast<double>(s.self->resident_bytes));
    }
  }
  if (out.family("fleetlet_metrics_sample_seconds", Type::kGauge,
                 "How long reading this scrape's samples took.")) {
    out.sample({}, s.took_seconds);
  }
  if (out.dropped() > 0) spdlog::warn("metrics: {} invalid samples dropped", out.dropped());
  return out.take();
}

Json AgentMetrics::toJson(const Sample& s) {
  Json apps = Json::array();
  for (const auto& a : s.apps) {
    Json j{{"name", a.status.name},
           {"runtime", a.status.runtime},
           {"state", a.status.state},
           {"healthy", a.status.healthy},
           {"restarts", a.status.restarts}};
    if (a.resources) {
      j["cpuSeconds"] = static_cast<double>(a.resources->cpu_ns) / 1e9;
      j["memoryBytes"] = a.resources->memory_bytes;
      j["memoryMaxBytes"] = a.resources->memory_max_bytes;
      j["memoryLimitBytes"] =
          a.resources->memory_limit_bytes ? Json(*a.resources->memory_limit_bytes) : Json(nullptr);
      j["pids"] = a.resources->pids;
    }
    if (a.network) {
      j["network"] = {{"egressBytes", a.network->egress.bytes},
                      {"ingressBytes", a.network->ingress.bytes},
                      {"droppedBytes", a.network->dropped.bytes}};
    }
    apps.push_back(std::move(j));
  }
  Json node{{"containerdUp", s.containerd_up}};
  if (s.cpu) {
    node["cpuSeconds"] = s.cpu->total();
    node["idleSeconds"] = s.cpu->seconds.contains("idle") ? s.cpu->seconds.at("idle") : 0.0;
    node["cpus"] = s.cpu->cpus;
  }
  if (s.memory) {
    node["memoryTotalBytes"] = s.memory->total_bytes;
    node["memoryAvailableBytes"] = s.memory->available_bytes;
  }
  if (s.disk) {
    node["diskTotalBytes"] = s.disk->total_bytes;
    node["diskFreeBytes"] = s.disk->free_bytes;
  }
  return Json{{"time", seconds(s.at)}, {"node", std::move(node)}, {"apps", std::move(apps)}};
}

}  // namespace fleetlet::monitoring
