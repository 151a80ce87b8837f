#pragma once
// The control protocol of fleetlet-webview: one JSON object per line on a unix socket, one
// request per connection, answered with one JSON line.
//
//   {"cmd":"list"}                                  → {"ok":true,"shown":"a","apps":[Status...],
//                                                      "instance":"<pid>-<start µs>","pid":N}
//   {"cmd":"status","app":"a"}                      → {"ok":true,"status":Status}
//   {"cmd":"show","app":"a"}                        → {"ok":true}
//   {"cmd":"reload","app":"a"}                      → {"ok":true}
//   {"cmd":"screenshot"[,"app":"a"]}                → {"ok":true,"app":"a","png":"<base64>"}
//   {"cmd":"load","app":"a","dir":"/abs/dir"[,"services":{"events":"/run/…/events.sock"}]
//    [,"memoryLimitMiB":512][,"console":"/run/…/logs.sock"]}
//                                                   → {"ok":true}  (adds or updates an app)
//   {"cmd":"unload","app":"a"}                      → {"ok":true}
//   errors: {"ok":false,"code":"ERR_NOT_FOUND","error":"no app \"x\""}
//
// Status: {"app","displayName","dir","shown","url","title","loadState","heartbeatAgeMs",
//          "failures","lastFailure":{"state","reason","secondsAgo"}}. Pure functions.

#include <map>
#include <string>
#include <string_view>

#include "error/error.h"
#include "json/json.h"

namespace fleetlet::webview {

inline constexpr size_t kMaxControlRequestBytes = size_t{64} * 1024;

struct ControlRequest {
  std::string command;  // list, status, show, reload, screenshot, load, unload
  std::string app;      // required by all but list (and screenshot: the shown app)
  std::string dir;      // load: the bundle's verified directory, absolute
  // load: service name (events, blobs, logs) → the unix socket of that service's listener
  // for this app (its identity: the service knows the app by the listener).
  std::map<std::string, std::string> services;
  // load: the app's web process is ended and reloaded above this many MiB (0: no limit).
  // Takes effect when the app is first loaded (WebKit fixes it per web context).
  uint32_t memory_limit_mib = 0;
  // load: the unix socket of the app's own console-service listener; the page's console
  // messages are posted there (empty: only the kiosk's log).
  std::string console;
};

// Parses and checks one request line; kInvalidArgument names what is wrong.
Result<ControlRequest> parseControlRequest(std::string_view line);

// The answer line (without the newline) for an error.
std::string controlError(const Error& error);

}  // namespace fleetlet::webview
