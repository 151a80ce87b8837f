// spec_hash and canonicalJson: stable across formats, key order and equivalent spellings;
// different whenever a field differs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crypto/sha256.h"
#include "manifest/parse.h"
#include "manifest/yaml_json.h"
#include "test_util.h"

namespace fleetlet::manifest {
namespace {

using testing::kDesignExample;
using testing::withApps;

NodeState parseOk(std::string_view text) {
  auto state = parseNodeState(text);
  EXPECT_TRUE(state) << state.error().message() << "\n" << text;
  return state ? *state : NodeState{};
}

std::string hashOf(std::string_view app_yaml) {
  NodeState s = parseOk(withApps("dep: {image: busybox}\n" + std::string(app_yaml)));
  return s.apps.contains("a") ? s.apps.at("a").spec_hash : "";
}

TEST(HashTest, YamlAndJsonGiveTheSameHashes) {
  NodeState from_yaml = parseOk(kDesignExample);
  auto json = manifestToJson(kDesignExample);
  ASSERT_TRUE(json);
  NodeState from_json = parseOk(json->dump(2));
  ASSERT_EQ(from_yaml.apps.size(), from_json.apps.size());
  for (const auto& [name, app] : from_yaml.apps) {
    EXPECT_EQ(app.spec_hash, from_json.apps.at(name).spec_hash) << name;
  }
}

TEST(HashTest, HandWrittenJsonInAnotherKeyOrderMatchesYaml) {
  const std::string yaml = withApps(
      "a: {image: busybox, args: [sh, -c, \"sleep 1\"], resources: {memory: 64Mi, cpu: 0.5}, "
      "env: {B: \"2\", A: \"1\"}, network: {expose: [{port: 80, hostPort: 8080}]}}");
  const std::string json = R"({
    "apps": {"a": {
      "network": {"expose": [{"hostPort": 8080, "port": 80}]},
      "env": {"A": "1", "B": "2"},
      "resources": {"cpu": 0.5, "memory": "64Mi"},
      "args": ["sh", "-c", "sleep 1"],
      "image": "busybox"}},
    "revision": 1, "kind": "NodeState", "apiVersion": "fleetlet.io/v1"})";
  EXPECT_EQ(parseOk(yaml).apps.at("a").spec_hash, parseOk(json).apps.at("a").spec_hash);
}

TEST(HashTest, EquivalentSpellingsHashTheSame) {
  const std::pair<std::string, std::string> same[] = {
      {"a: {image: busybox, resources: {memory: 64Mi}}",
       "a: {image: busybox, resources: {memory: 67108864}}"},
      {"a: {image: busybox, resources: {memory: 8Mi}}",
       "a: {image: busybox, resources: {memory: \"8388608\"}}"},
      {"a: {image: busybox, resources: {cpu: 500m}}", "a: {image: busybox, resources: {cpu: 0.5}}"},
      {"a: {image: busybox, resources: {cpu: 2}}",
       "a: {image: busybox, resources: {cpu: \"2.0\"}}"},
      {"a: {image: busybox, stopGracePeriod: 90s}", "a: {image: busybox, stopGracePeriod: 1m30s}"},
      {"a: {image: busybox}", "a: {image: busybox, stopGracePeriod: 10000ms}"},
      {"a: {image: busybox}", "a: {image: docker.io/library/busybox:latest}"},
      {"a: {image: busybox}", "a: {runtime: container, image: busybox, restart: {policy: always}}"},
      {"a: {image: busybox}", "a: {image: busybox, update: {strategy: download-then-kill}}"},
      {"a: {image: busybox}", "a: {image: busybox, network: {egress: all, expose: []}}"},
      {"a: {image: busybox}", "a: {image: busybox, args: [], env: {}, volumes: [], services: []}"},
      {"a: {image: busybox}", "a: {image: busybox, health: ~, dependsOn: ~}"},
      {"a: {image: busybox, services: [logs, events]}",
       "a: {image: busybox, services: [events, logs]}"},
      {"a: {image: busybox, network: {expose: [{port: 80}]}}",
       "a: {image: busybox, network: {expose: [{port: 80, hostPort: 80, protocol: tcp}]}}"},
      {"a: {image: busybox, health: {http: {port: 1}}}",
       "a: {image: busybox, health: {http: {port: 1, path: /}, interval: 10s, timeout: 2s, "
       "failures: 3}}"},
      {"a: {image: busybox, volumes: [{name: v, path: /data/}]}",
       "a: {image: busybox, volumes: [{name: v, path: /data, readOnly: false}]}"},
      {"a: {image: busybox, workingDir: /srv/}", "a: {image: busybox, workingDir: //srv}"},
  };
  for (const auto& [x, y] : same) {
    SCOPED_TRACE(x + "  vs  " + y);
    EXPECT_EQ(hashOf(x), hashOf(y));
    EXPECT_FALSE(hashOf(x).empty());
  }
}

TEST(HashTest, EveryFieldChangesTheHash) {
  const std::string base = "a: {image: busybox}";
  const std::string variants[] = {
      "a: {image: busybox:1}",
      "a: {image: busybox, args: [sh]}",
      "a: {image: busybox, args: [sh, -c]}",
      "a: {image: busybox, env: {A: \"\"}}",
      "a: {image: busybox, user: \"1\"}",
      "a: {image: busybox, workingDir: /srv}",
      "a: {image: busybox, resources: {cpu: 1}}",
      "a: {image: busybox, resources: {memory: 64Mi}}",
      "a: {image: busybox, resources: {pids: 10}}",
      "a: {image: busybox, restart: {policy: never}}",
      "a: {image: busybox, restart: {policy: on-failure}}",
      "a: {image: busybox, health: {tcp: {port: 1}}}",
      "a: {image: busybox, health: {http: {port: 1}}}",
      "a: {image: busybox, health: {exec: {command: [\"true\"]}}}",
      "a: {image: busybox, services: [logs]}",
      "a: {image: busybox, network: {egress: none}}",
      "a: {image: busybox, network: {egress: local}}",
      "a: {image: busybox, network: {allow: [dep]}}",
      "a: {image: busybox, network: {allow: [10.0.0.0/8]}}",
      "a: {image: busybox, network: {mode: host}}",
      "a: {image: busybox, network: {expose: [{port: 80}]}}",
      "a: {image: busybox, volumes: [{name: v, path: /v}]}",
      "a: {image: busybox, dependsOn: [dep]}",
      "a: {image: busybox, update: {strategy: kill-then-download}}",
      "a: {image: busybox, stopGracePeriod: 11s}",
      "a: {runtime: native, exec: {path: /bin/sh}}",
      "a: {runtime: webview, bundle: {url: \"https://x.test/u\", sha256: " + std::string(64, 'a') +
          "}}",
  };
  std::set<std::string> hashes{hashOf(base)};
  for (const auto& v : variants) {
    SCOPED_TRACE(v);
    const std::string h = hashOf(v);
    ASSERT_FALSE(h.empty());
    EXPECT_TRUE(hashes.insert(h).second) << "hash collides with an earlier variant";
  }
}

// network.allow and network.mode came later: apps that do not use them keep the hashes they
// had before (pinned from that version), so upgrading fleetletd restarts nothing.
TEST(HashTest, AppsWithoutTheNewerNetworkFieldsKeepTheirHashes) {
  NodeState s =
      parseOk(withApps("a: {image: busybox, network: {egress: none, expose: [{port: 80}]}}\n"
                       "b: {image: busybox}"));
  EXPECT_EQ(s.apps.at("a").spec_hash,
            "aa5f50e50bc08d2b0cf20e58046ac1ec627a00b9334fee47800b14802d7a7f56");
  EXPECT_EQ(s.apps.at("b").spec_hash,
            "0b59169519ef1051652436c821222745e0ef52addf42a2ce6438309422747714");
  NodeState explicit_defaults = parseOk(
      withApps("a: {image: busybox, network: {egress: none, expose: [{port: 80}], allow: [], "
               "mode: isolated}}\nb: {image: busybox}"));
  EXPECT_EQ(explicit_defaults.apps.at("a").spec_hash, s.apps.at("a").spec_hash);
}

TEST(HashTest, NestedValuesChangeTheHash) {
  const std::string pairs[][2] = {
      {"a: {image: busybox, health: {tcp: {port: 1}}}",
       "a: {image: busybox, health: {tcp: {port: 2}}}"},
      {"a: {image: busybox, health: {tcp: {port: 1}}}",
       "a: {image: busybox, health: {tcp: {port: 1}, interval: 11s}}"},
      {"a: {image: busybox, health: {tcp: {port: 1}}}",
       "a: {image: busybox, health: {tcp: {port: 1}, timeout: 3s}}"},
      {"a: {image: busybox, health: {tcp: {port: 1}}}",
       "a: {image: busybox, health: {tcp: {port: 1}, failures: 4}}"},
      {"a: {image: busybox, health: {http: {port: 1}}}",
       "a: {image: busybox, health: {http: {port: 1, path: /x}}}"},
      {"a: {image: busybox, network: {expose: [{port: 80}]}}",
       "a: {image: busybox, network: {expose: [{port: 80, hostPort: 81}]}}"},
      {"a: {image: busybox, network: {expose: [{port: 80}]}}",
       "a: {image: busybox, network: {expose: [{port: 80, protocol: udp}]}}"},
      {"a: {image: busybox, volumes: [{name: v, path: /v}]}",
       "a: {image: busybox, volumes: [{name: v, path: /v, readOnly: true}]}"},
      {"a: {image: busybox, volumes: [{name: v, path: /v}]}",
       "a: {image: busybox, volumes: [{name: w, path: /v}]}"},
      {"a: {image: busybox, args: [x, y]}", "a: {image: busybox, args: [y, x]}"},
      {"a: {image: busybox, env: {A: x}}", "a: {image: busybox, env: {A: y}}"},
      {"a: {runtime: native, exec: {path: /x}}",
       "a: {runtime: native, exec: {path: /x, args: [1a]}}"},
      {"a: {image: busybox, resources: {cpu: 0.5}}",
       "a: {image: busybox, resources: {cpu: 0.501}}"},
      {"a: {runtime: native, exec: {path: /x}, sandbox: {level: process}}",
       "a: {runtime: native, exec: {path: /x}, sandbox: {level: contained}}"},
      {"a: {runtime: native, exec: {path: /x}}",
       "a: {runtime: native, exec: {path: /x}, sandbox: {level: process}}"},
      {"a: {runtime: native, exec: {path: /x}, sandbox: {capabilities: [CAP_NET_RAW]}}",
       "a: {runtime: native, exec: {path: /x}, sandbox: {capabilities: [CAP_NET_ADMIN]}}"},
  };
  for (const auto& [x, y] : pairs) {
    SCOPED_TRACE(x + "  vs  " + y);
    EXPECT_NE(hashOf(x), hashOf(y));
  }
}

TEST(HashTest, OtherAppsAndRevisionDoNotChangeTheHash) {
  const std::string a = "a: {image: busybox, args: [sh]}";
  NodeState one = parseOk(withApps(a, 1));
  NodeState two = parseOk(withApps(a + "\nb: {image: busybox, dependsOn: [a]}", 2));
  EXPECT_EQ(one.apps.at("a").spec_hash, two.apps.at("a").spec_hash);
}

TEST(HashTest, AppNameIsPartOfTheHash) {
  NodeState s = parseOk(withApps("a: {image: busybox}\nb: {image: busybox}"));
  EXPECT_NE(s.apps.at("a").spec_hash, s.apps.at("b").spec_hash);
}

TEST(HashTest, CanonicalJsonIsSortedFilledAndParsesBackToTheSameHash) {
  NodeState s = parseOk(kDesignExample);
  for (const auto& [name, app] : s.apps) {
    SCOPED_TRACE(name);
    Json canonical = canonicalJson(app);
    EXPECT_EQ(canonical["name"], name);
    EXPECT_TRUE(canonical.contains("stopGracePeriod"));
    EXPECT_TRUE(canonical["resources"].contains("cpu"));
    EXPECT_EQ(sha256Hex(canonical.dump(-1, ' ', false, Json::error_handler_t::replace)),
              app.spec_hash);
    // Without its name (the key in `apps`) and with unset optionals dropped, the canonical
    // JSON is itself a valid app.
    canonical.erase("name");
    Json doc = {{"apiVersion", "fleetlet.io/v1"},
                {"kind", "NodeState"},
                {"revision", 1},
                {"apps", {{name, canonical}}}};
    NodeState again = parseOk(doc.dump());
    EXPECT_EQ(again.apps.at(name).spec_hash, app.spec_hash);
  }
  EXPECT_EQ(canonicalJson(s.apps.at("camera"))["image"], "127.0.0.1:5000/acme/camera:1.4");
  EXPECT_EQ(canonicalJson(s.apps.at("camera"))["resources"]["memory"], 67108864);
}

}  // namespace
}  // namespace fleetlet::manifest
