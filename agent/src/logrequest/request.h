#pragma once
// A log request: the cloud asks a node to upload an app's or its own logs for a time range
// (docs/observability.md, "Logs on request"). It is a document of its own, signed with the
// fleet's keys in a DSSE envelope like the node state but with its own payload type, and
// fetched beside the manifest (cloud.logRequestUrl), so asking for logs needs no new
// revision and never touches rollback:
//
//   {"payloadType": "application/vnd.fleetlet.logrequest.v1+json", "payload": <base64>, ...}
//
//   payload: {"apiVersion": "fleetlet.io/v1", "kind": "LogRequest", "id": "req-42",
//             "node": "edge-7", "source": "app", "app": "web",
//             "since": "2026-12-07T06:00:00Z", "until": "2026-12-07T06:10:00Z",
//             "uploadUrl": "https://cloud.example/logs/edge-7/req-42.gz",
//             "maxBytes": 1048576, "expires": "2026-12-08T00:00:00Z"}
//
// Pure functions; thread-safe.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "error/error.h"
#include "json/json.h"
#include "logs/time_range.h"
#include "trust/policy.h"

namespace fleetlet::logrequest {

inline constexpr std::string_view kPayloadType = "application/vnd.fleetlet.logrequest.v1+json";

struct LogRequest {
  std::string id;    // 1..64 of [A-Za-z0-9._-]; a request is run once per id, ever
  std::string node;  // the node it is for
  std::string app;   // the app whose logs; empty: the node's own (source "node")
  logs::TimeRange range;
  std::string upload_url;            // http(s); the gzip is PUT there
  std::optional<int64_t> max_bytes;  // of the gzip; the node's cloud.logUploadMaxBytes caps it
  std::chrono::system_clock::time_point expires;
};

// The payload as JSON (as it is parsed).
Json toJson(const LogRequest& request);

// Parses a payload. kInvalidArgument naming the field: "log request: unknown field \"x\"",
// "log request: id: missing", "log request: since: ...", "log request: since (...) is not
// before until (...)", "log request: source: \"disk\" is not \"app\" or \"node\"", ...
Result<LogRequest> parseLogRequest(std::string_view payload);

// Admits a body fetched from the cloud: it must be a DSSE envelope of kPayloadType signed by
// `policy`'s keys (threshold as for manifests), parse, name this node, and not have expired.
// kFailedPrecondition naming the reason, prefixed "log request: " ("log request: not a
// signed envelope (...)", "log request: signature: no valid signature by a trusted key ...",
// "log request req-42: for node \"n2\", this node is \"n1\"", "log request req-42: expired at
// 2026-...Z").
Result<LogRequest> admitLogRequest(std::string_view body, const trust::Policy& policy,
                                   std::string_view node_id,
                                   std::chrono::system_clock::time_point now);

// "app web" or "the node".
std::string describeSource(const LogRequest& request);

}  // namespace fleetlet::logrequest
