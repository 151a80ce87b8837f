#pragma once
// Parsing of event service request bodies (publish, query, subscribe). Every rejected body
// yields kInvalidArgument naming what is wrong and where ("request.data[2].semantics: expected
// a string, got integer"); nothing here throws.
//
// Concurrency: pure functions.

#include <string_view>
#include <vector>

#include "error/error.h"
#include "events/event.h"

namespace fleetlet::streams {

// Deepest JSON nesting a request may have; deeper bodies are rejected before parsing (deep
// nesting would exhaust the stack when serialized).
inline constexpr int kMaxJsonDepth = 64;

struct PublishRequest {
  std::vector<NewEvent> events;
};

struct QueryRequest {
  std::vector<Filter> filters;
  Order order = Order::kLamport;
  OffsetMap upper_bound;
  OffsetMap lower_bound;
};

struct SubscribeRequest {
  std::vector<Filter> filters;
  OffsetMap lower_bound;
};

// {"data":[{"semantics":S,"name":N,"payload":any},...]}
Result<PublishRequest> parsePublishRequest(std::string_view body);
// {"subscriptions":[F,...],"order":O,"upperBound":OM,"lowerBound"?:OM}
Result<QueryRequest> parseQueryRequest(std::string_view body);
// {"subscriptions":[F,...],"lowerBound"?:OM}
Result<SubscribeRequest> parseSubscribeRequest(std::string_view body);

// The deepest array/object nesting in `text` (strings are skipped); works on malformed text.
int jsonNestingDepth(std::string_view text);

}  // namespace fleetlet::streams
