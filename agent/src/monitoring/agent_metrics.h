#pragma once
// AgentMetrics: fleetletd's metrics (docs/observability.md). It keeps the counters that
// change as fleetletd works (reconcile passes and their durations, pulls and their bytes) and,
// on each scrape, samples what is read rather than counted: every app's status, its cgroup's
// usage (one Tasks.Metrics call to containerd for all tasks, which also tells whether
// containerd answers), the firewall's counters, the node's CPU, memory and data-dir disk, the
// status outbox and the cloud poll counters. Nothing runs between scrapes: the sampler costs
// only when someone asks.
//
//   monitoring::AgentMetrics metrics({.apps = ..., .task_metrics = ..., .data_dir = dir});
//   reconciler options: .on_worked = [&](auto& app, auto took) { metrics.worked(app, took); }
//   GET /metrics:  metrics.render(metrics.sample())
//
// Concurrency: every method may be called from any thread. sample() blocks (containerd,
// /proc, statvfs) and should run off any event loop; the counters take a short lock.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "containerd/tasks.h"
#include "core/node_service.h"
#include "error/error.h"
#include "json/json.h"
#include "metrics/instruments.h"
#include "monitoring/node_stats.h"

namespace fleetlet::monitoring {

struct AppSample {
  core::AppStatus status;
  std::optional<containerd::TaskMetrics> resources;  // nullopt: no task (or not a cgroup)
  std::optional<core::AppNetworkStatus> network;     // nullopt: no isolated network
};

// One scrape's worth of readings. A reading that failed is nullopt (and its series absent).
struct Sample {
  std::chrono::system_clock::time_point at;
  std::optional<CpuTimes> cpu;
  std::optional<MemoryInfo> memory;
  std::optional<DiskInfo> disk;
  std::optional<ProcessInfo> self;
  bool containerd_up = false;
  std::vector<AppSample> apps;
  std::optional<std::pair<int64_t, int64_t>> outbox;  // reports waiting, their bytes
  std::map<std::string, int64_t> cloud_polls;         // result → polls; empty: no cloud
  double took_seconds = 0;                            // how long sample() took
};

struct AgentMetricsSources {
  // Required: the apps as the local API shows them.
  std::function<Result<std::vector<core::AppStatus>>()> apps;
  // Every task's cgroup usage by container id; an error means containerd did not answer.
  std::function<Result<std::map<std::string, containerd::TaskMetrics>>()> task_metrics;
  // The firewall's counters by app; unset: no app networks.
  std::function<Result<std::map<std::string, core::AppNetworkStatus>>()> network;
  // The status outbox's reports waiting and their bytes; unset: no cloud status.
  std::function<Result<std::pair<int64_t, int64_t>>()> outbox;
  // Cloud polls by result; unset: no cloud source.
  std::function<std::map<std::string, int64_t>()> cloud_polls;
  // The data directory, whose filesystem's size and free space are reported.
  std::filesystem::path data_dir;
  std::filesystem::path proc = "/proc";
};

class AgentMetrics {
 public:
  // Buckets of fleetlet_reconcile_duration_seconds.
  static const std::vector<double> kDurationBuckets;

  explicit AgentMetrics(AgentMetricsSources sources);

  // A work item of the reconciler finished (ReconcilerOptions::on_worked).
  void worked(const std::string& app, std::chrono::nanoseconds took);
  // A pull finished (ContainerdRuntimeOptions::on_pull).
  void pulled(const Status& outcome, int64_t fetched_bytes);

  // Reads everything that is sampled. Blocks; never fails (a failed reading is left out and
  // logged at debug).
  Sample sample() const;
  // The exposition (Prometheus text format 0.0.4) of `sample` and the counters.
  std::string render(const Sample& sample) const;
  // `sample` as JSON for `fleetletctl top` (GET /v1/top, docs/local-api.md).
  static Json toJson(const Sample& sample);

 private:
  AgentMetricsSources sources_;
  metrics::CounterVec passes_;
  metrics::Histogram pass_duration_;
  metrics::CounterVec pulls_;
  metrics::CounterVec pull_bytes_;
};

}  // namespace fleetlet::monitoring
