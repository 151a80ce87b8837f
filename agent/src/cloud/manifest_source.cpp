#include "cloud/manifest_source.h"

#include <spdlog/spdlog.h>

namespace fleetlet::cloud {
namespace {

std::string printable(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, 60)) out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  return out;
}

}  // namespace

ManifestSource::ManifestSource(ManifestSourceOptions options, Fetcher& fetcher, ApplyFn apply,
                               RefusedFn refused)
    : options_(std::move(options)),
      fetcher_(fetcher),
      apply_(std::move(apply)),
      refused_(std::move(refused)),
      schedule_(options_.interval, [this] {
        return options_.random01 ? options_.random01()
                                 : std::uniform_real_distribution<double>(0, 1)(rng_);
      }) {}

std::string ManifestSource::expand(std::string url, std::string_view node) {
  for (auto at = url.find("{node}"); at != std::string::npos; at = url.find("{node}", at)) {
    url.replace(at, 6, node);
    at += node.size();
  }
  return url;
}

SourceCounters ManifestSource::counters() const {
  std::lock_guard lock(counters_mu_);
  return counters_;
}

void ManifestSource::refuse(const Error& why) {
  spdlog::warn("cloud: {}: {}", options_.url, why.message());
  {
    std::lock_guard lock(counters_mu_);
    ++counters_.refused;
  }
  if (refused_) refused_("cloud " + options_.url, why);
}

PollOutcome ManifestSource::pollOnce() {
  const auto start = options_.steady_now();
  {
    std::lock_guard lock(counters_mu_);
    ++counters_.polls;
  }
  auto response = fetcher_.get({.url = options_.url, .etag = etag_, .wait = options_.wait});
  PollOutcome outcome;
  outcome.elapsed = std::chrono::duration_cast<Duration>(options_.steady_now() - start);
  auto failed = [&](const std::string& why) {
    if (why != last_failure_) spdlog::warn("cloud: {}", why);
    last_failure_ = why;
    std::lock_guard lock(counters_mu_);
    ++counters_.failures;
    return outcome;
  };
  if (!response) return failed(response.error().message());
  if (const std::optional<std::string> retry = response->retry_after; retry.has_value()) {
    outcome.retry_after = parseRetryAfter(*retry, options_.now());
  }
  if (const std::optional<std::string> cache = response->cache_control; cache.has_value()) {
    outcome.max_age = parseMaxAge(*cache);
  }
  const long status = response->status;
  if (status == 304) {
    outcome.answered = true;
    last_failure_.clear();
    std::lock_guard lock(counters_mu_);
    ++counters_.not_modified;
    return outcome;
  }
  if (status == 404) {
    // No state for this node yet: not a failure of the link, so no backoff.
    outcome.answered = true;
    if (last_failure_ != "404") spdlog::info("cloud: {}: no manifest yet (404)", options_.url);
    last_failure_ = "404";
    return outcome;
  }
  if (status < 200 || status >= 300) {
    return failed(
        fmt::format("GET {}: HTTP {} {}", options_.url, status, printable(response->body)));
  }
  outcome.answered = true;
  last_failure_.clear();
  if (!response->etag.empty() && response->etag == etag_) return outcome;  // a weak server
  if (response->too_large) {
    etag_ = response->etag;
    refuse(Error(ErrorCode::kInvalidArgument,
                 fmt::format("body larger than {} bytes (cloud.maxManifestBytes); refused "
                             "unread",
                             options_.max_body_bytes)));
    return outcome;
  }
  const size_t hash = std::hash<std::string>()(response->body);
  if (response->etag.empty() && hash == last_refused_hash_) return outcome;
  {
    std::lock_guard lock(counters_mu_);
    ++counters_.bodies;
  }
  spdlog::debug("cloud: handling a {}-byte body (ETag {})", response->body.size(),
                response->etag.empty() ? "none" : response->etag);
  auto applied = apply_(response->body, "cloud " + options_.url);
  if (applied) {
    etag_ = response->etag;
    last_refused_hash_ = 0;
    std::lock_guard lock(counters_mu_);
    if (*applied) ++counters_.applied;
    return outcome;
  }
  const auto code = applied.error().code();
  if (code == ErrorCode::kUnavailable || code == ErrorCode::kInternal ||
      code == ErrorCode::kResourceExhausted) {
    return failed(applied.error().message());  // the same body again later
  }
  // Refused for its content: the same body (by ETag or bytes) is not handled again.
  etag_ = response->etag;
  last_refused_hash_ = hash;
  spdlog::warn("cloud: refused ({} bytes starting \"{}\"): {}", response->body.size(),
               printable(response->body), applied.error().message());
  std::lock_guard lock(counters_mu_);
  ++counters_.refused;
  return outcome;
}

void ManifestSource::run(const std::function<bool(Duration)>& sleep) {
  for (;;) {
    auto outcome = pollOnce();
    if (!sleep(schedule_.next(outcome))) return;
  }
}

SourceThread::SourceThread(ManifestSourceOptions options,
                           const std::function<std::unique_ptr<Fetcher>(std::stop_token)>& make,
                           ApplyFn apply, RefusedFn refused)
    : fetcher_(make(loop_.token())),
      source_(std::move(options), *fetcher_, std::move(apply), std::move(refused)) {
  loop_.start([this](const SleepFn& sleep) { source_.run(sleep); });
}

std::unique_ptr<SourceThread> startManifestSource(const config::CloudConfig& config,
                                                  std::string_view node_id, ApplyFn apply,
                                                  RefusedFn refused) {
  return startDocumentSource(config, config.manifest_url, config.wait, node_id, std::move(apply),
                             std::move(refused));
}

std::unique_ptr<SourceThread> startDocumentSource(const config::CloudConfig& config,
                                                  const std::string& url, std::chrono::seconds wait,
                                                  std::string_view node_id, ApplyFn apply,
                                                  RefusedFn refused) {
  ManifestSourceOptions options{.url = ManifestSource::expand(url, node_id),
                                .interval = config.interval,
                                .wait = wait,
                                .max_body_bytes = config.max_manifest_bytes};
  spdlog::info("cloud: polling {} every {} s (long poll {} s)", options.url,
               std::chrono::duration_cast<std::chrono::seconds>(config.interval).count(),
               wait.count());
  auto make = [&config](std::stop_token stop) -> std::unique_ptr<Fetcher> {
    return std::make_unique<HttpFetcher>(
        HttpFetcherOptions{.tls = config.tls,
                           .max_body_bytes = config.max_manifest_bytes,
                           .timeout = config.timeout,
                           .stop = std::move(stop)});
  };
  return std::make_unique<SourceThread>(std::move(options), make, std::move(apply),
                                        std::move(refused));
}

}  // namespace fleetlet::cloud
