// fleetletd's config file: the node, trust and cloud sections (docs/fleetletd.md).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "config/daemon_config.h"
#include "support/temp_dir.h"

namespace fleetlet::config {
namespace {

using ::testing::HasSubstr;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fleetlet::testing::TempDir::create("config-test");
    ASSERT_TRUE(dir.has_value());
    dir_ = std::make_unique<fleetlet::testing::TempDir>(std::move(*dir));
  }
  Result<DaemonConfig> load(const std::string& yaml) {
    auto path = dir_->path() / "fleetletd.yaml";
    std::ofstream(path) << yaml;
    return loadConfigFile(path, DaemonConfig{});
  }
  std::unique_ptr<fleetlet::testing::TempDir> dir_;
};

TEST_F(ConfigTest, CloudTrustAndNodeSections) {
  auto cfg = load(
      "node: {id: edge-7}\n"
      "trust:\n"
      "  keys: [fleet.pub, /etc/fleetlet/backup.pub]\n"
      "  threshold: 2\n"
      "  allowUnsigned: local\n"
      "cloud:\n"
      "  manifestUrl: https://cloud.example/nodes/{node}.dsse.json\n"
      "  statusUrl: https://cloud.example/status/{node}/{seq}.json\n"
      "  statusInterval: 5s\n"
      "  interval: 30s\n"
      "  wait: 20s\n"
      "  maxManifestBytes: 65536\n"
      "  tls:\n"
      "    cert: node.crt\n"
      "    key: node.key\n"
      "    ca: /etc/fleetlet/ca.pem\n"
      "    pinnedPublicKeys: [\"sha256//AAAA\"]\n");
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  EXPECT_EQ(cfg->node_id, "edge-7");
  ASSERT_EQ(cfg->trust_keys.size(), 2U);
  EXPECT_EQ(cfg->trust_keys[0], dir_->path() / "fleet.pub");  // relative to the config file
  EXPECT_EQ(cfg->trust_keys[1], "/etc/fleetlet/backup.pub");
  EXPECT_EQ(cfg->trust_threshold, 2);
  EXPECT_TRUE(cfg->allow_unsigned_local);
  EXPECT_EQ(cfg->cloud.manifest_url, "https://cloud.example/nodes/{node}.dsse.json");
  EXPECT_EQ(cfg->cloud.status_url, "https://cloud.example/status/{node}/{seq}.json");
  EXPECT_EQ(cfg->cloud.status_method, "PUT");
  EXPECT_EQ(cfg->cloud.interval, std::chrono::seconds(30));
  EXPECT_EQ(cfg->cloud.status_interval, std::chrono::seconds(5));
  EXPECT_EQ(cfg->cloud.wait, std::chrono::seconds(20));
  EXPECT_EQ(cfg->cloud.max_manifest_bytes, 65536);
  EXPECT_EQ(cfg->cloud.tls.cert, dir_->path() / "node.crt");
  EXPECT_EQ(cfg->cloud.tls.ca, "/etc/fleetlet/ca.pem");
  EXPECT_EQ(cfg->cloud.tls.pinned_public_keys, std::vector<std::string>{"sha256//AAAA"});
}

TEST_F(ConfigTest, DefaultsAreSignedOnlyAndAMinuteApart) {
  auto cfg = load("logLevel: info\n");
  ASSERT_TRUE(cfg.has_value());
  EXPECT_FALSE(cfg->allow_unsigned_local);
  EXPECT_EQ(cfg->trust_threshold, 1);
  EXPECT_EQ(cfg->cloud.interval, std::chrono::seconds(60));
  EXPECT_EQ(cfg->cloud.wait, std::chrono::seconds(55));
  EXPECT_TRUE(cfg->cloud.manifest_url.empty());
}

TEST_F(ConfigTest, ShipLogsIsUnsetUnlessSaid) {
  auto unset = load("streamsHandoff: /run/fleetlet/streams.sock\n");
  ASSERT_TRUE(unset) << unset.error().message();
  EXPECT_EQ(unset->ship_logs, std::nullopt);
  auto off = load("shipLogs: false\n");
  ASSERT_TRUE(off) << off.error().message();
  EXPECT_EQ(off->ship_logs, false);
  auto bad = load("shipLogs: sometimes\n");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("shipLogs"));
}

// System apps (docs/services.md): the system manifest, its images and the handoff directory.
TEST_F(ConfigTest, SystemAppKeysAndTheirDefaults) {
  auto defaults = load("logLevel: info\n");
  ASSERT_TRUE(defaults.has_value());
  EXPECT_EQ(defaults->system_manifest, "/usr/share/fleetlet/system/node-services.yaml");
  EXPECT_EQ(defaults->system_images, "/usr/share/fleetlet/images");
  EXPECT_EQ(defaults->handoff_dir, "/run/fleetlet/handoff");
  EXPECT_TRUE(defaults->streams_handoff.empty());
  auto cfg = load(
      "systemManifest: /etc/fleetlet/system.yaml\nsystemImages: /opt/images\n"
      "handoffDir: /run/fl/handoff\n");
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  EXPECT_EQ(cfg->system_manifest, "/etc/fleetlet/system.yaml");
  EXPECT_EQ(cfg->system_images, "/opt/images");
  EXPECT_EQ(cfg->handoff_dir, "/run/fl/handoff");
  auto bad = load("handoffDir: [a]\n");
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message(), HasSubstr("handoffDir"));
}

TEST_F(ConfigTest, MistakesNameTheKey) {
  struct Case {
    std::string yaml, reason;
  };
  const Case cases[] = {
      {"cloud: {manifestURL: x}\n", "unknown key \"cloud.manifestURL\""},
      {"cloud: {tls: {certificate: x}}\n", "unknown key \"cloud.tls.certificate\""},
      {"cloud: {interval: 10}\n", "cloud.interval: \"10\" is not a duration"},
      {"cloud: {interval: 100ms}\n", "cloud.interval: must be at least 1s"},
      {"cloud: {statusMethod: PATCH}\n", "cloud.statusMethod: \"PATCH\" is not PUT or POST"},
      {"cloud: {tls: {pinnedPublicKeys: [abc]}}\n", "is not a sha256//<base64> pin"},
      {"trust: {allowUnsigned: cloud}\n", "trust.allowUnsigned: \"cloud\" is not a source"},
      {"trust: {threshold: 0}\n", "trust.threshold: must be at least 1"},
      {"trust: {keys: a.pub}\n", "trust.keys: expected a list"},
      {"node: {name: x}\n", "unknown key \"node.name\""},
      {"trust: [a]\n", "trust: expected a mapping"},
      {"alerts: {rule: [x]}\n", "unknown key \"alerts.rule\""},
      {"alerts: {interval: 500ms}\n", "alerts.interval: must be at least 1s"},
      {"alerts: {rules: \"app cpu > 90%\"}\n", "alerts.rules: expected a list"},
  };
  for (const auto& c : cases) {
    auto cfg = load(c.yaml);
    ASSERT_FALSE(cfg.has_value()) << c.yaml;
    EXPECT_THAT(cfg.error().message(), HasSubstr(c.reason)) << c.yaml;
  }
}

TEST_F(ConfigTest, AlertsSectionAndMetricsListen) {
  auto cfg = load(
      "metricsListen: 127.0.0.1:9477\n"
      "alerts:\n  interval: 5s\n  continueEvery: 2m\n  eventsUrl: http://127.0.0.1:4454\n"
      "  rules: [\"app cpu > 90% for 60s\", \"node disk free < 500Mi\"]\n");
  ASSERT_TRUE(cfg) << cfg.error().message();
  EXPECT_EQ(cfg->metrics_listen, "127.0.0.1:9477");
  EXPECT_EQ(cfg->alerts.interval, std::chrono::seconds(5));
  EXPECT_EQ(cfg->alerts.continue_every, std::chrono::minutes(2));
  EXPECT_EQ(cfg->alerts.events_url, "http://127.0.0.1:4454");
  EXPECT_EQ(cfg->alerts.rules,
            (std::vector<std::string>{"app cpu > 90% for 60s", "node disk free < 500Mi"}));
  EXPECT_TRUE(DaemonConfig{}.alerts.rules.empty());
}

TEST_F(ConfigTest, NodeIdFromConfigOrMachineId) {
  DaemonConfig cfg;
  cfg.node_id_file = dir_->path() / "machine-id";
  std::ofstream(cfg.node_id_file) << "  0123abcd \nsecond\n";
  EXPECT_EQ(resolveNodeId(cfg), "0123abcd");
  cfg.node_id = "edge-7";
  EXPECT_EQ(resolveNodeId(cfg), "edge-7");
  cfg.node_id.clear();
  std::ofstream(cfg.node_id_file) << "\n";
  EXPECT_THAT(resolveNodeId(cfg).error().message(), HasSubstr("is empty (set node.id)"));
  cfg.node_id_file = dir_->path() / "missing";
  EXPECT_EQ(resolveNodeId(cfg).error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace fleetlet::config
