#include "monitoring/agent_metrics.h"

#include <gtest/gtest.h>

#include <string>

#include "support/promtool.h"

namespace fleetlet::monitoring {
namespace {

using namespace std::chrono_literals;

bool hasLine(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

core::AppStatus app(std::string name, std::string container_id, std::string state = "running") {
  core::AppStatus a;
  a.name = std::move(name);
  a.runtime = "container";
  a.state = std::move(state);
  a.container_id = std::move(container_id);
  return a;
}

class AgentMetricsTest : public ::testing::Test {
 protected:
  AgentMetricsSources sources() {
    return {.apps = [this]() -> Result<std::vector<core::AppStatus>> { return apps_; },
            .task_metrics = [this]() -> Result<std::map<std::string, containerd::TaskMetrics>> {
              if (!containerd_up_) return fail(ErrorCode::kUnavailable, "containerd is gone");
              return tasks_;
            },
            .network = [this]() -> Result<std::map<std::string, core::AppNetworkStatus>> {
              return network_;
            },
            .outbox = []() -> Result<std::pair<int64_t, int64_t>> {
              return std::pair<int64_t, int64_t>{3, 4096};
            },
            .cloud_polls =
                [] {
                  return std::map<std::string, int64_t>{{"not_modified", 7}, {"applied", 1}};
                },
            .data_dir = "/"};
  }

  std::vector<core::AppStatus> apps_;
  std::map<std::string, containerd::TaskMetrics> tasks_;
  std::map<std::string, core::AppNetworkStatus> network_;
  bool containerd_up_ = true;
};

TEST_F(AgentMetricsTest, AppsCarryTheirCgroupUsageRestartsHealthAndTraffic) {
  auto camera = app("camera", "camera-abc");
  camera.restarts_by_reason = {{"exit", 2}, {"oom", 1}};
  camera.healthy = false;
  apps_ = {camera, app("waiting", "", "pulling")};
  tasks_["camera-abc"] = {.cpu_ns = 2'500'000'000,
                          .memory_bytes = 16 * 1024 * 1024,
                          .memory_max_bytes = 20 * 1024 * 1024,
                          .memory_limit_bytes = 64 * 1024 * 1024,
                          .pids = 3,
                          .pids_limit = 64,
                          .oom_kills = 1};
  tasks_["stranger"] = {.cpu_ns = 1};  // not an app's container: not shown
  network_["camera"] = {.egress = {.packets = 10, .bytes = 1000},
                        .ingress = {.packets = 5, .bytes = 500},
                        .dropped = {.packets = 1, .bytes = 60}};
  AgentMetrics metrics(sources());
  auto text = metrics.render(metrics.sample());
  for (const auto* line : {
           "fleetlet_app_cpu_seconds_total{app=\"camera\"} 2.5",
           "fleetlet_app_memory_bytes{app=\"camera\"} 16777216",
           "fleetlet_app_memory_max_bytes{app=\"camera\"} 20971520",
           "fleetlet_app_memory_limit_bytes{app=\"camera\"} 67108864",
           "fleetlet_app_pids{app=\"camera\"} 3",
           "fleetlet_app_pids_limit{app=\"camera\"} 64",
           "fleetlet_app_oom_kills_total{app=\"camera\"} 1",
           "fleetlet_app_restarts_total{app=\"camera\",reason=\"exit\"} 2",
           "fleetlet_app_restarts_total{app=\"camera\",reason=\"oom\"} 1",
           "fleetlet_app_healthy{app=\"camera\"} 0",
           "fleetlet_app_healthy{app=\"waiting\"} 1",
           "fleetlet_app_state{app=\"camera\",state=\"running\"} 1",
           "fleetlet_app_state{app=\"waiting\",state=\"pulling\"} 1",
           "fleetlet_app_network_bytes_total{app=\"camera\",direction=\"egress\"} 1000",
           "fleetlet_app_network_packets_total{app=\"camera\",direction=\"dropped\"} 1",
           "fleetlet_containerd_up 1",
           "fleetlet_status_outbox_reports 3",
           "fleetlet_status_outbox_bytes 4096",
           "fleetlet_cloud_polls_total{result=\"not_modified\"} 7",
       }) {
    EXPECT_TRUE(hasLine(text, line)) << line << "\n" << text;
  }
  // An app without a task has no usage series; a container that is no app's is not shown.
  EXPECT_EQ(text.find("fleetlet_app_memory_bytes{app=\"waiting\"}"), std::string::npos);
  EXPECT_EQ(text.find("stranger"), std::string::npos);
  EXPECT_EQ(testing::promtoolProblems(text), "") << text;
}

TEST_F(AgentMetricsTest, ContainerdDownIsZeroAndLeavesOutUsageButNotStatus) {
  apps_ = {app("camera", "camera-abc")};
  tasks_["camera-abc"] = {.cpu_ns = 1};
  containerd_up_ = false;
  AgentMetrics metrics(sources());
  auto text = metrics.render(metrics.sample());
  EXPECT_TRUE(hasLine(text, "fleetlet_containerd_up 0")) << text;
  EXPECT_EQ(text.find("fleetlet_app_cpu_seconds_total"), std::string::npos) << text;
  EXPECT_TRUE(hasLine(text, "fleetlet_app_state{app=\"camera\",state=\"running\"} 1")) << text;
}

TEST_F(AgentMetricsTest, NodeAndCountersAreAlwaysThereAndPassTheLinter) {
  AgentMetrics metrics(sources());
  metrics.worked("camera", 20ms);
  metrics.worked("camera", 2s);
  metrics.worked("", 3ms);
  metrics.pulled({}, 1000);
  metrics.pulled(fail(ErrorCode::kUnavailable, "registry down"), 0);
  metrics.pulled({}, 24);
  auto text = metrics.render(metrics.sample());
  for (const auto* line : {
           "fleetlet_reconcile_passes_total{kind=\"app\"} 2",
           "fleetlet_reconcile_passes_total{kind=\"resync\"} 1",
           "fleetlet_reconcile_duration_seconds_bucket{le=\"0.005\"} 1",
           "fleetlet_reconcile_duration_seconds_bucket{le=\"0.05\"} 2",
           "fleetlet_reconcile_duration_seconds_bucket{le=\"+Inf\"} 3",
           "fleetlet_reconcile_duration_seconds_count 3",
           "fleetlet_image_pulls_total{result=\"ok\"} 2",
           "fleetlet_image_pulls_total{result=\"error\"} 1",
           "fleetlet_image_pull_bytes_total 1024",
           "fleetlet_node_disk_total_bytes{path=\"/\"}",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
  for (const auto* family :
       {"fleetlet_node_cpu_seconds_total{mode=\"idle\"}", "fleetlet_node_cpus ",
        "fleetlet_node_memory_total_bytes ", "fleetlet_node_memory_available_bytes ",
        "fleetlet_node_disk_free_bytes{", "process_cpu_seconds_total ",
        "process_resident_memory_bytes ", "fleetlet_metrics_sample_seconds "}) {
    EXPECT_NE(text.find(std::string("\n") + family), std::string::npos) << family << "\n" << text;
  }
  EXPECT_EQ(testing::promtoolProblems(text), "") << text;
}

TEST_F(AgentMetricsTest, TopJsonHasTheAppsUsageAndTheNode) {
  apps_ = {app("camera", "camera-abc")};
  tasks_["camera-abc"] = {.cpu_ns = 1'000'000'000, .memory_bytes = 100, .pids = 2};
  AgentMetrics metrics(sources());
  auto j = AgentMetrics::toJson(metrics.sample());
  ASSERT_EQ(j["apps"].size(), 1U) << j.dump();
  EXPECT_EQ(j["apps"][0]["name"], "camera");
  EXPECT_DOUBLE_EQ(j["apps"][0]["cpuSeconds"].get<double>(), 1.0);
  EXPECT_EQ(j["apps"][0]["memoryBytes"], 100);
  EXPECT_TRUE(j["apps"][0]["memoryLimitBytes"].is_null());
  EXPECT_EQ(j["node"]["containerdUp"], true);
  EXPECT_GT(j["node"]["cpus"].get<int>(), 0);
  EXPECT_GT(j["time"].get<double>(), 0);
}

}  // namespace
}  // namespace fleetlet::monitoring
