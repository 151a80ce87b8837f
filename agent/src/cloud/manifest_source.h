#pragma once
// ManifestSource: the node's desired state from the cloud (docs/cloud.md). Polls
// cloud.manifestUrl with If-None-Match and "Prefer: wait=N"; a 304 costs no parsing; a 200 body
// (bounded) goes to `apply`, which verifies the envelope and applies it or refuses it with the
// reason. The ETag of every body handled is remembered, so the same body is not handled twice.
// When to poll next is PollSchedule's decision.
//
// Threading: pollOnce() and run() on one thread at a time; counters() from any thread.
// SourceThread runs one on its own thread and stops it (cancelling a long poll) on
// destruction.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <random>
#include <stop_token>
#include <string>
#include <thread>

#include "cloud/http_fetcher.h"
#include "cloud/loop_thread.h"
#include "cloud/poll_schedule.h"
#include "error/error.h"

namespace fleetlet::cloud {

// Applies (or refuses) a body; returns whether the node's state changed. A refusal is
// kFailedPrecondition/kInvalidArgument with the reason; kUnavailable/kInternal mean "try the
// same body again".
using ApplyFn = std::function<Result<bool>(std::string_view body, std::string_view source)>;
// A body refused before it reached `apply` (too large, an error page): record the reason.
using RefusedFn = std::function<void(std::string_view source, const Error& why)>;

struct ManifestSourceOptions {
  std::string url;  // {node} already replaced
  Duration interval{std::chrono::seconds(60)};
  std::chrono::seconds wait{55};
  int64_t max_body_bytes = int64_t{1024} * 1024;
  std::function<std::chrono::steady_clock::time_point()> steady_now = [] {
    return std::chrono::steady_clock::now();
  };
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
  std::function<double()> random01;  // empty: a seeded std::mt19937
};

struct SourceCounters {
  int64_t polls = 0;
  int64_t not_modified = 0;  // 304s
  int64_t bodies = 0;        // 200 bodies handed to apply (each one parsed)
  int64_t applied = 0;
  int64_t refused = 0;
  int64_t failures = 0;
};

class ManifestSource {
 public:
  ManifestSource(ManifestSourceOptions options, Fetcher& fetcher, ApplyFn apply, RefusedFn refused);

  // One poll; the outcome feeds the schedule.
  PollOutcome pollOnce();
  // Polls until `sleep(delay)` returns false (stop requested).
  void run(const std::function<bool(Duration)>& sleep);

  SourceCounters counters() const;
  // "URL with {node} replaced".
  static std::string expand(std::string url, std::string_view node);

 private:
  void refuse(const Error& why);

  ManifestSourceOptions options_;
  Fetcher& fetcher_;
  ApplyFn apply_;
  RefusedFn refused_;
  PollSchedule schedule_;
  std::mt19937 rng_{std::random_device{}()};
  std::string etag_;              // of the last body handled
  size_t last_refused_hash_ = 0;  // a refused body without ETag is not handled twice
  std::string last_failure_;      // logged once until it changes
  mutable std::mutex counters_mu_;
  SourceCounters counters_;  // guarded by counters_mu_
};

// Runs a ManifestSource on its own thread; the destructor stops it promptly.
class SourceThread {
 public:
  // `make` builds the fetcher with the stop token that cancels its requests.
  SourceThread(ManifestSourceOptions options,
               const std::function<std::unique_ptr<Fetcher>(std::stop_token)>& make, ApplyFn apply,
               RefusedFn refused);
  ~SourceThread() { loop_.stop(); }  // before the source and fetcher go

  SourceCounters counters() const { return source_.counters(); }

 private:
  LoopThread loop_;
  std::unique_ptr<Fetcher> fetcher_;
  ManifestSource source_;
};

// Starts polling `config.manifest_url` (must be set) for node `node_id` over libcurl with the
// configured mTLS.
std::unique_ptr<SourceThread> startManifestSource(const config::CloudConfig& config,
                                                  std::string_view node_id, ApplyFn apply,
                                                  RefusedFn refused);
// The same for another document at `url` ({node} replaced), every config.interval, asking a
// long poll of `wait` (0: none): the log requests (cloud.logRequestUrl).
std::unique_ptr<SourceThread> startDocumentSource(const config::CloudConfig& config,
                                                  const std::string& url, std::chrono::seconds wait,
                                                  std::string_view node_id, ApplyFn apply,
                                                  RefusedFn refused);

}  // namespace fleetlet::cloud
