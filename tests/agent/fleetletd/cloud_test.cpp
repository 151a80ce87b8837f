// fleetletd with its desired state from a test cloud: Debian's nginx over mTLS serving DSSE
// envelopes as static files and taking status reports by WebDAV PUT (hack/cloud/). Signed
// state converges; every bad body is refused with its reason and changes nothing; 304s cost no
// parsing; a wrong server CA or a wrong key pin is refused; a client certificate renewed on
// disk is used on the next poll; reports arrive once across a minute's outage and kill -9 and
// say why apps restarted; failing releases (crash loop, missing image) roll back and are never
// retried; a release outliving its window becomes the last good one.
#include <gmock/gmock.h>

#include <cctype>
#include <memory>

#include "fleetletd_fixture.h"
#include "support/test_cloud.h"
#include "time/rfc3339.h"
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
    cloud_ = std::make_unique<testing::TestCloud>(std::move(*cloud));
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

  std::string statusConfig() const {
    return "  statusUrl: " + cloud_->url() + "/status/{node}/{seq}.json\n  statusInterval: 1s\n";
  }

  // fleetletctl against this test's fleetletd.
  std::string ctl(const std::vector<std::string>& args) {
    std::vector<std::string> all{"--api-socket", (dir_->path() / "api.sock").string()};
    all.insert(all.end(), args.begin(), args.end());
    return fleetletctl(all);
  }

  // The status reports the cloud holds, by seq (a report that is not JSON fails the test).
  std::map<int64_t, Json> reports() {
    std::map<int64_t, Json> out;
    const auto dir = cloud_->www() / "status" / "n1";
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.path().filename().string().starts_with(".")) continue;  // nginx's temp file
      auto body = parseJson(readFile(entry.path()), entry.path().string());
      EXPECT_TRUE(body) << entry.path();
      if (!body) continue;
      EXPECT_EQ(entry.path().filename().string(),
                std::to_string((*body)["seq"].get<int64_t>()) + ".json");
      out[(*body)["seq"].get<int64_t>()] = *body;
    }
    return out;
  }

  // Waits until a report holds an event of `kind` whose message contains `text`.
  bool waitReportedEvent(const std::string& kind, const std::string& text,
                         std::chrono::milliseconds timeout = 60s) {
    return testing::waitFor(
        [&] {
          for (const auto& [seq, r] : reports()) {
            for (const auto& e : r["events"]) {
              if (e.value("kind", "") == kind &&
                  e.value("message", "").find(text) != std::string::npos) {
                return true;
              }
            }
          }
          return false;
        },
        timeout);
  }

  // 2xx PUTs of each report in nginx's access log: seq → the request lengths.
  std::map<int64_t, std::vector<std::string>> statusPuts() {
    std::map<int64_t, std::vector<std::string>> out;
    std::istringstream log(cloud_->accessLog());
    const std::string dir = "/status/n1/";
    for (std::string line; std::getline(log, line);) {
      std::istringstream fields(line);
      std::string method, uri, status;
      fields >> method >> uri >> status;
      if (method != "PUT" || !uri.starts_with(dir) || !status.starts_with("2")) continue;
      const auto seq = std::stoll(uri.substr(dir.size()));
      out[seq].push_back(line.substr(line.rfind(' ') + 1));  // $request_length
    }
    return out;
  }

  // Polls of the node's manifest nginx has answered so far.
  size_t manifestPolls() { return countOf(cloud_->accessLog(), "GET /nodes/n1.json "); }

  std::unique_ptr<testing::TestCloud> cloud_;
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
      {"10 MiB", std::string(std::size_t{10} * 1024 * 1024, ' ') + good3,
       "body larger than 1048576 bytes"},
      {"HTML with 200", "<html><body><h1>Welcome to nginx!</h1></body></html>\n",
       "unsigned manifest refused"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const int64_t after = lastSeq();
    ASSERT_TRUE(cloud_->publish("nodes/n1.json", c.body));
    auto event = waitEvent(after, "rejected", c.reason);
    if (!event) FAIL() << agentLog();
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
  if (!rolled) FAIL() << agentLog();
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

// Status reports while the cloud is away for over a minute, apps change state and the agent is
// kill -9'd once: afterwards every report is in the cloud once (seqs 1..N, no gap), in order,
// every node event the agent recorded — before the kill too — is in exactly one report, and
// each seq was stored by one PUT (two only for a report whose acknowledgement the kill
// lost: then the same bytes again).
TEST_F(CloudTest, ReportsArriveExactlyOnceInOrderAcrossAMinuteOutageAndKill9) {
  // An app that exits every second and is restarted (with a growing backoff), and one that
  // is restarted by hand: a steady stream of events.
  const std::string apps =
      busyboxApp("flaky", "sleep 1; exit 3") + busyboxApp("steady", "sleep 1000");
  ASSERT_TRUE(cloud_->publish("nodes/n1.json", sign(nodeManifest(1, apps))));
  startCloudAgent(cloud_->url(), statusConfig());
  ASSERT_TRUE(waitEvent(0, "converged", "revision 1", 60s)) << agentLog();
  ASSERT_TRUE(testing::waitFor([&] { return reports().size() >= 2; }, 30s)) << agentLog();

  cloud_->stop();
  const auto down_at = std::chrono::steady_clock::now();
  auto down_for = [&] { return std::chrono::steady_clock::now() - down_at; };
  int64_t mark = lastSeq();
  ctl({"restart", "steady"});
  ASSERT_TRUE(waitEvent(mark, "restarted", "requested")) << agentLog();
  // Half the outage with this process; the flaky app keeps exiting meanwhile.
  ASSERT_TRUE(testing::waitFor([&] { return down_for() >= 30s; }, 40s));
  std::set<int64_t> recorded;
  for (const auto& e : apiEvents(0)) recorded.insert(e["seq"].get<int64_t>());
  ASSERT_GT(recorded.size(), 10U);
  killAgent();

  startCloudAgent(cloud_->url(), statusConfig());
  ASSERT_TRUE(waitEvent(0, "loaded", "revision 1")) << agentLog();
  mark = lastSeq();
  ctl({"restart", "steady"});
  ASSERT_TRUE(waitEvent(mark, "restarted", "requested")) << agentLog();
  ASSERT_TRUE(testing::waitFor([&] { return down_for() >= 62s; }, 40s));
  ASSERT_TRUE(cloud_->restart());
  // A new revision after the cloud is back: its report comes after all the held-back ones.
  ASSERT_TRUE(cloud_->publish(
      "nodes/n1.json",
      sign(nodeManifest(2, busyboxApp("flaky", "sleep 1; exit 3", "    env: {A: b}\n") +
                               busyboxApp("steady", "sleep 1000")))));
  ASSERT_TRUE(waitReportedEvent("applied", "revision 2", 90s)) << agentLog();
  int64_t applied_seq = 0;
  for (const auto& e : apiEvents(0)) {
    if (e.value("kind", "") == "applied") applied_seq = e["seq"].get<int64_t>();
    if (applied_seq == 0) recorded.insert(e["seq"].get<int64_t>());
  }
  ASSERT_GT(applied_seq, 0);
  recorded.insert(applied_seq);

  const auto got = reports();
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.begin()->first, 1);
  EXPECT_EQ(got.rbegin()->first, static_cast<int64_t>(got.size())) << "a seq is missing";
  std::set<int64_t> reported;
  int64_t last_event = 0;
  bool loaded_after_kill = false;
  for (const auto& [seq, r] : got) {
    EXPECT_EQ(r["node"], "n1");
    for (const auto& e : r["events"]) {
      const auto event_seq = e["seq"].get<int64_t>();
      EXPECT_TRUE(reported.insert(event_seq).second) << "event " << event_seq << " reported twice";
      EXPECT_GT(event_seq, last_event) << "report " << seq << " out of order";
      last_event = event_seq;
      loaded_after_kill = loaded_after_kill || e.value("kind", "") == "loaded";
    }
    EXPECT_EQ(r["eventsDropped"], 0) << seq;
  }
  EXPECT_TRUE(loaded_after_kill);
  // Every event the agent recorded (and the API showed) is in a report: none lost to kill -9.
  for (int64_t seq : recorded) EXPECT_TRUE(reported.contains(seq)) << "event " << seq << " lost";
  // The newest report carries the node's revisions and the apps' restarts with their reason.
  const Json& newest = got.rbegin()->second;
  EXPECT_EQ(newest["revisions"]["desired"], 2);
  EXPECT_GT(newest["apps"]["flaky"]["restarts"].get<int>(), 0);
  EXPECT_GT(newest["apps"]["steady"]["restarts"].get<int>(), 0);
  // One stored document per seq; each PUT once — or twice with the same bytes, for at most
  // the one report whose acknowledgement the kill may have lost.
  const auto puts = statusPuts();
  int repeated = 0;
  for (const auto& [seq, r] : got) {
    ASSERT_TRUE(puts.contains(seq)) << seq << "\n" << cloud_->accessLog();
    const auto& lengths = puts.at(seq);
    EXPECT_GE(lengths.size(), 1U) << seq;
    EXPECT_LE(lengths.size(), 2U) << seq;
    if (lengths.size() == 2) {
      ++repeated;
      EXPECT_EQ(lengths[0], lengths[1]) << "report " << seq << " sent again with other bytes";
    }
  }
  EXPECT_LE(repeated, 1) << cloud_->accessLog();
  EXPECT_EQ(puts.size(), got.size()) << cloud_->accessLog();
}

// The reports say why each app last restarted — by hand, a failed health check, an OOM kill —
// with the image digest containerd resolved the tag to, and a refused manifest reaches the
// cloud as a `rejected` event with its reason.
TEST_F(CloudTest, ReportsSayWhyAppsRestartedAndWhatWasRefused) {
  const std::string apps =
      busyboxApp("web", "sleep 1000") +
      busyboxApp("sick", "sleep 1000",
                 "    health: {exec: {command: [\"false\"]}, interval: 1s, failures: 1}\n") +
      busyboxApp("hog", "exec tail /dev/zero", "    resources: {memory: 16Mi}\n");
  ASSERT_TRUE(cloud_->publish("nodes/n1.json", sign(nodeManifest(1, apps))));
  startCloudAgent(cloud_->url(), statusConfig());
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto local = apiApps();
        return local.contains("web") && local["web"].value("state", "") == "running";
      },
      60s))
      << agentLog();
  const int64_t mark = lastSeq();
  ctl({"restart", "web"});
  ASSERT_TRUE(waitEvent(mark, "restarted", "requested")) << agentLog();
  // The OOM kill is told apart from any other exit.
  ASSERT_TRUE(waitEvent(0, "exited", "exit code 137 (OOM killed)", 60s)) << agentLog();

  Json newest;
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto got = reports();
        if (got.empty()) return false;
        newest = got.rbegin()->second;
        auto reason = [&](const std::string& app) {
          return newest.value(Json::json_pointer("/apps/" + app + "/lastRestartReason"), "");
        };
        return reason("web") == "manual" && reason("sick").starts_with("failed health check") &&
               reason("hog") == "oom";
      },
      60s))
      << newest.dump(2) << agentLog();
  // busybox is a tag reference (":1"): the digest is containerd's resolution of it.
  ASSERT_THAT(images_->busybox(), ::testing::EndsWith(":1"));
  const std::string digest = newest.value(Json::json_pointer("/apps/web/imageDigest"), "");
  EXPECT_THAT(digest, ::testing::MatchesRegex("sha256:[0-9a-f]{64}")) << newest.dump(2);
  EXPECT_THAT(containerd_->ctrOk({"images", "ls"}, ns_).value_or(""), HasSubstr(digest));
  // The local API says the same.
  auto local = apiApps();
  ASSERT_TRUE(local.contains("web") && local.contains("hog"));
  EXPECT_EQ(local["web"].value("lastRestartReason", ""), "manual");
  EXPECT_EQ(local["hog"].value("lastRestartReason", ""), "oom");
  EXPECT_EQ(local["web"].value("imageDigest", ""), digest);

  // A manifest signed by a stranger: refused, and the cloud hears why.
  auto stranger = trust::PrivateKey::generate();
  ASSERT_TRUE(stranger);
  trust::Envelope env{.payload_type = std::string(trust::kPayloadTypeYaml),
                      .payload = nodeManifest(2, apps),
                      .signatures = {}};
  env.signatures.push_back({.keyid = stranger->publicKey().id(),
                            .sig = *stranger->sign(trust::pae(env.payload_type, env.payload))});
  ASSERT_TRUE(cloud_->publish("nodes/n1.json", trust::serializeEnvelope(env)));
  ASSERT_TRUE(waitReportedEvent("rejected", "signature: no valid signature by a trusted key"))
      << agentLog();
  EXPECT_EQ(nodeStatus().value("desiredRevision", int64_t{0}), 1);
}

// A release whose image cannot be pulled is rolled back within its window and never tried
// again — not on later polls, not after a restart (when the node has forgotten the ETag and
// fetches the envelope anew). A later release that survives its window becomes the last good.
TEST_F(CloudTest, AReleaseWhoseImageCannotBePulledRollsBackAndIsNeverRetried) {
  ASSERT_TRUE(cloud_->publish("nodes/n1.json",
                              sign(nodeManifest(1, busyboxApp("web", "echo v1; sleep 1000")))));
  startCloudAgent(cloud_->url(), statusConfig());
  ASSERT_TRUE(waitEvent(0, "converged", "revision 1", 60s)) << agentLog();
  ASSERT_EQ(nodeStatus().value("lastGoodRevision", int64_t{0}), 1);
  const std::string missing = registry_->address() + "/fleetlet-test/no-such-image:1";
  std::string bad = busyboxApp("web", "sleep 1000");
  bad.replace(bad.find(images_->busybox()), images_->busybox().size(), missing);
  const int64_t after = lastSeq();
  ASSERT_TRUE(cloud_->publish("nodes/n1.json",
                              sign(nodeManifest(2, bad, "n1", "rollback: {window: 120s}\n"))));
  auto rolled = waitEvent(after, "rolledBack", "revision 2 failed: app web: ", 60s);
  if (!rolled) FAIL() << agentLog();
  EXPECT_THAT(rolled->value("message", ""), HasSubstr("no-such-image"));
  EXPECT_THAT(rolled->value("message", ""), HasSubstr("back to revision 1"));
  const int64_t rolled_seq = (*rolled)["seq"].get<int64_t>();
  auto status = nodeStatus();
  EXPECT_EQ(status.value("desiredRevision", int64_t{0}), 1) << status.dump();
  ASSERT_EQ(status["failedRevisions"].size(), 1U) << status.dump();
  EXPECT_EQ(status["failedRevisions"][0]["revision"], 2);
  EXPECT_FALSE(status.contains("rollbackWindow")) << status.dump();
  ASSERT_TRUE(waitReportedEvent("rolledBack", "revision 2 failed")) << agentLog();
  // Three more polls of the same envelope: nothing happens.
  const size_t polls = manifestPolls();
  ASSERT_TRUE(testing::waitFor([&] { return manifestPolls() >= polls + 3; }, 30s));
  ASSERT_TRUE(waitRunning({"web"})) << agentLog();
  for (const auto& e : apiEvents(rolled_seq)) {
    EXPECT_NE(e.value("kind", ""), "pulling") << e.dump();
    EXPECT_NE(e.value("kind", ""), "applied") << e.dump();
  }
  // A restarted node fetches the envelope again and refuses it.
  stopAgent();
  startCloudAgent(cloud_->url(), statusConfig());
  auto refused = waitEvent(0, "rejected", "revision 2 is not newer than revision 2, which failed");
  ASSERT_TRUE(refused) << agentLog();
  for (const auto& e : apiEvents(0)) EXPECT_NE(e.value("kind", ""), "pulling") << e.dump();
  EXPECT_EQ(nodeStatus().value("desiredRevision", int64_t{0}), 1);

  // Revision 3 with a short window: last good only once the window has passed.
  const int64_t before3 = lastSeq();
  ASSERT_TRUE(cloud_->publish("nodes/n1.json",
                              sign(nodeManifest(3, busyboxApp("web", "echo v3; sleep 1000"), "n1",
                                                "rollback: {window: 8s}\n"))));
  ASSERT_TRUE(waitEvent(before3, "converged", "revision 3", 60s)) << agentLog();
  auto inside = nodeStatus();
  if (inside.contains("rollbackWindow")) {  // still inside the window: not the last good yet
    EXPECT_EQ(inside.value("lastGoodRevision", int64_t{0}), 1) << inside.dump();
    EXPECT_EQ(inside["rollbackWindow"]["revision"], 3) << inside.dump();
  }
  ASSERT_TRUE(
      waitEvent(before3, "confirmed", "revision 3: no failure within its rollback window", 30s))
      << agentLog();
  auto after_window = nodeStatus();
  EXPECT_EQ(after_window.value("lastGoodRevision", int64_t{0}), 3) << after_window.dump();
  EXPECT_FALSE(after_window.contains("rollbackWindow"));
}

// cloud.tls.pinnedPublicKeys: the server's key must match a pin. The right pin polls as
// usual; a wrong one fails the TLS handshake with a clear error and applies nothing.
TEST_F(CloudTest, APinnedServerKeyIsAcceptedAndAWrongPinRefused) {
  ASSERT_TRUE(
      cloud_->publish("nodes/n1.json", sign(nodeManifest(1, busyboxApp("web", "sleep 1000")))));
  auto pin = runCommand(RunOptions{
      .argv = {"/bin/sh", "-c",
               "openssl x509 -in " + (cloud_->dir() / "server.crt").string() +
                   " -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 "
                   "-binary | base64"}});
  ASSERT_TRUE(pin && pin->status.success());
  std::string good = pin->out;
  while (!good.empty() && std::isspace(static_cast<unsigned char>(good.back()))) good.pop_back();
  ASSERT_EQ(good.size(), 44U) << good;
  // A wrong pin first.
  startCloudAgent(cloud_->url(),
                  "    pinnedPublicKeys: [\"sha256//" + std::string(43, 'A') + "=\"]\n");
  ASSERT_TRUE(testing::waitFor(
      [&] { return countOf(agentLog(), "public key does not match pinned public key") > 0; }, 20s))
      << agentLog();
  EXPECT_TRUE(containers().empty());
  EXPECT_EQ(nodeStatus().value("desiredRevision", int64_t{-1}), 0);
  EXPECT_EQ(countOf(cloud_->accessLog(), "/nodes/"), 0U);  // no request got through
  stopAgent();
  startCloudAgent(cloud_->url(), "    pinnedPublicKeys: [\"sha256//" + good + "\"]\n");
  ASSERT_TRUE(waitRunning({"web"})) << agentLog();
  EXPECT_EQ(nodeStatus().value("desiredRevision", int64_t{0}), 1);
}

// A CRI log file's records as the lines a log upload holds ("<time> <stream> <text>\n"), those
// whose time is in [since, until) — read here independently of fleetletd's reader.
std::string criLinesIn(const std::filesystem::path& file, const std::string& since,
                       const std::string& until) {
  const auto from = *parseRfc3339(since);
  const auto to = *parseRfc3339(until);
  std::istringstream in(readFile(file));
  std::string out;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string time, stream, flag;
    fields >> time >> stream >> flag;
    EXPECT_EQ(flag, "F") << line;  // the test's lines are short: no partial records
    auto t = parseRfc3339(time);
    if (!t || *t < from || *t >= to) continue;
    out += fmt::format("{} {} {}\n", time, stream,
                       line.substr(time.size() + stream.size() + flag.size() + 3));
  }
  return out;
}

// The time token of a CRI log file's n-th record (0-based; negative: from the end).
std::string criTime(const std::filesystem::path& file, int n) {
  std::vector<std::string> times;
  std::istringstream in(readFile(file));
  for (std::string line; std::getline(in, line);) times.push_back(line.substr(0, line.find(' ')));
  if (times.empty()) return "";
  const auto i = n >= 0 ? static_cast<size_t>(n) : times.size() - static_cast<size_t>(-n);
  return times.at(i);
}

// Logs on request: fleetletd killed (SIGKILL) in the middle of a throttled upload to nginx's
// WebDAV finishes it after the restart; the uploaded gzip holds exactly the app's lines of
// the range, the node's log likewise; each result is in exactly one status report; a done
// request is never uploaded again (later polls, another restart); a request signed by a
// stranger is refused and reported.
TEST_F(CloudTest, ALogRequestIsUploadedOnceAcrossKill9MidUploadWithExactlyTheRangesLines) {
  // 3000 lines of 200 base64 characters of random bytes: ~470 KiB of gzip, ~10 s at 50 kB/s.
  const std::string talker = busyboxApp(
      "talker", "head -c 450000 /dev/urandom | base64 -w 200 | awk '{print NR, $0}'; sleep 1000");
  ASSERT_TRUE(cloud_->publish("nodes/n1.json", sign(nodeManifest(1, talker))));
  const std::string config = statusConfig() + "  logRequestUrl: " + cloud_->url() +
                             "/requests/{node}.json\n  logUploadRate: 50000\n";
  startCloudAgent(cloud_->url(), config);
  const auto app_log = dataDir() / "logs" / "talker" / "current.log";
  const auto node_log = dataDir() / "node-logs" / "current.log";
  ASSERT_TRUE(testing::waitFor([&] { return countOf(readFile(app_log), "\n") >= 3000; }, 60s))
      << agentLog();
  auto key = trust::PrivateKey::load(key_);
  ASSERT_TRUE(key);
  auto request = [&](const Json& payload, const trust::PrivateKey& by) {
    trust::Envelope env{.payload_type = "application/vnd.fleetlet.logrequest.v1+json",
                        .payload = payload.dump(),
                        .signatures = {}};
    env.signatures.push_back(
        {.keyid = by.publicKey().id(), .sig = *by.sign(trust::pae(env.payload_type, env.payload))});
    return trust::serializeEnvelope(env);
  };
  const std::string since = criTime(app_log, 500);
  const std::string until = criTime(app_log, 2500);
  const Json app_request = {{"apiVersion", "fleetlet.io/v1"},
                            {"kind", "LogRequest"},
                            {"id", "app-1"},
                            {"node", "n1"},
                            {"source", "app"},
                            {"app", "talker"},
                            {"since", since},
                            {"until", until},
                            {"uploadUrl", cloud_->url() + "/logs/n1/app-1.gz"},
                            {"expires", "2099-01-01T00:00:00Z"}};
  ASSERT_TRUE(cloud_->publish("requests/n1.json", request(app_request, *key)));
  ASSERT_TRUE(testing::waitFor(
      [&] { return countOf(agentLog(), "log request app-1: uploading 2000 lines") > 0; }, 30s))
      << agentLog();
  std::this_thread::sleep_for(3s);  // well inside the ~10 s upload
  killAgent();
  const auto puts_of = [&](const std::string& uri, bool ok) {
    std::istringstream log(cloud_->accessLog());
    size_t n = 0;
    for (std::string line; std::getline(log, line);) {
      std::istringstream fields(line);
      std::string method, path, status;
      fields >> method >> path >> status;
      if (method == "PUT" && path == uri && status.starts_with("2") == ok) ++n;
    }
    return n;
  };
  EXPECT_EQ(puts_of("/logs/n1/app-1.gz", true), 0U) << cloud_->accessLog();

  startCloudAgent(cloud_->url(), config);
  ASSERT_TRUE(waitEvent(0, "logRequest", "app-1: uploaded 2000 lines of app talker", 90s))
      << agentLog();
  EXPECT_THAT(agentLog(), HasSubstr("log request app-1: uploading again (fleetletd stopped"));
  auto gunzip = [&](const std::string& name) {
    auto out = runCommand(
        RunOptions{.argv = {"gzip", "-dc", (cloud_->www() / "logs" / "n1" / name).string()}});
    EXPECT_TRUE(out && out->status.success()) << (out ? out->err : out.error().message());
    return out ? out->out : "";
  };
  // Over 300 kB at 50 kB/s: the kill 3 s into it was mid-upload.
  EXPECT_GT(std::filesystem::file_size(cloud_->www() / "logs" / "n1" / "app-1.gz"), 300000U);
  const std::string expected = criLinesIn(app_log, since, until);
  EXPECT_EQ(countOf(expected, "\n"), 2000U);
  const std::string uploaded = gunzip("app-1.gz");
  EXPECT_EQ(uploaded.size(), expected.size());
  EXPECT_TRUE(uploaded == expected) << "the upload differs from the log's lines in the range";
  EXPECT_EQ(puts_of("/logs/n1/app-1.gz", true), 1U) << cloud_->accessLog();
  // fleetletctl logs gets the same range locally.
  std::string local;
  {
    std::istringstream in(expected);
    for (std::string line; std::getline(in, line);) {
      local += line.substr(line.find(' ', line.find(' ') + 1) + 1) + "\n";
    }
  }
  EXPECT_TRUE(ctl({"logs", "talker", "--since", since, "--until", until}) == local);

  // The node's own log for a range that has passed.
  const std::string node_since = criTime(node_log, 0);
  const std::string node_until = criTime(node_log, -1);
  Json node_request = app_request;
  node_request["id"] = "node-1";
  node_request["source"] = "node";
  node_request.erase("app");
  node_request["since"] = node_since;
  node_request["until"] = node_until;
  node_request["uploadUrl"] = cloud_->url() + "/logs/n1/node-1.gz";
  ASSERT_TRUE(cloud_->publish("requests/n1.json", request(node_request, *key)));
  ASSERT_TRUE(waitEvent(0, "logRequest", "node-1: uploaded", 60s)) << agentLog();
  const std::string node_expected = criLinesIn(node_log, node_since, node_until);
  EXPECT_GT(countOf(node_expected, "\n"), 20U);
  EXPECT_TRUE(gunzip("node-1.gz") == node_expected)
      << gunzip("node-1.gz").substr(0, 2000) << "\n---\n"
      << node_expected.substr(0, 2000);
  EXPECT_THAT(node_expected, HasSubstr("fleetletd starting"));
  EXPECT_EQ(ctl({"logs", "--node", "--since", node_since, "--until", node_until}), [&] {
    std::string out;
    std::istringstream in(node_expected);
    for (std::string line; std::getline(in, line);) {
      out += line.substr(line.find(' ', line.find(' ') + 1) + 1) + "\n";
    }
    return out;
  }());

  // A request signed by another key: refused, reported, nothing uploaded.
  auto stranger = trust::PrivateKey::generate();
  ASSERT_TRUE(stranger);
  Json forged = app_request;
  forged["id"] = "forged";
  forged["uploadUrl"] = cloud_->url() + "/logs/n1/forged.gz";
  ASSERT_TRUE(cloud_->publish("requests/n1.json", request(forged, *stranger)));
  ASSERT_TRUE(waitEvent(0, "logRequest",
                        "refused: log request: signature: no valid signature by a trusted key"))
      << agentLog();
  ASSERT_TRUE(waitReportedEvent("logRequest", "refused: log request: signature")) << agentLog();

  // Served again after another restart and several polls: never uploaded again.
  ASSERT_TRUE(cloud_->publish("requests/n1.json", request(app_request, *key)));
  stopAgent();
  auto request_polls = [&] { return countOf(cloud_->accessLog(), "GET /requests/n1.json "); };
  const size_t polls = request_polls();
  startCloudAgent(cloud_->url(), config);
  ASSERT_TRUE(testing::waitFor([&] { return request_polls() >= polls + 4; }, 30s)) << agentLog();
  EXPECT_EQ(puts_of("/logs/n1/app-1.gz", true), 1U) << cloud_->accessLog();
  EXPECT_EQ(puts_of("/logs/n1/node-1.gz", true), 1U) << cloud_->accessLog();
  EXPECT_EQ(puts_of("/logs/n1/forged.gz", true) + puts_of("/logs/n1/forged.gz", false), 0U);

  // Each result in exactly one report.
  std::map<std::string, int> results;
  for (const auto& [seq, r] : reports()) {
    for (const auto& result : r.value("logRequests", Json::array())) {
      ++results[result.value("id", "")];
      EXPECT_EQ(result.value("state", ""), "done") << result.dump();
      if (result.value("id", "") == "app-1") {
        EXPECT_EQ(result.value("lines", 0), 2000);
        EXPECT_EQ(result.value("truncated", true), false);
      }
    }
  }
  EXPECT_EQ(results, (std::map<std::string, int>{{"app-1", 1}, {"node-1", 1}}));
}

// The alerts in force reach the cloud: a report PUT to nginx lists the alert while it holds
// (rule, app, value, since) and a later one no longer does once it has fallen.
TEST_F(CloudTest, AnActiveAlertAppearsInTheStatusReportAndGoesWhenItFalls) {
  // 16 MiB of tmpfs against a 64 MiB limit (25 % > 10 %) for 10 s, then freed.
  const std::string hog = busyboxApp(
      "hog",
      "head -c 16777216 /dev/zero > /dev/shm/fill && sleep 10 && rm /dev/shm/fill && sleep 1000",
      "    resources: {memory: 64Mi}\n");
  ASSERT_TRUE(cloud_->publish("nodes/n1.json", sign(nodeManifest(1, hog))));
  startCloudAgent(cloud_->url(), statusConfig() +
                                     "alerts:\n  interval: 1s\n  continueEvery: 60s\n"
                                     "  rules: [\"app memory > 10% of limit\"]\n");
  auto with_alert = [&]() -> std::optional<int64_t> {
    for (const auto& [seq, r] : reports()) {
      for (const auto& a : r.value("alerts", Json::array())) {
        if (a.value("app", "") == "hog" && a.value("rule", "") == "app memory > 10% of limit") {
          return seq;
        }
      }
    }
    return std::nullopt;
  };
  ASSERT_TRUE(testing::waitFor([&] { return with_alert().has_value(); }, 60s)) << agentLog();
  const int64_t raised_in = with_alert().value_or(-1);
  ASSERT_GE(raised_in, 0);
  const Json raised = reports()[raised_in]["alerts"][0];
  EXPECT_GT(raised.value("value", 0.0), 0.2) << raised.dump();
  EXPECT_LT(raised.value("value", 1.0), 0.4) << raised.dump();
  EXPECT_TRUE(parseRfc3339(raised.value("since", ""))) << raised.dump();
  EXPECT_THAT(raised.value("message", ""), HasSubstr("app memory > 10% of limit: hog at "));
  // After the fall: a newer report without it, and the fall as a reported event.
  ASSERT_TRUE(waitReportedEvent("alert", "fall app memory > 10% of limit: hog", 60s)) << agentLog();
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto all = reports();
        return !all.empty() && all.rbegin()->first > raised_in &&
               all.rbegin()->second.value("alerts", Json()) == Json::array();
      },
      30s))
      << agentLog();
}

}  // namespace
}  // namespace fleetlet
