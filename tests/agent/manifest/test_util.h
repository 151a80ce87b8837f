#pragma once
// Shared helpers for the manifest tests.

#include <string>
#include <string_view>

namespace fleetlet::manifest::testing {

// A whole manifest around `apps`: YAML lines of the `apps` map, indented by the caller or
// written in flow style ("a: {image: busybox}").
inline std::string withApps(std::string_view apps, int revision = 1) {
  std::string out =
      "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: " + std::to_string(revision) +
      "\napps:\n";
  size_t start = 0;
  while (start < apps.size()) {
    size_t end = apps.find('\n', start);
    if (end == std::string_view::npos) end = apps.size();
    out += "  ";
    out += apps.substr(start, end - start);
    out += "\n";
    start = end + 1;
  }
  return out;
}

// The manifest of DESIGN.md's "Desired state" section.
inline constexpr std::string_view kDesignExample = R"(apiVersion: fleetlet.io/v1
kind: NodeState
revision: 7                       # strictly increasing; older revisions are refused
apps:
  camera:
    runtime: container            # container | native | webview
    image: 127.0.0.1:5000/acme/camera:1.4     # tag or @sha256 digest
    args: ["/bin/camera", "--fps", "2"]
    env: {CAMERA_ID: cam-7}
    resources: {cpu: 0.5, memory: 64Mi, pids: 64}
    restart: {policy: always}     # always | on-failure | never
    health: {http: {port: 8080, path: /healthz}, interval: 10s, failures: 3}
    services: [events, blobs, logs]
    network: {egress: none, expose: [{port: 8080, hostPort: 18080}]}
    volumes: [{name: photos, path: /data}]
    dependsOn: []
  plc-bridge:
    runtime: native
    exec: {path: /opt/plc/bridge, args: ["--bus", "1"]}
  inspector-ui:
    runtime: webview
    bundle: {url: https://example.com/ui-2.1.tar.gz, sha256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
)";

}  // namespace fleetlet::manifest::testing
