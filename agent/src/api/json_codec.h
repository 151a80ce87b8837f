#pragma once
// The JSON form of the core types on fleetletd's local API (docs/local-api.md), used by the
// server to encode and by fleetletctl to decode. Members are camelCase like the manifest's;
// times are RFC 3339 UTC strings with milliseconds ("2026-11-21T06:00:56.123Z"); optional
// members are left out when unset. Pure; thread-safe.

#include <string>
#include <string_view>

#include "core/node_service.h"
#include "error/error.h"
#include "json/json.h"
#include "logs/reader.h"

namespace fleetlet::api {

// "2026-11-21T06:00:56.123Z" (UTC, milliseconds).
std::string formatTime(core::Clock::time_point t);
// Accepts RFC 3339 with any number of fraction digits (nanoseconds are kept) and "Z" or a
// "+hh:mm"/"-hh:mm" offset. kInvalidArgument naming the text otherwise.
Result<core::Clock::time_point> parseTime(std::string_view text);

Json toJson(const core::AppStatus& s);
Json toJson(const core::NodeEvent& e);
Json toJson(const core::AppDetail& d);
Json toJson(const core::NodeStatus& s);
Json toJson(const core::ApplyResult& r);
// A log entry: {"time","stream","log"}; time in RFC 3339 with nanoseconds as the CRI log has
// it, stream "stdout" or "stderr".
Json toJson(const logs::LogEntry& e);

// Decoders: kInvalidArgument naming the member path ("apps[2].restarts: expected an
// integer, got string") for missing or mistyped required members. Unknown members are
// ignored so that an older fleetletctl reads a newer fleetletd.
Result<core::AppStatus> appStatusFromJson(const Json& j, std::string_view path);
Result<core::NodeEvent> nodeEventFromJson(const Json& j, std::string_view path);
Result<core::AppDetail> appDetailFromJson(const Json& j, std::string_view path);
Result<core::NodeStatus> nodeStatusFromJson(const Json& j, std::string_view path);
Result<core::ApplyResult> applyResultFromJson(const Json& j, std::string_view path);
Result<logs::LogEntry> logEntryFromJson(const Json& j, std::string_view path);

}  // namespace fleetlet::api
