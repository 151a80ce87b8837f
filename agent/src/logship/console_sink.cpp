#include "logship/console_sink.h"

#include "json/json.h"

namespace fleetlet::logship {

std::string ingestBody(const std::string& app, const std::vector<Message>& messages) {
  Json entries = Json::array();
  for (const auto& m : messages) {
    const std::string stream(logs::toString(m.stream));
    Json labels = {{"stream", stream}};
    if (m.part > 0) {
      labels["part"] = std::to_string(m.part);
      labels["lastPart"] = m.last ? "true" : "false";
    }
    entries.push_back({{"app", app},
                       {"key", m.key},
                       {"logName", stream},
                       {"severity", "info"},
                       {"message", m.text},
                       {"logTimestamp", logs::formatRfc3339Nano(m.time)},
                       {"labels", std::move(labels)}});
  }
  return Json{{"entries", std::move(entries)}}.dump(-1, ' ', false, Json::error_handler_t::replace);
}

ConsoleSink::ConsoleSink(const std::filesystem::path& socket, std::chrono::milliseconds timeout)
    : client_({.unix_socket = socket.string(),
               .connect_timeout = std::chrono::milliseconds(2000),
               .total_timeout = timeout}) {}

Result<SendResult> ConsoleSink::send(const std::string& app, const std::vector<Message>& messages) {
  http::ClientRequest request{.method = "POST",
                              .url = "http://fleetlet-streams/api/v1/logs/ingest"};
  request.headers.add("Content-Type", "application/json");
  request.body = ingestBody(app, messages);
  FLEETLET_ASSIGN_OR_RETURN(auto response, client_.send(request));
  if (response.status == 400 || response.status == 413) {
    return fail(ErrorCode::kInvalidArgument, "console service refused the logs of {}: {} {}", app,
                response.status, response.body);
  }
  if (response.status != 200) {
    return fail(ErrorCode::kUnavailable, "console service: {} {}", response.status, response.body);
  }
  FLEETLET_ASSIGN_OR_RETURN(auto body, parseJson(response.body, "ingest response"));
  if (!body.is_object()) return fail(ErrorCode::kUnavailable, "console service: odd answer");
  return SendResult{.stored = body.value("stored", std::size_t{0}),
                    .duplicates = body.value("duplicates", std::size_t{0})};
}

}  // namespace fleetlet::logship
