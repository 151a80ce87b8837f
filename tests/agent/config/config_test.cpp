// fleetletd's config file: the node, trust and cloud sections (docs/fleetletd.md).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "config/daemon_config.h"
#include "config/daemon_flags.h"
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
      "  logRequestUrl: https://cloud.example/requests/{node}.json\n"
      "  logUploadMaxBytes: 1048576\n"
      "  logUploadRate: 50000\n"
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
  EXPECT_EQ(cfg->cloud.log_request_url, "https://cloud.example/requests/{node}.json");
  EXPECT_EQ(cfg->cloud.log_upload_max_bytes, 1048576);
  EXPECT_EQ(cfg->cloud.log_upload_rate, 50000);
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
  EXPECT_TRUE(cfg->cloud.log_request_url.empty());
  EXPECT_EQ(cfg->cloud.log_upload_max_bytes, 16 * 1024 * 1024);
  EXPECT_EQ(cfg->cloud.log_upload_rate, 0);
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
      {"cloud: {logUploadRate: -1}\n", "cloud.logUploadRate: must be 0 (no cap) or more"},
      {"cloud: {logUploadMaxBytes: 0}\n", "cloud.logUploadMaxBytes: must be"},
      {"cloud: {tls: {pinnedPublicKeys: [abc]}}\n", "is not a sha256//<base64> pin"},
      {"trust: {allowUnsigned: cloud}\n", "trust.allowUnsigned: \"cloud\" is not a source"},
      {"trust: {threshold: 0}\n", "trust.threshold: must be at least 1"},
      {"trust: {keys: a.pub}\n", "trust.keys: expected a list"},
      {"node: {name: x}\n", "unknown key \"node.name\""},
      {"trust: [a]\n", "trust: expected a mapping"},
      {"alerts: {rule: [x]}\n", "unknown key \"alerts.rule\""},
      {"alerts: {interval: 500ms}\n", "alerts.interval: must be at least 1s"},
      {"alerts: {rules: \"app cpu > 90%\"}\n", "alerts.rules: expected a list"},
      {"parallelism: many\n", "parallelism: \"many\" has the wrong type"},
      {"parallelism: [1]\n", "parallelism: expected a single value"},
      {"pullTimeout: soon\n", "pullTimeout: \"soon\" is not a duration"},
      {"cniBinDirs: /usr/lib/cni\n", "cniBinDirs: expected a list"},
      {"logLevel: loud\n", "logLevel: \"loud\" is not a log level"},
      {"dataDIR: /x\n", "unknown key \"dataDIR\""},
      {"node: {idFile: [a]}\n", "node.idFile: expected a single value"},
      {"runtime: {containerShim: crun}\n",
       "runtime.containerShim: \"crun\" is not a container shim (expected runc or fleetlet)"},
      {"runtime: {shim: fleetlet}\n", "unknown key \"runtime.shim\""},
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

TEST_F(ConfigTest, LoggerAndNodeIdFileKeys) {
  auto cfg = load("logger: /usr/libexec/fleetlet/fleetlet-logger\nnode: {idFile: /etc/node}\n");
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  EXPECT_EQ(cfg->logger, "/usr/libexec/fleetlet/fleetlet-logger");
  EXPECT_EQ(cfg->node_id_file, "/etc/node");
}

// The annotated /etc/fleetlet/config.yaml of the Debian package: it loads, and what it sets is
// the built-in default (a reader can trust its comments).
TEST_F(ConfigTest, ContainerShimDefaultsToFleetletAndNamesItsRuntime) {
  EXPECT_EQ(DaemonConfig{}.container_shim, ContainerShim::kFleetlet);
  EXPECT_EQ(runtimeName(ContainerShim::kRunc), "io.containerd.runc.v2");
  EXPECT_EQ(runtimeName(ContainerShim::kFleetlet), "io.containerd.fleetlet.v1");
  auto cfg = load("runtime:\n  containerShim: fleetlet\n");
  ASSERT_TRUE(cfg) << cfg.error().message();
  EXPECT_EQ(cfg->container_shim, ContainerShim::kFleetlet);
  auto runc = load("runtime: {containerShim: runc}\n");
  ASSERT_TRUE(runc) << runc.error().message();
  EXPECT_EQ(runc->container_shim, ContainerShim::kRunc);
}

TEST_F(ConfigTest, PackagedConfigIsValidAndMatchesTheDefaults) {
  auto cfg = loadConfigFile(FLEETLET_PACKAGED_CONFIG, DaemonConfig{});
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  const DaemonConfig d;
  EXPECT_EQ(cfg->containerd, d.containerd);
  EXPECT_EQ(cfg->ns, d.ns);
  EXPECT_EQ(cfg->data_dir, d.data_dir);
  EXPECT_EQ(cfg->api_socket, d.api_socket);
  EXPECT_EQ(cfg->log_level, d.log_level);
  EXPECT_EQ(cfg->cni_conf_dir, d.cni_conf_dir);
  EXPECT_EQ(cfg->cni_bin_dirs, d.cni_bin_dirs);
  EXPECT_EQ(cfg->system_manifest, d.system_manifest);
  EXPECT_FALSE(cfg->system_manifest_required);
  EXPECT_TRUE(cfg->cloud.manifest_url.empty());
  EXPECT_TRUE(cfg->trust_keys.empty());
  EXPECT_EQ(cfg->container_shim, d.container_shim);
  // Commented-out keys show the default.
  std::stringstream packaged;
  packaged << std::ifstream(FLEETLET_PACKAGED_CONFIG).rdbuf();
  EXPECT_NE(packaged.str().find("#  containerShim: fleetlet\n"), std::string::npos);
}

// fleetletd's flags over its config file (config/daemon_flags.h).
class DaemonFlagsTest : public ConfigTest {
 protected:
  // The settings for a command line, after argv[0].
  // The default config file is one in the test's directory, never the machine's /etc.
  Result<DaemonConfig> resolve(std::vector<std::string> args) {
    CLI::App app;
    DaemonFlags flags;
    addDaemonFlags(app, flags);
    std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
    app.parse(args);
    return resolveDaemonConfig(flags, defaultFile());
  }
  std::filesystem::path defaultFile() const { return dir_->path() / "default-config.yaml"; }
  std::string write(const std::string& yaml, const std::string& name = "config.yaml") {
    auto path = dir_->path() / name;
    std::ofstream(path) << yaml;
    return path.string();
  }
};

TEST_F(DaemonFlagsTest, FlagsOverrideTheFileWhichOverridesDefaults) {
  auto file = write(
      "containerd: /file/containerd.sock\nnamespace: from-file\npullTimeout: 5m\n"
      "plainHttpRegistries: [reg.lan:5000]\ncniBinDirs: [/file/cni]\n");
  auto cfg = resolve({"--config", file, "--namespace", "from-flag", "--pull-timeout", "10s",
                      "--plain-http-registry", "other.lan:5000", "--parallelism", "8"});
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  EXPECT_EQ(cfg->containerd, "/file/containerd.sock");  // the file's
  EXPECT_EQ(cfg->ns, "from-flag");                      // the flag's
  EXPECT_EQ(cfg->pull_timeout, std::chrono::seconds(10));
  EXPECT_EQ(cfg->parallelism, 8U);
  EXPECT_EQ(cfg->pull_parallelism, DaemonConfig{}.pull_parallelism);  // the default
  EXPECT_EQ(cfg->plain_http_registries, (std::set<std::string>{"reg.lan:5000", "other.lan:5000"}));
  EXPECT_EQ(cfg->cni_bin_dirs, std::vector<std::filesystem::path>{"/file/cni"});
  EXPECT_FALSE(cfg->system_manifest_required);
  auto named = resolve({"--config", file, "--system-manifest", "/x/system.yaml"});
  ASSERT_TRUE(named.has_value()) << named.error().message();
  EXPECT_TRUE(named->system_manifest_required);
  // runtime.containerShim: the flag wins over the file.
  auto shim_file = write("runtime: {containerShim: runc}\n", "shim.yaml");
  auto from_file = resolve({"--config", shim_file});
  ASSERT_TRUE(from_file.has_value()) << from_file.error().message();
  EXPECT_EQ(from_file->container_shim, ContainerShim::kRunc);
  auto from_flag = resolve({"--config", shim_file, "--container-shim", "fleetlet"});
  ASSERT_TRUE(from_flag.has_value()) << from_flag.error().message();
  EXPECT_EQ(from_flag->container_shim, ContainerShim::kFleetlet);
}

TEST_F(DaemonFlagsTest, ALoopbackRegistryCanBeNamedHttpsButNotBothWays) {
  auto file = write("httpsRegistries: [127.0.0.1:5443]\n");
  auto cfg = resolve({"--config", file, "--https-registry", "localhost:5443"});
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  EXPECT_EQ(cfg->https_registries, (std::set<std::string>{"127.0.0.1:5443", "localhost:5443"}));
  auto both = resolve({"--config", file, "--plain-http-registry", "127.0.0.1:5443"});
  ASSERT_FALSE(both.has_value());
  EXPECT_NE(both.error().message().find("registry 127.0.0.1:5443 is named both plain HTTP"),
            std::string::npos)
      << both.error().message();
  auto not_a_list = resolve({"--config", write("httpsRegistries: 127.0.0.1:5443\n", "b.yaml")});
  ASSERT_FALSE(not_a_list.has_value());
  EXPECT_NE(not_a_list.error().message().find("httpsRegistries: expected a list"),
            std::string::npos)
      << not_a_list.error().message();
}

TEST_F(DaemonFlagsTest, MistakesNameTheFlagOrTheKey) {
  auto file = write("pullTimeout: 5m\nparallelism: 2\n");
  struct Case {
    std::vector<std::string> args;
    std::string reason;
  };
  const Case cases[] = {
      {{"--config", file, "--pull-timeout", "later"},
       "--pull-timeout: \"later\" is not a duration"},
      {{"--config", file, "--log-level", "chatty"}, "--log-level: \"chatty\" is not a log level"},
      {{"--config", file, "--container-shim", "kata"},
       "--container-shim: \"kata\" is not a container shim"},
      {{"--config", write("pullTimout: 5m\n", "typo.yaml")}, "unknown key \"pullTimout\""},
      {{"--config", write("parallelism: two\n", "type.yaml")},
       "parallelism: \"two\" has the wrong type"},
      {{"--config", (dir_->path() / "missing.yaml").string()}, "missing.yaml does not exist"},
  };
  for (const auto& c : cases) {
    auto cfg = resolve(c.args);
    ASSERT_FALSE(cfg.has_value()) << c.args.back();
    EXPECT_THAT(cfg.error().message(), HasSubstr(c.reason)) << c.args.back();
  }
}

TEST_F(DaemonFlagsTest, WithoutConfigTheDefaultFileIsOptional) {
  ASSERT_FALSE(std::filesystem::exists(defaultFile()));
  auto cfg = resolve({"--containerd", "/x.sock"});
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  EXPECT_EQ(cfg->containerd, "/x.sock");
  EXPECT_EQ(cfg->data_dir, DaemonConfig{}.data_dir);
  // Once it exists, it is read without --config, and flags still win.
  std::ofstream(defaultFile()) << "namespace: from-default\ncontainerd: /from-file.sock\n";
  auto read = resolve({"--containerd", "/x.sock"});
  ASSERT_TRUE(read.has_value()) << read.error().message();
  EXPECT_EQ(read->ns, "from-default");
  EXPECT_EQ(read->containerd, "/x.sock");
}

}  // namespace
}  // namespace fleetlet::config
