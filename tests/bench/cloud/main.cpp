// bench_cloud: N simulated nodes — threads running fleetletd's real manifest source (libcurl,
// mTLS, If-None-Match, jitter) and its real trust checks (DSSE, Ed25519, node, revision) —
// polling one Debian nginx (hack/cloud/) that serves one signed envelope per node. Prints the
// requests per second nginx sees, the bytes of an idle (304) poll, and the time from a new
// envelope on disk to the first and the last node applying it; balena's defaults (900 s poll
// plus up to 60 s jitter) are computed on paper for the same fleet.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "cloud/http_fetcher.h"
#include "cloud/loop_thread.h"
#include "cloud/manifest_source.h"
#include "manifest/parse.h"
#include "support/test_cloud.h"
#include "trust/ed25519.h"
#include "trust/envelope.h"
#include "trust/policy.h"

namespace {

using namespace fleetlet;
using Steady = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  fmt::print(stderr, "bench_cloud: {}\n", what);
  std::exit(1);
}

std::string envelopeFor(const trust::PrivateKey& key, int node, int revision) {
  std::string manifest = fmt::format(
      "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: {}\nnode: node-{}\napps:\n"
      "  web: {{image: \"registry.local/web:{}\"}}\n",
      revision, node, revision);
  trust::Envelope env{
      .payload_type = std::string(trust::kPayloadTypeYaml), .payload = manifest, .signatures = {}};
  auto sig = key.sign(trust::pae(env.payload_type, env.payload));
  if (!sig) die(sig.error().message());
  env.signatures.push_back({.keyid = key.publicKey().id(), .sig = *sig});
  return trust::serializeEnvelope(env);
}

// One simulated node: the real source and trust checks; "applying" stores the revision.
struct Node {
  int index = 0;
  std::atomic<int64_t> revision{0};
  std::atomic<int64_t> applied_at_ns{0};  // steady time revision 2 was applied
  std::unique_ptr<cloud::SourceThread> source;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_cloud: N nodes polling one nginx"};
  int nodes = 200;
  int interval_s = 10;
  int duration_s = 60;
  app.add_option("--nodes", nodes, "simulated nodes")->capture_default_str();
  app.add_option("--interval", interval_s, "cloud.interval in seconds")->capture_default_str();
  app.add_option("--duration", duration_s, "seconds of polling (new envelopes at half time)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto cloud = testing::TestCloud::start();
  if (!cloud) die(cloud.error().message());
  auto key = trust::PrivateKey::generate();
  if (!key) die(key.error().message());
  const auto pub = cloud->dir() / "fleet.pub";
  std::ofstream(pub) << key->publicKey().pem();
  auto policy =
      trust::Policy::load({.key_files = {pub}, .threshold = 1, .allow_unsigned_local = false});
  if (!policy) die(policy.error().message());
  for (int i = 0; i < nodes; ++i) {
    if (auto st = cloud->publish(fmt::format("nodes/node-{}.json", i), envelopeFor(*key, i, 1));
        !st) {
      die(st.error().message());
    }
  }

  config::CloudConfig cfg;
  cfg.manifest_url = cloud->url() + "/nodes/{node}.json";
  cfg.interval = std::chrono::seconds(interval_s);
  cfg.wait = std::chrono::seconds(0);  // nginx answers at once
  cfg.tls = {.cert = cloud->clientCert(),
             .key = cloud->clientKey(),
             .ca = cloud->caCert(),
             .pinned_public_keys = {}};
  std::vector<std::unique_ptr<Node>> fleet;
  std::atomic<int64_t> bodies{0};
  const auto start = Steady::now();
  for (int i = 0; i < nodes; ++i) {
    auto node = std::make_unique<Node>();
    node->index = i;
    Node* n = node.get();
    const std::string id = fmt::format("node-{}", i);
    node->source = cloud::startManifestSource(
        cfg, id,
        [n, id, &policy, &bodies](std::string_view body, std::string_view) -> Result<bool> {
          ++bodies;
          FLEETLET_ASSIGN_OR_RETURN(auto verified, policy->admit(body, trust::Origin::kCloud));
          FLEETLET_ASSIGN_OR_RETURN(auto state, manifest::parseNodeState(verified.manifest));
          FLEETLET_RETURN_IF_ERROR(trust::checkBinding(state, id, true, n->revision.load(),
                                                       std::chrono::system_clock::now()));
          n->revision = state.revision;
          if (state.revision == 2) {
            n->applied_at_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   Steady::now().time_since_epoch())
                                   .count();
          }
          return true;
        },
        nullptr);
    fleet.push_back(std::move(node));
  }
  // Half the run idle (all nodes at revision 1), then a new revision for every node.
  std::this_thread::sleep_for(std::chrono::seconds(duration_s / 2));
  const auto idle_log = cloud->accessLog();
  const double idle_seconds = std::chrono::duration<double>(Steady::now() - start).count();
  const auto published = Steady::now();
  for (int i = 0; i < nodes; ++i) {
    if (auto st = cloud->publish(fmt::format("nodes/node-{}.json", i), envelopeFor(*key, i, 2));
        !st) {
      die(st.error().message());
    }
  }
  std::this_thread::sleep_for(std::chrono::seconds(duration_s - duration_s / 2));
  for (auto& n : fleet) n->source.reset();

  // Requests and bytes from nginx's log: "METHOD URI STATUS BODY_BYTES ... BYTES_SENT REQ_LEN".
  int64_t requests = 0, not_modified = 0, idle_bytes = 0;
  std::istringstream in(idle_log);
  for (std::string line; std::getline(in, line);) {
    if (line.find("GET /nodes/") != 0) continue;
    ++requests;
    if (line.find(" 304 ") == std::string::npos) continue;
    ++not_modified;
    // bytes_sent and request_length follow the last quoted field.
    std::istringstream fields(line.substr(line.rfind('"') + 1));
    int64_t sent = 0, received = 0;
    std::vector<std::string> words;
    for (std::string w; fields >> w;) words.push_back(w);
    if (words.size() >= 2) {
      sent = std::stoll(words[words.size() - 2]);
      received = std::stoll(words.back());
    }
    idle_bytes += sent + received;
  }
  std::vector<double> delays;
  for (const auto& n : fleet) {
    if (n->applied_at_ns == 0) continue;
    delays.push_back(
        std::chrono::duration<double>(
            Steady::time_point(std::chrono::nanoseconds(n->applied_at_ns.load())) - published)
            .count());
  }
  fmt::print("bench_cloud: {} nodes, interval {} s (±20 % jitter), {} s run, nginx over mTLS\n",
             nodes, interval_s, duration_s);
  fmt::print("  idle phase: {} requests in {:.1f} s = {:.1f} req/s at the server ({} were 304)\n",
             requests, idle_seconds, static_cast<double>(requests) / idle_seconds, not_modified);
  fmt::print(
      "  bytes per idle poll (request + 304 response, HTTP level, keep-alive TLS): {:.0f}\n",
      not_modified > 0 ? static_cast<double>(idle_bytes) / static_cast<double>(not_modified) : 0.0);
  fmt::print("  bodies parsed and verified: {} (2 per node expected)\n", bodies.load());
  fmt::print(
      "  new envelope on disk -> applied: first {:.2f} s, median {:.2f} s, last {:.2f} s "
      "({} of {} nodes)\n",
      percentile(delays, 0), percentile(delays, 0.5), percentile(delays, 1.0), delays.size(),
      nodes);
  fmt::print(
      "  balena defaults on paper (900 s poll + 0..60 s jitter): {:.2f} req/s for {} nodes; "
      "first node after ~{:.0f} s on average, the last after up to 960 s\n",
      nodes / 930.0, nodes, 930.0 / (nodes + 1));
  return delays.size() == static_cast<size_t>(nodes) ? 0 : 1;
}
