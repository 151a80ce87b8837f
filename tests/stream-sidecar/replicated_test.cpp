#include "events/replicated.h"

#include <gtest/gtest.h>

namespace fleetlet::streams {
namespace {

Event sample() {
  return Event{.semantics = "com.x",
               .name = "n1",
               .source = "node-a",
               .timestamp = 1700000000123456,
               .lamport = 42,
               .offset = 6,
               .payload = R"({"big":123456789012345678901234567890,"z":-0})",
               .app = "com.app"};
}

TEST(ReplicatedEvent, RoundTripsExactlyIncludingRawNumbers) {
  Event e = sample();
  std::string body = replicatedEventJson(e);
  EXPECT_EQ(body.back(), '}');  // one NDJSON line without its newline
  auto parsed = parseReplicatedEvent(body, "node-a", 7, 1 << 20);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->semantics, e.semantics);
  EXPECT_EQ(parsed->name, e.name);
  EXPECT_EQ(parsed->source, e.source);
  EXPECT_EQ(parsed->timestamp, e.timestamp);
  EXPECT_EQ(parsed->lamport, e.lamport);
  EXPECT_EQ(parsed->offset, e.offset);
  EXPECT_EQ(parsed->payload, e.payload);
  EXPECT_EQ(parsed->app, e.app);
}

TEST(ReplicatedEvent, HostileMessagesAreRejectedWithTheirReason) {
  std::string body = replicatedEventJson(sample());
  auto reason = [](std::expected<Event, Rejected> r) {
    EXPECT_FALSE(r);
    return r ? Rejection::kBadJson : r.error().reason;
  };
  EXPECT_EQ(reason(parseReplicatedEvent(body, "node-a", 8, 1 << 20)), Rejection::kWrongOffset);
  EXPECT_EQ(reason(parseReplicatedEvent(body, "node-a", 0, 1 << 20)), Rejection::kWrongOffset);
  EXPECT_EQ(reason(parseReplicatedEvent(body, "node-b", 7, 1 << 20)), Rejection::kWrongSource);
  EXPECT_EQ(reason(parseReplicatedEvent(body, "node-a", 7, body.size() - 1)), Rejection::kTooLarge);
  EXPECT_EQ(reason(parseReplicatedEvent("{not json", "node-a", 7, 1 << 20)), Rejection::kBadJson);
  EXPECT_EQ(reason(parseReplicatedEvent("[1]", "node-a", 7, 1 << 20)), Rejection::kBadJson);
  EXPECT_EQ(reason(parseReplicatedEvent(std::string(100, '[') + std::string(100, ']'), "node-a", 7,
                                        1 << 20)),
            Rejection::kBadJson);
  // A field of the wrong type or missing.
  std::string no_payload = R"({"stream":{"semantics":"s","name":"n","source":"node-a"},)"
                           R"("timestamp":1,"lamport":1,"offset":6})";
  EXPECT_EQ(reason(parseReplicatedEvent(no_payload, "node-a", 7, 1 << 20)), Rejection::kBadJson);
  std::string text_lamport = R"({"stream":{"semantics":"s","name":"n","source":"node-a"},)"
                             R"("timestamp":1,"lamport":"1","offset":6,"payload":1})";
  EXPECT_EQ(reason(parseReplicatedEvent(text_lamport, "node-a", 7, 1 << 20)), Rejection::kBadJson);
}

TEST(ReplicatedEvent, NamesOnTheHub) {
  EXPECT_EQ(sourceSubject("plant1", "node-a"), "fl.plant1.src.node-a");
  EXPECT_EQ(sourceStream("plant1", "node-a"), "FL_plant1_node-a");
  EXPECT_EQ(sourceOfSubject("plant1", "fl.plant1.src.node_a"), "node_a");
  EXPECT_FALSE(sourceOfSubject("plant1", "fl.plant2.src.node-a"));
  EXPECT_FALSE(sourceOfSubject("plant1", "fl.plant1.src.a.b"));
  EXPECT_TRUE(checkSiteName("plant-1"));
  EXPECT_FALSE(checkSiteName("plant_1"));
  EXPECT_FALSE(checkSiteName("a.b"));
  EXPECT_TRUE(checkReplicatedSource("f45e04904afd8354"));
  EXPECT_FALSE(checkReplicatedSource("node a"));
  EXPECT_FALSE(checkReplicatedSource(""));
  EXPECT_FALSE(checkReplicatedSource("a*"));
}

}  // namespace
}  // namespace fleetlet::streams
