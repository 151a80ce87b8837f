#include "events/requests.h"

#include <gtest/gtest.h>

namespace fleetlet::streams {
namespace {

TEST(PublishRequest, ParsesEventsAndKeepsPayloadAsJson) {
  auto r = parsePublishRequest(
      R"({"data":[{"semantics":"s","name":"n","payload":{"a":[1,2]}},{"semantics":"t","name":"m","payload":null}]})");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->events.size(), 2u);
  EXPECT_EQ(r->events[0].semantics, "s");
  EXPECT_EQ(r->events[0].payload, R"({"a":[1,2]})");
  EXPECT_EQ(r->events[1].payload, "null");
}

TEST(PublishRequest, KeepsPayloadNumbersExactlyAsWritten) {
  // nlohmann::json would give 1.2345678901234568e+29, 0, 100.0 and 0.1 back.
  auto r =
      parsePublishRequest(R"({ "data" : [ { "payload" : { "big" : 123456789012345678901234567890,
      "neg" : -0, "exp" : 1E2, "frac" : 0.10, "s" : "a \" b\n" , "list" : [ 1 , -0.0 ] },
      "semantics" : "s", "name" : "n" }, {"semantics":"s","name":"n","payload":18446744073709551616}]})");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->events.size(), 2u);
  EXPECT_EQ(
      r->events[0].payload,
      R"({"big":123456789012345678901234567890,"neg":-0,"exp":1E2,"frac":0.10,"s":"a \" b\n","list":[1,-0.0]})");
  EXPECT_EQ(r->events[1].payload, "18446744073709551616");
}

TEST(PublishRequest, RawPayloadFollowsTheParsedStructure) {
  // Escaped keys, repeated keys (the last one counts, as for the other fields) and a "payload"
  // inside a string or a nested object are not mistaken for the event's payload.
  auto r = parsePublishRequest(
      R"({"x":"\"data\":[1]","data":[{"semantics":"s","name":"n","p\u0061yload":{"payload":7},)"
      R"("payload":[2]}],"y":{"data":[]}})");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->events.size(), 1u);
  EXPECT_EQ(r->events[0].payload, "[2]");
}

TEST(PublishRequest, EscapedNamesAndOddShapesGiveTheSameEventsAsPlainOnes) {
  // Escapes in the names, whitespace, extra members and a duplicate key: all read as nlohmann
  // reads them.
  auto r = parsePublishRequest(
      " {\"extra\":[1,{\"data\":2}], \"data\" : [ {\"semantics\":\"a\\u0042\",\"name\":\"n\\\"q\","
      "\"payload\":{ \"x\" : 1 }}, {\"name\":\"first\",\"semantics\":\"s\",\"name\":\"last\","
      "\"payload\":null} ] } ");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->events.size(), 2u);
  EXPECT_EQ(r->events[0].semantics, "aB");
  EXPECT_EQ(r->events[0].name, "n\"q");
  EXPECT_EQ(r->events[0].payload, R"({"x":1})");
  EXPECT_EQ(r->events[1].name, "last");
  EXPECT_EQ(r->events[1].payload, "null");
  // A "data" that is not an array of objects is refused with its path, as before.
  auto bad = parsePublishRequest(R"({"data":[1]})");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("request.data[0]"), std::string::npos);
}

TEST(EventJson, ReceiptsAndNamesNeedingEscapes) {
  EXPECT_EQ(receiptsJson({{"src", 3, 42, 17}, {"src", 4, 43, 17}}),
            R"({"data":[{"lamport":42,"offset":3,"source":"src","timestamp":17},)"
            R"({"lamport":43,"offset":4,"source":"src","timestamp":17}]})");
  Event e{"a\"b", "tab\there", "src", 1, 2, 3, "null", ""};
  EXPECT_EQ(eventJson(e),
            R"({"stream":{"semantics":"a\"b","name":"tab\there","source":"src"},"timestamp":1,)"
            R"("lamport":2,"offset":3,"payload":null})"
            "\n");
}

TEST(PublishRequest, RejectsNamingThePath) {
  auto r =
      parsePublishRequest(R"({"data":[{"semantics":"s","name":"n","payload":1},{"name":"n"}]})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("request.data[1].semantics"), std::string::npos);
  EXPECT_FALSE(parsePublishRequest(R"({"data":[{"semantics":"s","name":"","payload":1}]})"));
  EXPECT_FALSE(parsePublishRequest(""));
  EXPECT_FALSE(parsePublishRequest("null"));
  EXPECT_FALSE(parsePublishRequest(std::string(1000, '[')));
}

TEST(QueryRequest, ParsesOrdersAndBounds) {
  auto r = parseQueryRequest(
      R"({"subscriptions":[{"semantics":"s"},{}],"order":"lamport-reverse","upperBound":{"a":5,"b":0},"lowerBound":{"a":2}})");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->order, Order::kLamportReverse);
  ASSERT_EQ(r->filters.size(), 2u);
  EXPECT_EQ(r->filters[0].semantics, "s");
  EXPECT_TRUE(r->filters[1].matchesAll());
  EXPECT_EQ(r->upper_bound, (OffsetMap{{"a", 5}, {"b", 0}}));
  EXPECT_EQ(r->lower_bound, (OffsetMap{{"a", 2}}));
}

TEST(QueryRequest, RejectsMissingUpperBoundAndBadOffsets) {
  EXPECT_FALSE(parseQueryRequest(R"({"subscriptions":[],"order":"lamport"})"));
  EXPECT_FALSE(parseQueryRequest(R"({"subscriptions":[],"order":"x","upperBound":{}})"));
  EXPECT_FALSE(
      parseQueryRequest(R"({"subscriptions":[],"order":"lamport","upperBound":{"a":1.5}})"));
  EXPECT_FALSE(parseQueryRequest(
      R"({"subscriptions":[],"order":"lamport","upperBound":{"a":18446744073709551615}})"));
  EXPECT_FALSE(
      parseQueryRequest(R"({"subscriptions":[{"name":3}],"order":"lamport","upperBound":{}})"));
}

TEST(SubscribeRequest, LowerBoundIsOptional) {
  auto r = parseSubscribeRequest(R"({"subscriptions":[{"source":"x"}]})");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->lower_bound.empty());
  EXPECT_EQ(r->filters.at(0).source, "x");
  EXPECT_FALSE(parseSubscribeRequest(R"({"lowerBound":{}})"));
}

TEST(EventJson, MatchesTheWireFormat) {
  Event e{"sem", "nm", "src", 17, 42, 3, R"({"x":1})", ""};
  EXPECT_EQ(
      eventJson(e),
      R"({"stream":{"semantics":"sem","name":"nm","source":"src"},"timestamp":17,"lamport":42,"offset":3,"payload":{"x":1}})"
      "\n");
  e.app = "cam";
  EXPECT_NE(eventJson(e).find(R"("sourceApp":"cam")"), std::string::npos);
}

TEST(JsonDepth, SkipsStrings) {
  EXPECT_EQ(jsonNestingDepth(R"({"a":"[[[[","b":[{}]})"), 3);
  EXPECT_EQ(jsonNestingDepth(R"("\"[")"), 0);
}

}  // namespace
}  // namespace fleetlet::streams
