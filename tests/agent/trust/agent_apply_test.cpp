// Agent::applyFrom: the trust policy in front of the store. A refused manifest — bad
// signature, another node, an old revision, expired — changes nothing and is recorded as a
// "rejected" event with its reason. The runtime is a stub: nothing reconciles here.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "core/agent.h"
#include "manifest/parse.h"
#include "test_keys.h"
#include "time/rfc3339.h"

namespace fleetlet::core {
namespace {

using ::testing::HasSubstr;
using trust::testing::manifestFor;
using trust::testing::sign;

class NullRuntime : public reconcile::ContainerRuntime {
 public:
  Result<std::vector<reconcile::ActualContainer>> list() override { return {}; }
  Result<std::vector<reconcile::ActualContainer>> inspect(
      const std::vector<std::string>&) override {
    return {};
  }
  Result<bool> hasImage(const manifest::App&) override { return true; }
  Status ensureImage(const manifest::App&, std::stop_token) override { return {}; }
  Status create(const manifest::App&, const std::string&, int64_t) override { return {}; }
  Result<uint32_t> start(const manifest::App&, const std::string&) override { return 1U; }
  Status refresh(const manifest::App&) override { return {}; }
  Status stop(const std::string&, std::chrono::milliseconds) override { return {}; }
  Status remove(const std::string&) override { return {}; }
  void pruneAppData(const std::set<std::string>&) override {}
};

class AgentApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fleetlet::testing::TempDir::create("agent-apply");
    ASSERT_TRUE(dir.has_value());
    dir_ = std::make_unique<fleetlet::testing::TempDir>(std::move(*dir));
    auto store = state::StateStore::open(dir_->path());
    ASSERT_TRUE(store.has_value());
    store_ = std::move(*store);
  }

  std::unique_ptr<Agent> makeAgent(bool allow_unsigned_local,
                                   std::shared_ptr<const manifest::NodeState> system = nullptr) {
    trust::PolicyConfig config{
        .key_files = {trust::testing::writePublic(dir_->path(), "fleet.pub", key_)},
        .threshold = 1,
        .allow_unsigned_local = allow_unsigned_local};
    auto policy = trust::Policy::load(config);
    EXPECT_TRUE(policy.has_value());
    return std::make_unique<Agent>(
        runtime_, *store_,
        AgentOptions{.trust = *policy, .node_id = "n1", .system = system, .now = [this] {
                       return now_.load();
                     }});
  }

  std::string envelope(const std::string& manifest, const trust::PrivateKey& key) {
    return trust::serializeEnvelope(sign(manifest, {&key}));
  }

  std::string lastEvent(Agent& agent) {
    auto events = agent.events(0, 1000);
    if (events.empty()) return "";
    return events.back().kind + ": " + events.back().message;
  }

  std::unique_ptr<fleetlet::testing::TempDir> dir_;
  std::unique_ptr<state::StateStore> store_;
  NullRuntime runtime_;
  trust::PrivateKey key_ = trust::testing::newKey();
  // Read by the agent's rollback thread too.
  std::atomic<Clock::time_point> now_{*parseRfc3339("2026-12-06T12:00:00Z")};
};

TEST_F(AgentApplyTest, AppliesASignedManifestFromTheCloud) {
  auto agent = makeAgent(false);
  auto result =
      agent->applyFrom(envelope(manifestFor("n1", 3), key_), "cloud", trust::Origin::kCloud);
  ASSERT_TRUE(result.has_value()) << result.error().message();
  EXPECT_EQ(result->revision, 3);
  EXPECT_EQ(store_->desiredRevision(), 3);
  EXPECT_THAT(lastEvent(*agent), HasSubstr("applied: revision 3 (1 apps) from cloud, signed by " +
                                           key_.publicKey().id().substr(0, 16)));
  // The store keeps the manifest itself, which load() parses after a restart.
  auto stored = store_->desired();
  ASSERT_TRUE(stored.has_value() && stored->has_value());
  EXPECT_EQ((*stored)->text, manifestFor("n1", 3));
}

TEST_F(AgentApplyTest, EachRefusalChangesNothingAndIsRecorded) {
  auto agent = makeAgent(false);
  ASSERT_TRUE(
      agent->applyFrom(envelope(manifestFor("n1", 5), key_), "cloud", trust::Origin::kCloud));
  auto other_key = trust::testing::newKey();
  auto tampered = sign(manifestFor("n1", 6), {&key_});
  tampered.payload = manifestFor("n1", 7);
  struct Case {
    std::string name;
    std::string text;
    std::string reason;
  };
  const Case cases[] = {
      {"tampered", trust::serializeEnvelope(tampered), "no valid signature by a trusted key"},
      {"wrong key", envelope(manifestFor("n1", 6), other_key), "no valid signature"},
      {"other node", envelope(manifestFor("n2", 6), key_),
       "manifest is for node \"n2\", this node is \"n1\""},
      {"older revision", envelope(manifestFor("n1", 4), key_),
       "revision 4 is not newer than the accepted revision 5"},
      {"same revision, other text", envelope(manifestFor("n1", 5, "# changed\n"), key_),
       "revision 5 is not newer"},
      {"expired", envelope(manifestFor("n1", 6, "expires: 2026-12-06T11:59:59Z\n"), key_),
       "manifest expired at 2026-12-06T11:59:59Z"},
      {"unsigned", manifestFor("n1", 6), "unsigned manifest refused"},
      {"invalid manifest", envelope("apiVersion: fleetlet.io/v1\nkind: NodeState\n", key_),
       "revision: required"},
  };
  for (const auto& c : cases) {
    auto result = agent->applyFrom(c.text, "cloud", trust::Origin::kCloud);
    ASSERT_FALSE(result.has_value()) << c.name;
    EXPECT_THAT(result.error().message(), HasSubstr(c.reason)) << c.name;
    EXPECT_THAT(result.error().message(), ::testing::StartsWith("cloud: ")) << c.name;
    EXPECT_EQ(store_->desiredRevision(), 5) << c.name;
    EXPECT_THAT(lastEvent(*agent), HasSubstr("rejected: cloud: ")) << c.name;
    EXPECT_THAT(lastEvent(*agent), HasSubstr(c.reason)) << c.name;
  }
  auto stored = store_->desired();
  ASSERT_TRUE(stored.has_value() && stored->has_value());
  EXPECT_EQ((*stored)->text, manifestFor("n1", 5));
}

TEST_F(AgentApplyTest, TheSameManifestAgainFromTheCloudIsUnchangedNotRefused) {
  auto agent = makeAgent(false);
  const auto text = envelope(manifestFor("n1", 5), key_);
  ASSERT_TRUE(agent->applyFrom(text, "cloud", trust::Origin::kCloud));
  const auto events = agent->events(0, 1000).size();
  // A restarted node forgot the ETag and gets the same envelope again.
  auto again = agent->applyFrom(text, "cloud", trust::Origin::kCloud);
  ASSERT_TRUE(again.has_value()) << again.error().message();
  EXPECT_TRUE(again->unchanged);
  EXPECT_EQ(agent->events(0, 1000).size(), events);  // nothing recorded
  // Locally the same revision is still refused (fleetletctl apply says so).
  EXPECT_FALSE(agent->apply(text, "node.yaml").has_value());
}

TEST_F(AgentApplyTest, UnsignedLocalManifestsOnlyWhenAllowed) {
  auto strict = makeAgent(false);
  auto refused = strict->apply(manifestFor("n1", 1), "node.yaml");
  ASSERT_FALSE(refused.has_value());
  EXPECT_THAT(refused.error().message(), HasSubstr("trust.allowUnsigned: local"));
  EXPECT_EQ(store_->desiredRevision(), 0);
  // A signed one is fine locally.
  EXPECT_TRUE(strict->apply(envelope(manifestFor("n1", 1), key_), "node.yaml").has_value());

  auto lenient = makeAgent(true);
  EXPECT_TRUE(lenient->apply(manifestFor("n1", 2), "node.yaml").has_value());
  // An unsigned local manifest need not name a node, but must not name another one.
  EXPECT_TRUE(lenient->apply("apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 3\napps: {}\n",
                             "node.yaml"));
  EXPECT_FALSE(lenient->apply(manifestFor("n2", 4), "node.yaml").has_value());
  EXPECT_EQ(store_->desiredRevision(), 3);
}

// System apps (docs/services.md) run beside every desired state: with none accepted, after an
// apply, after a restart; a manifest naming one is refused, recorded, and changes nothing.
TEST_F(AgentApplyTest, SystemAppsStayBesideTheDesiredStateAndCannotBeShadowed) {
  auto system = manifest::parseNodeState(
      "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 9\napps:\n"
      "  fleetlet-streams: {image: fleetlet.local/fleetlet/streams:1}\n");
  ASSERT_TRUE(system) << system.error().message();
  auto shared = std::make_shared<const manifest::NodeState>(std::move(*system));
  auto names = [](Agent& a) {
    std::set<std::string> out;
    auto desired = a.reconciler().desired();
    if (desired) {
      for (const auto& [name, app] : desired->apps) out.insert(name);
    }
    return out;
  };
  auto agent = makeAgent(false, shared);
  ASSERT_TRUE(agent->load());
  EXPECT_EQ(names(*agent), (std::set<std::string>{"fleetlet-streams"})) << "nothing accepted yet";
  EXPECT_EQ(agent->reconciler().desired()->revision, 0);

  ASSERT_TRUE(
      agent->applyFrom(envelope(manifestFor("n1", 3), key_), "cloud", trust::Origin::kCloud));
  EXPECT_EQ(names(*agent), (std::set<std::string>{"fleetlet-streams", "web"}));
  EXPECT_EQ(agent->reconciler().desired()->revision, 3) << "the desired state's revision";

  auto shadow = manifestFor("n1", 4) + "  fleetlet-streams:\n    image: registry.local/mine:1\n";
  auto refused = agent->applyFrom(envelope(shadow, key_), "cloud", trust::Origin::kCloud);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(refused.error().message(),
              HasSubstr("cloud: apps.fleetlet-streams: \"fleetlet-streams\" is a system app"));
  EXPECT_THAT(lastEvent(*agent), HasSubstr("rejected: cloud: apps.fleetlet-streams"));
  EXPECT_EQ(store_->desiredRevision(), 3);
  EXPECT_EQ(agent->reconciler().desired()->apps.at("fleetlet-streams").image,
            "fleetlet.local/fleetlet/streams:1");

  // An empty desired state removes the user's apps, not the system's.
  ASSERT_TRUE(agent->applyFrom(
      envelope("apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: 5\nnode: n1\napps: {}\n",
               key_),
      "cloud", trust::Origin::kCloud));
  EXPECT_EQ(names(*agent), (std::set<std::string>{"fleetlet-streams"}));

  // After a restart: the stored state and the system apps again.
  agent.reset();
  auto again = makeAgent(false, shared);
  ASSERT_TRUE(again->load());
  EXPECT_EQ(names(*again), (std::set<std::string>{"fleetlet-streams"}));
  EXPECT_EQ(again->reconciler().desired()->revision, 5);
}

// Rollback: a revision with rollback.window whose changed app fails within the window is
// replaced by the last good revision, recorded as failed, and never accepted again.
class RollbackTest : public AgentApplyTest {
 protected:
  static std::string twoApps(int64_t revision, const std::string& web_image,
                             const std::string& extra = "") {
    return fmt::format(
        "apiVersion: fleetlet.io/v1\nkind: NodeState\nrevision: {}\nnode: n1\n{}apps:\n"
        "  web: {{image: \"{}\"}}\n  db: {{image: \"registry.local/db:1\"}}\n",
        revision, extra, web_image);
  }
  // Applies revision 1 and records it as converged and good.
  std::unique_ptr<Agent> withGoodRevision1() {
    auto agent = makeAgent(false);
    EXPECT_TRUE(agent->applyFrom(envelope(twoApps(1, "registry.local/web:1"), key_), "cloud",
                                 trust::Origin::kCloud));
    EXPECT_TRUE(store_->markApplied(1, true));
    return agent;
  }
  void advance(std::chrono::seconds d) { now_ = now_.load() + d; }
  // Waits (up to 5 s) until `done` holds; the rollback thread works asynchronously.
  static bool waitUntil(const std::function<bool()>& done) {
    for (int i = 0; i < 500 && !done(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
  }
  // Until the store and the reconciler both have `revision` (a rollback writes the store
  // first).
  bool waitDesired(Agent& agent, int64_t revision) {
    return waitUntil([&] {
      auto desired = agent.reconciler().desired();
      return store_->desiredRevision() == revision && desired && desired->revision == revision;
    });
  }
  std::optional<RollbackWindow> window(Agent& agent) {
    auto status = agent.status();
    EXPECT_TRUE(status);
    return status ? status->rollback_window : std::nullopt;
  }
  bool hasEvent(Agent& agent, const std::string& kind, const std::string& text) {
    for (const auto& e : agent.events(0, 1000)) {
      if (e.kind == kind && e.message.find(text) != std::string::npos) return true;
    }
    return false;
  }
  void applyRevision2WithWindow(Agent& agent) {
    auto applied = agent.applyFrom(
        envelope(twoApps(2, "registry.local/web:2", "rollback: {window: 120s}\n"), key_), "cloud",
        trust::Origin::kCloud);
    ASSERT_TRUE(applied) << applied.error().message();
  }
};

TEST_F(RollbackTest, AChangedAppFailingWithinTheWindowRollsBack) {
  auto agent = withGoodRevision1();
  applyRevision2WithWindow(*agent);
  advance(std::chrono::seconds(30));
  agent->unhealthy("web", "GET /healthz: 500");
  ASSERT_TRUE(waitDesired(*agent, 1));
  auto status = agent->status();
  ASSERT_TRUE(status);
  ASSERT_EQ(status->failed.size(), 1U);
  EXPECT_EQ(status->failed[0].revision, 2);
  EXPECT_EQ(status->failed[0].reason, "app web: failed health check: GET /healthz: 500");
  // The event follows the store's change (on the rollback thread).
  bool recorded = false;
  for (int i = 0; i < 500 && !recorded; ++i) {
    for (const auto& e : agent->events(0, 1000)) {
      recorded = recorded || (e.kind == "rolledBack" &&
                              e.message.starts_with("revision 2 failed: app web: failed health "
                                                    "check") &&
                              e.message.ends_with("back to revision 1"));
    }
    if (!recorded) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(recorded);
  EXPECT_EQ(agent->reconciler().desired()->revision, 1);
  EXPECT_EQ(agent->reconciler().desired()->apps.at("web").image, "registry.local/web:1");
  // Revision 2 is never applied again; 3 is.
  auto again = agent->applyFrom(envelope(twoApps(2, "registry.local/web:2"), key_), "cloud",
                                trust::Origin::kCloud);
  ASSERT_FALSE(again);
  EXPECT_THAT(again.error().message(), HasSubstr("revision 2 is not newer"));
  EXPECT_TRUE(agent->applyFrom(envelope(twoApps(3, "registry.local/web:3"), key_), "cloud",
                               trust::Origin::kCloud));
}

TEST_F(RollbackTest, NothingRollsBackAfterTheWindowOrForAnUnchangedApp) {
  auto agent = withGoodRevision1();
  applyRevision2WithWindow(*agent);
  ASSERT_TRUE(store_->markApplied(2, true));
  agent->unhealthy("db", "connection refused");  // db did not change in revision 2
  // The decision is taken in unhealthy(): a rollback would have ended the watch already.
  auto watched = window(*agent);
  ASSERT_TRUE(watched);
  EXPECT_EQ(watched->revision, 2);
  EXPECT_EQ(watched->back_to, 1);
  EXPECT_EQ(store_->lastGoodRevision(), 1);
  advance(std::chrono::seconds(121));
  agent->unhealthy("web", "GET /healthz: 500");  // too late
  // The window passed without a failure: revision 2 becomes the last good one (which a
  // rollback decided on the late failure would have prevented).
  ASSERT_TRUE(waitUntil([&] { return store_->lastGoodRevision() == 2; }));
  EXPECT_EQ(store_->desiredRevision(), 2);
  EXPECT_TRUE(agent->status()->failed.empty());
  EXPECT_FALSE(window(*agent));
  // The store is written before the event is recorded: wait for the event too.
  EXPECT_TRUE(waitUntil([&] {
    return hasEvent(*agent, "confirmed", "revision 2: no failure within its rollback window");
  }));
}

TEST_F(RollbackTest, WithoutAWindowNothingRollsBack) {
  auto agent = withGoodRevision1();
  ASSERT_TRUE(agent->applyFrom(envelope(twoApps(2, "registry.local/web:2"), key_), "cloud",
                               trust::Origin::kCloud));
  EXPECT_FALSE(window(*agent));  // nothing is watched, so nothing can roll back
  agent->unhealthy("web", "GET /healthz: 500");
  EXPECT_EQ(store_->desiredRevision(), 2);
  // Without a window, converging cleanly makes it the last good revision at once.
  ASSERT_TRUE(store_->markApplied(2, true));
  EXPECT_EQ(store_->lastGoodRevision(), 2);
}

// A revision converged inside its window is not the last good one until the window passes
// without a failure (issue 11: "After the window N becomes last good").
TEST_F(RollbackTest, ARevisionIsLastGoodOnlyAfterItsWindowPasses) {
  auto agent = withGoodRevision1();
  applyRevision2WithWindow(*agent);
  ASSERT_TRUE(store_->markApplied(2, true));
  EXPECT_EQ(store_->appliedRevision(), 2);
  EXPECT_EQ(store_->lastGoodRevision(), 1);
  advance(std::chrono::seconds(119));
  EXPECT_EQ(store_->lastGoodRevision(), 1);
  ASSERT_TRUE(window(*agent));
  // No event needed: the agent's own thread notices the end of the window.
  advance(std::chrono::seconds(2));
  ASSERT_TRUE(waitUntil([&] { return store_->lastGoodRevision() == 2; }));
  EXPECT_FALSE(window(*agent));
  // The store is written before the event is recorded (CI saw the gap): wait for the event too.
  EXPECT_TRUE(
      waitUntil([&] { return hasEvent(*agent, "confirmed", "it is the last good revision"); }));
  auto stored = store_->rollbackWatch();
  ASSERT_TRUE(stored);
  EXPECT_FALSE(stored->has_value());
}

// The watch is in the store: a fleetletd restarted inside the window continues it, exits
// counted before the restart included.
TEST_F(RollbackTest, ARestartInsideTheWindowContinuesTheWatch) {
  {
    auto agent = withGoodRevision1();
    applyRevision2WithWindow(*agent);
    agent->externalEvent("web", "exited", "exit code 3");
    agent->externalEvent("web", "exited", "exit code 3");
    EXPECT_EQ(store_->desiredRevision(), 2);
  }  // fleetletd stops (or is killed: every exit is written when counted)
  advance(std::chrono::seconds(60));
  auto agent = makeAgent(false);
  ASSERT_TRUE(agent->load());
  auto watched = window(*agent);
  ASSERT_TRUE(watched);
  EXPECT_EQ(watched->revision, 2);
  EXPECT_EQ(watched->until, *parseRfc3339("2026-12-06T12:02:00Z"));
  agent->externalEvent("web", "exited", "exit code 3");  // the third
  ASSERT_TRUE(waitDesired(*agent, 1));
  auto status = agent->status();
  ASSERT_TRUE(status);
  ASSERT_EQ(status->failed.size(), 1U);
  EXPECT_EQ(status->failed[0].reason, "app web: exited 3 times (exit code 3)");
  EXPECT_EQ(agent->reconciler().desired()->revision, 1);
  EXPECT_FALSE(window(*agent));
}

// A restart after the window ended: the revision becomes the last good one at once.
TEST_F(RollbackTest, ARestartAfterTheWindowEndsIt) {
  {
    auto agent = withGoodRevision1();
    applyRevision2WithWindow(*agent);
    ASSERT_TRUE(store_->markApplied(2, true));
  }
  advance(std::chrono::seconds(300));
  auto agent = makeAgent(false);
  ASSERT_TRUE(agent->load());
  ASSERT_TRUE(waitUntil([&] { return store_->lastGoodRevision() == 2; }));
  EXPECT_FALSE(window(*agent));
  EXPECT_EQ(store_->desiredRevision(), 2);
}

}  // namespace
}  // namespace fleetlet::core
