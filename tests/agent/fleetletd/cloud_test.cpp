// fleetletd with its desired state from a test cloud: Debian's nginx over mTLS serving DSSE
// envelopes as static files (hack/cloud/). Signed state converges; every bad body is refused
// with its reason and changes nothing; 304s cost no parsing; a wrong server CA is refused; a
// client certificate renewed on disk is used on the next poll.
#include <gmock/gmock.h>

#include "fleetletd_fixture.h"
#include "support/test_cloud.h"
#include "trust/ed25519.h"
#include "trust/envelope.h"

namespace fleetlet {
namespace {

using namespace fleetletd_testing;
using ::testing::HasSubstr;

// Runs fleetletctl; its stdout, or a test failure with its stderr.
std::string fleetletctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{FLEETLETCTL_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  auto out = runCommand(RunOptions{.argv = argv});
  EXPECT_TRUE(out && out->status.success())
      << (out ? out->err : out.error().message()) << " (fleetletctl " << args.front() << ")";
  return out ? out->out : "";
}

class CloudTest : public FleetletdTest {
 protected:
  void SetUp() override {
    FleetletdTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    auto cloud = testing::TestCloud::start();
    ASSERT_TRUE(cloud) << cloud.error().message();
    cloud_.emplace(std::move(*cloud));
    key_ = dir_->path() / "fleet.key";
    fleetletctl({"manifest", "keygen", "--out", key_.string()});
  }

  void TearDown() override {
    FleetletdTest::TearDown();
    cloud_.reset();
  }

  // Starts fleetletd with a config that polls the test cloud every second.
  void startCloudAgent(const std::string& base_url, const std::string& extra = "") {
    auto config = dir_->path() / "fleetletd.yaml";
    std::ofstream(config) << "node: {id: n1}\n"
                          << "trust:\n  keys: [" << key_.string() << ".pub]\n"
                          << "cloud:\n  manifestUrl: " << base_url << "/nodes/{node}.json\n"
                          << "  interval: 1s\n  wait: 5s\n"
                          << "  tls:\n    ca: " << cloud_->caCert().string()
                          << "\n    cert: " << cloud_->clientCert().string()
                          << "\n    key: " << cloud_->clientKey().string() << "\n"
                          << extra;
    startAgent({"--config", config.string()});
  }

  std::string sign(const std::string& manifest) {
    auto file = dir_->path() / "node.yaml";
    std::ofstream(file) << manifest;
    return fleetletctl({"manifest", "sign", "-f", file.string(), "--key", key_.string()});
  }

  std::string nodeManifest(int revision, const std::string& apps, const std::string& node = "n1",
                           const std::string& extra = "") const {
    return "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: " + std::to_string(revision) +
           "\nnode: " + node + "\n" + extra + "apps:\n" + apps;
  }

  // Waits for a node event after `after` whose kind and message contain the given text.
  std::optional<Json> waitEvent(int64_t after, const std::string& kind, const std::string& text,
                                std::chrono::milliseconds timeout = 20s) {
    std::optional<Json> found;
    testing::waitFor(
        [&] {
          for (const auto& e : apiEvents(after)) {
            if (e.value("kind", "") == kind &&
                e.value("message", "").find(text) != std::string::npos) {
              found = e;
              return true;
            }
          }
          return false;
        },
        timeout);
    return found;
  }

  int64_t lastSeq() {
    auto events = apiEvents(0);
    return events.empty() ? 0 : events.back().value("seq", int64_t{0});
  }

  Json nodeStatus() {
    auto [status, body] = apiGet("/v1/status");
    auto parsed = parseJson(body, "status");
    return parsed ? *parsed : Json();
  }

  std::optional<testing::TestCloud> cloud_;
  std::filesystem::path key_;
};

TEST_F(CloudTest, SignedStateConvergesAndEveryBadBodyIsRefusedWithoutChange) {
  const std::string web = busyboxApp("web", "echo up; sleep 1000");
  ASSERT_TRUE(cloud_->publish("nodes/n1.json", sign(nodeManifest(2, web))));
  startCloudAgent(cloud_->url());
  ASSERT_TRUE(waitRunning({"web"})) << agentLog();
  const std::string container = containerOf("web");
  ASSERT_TRUE(waitEvent(0, "applied", "revision 2 (1 apps) from cloud")) << agentLog();

  // Bodies signed by the fleet key but wrong, and bodies that are not envelopes at all.
  auto other_key = trust::PrivateKey::generate();
  ASSERT_TRUE(other_key);
  auto envelope = [&](const std::string& manifest, const trust::PrivateKey& key) {
    trust::Envelope env{.payload_type = std::string(trust::kPayloadTypeYaml),
                        .payload = manifest,
                        .signatures = {}};
    env.signatures.push_back(
        {.keyid = key.publicKey().id(), .sig = *key.sign(trust::pae(env.payload_type, manifest))});
    return trust::serializeEnvelope(env);
  };
  std::string tampered = sign(nodeManifest(3, web));
  {
    auto env = trust::parseEnvelope(tampered);
    ASSERT_TRUE(env);
    env->payload = nodeManifest(3, busyboxApp("web", "echo evil; sleep 1000"));
    tampered = trust::serializeEnvelope(*env);
  }
  const std::string good3 = sign(nodeManifest(3, web));
  struct Case {
    std::string name, body, reason;
  };
  const std::vector<Case> cases = {
      {"tampered payload", tampered, "signature: no valid signature by a trusted key"},
      {"wrong key", envelope(nodeManifest(3, web), *other_key), "no valid signature"},
      {"another node", sign(nodeManifest(3, web, "n2")),
       "manifest is for node \"n2\", this node is \"n1\""},
      {"older revision", sign(nodeManifest(1, web)), "revision 1 is not newer"},
      {"expired", sign(nodeManifest(3, web, "n1", "expires: 2020-01-01T00:00:00Z\n")),
       "manifest expired at 2020-01-01T00:00:00Z"},
      {"truncated", good3.substr(0, good3.size() / 2), "envelope: not JSON"},
      {"10 MiB", std::string(10 * 1024 * 1024, ' ') + good3, "body larger than 1048576 bytes"},
      {"HTML with 200", "<html><body><h1>Welcome to nginx!</h1></body></html>\n",
       "unsigned manifest refused"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const int64_t after = lastSeq();
    ASSERT_TRUE(cloud_->publish("nodes/n1.json", c.body));
    auto event = waitEvent(after, "rejected", c.reason);
    ASSERT_TRUE(event) << agentLog();
    EXPECT_THAT(event->value("message", ""), HasSubstr("cloud https://127.0.0.1:"));
    auto status = nodeStatus();
    EXPECT_EQ(status.value("desiredRevision", int64_t{0}), 2) << status.dump();
    EXPECT_EQ(containerOf("web"), container);
  }
  EXPECT_EQ(runningTasks().size(), 1U);

  // After all that, the next good revision still applies.
  const int64_t after = lastSeq();
  ASSERT_TRUE(cloud_->publish("nodes/n1.json", good3));
  ASSERT_TRUE(waitEvent(after, "applied", "revision 3")) << agentLog();
}

TEST_F(CloudTest, UnchangedStateCostsA304AndNoParsing) {
  ASSERT_TRUE(
      cloud_->publish("nodes/n1.json", sign(nodeManifest(1, busyboxApp("web", "sleep 1000")))));
  startCloudAgent(cloud_->url());
  ASSERT_TRUE(waitRunning({"web"})) << agentLog();
  // A few seconds of polls (interval 1 s): all 304s after the first.
  ASSERT_TRUE(testing::waitFor([&] { return countOf(cloud_->accessLog(), " 304 ") >= 3; }, 20s))
      << cloud_->accessLog();
  stopAgent();
  const std::string log = cloud_->accessLog();
  EXPECT_EQ(countOf(log, "GET /nodes/n1.json 200 "), 1U) << log;
  // nginx logs the If-None-Match the agent sent ('"' escaped as \x22): the ETag it got.
  EXPECT_THAT(log, HasSubstr("GET /nodes/n1.json 304 0 \"\\x22"));
  EXPECT_THAT(log, HasSubstr("\"wait=5\""));
  // Exactly one body was handled (parsed and verified): the 304s were not.
  EXPECT_EQ(countOf(agentLog(), "cloud: handling a "), 1U) << agentLog();
}

TEST_F(CloudTest, AServerFromAnotherCaIsRefused) {
  ASSERT_TRUE(
      cloud_->publish("nodes/n1.json", sign(nodeManifest(1, busyboxApp("web", "sleep 1000")))));
  startCloudAgent(cloud_->rogueUrl());
  ASSERT_TRUE(
      testing::waitFor([&] { return countOf(agentLog(), "SSL certificate problem") > 0; }, 20s))
      << agentLog();
  EXPECT_TRUE(containers().empty());
  EXPECT_EQ(nodeStatus().value("desiredRevision", int64_t{-1}), 0);
  // nginx served nothing: the TLS handshake failed before any request.
  EXPECT_EQ(countOf(cloud_->accessLog(), "/nodes/"), 0U);
}

TEST_F(CloudTest, ARenewedClientCertificateIsUsedOnTheNextPoll) {
  ASSERT_TRUE(
      cloud_->publish("nodes/n1.json", sign(nodeManifest(1, busyboxApp("web", "sleep 1000")))));
  startCloudAgent(cloud_->url());
  ASSERT_TRUE(
      testing::waitFor([&] { return countOf(cloud_->accessLog(), "CN=fleetlet node") > 0; }, 20s))
      << cloud_->accessLog() << agentLog();
  // Renew: a new key and certificate from the same CA, renamed over the configured files.
  const auto d = cloud_->dir().string();
  auto renew = runCommand(RunOptions{
      .argv = {"/bin/sh", "-c",
               "cd " + d +
                   " && openssl req -newkey ed25519 -nodes -keyout new.key -out new.csr "
                   "-subj '/CN=fleetlet node renewed' 2>/dev/null && printf "
                   "'extendedKeyUsage=clientAuth\\n' > new.ext && openssl x509 -req -in new.csr "
                   "-CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile new.ext -out "
                   "new.crt 2>/dev/null && mv new.key client.key && mv new.crt client.crt"}});
  ASSERT_TRUE(renew && renew->status.success()) << (renew ? renew->err : renew.error().message());
  ASSERT_TRUE(testing::waitFor(
      [&] { return countOf(cloud_->accessLog(), "CN=fleetlet node renewed") > 0; }, 20s))
      << cloud_->accessLog() << agentLog();
  EXPECT_THAT(agentLog(), HasSubstr("client certificate"));
}

// A release whose changed app crash-loops is rolled back within its window, marked failed,
// shown by the local API and reported to the cloud; the next revision applies.
TEST_F(CloudTest, ACrashLoopingReleaseRollsBackAndIsReported) {
  const std::string status =
      "  statusUrl: " + cloud_->url() + "/status/{node}/{seq}.json\n  statusInterval: 1s\n";
  ASSERT_TRUE(cloud_->publish("nodes/n1.json",
                              sign(nodeManifest(1, busyboxApp("web", "echo v1; sleep 1000")))));
  startCloudAgent(cloud_->url(), status);
  ASSERT_TRUE(waitEvent(0, "converged", "revision 1", 60s)) << agentLog();
  ASSERT_EQ(nodeStatus().value("lastGoodRevision", int64_t{0}), 1);
  const int64_t after = lastSeq();
  ASSERT_TRUE(cloud_->publish(
      "nodes/n1.json", sign(nodeManifest(2, busyboxApp("web", "echo v2; sleep 1; exit 3"), "n1",
                                         "rollback: {window: 60s}\n"))));
  auto rolled = waitEvent(after, "rolledBack", "revision 2 failed: app web: exited 3 times", 60s);
  ASSERT_TRUE(rolled) << agentLog();
  EXPECT_THAT(rolled->value("message", ""), HasSubstr("back to revision 1"));
  // Revision 1's app runs again and stays up.
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto apps = apiApps();
        return apps.contains("web") && apps["web"].value("state", "") == "running" &&
               countOf(readFile(dataDir() / "logs" / "web" / "current.log"), "v1") >= 2;
      },
      30s))
      << agentLog();
  auto node = nodeStatus();
  EXPECT_EQ(node.value("desiredRevision", int64_t{0}), 1) << node.dump();
  ASSERT_EQ(node["failedRevisions"].size(), 1U) << node.dump();
  EXPECT_EQ(node["failedRevisions"][0]["revision"], 2);
  // The cloud hears of it.
  ASSERT_TRUE(testing::waitFor(
      [&] {
        for (const auto& entry :
             std::filesystem::directory_iterator(cloud_->www() / "status" / "n1")) {
          auto r = parseJson(readFile(entry.path()), "report");
          if (r && (*r)["revisions"]["failed"].size() == 1 &&
              (*r)["revisions"]["failed"][0]["revision"] == 2) {
            return true;
          }
        }
        return false;
      },
      30s))
      << agentLog();
  // fleetletctl status shows it.
  auto out = runCommand(RunOptions{
      .argv = {FLEETLETCTL_PATH, "--api-socket", (dir_->path() / "api.sock").string(), "status"}});
  ASSERT_TRUE(out);
  EXPECT_THAT(out->out, HasSubstr("Failed revisions:\n  2: app web: exited 3 times"));
  // The same revision is not taken again; the next one is.
  const int64_t later = lastSeq();
  ASSERT_TRUE(cloud_->publish("nodes/n1.json",
                              sign(nodeManifest(3, busyboxApp("web", "echo v3; sleep 1000")))));
  ASSERT_TRUE(waitEvent(later, "applied", "revision 3")) << agentLog();
}

// Status reports while the cloud is away and the agent is killed: every report is in the
// cloud once afterwards (seqs 1..N, no gap), in order, and no node event is in two reports.
TEST_F(CloudTest, ReportsArriveOnceInOrderAcrossAnOutageAndKill9) {
  const std::string status =
      "  statusUrl: " + cloud_->url() + "/status/{node}/{seq}.json\n  statusInterval: 1s\n";
  // An app that exits every second and is restarted: a steady stream of events.
  const std::string flaky = busyboxApp("flaky", "sleep 1; exit 3");
  ASSERT_TRUE(cloud_->publish("nodes/n1.json", sign(nodeManifest(1, flaky))));
  startCloudAgent(cloud_->url(), status);
  const auto reports = cloud_->www() / "status" / "n1";
  ASSERT_TRUE(testing::waitFor([&] { return std::filesystem::exists(reports / "2.json"); }, 30s))
      << agentLog();

  cloud_->stop();
  std::this_thread::sleep_for(5s);  // reports pile up in the outbox
  killAgent();
  startCloudAgent(cloud_->url(), status);
  std::this_thread::sleep_for(5s);
  ASSERT_TRUE(cloud_->restart());
  // A new revision after the cloud is back: its report comes after all the held-back ones.
  ASSERT_TRUE(cloud_->publish("nodes/n1.json", sign(nodeManifest(2, flaky + "    env: {A: b}\n"))));

  std::map<int64_t, Json> got;
  auto readReports = [&] {
    got.clear();
    for (const auto& entry : std::filesystem::directory_iterator(reports)) {
      auto body = parseJson(readFile(entry.path()), entry.path().string());
      if (!body) return false;
      got[(*body)["seq"].get<int64_t>()] = *body;
      EXPECT_EQ(entry.path().filename().string(),
                std::to_string((*body)["seq"].get<int64_t>()) + ".json");
    }
    for (const auto& [seq, r] : got) {
      for (const auto& e : r["events"]) {
        if (e.value("kind", "") == "applied" &&
            e.value("message", "").find("revision 2") != std::string::npos) {
          return true;
        }
      }
    }
    return false;
  };
  ASSERT_TRUE(testing::waitFor(readReports, 60s)) << agentLog();
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.begin()->first, 1);
  EXPECT_EQ(got.rbegin()->first, static_cast<int64_t>(got.size())) << "a seq is missing";
  std::set<int64_t> seen;
  int64_t last_event = 0;
  bool loaded_after_kill = false;
  for (const auto& [seq, r] : got) {
    EXPECT_EQ(r["node"], "n1");
    for (const auto& e : r["events"]) {
      const auto event_seq = e["seq"].get<int64_t>();
      EXPECT_TRUE(seen.insert(event_seq).second) << "event " << event_seq << " reported twice";
      EXPECT_GT(event_seq, last_event) << "report " << seq << " out of order";
      last_event = event_seq;
      loaded_after_kill = loaded_after_kill || e.value("kind", "") == "loaded";
    }
  }
  EXPECT_TRUE(loaded_after_kill);
  // The newest report carries the node's revisions and the app's restarts with their reason.
  const Json& newest = got.rbegin()->second;
  EXPECT_EQ(newest["revisions"]["desired"], 2);
  EXPECT_GT(newest["apps"]["flaky"]["restarts"].get<int>(), 0);
  // nginx took every PUT at most twice (a second time only when the kill hit between the PUT
  // and its acknowledgement), each with the same body (the file is what it got last).
  const std::string log = cloud_->accessLog();
  for (const auto& [seq, r] : got) {
    auto puts = countOf(log, "PUT /status/n1/" + std::to_string(seq) + ".json 201") +
                countOf(log, "PUT /status/n1/" + std::to_string(seq) + ".json 204");
    EXPECT_GE(puts, 1U) << seq;
    EXPECT_LE(puts, 2U) << seq;
  }
}

}  // namespace
}  // namespace fleetlet
