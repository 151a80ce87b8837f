#pragma once
// Turns a registry's error answer into an Error.
//
// The distribution spec's error body is {"errors":[{"code":"MANIFEST_UNKNOWN","message":...,
// "detail":...}]}. Codes map as:
//   MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_UNKNOWN, BLOB_UPLOAD_UNKNOWN  -> kNotFound
//   UNAUTHORIZED, DENIED, UNSUPPORTED                                   -> kFailedPrecondition
//   TOOMANYREQUESTS                                                     -> kResourceExhausted
//   *_INVALID, MANIFEST_BLOB_UNKNOWN, MANIFEST_UNVERIFIED               -> kInvalidArgument
// and without a known code by HTTP status: 401/403 kFailedPrecondition, 404 kNotFound,
// 429 kResourceExhausted, 5xx kUnavailable, anything else kInternal. The message reads
// "<what went wrong>: <what>[: <registry's message>]", e.g.
// "manifest unknown: 127.0.0.1:5000/acme/x:1" or
// "unauthorized: 127.0.0.1:5000/acme/x:1: authentication required". Bodies that are not JSON
// (proxies, HTML pages, garbage) contribute a short printable excerpt. Pure and thread-safe.

#include <string_view>

#include "error/error.h"

namespace fleetlet::registry {

// `status` is the HTTP status (>= 300), `body` the answer, `what` names the thing asked for
// (a reference or "host/repo@digest").
Error decodeRegistryError(long status, std::string_view body, std::string_view what);

}  // namespace fleetlet::registry
