#include "logrequest/runner.h"

#include <spdlog/spdlog.h>

#include "http/client.h"
#include "logrequest/gzip.h"
#include "logs/reader.h"

namespace fleetlet::logrequest {

HttpUploader::HttpUploader(const config::CloudConfig& config, std::stop_token stop)
    : config_(config), stop_(std::move(stop)) {}

Result<long> HttpUploader::put(const std::string& url, const std::string& gzip) {
  http::ClientOptions o;
  o.user_agent = "fleetletd/0.1";
  o.connect_timeout = std::min(config_.timeout, std::chrono::milliseconds(10000));
  o.stall_timeout = config_.timeout;
  o.max_send_bytes_per_second = config_.log_upload_rate;
  o.stop = stop_;
  o.tls = {.client_cert = config_.tls.cert.string(),
           .client_key = config_.tls.key.string(),
           .ca_file = config_.tls.ca.string(),
           .pinned_public_keys = config_.tls.pinned_public_keys};
  http::Client client(std::move(o));  // one upload now and then: no connection kept
  http::ClientRequest request{.method = "PUT", .url = url, .body = gzip};
  request.headers.add("Content-Type", "application/gzip");
  auto response = client.stream(request, [](std::string_view) { return true; });
  if (!response) return std::unexpected(response.error());
  return response->status;
}

LogRequestRunner::LogRequestRunner(RunnerOptions options, LogRequestStore& store,
                                   Uploader& uploader)
    : options_(std::move(options)), store_(store), uploader_(uploader) {}

Result<bool> LogRequestRunner::admit(std::string_view body) {
  auto event = [this](const std::string& app, const std::string& message) {
    if (options_.on_event) options_.on_event(app, message);
  };
  static const trust::Policy kNoKeys;
  auto request = admitLogRequest(body, options_.policy ? *options_.policy : kNoKeys,
                                 options_.node_id, options_.now());
  if (!request) {
    event("", "refused: " + request.error().message());
    return std::unexpected(request.error());
  }
  FLEETLET_ASSIGN_OR_RETURN(bool added, store_.add(*request));
  if (!added) return false;
  spdlog::info("log request {}: accepted: logs of {} from {} until {}, to {}", request->id,
               describeSource(*request), logs::formatRfc3339Nano(request->range.since),
               logs::formatRfc3339Nano(request->range.until), request->upload_url);
  event(request->app,
        fmt::format("{}: accepted: logs of {} from {} until {}", request->id,
                    describeSource(*request), logs::formatRfc3339Nano(request->range.since),
                    logs::formatRfc3339Nano(request->range.until)));
  return true;
}

void LogRequestRunner::end(const LogRequest& r, bool done, const std::string& reason, Json result) {
  result["id"] = r.id;
  result["state"] = done ? "done" : "failed";
  result["source"] = r.app.empty() ? "node" : "app";
  if (!r.app.empty()) result["app"] = r.app;
  result["since"] = logs::formatRfc3339Nano(r.range.since);
  result["until"] = logs::formatRfc3339Nano(r.range.until);
  result["uploadUrl"] = r.upload_url;
  result["time"] = logs::formatRfc3339Nano(options_.now());
  if (!done) result["reason"] = reason;
  if (auto st = store_.finish(r.id, done, reason, result); !st) {
    spdlog::error("log request {}: recording its end: {}", r.id, st.error().message());
    return;
  }
  failures_ = 0;
  std::string message;
  if (done) {
    message = fmt::format("{}: uploaded {} lines of {} ({} bytes gzip) to {}", r.id,
                          result.value("lines", 0), describeSource(r), result.value("bytes", 0),
                          r.upload_url);
    if (result.value("truncated", false)) {
      message += fmt::format("; truncated: the oldest {} of {} lines left out (maxBytes {})",
                             result.value("totalLines", 0) - result.value("lines", 0),
                             result.value("totalLines", 0), result.value("maxBytes", 0));
    }
    spdlog::info("log request {}", message);
  } else {
    message = fmt::format("{} failed: {}", r.id, reason);
    spdlog::warn("log request {}", message);
  }
  if (options_.on_event) options_.on_event(r.app, message);
}

Duration LogRequestRunner::runOnce() {
  auto next = store_.next();
  if (!next) {
    spdlog::error("log requests: {}", next.error().message());
    return options_.first_retry;
  }
  const std::optional<StoredRequest>& found = *next;
  if (!found.has_value()) return options_.idle;
  const StoredRequest& stored = *found;
  const LogRequest& r = stored.request;
  const auto now = options_.now();
  if (r.expires <= now) {
    end(r, false,
        fmt::format("expired at {} before it could be uploaded",
                    logs::formatRfc3339Nano(r.expires)),
        Json::object());
    return Duration(0);
  }
  if (r.range.until > now) {
    // The range is still being written: run it once it has passed.
    return std::min(options_.idle, std::chrono::ceil<Duration>(r.range.until - now));
  }
  if (stored.state == "pending") {
    if (auto st = store_.markUploading(r.id); !st) {
      spdlog::error("log request {}: {}", r.id, st.error().message());
      return options_.first_retry;
    }
  } else if (attempting_ != r.id) {
    spdlog::info("log request {}: uploading again (fleetletd stopped during its upload)", r.id);
  }
  attempting_ = r.id;
  const auto log = r.app.empty() ? RunnerOptions::AppLog{.dir = options_.node_log_dir, .only = {}}
                                 : options_.app_log(r.app);
  auto entries = logs::readRange(log.dir, r.range);
  if (!entries && entries.error().code() == ErrorCode::kNotFound) {
    end(r, false, fmt::format("{} has no logs on this node", describeSource(r)), Json::object());
    return Duration(0);
  }
  if (!entries) {
    end(r, false, "reading the logs: " + entries.error().message(), Json::object());
    return Duration(0);
  }
  logs::keepOnly(entries->entries, log.only);
  std::vector<std::string> lines;
  lines.reserve(entries->entries.size());
  for (const auto& e : entries->entries) {
    lines.push_back(logs::formatEntryLine(e.time, e.stream, e.text));
  }
  const int64_t max_bytes = std::min(options_.max_bytes, r.max_bytes.value_or(options_.max_bytes));
  auto packed = packLines(lines, max_bytes);
  if (!packed) {
    end(r, false, packed.error().message(), Json::object());
    return Duration(0);
  }
  spdlog::info("log request {}: uploading {} lines of {} ({} bytes gzip) to {}", r.id,
               packed->lines, describeSource(r), packed->gzip.size(), r.upload_url);
  auto status = uploader_.put(r.upload_url, packed->gzip);
  if (status && *status >= 200 && *status < 300) {
    end(r, true, "",
        {{"lines", packed->lines},
         {"totalLines", packed->total_lines},
         {"truncated", packed->truncated},
         {"bytes", packed->gzip.size()},
         {"maxBytes", max_bytes},
         {"status", *status}});
    return Duration(0);
  }
  if (status && *status >= 400 && *status < 500 && *status != 408 && *status != 429) {
    end(r, false, fmt::format("PUT {}: HTTP {}", r.upload_url, *status), {{"status", *status}});
    return Duration(0);
  }
  const std::string why = status ? fmt::format("HTTP {}", *status) : status.error().message();
  auto delay = options_.first_retry * (int64_t{1} << std::min(failures_, 16));
  delay = std::min(delay, options_.max_retry);
  ++failures_;
  spdlog::warn("log request {}: PUT {}: {}; trying again in {} s", r.id, r.upload_url, why,
               std::chrono::duration_cast<std::chrono::seconds>(delay).count());
  return delay;
}

RunnerThread::RunnerThread(const config::CloudConfig& config, RunnerOptions options,
                           LogRequestStore& store)
    : uploader_(config, loop_.token()), runner_(std::move(options), store, uploader_) {
  loop_.start([this](const cloud::SleepFn& sleep) {
    while (sleep(runner_.runOnce())) {
    }
  });
}

Result<bool> RunnerThread::admit(std::string_view body) {
  auto added = runner_.admit(body);
  if (added && *added) loop_.wake();
  return added;
}

}  // namespace fleetlet::logrequest
