#pragma once
// The `metadata` part of an upload: {"semantics": "...", "retentionPolicy": {...}}.
//
// Concurrency: pure functions; safe from any thread.

#include <string>
#include <string_view>

#include "error/error.h"
#include "retention/retention_policy.h"

namespace fleetlet::api {

struct UploadMetadata {
  std::string semantics;
  retention::RetentionPolicy retention;
};

// Fails with kInvalidArgument whose message starts with "metadata" and names the problem:
// not JSON, not an object, semantics missing or empty, retentionPolicy missing or invalid.
Result<UploadMetadata> parseUploadMetadata(std::string_view text);

}  // namespace fleetlet::api
