#pragma once
// LogRequestStore: every log request the node accepted and where it stands, in status.db
// (table log_requests, beside the status outbox: cloud/status_outbox.h), so that a request is
// run once across kill -9:
//
//   pending ──markUploading()──▶ uploading ──finish()──▶ done | failed (with the reason)
//
// A request found `uploading` at start was cut off mid-upload: it is uploaded again, the same
// range to the same URL, which overwrites the partial file. finish() ends a request and queues
// its result for the next status report (member "logRequests") in one transaction, so the
// result is reported exactly once. A known id is never accepted again, whatever its state.
//
// Thread-safety: every call goes through the outbox's lock.

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "cloud/status_outbox.h"
#include "error/error.h"
#include "logrequest/request.h"

namespace fleetlet::logrequest {

struct StoredRequest {
  LogRequest request;
  std::string state;   // pending, uploading, done, failed
  std::string reason;  // why it failed
};

class LogRequestStore {
 public:
  explicit LogRequestStore(
      cloud::StatusOutbox& outbox, std::function<std::chrono::system_clock::time_point()> now =
                                       [] { return std::chrono::system_clock::now(); })
      : outbox_(outbox), now_(std::move(now)) {}

  // Records `request` as pending. false (and nothing changes) when its id is known.
  Result<bool> add(const LogRequest& request);
  // The oldest request still to run (pending or uploading); nullopt when none.
  Result<std::optional<StoredRequest>> next();
  // The request `id`; nullopt when unknown.
  Result<std::optional<StoredRequest>> find(const std::string& id);
  // pending → uploading. Durable before the upload starts.
  Status markUploading(const std::string& id);
  // uploading/pending → done or failed (`reason` for failed), and `result` queued for the next
  // status report: one transaction. kFailedPrecondition when the request is not running.
  Status finish(const std::string& id, bool done, const std::string& reason, const Json& result);

 private:
  cloud::StatusOutbox& outbox_;
  std::function<std::chrono::system_clock::time_point()> now_;
};

}  // namespace fleetlet::logrequest
