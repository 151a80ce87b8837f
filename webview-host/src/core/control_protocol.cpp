#include "core/control_protocol.h"

#include <set>

#include "core/policy.h"
#include "manifest/parse.h"

namespace fleetlet::webview {

Result<ControlRequest> parseControlRequest(std::string_view line) {
  if (line.size() > kMaxControlRequestBytes) {
    return fail(ErrorCode::kInvalidArgument, "request longer than {} bytes",
                kMaxControlRequestBytes);
  }
  FLEETLET_ASSIGN_OR_RETURN(Json doc, parseJson(line, "request"));
  if (!doc.is_object()) return fail(ErrorCode::kInvalidArgument, "request: expected an object");
  ControlRequest request;
  FLEETLET_ASSIGN_OR_RETURN(request.command, requireString(doc, "cmd", "request"));
  static const std::set<std::string> kCommands = {"list",       "status", "show",  "reload",
                                                  "screenshot", "load",   "unload"};
  if (!kCommands.contains(request.command)) {
    return fail(ErrorCode::kInvalidArgument,
                "request.cmd: unknown command \"{}\" (expected list, status, show, reload, "
                "screenshot, load or unload)",
                request.command);
  }
  FLEETLET_ASSIGN_OR_RETURN(auto app, optionalString(doc, "app", "request"));
  if (app) {
    if (auto ok = manifest::checkAppName(*app); !ok) {
      return std::unexpected(ok.error().wrap("request.app"));
    }
    request.app = *app;
  } else if (request.command != "list" && request.command != "screenshot") {
    return fail(ErrorCode::kInvalidArgument, "request.app: missing (command {})", request.command);
  }
  if (request.command == "load") {
    FLEETLET_ASSIGN_OR_RETURN(request.dir, requireString(doc, "dir", "request"));
    if (!request.dir.starts_with('/')) {
      return fail(ErrorCode::kInvalidArgument, "request.dir: \"{}\" is not an absolute path",
                  request.dir);
    }
    if (const auto it = doc.find("services"); it != doc.end() && !it->is_null()) {
      if (!it->is_object()) {
        return fail(ErrorCode::kInvalidArgument, "request.services: expected an object");
      }
      for (const auto& [name, socket] : it->items()) {
        if (!isServiceName(name)) {
          return fail(ErrorCode::kInvalidArgument,
                      "request.services.{}: unknown service (expected events, blobs or logs)",
                      name);
        }
        if (!socket.is_string() || !socket.get<std::string>().starts_with('/')) {
          return fail(ErrorCode::kInvalidArgument,
                      "request.services.{}: expected the absolute path of a unix socket", name);
        }
        request.services[name] = socket.get<std::string>();
      }
    }
    if (const auto it = doc.find("console"); it != doc.end() && !it->is_null()) {
      if (!it->is_string() || !it->get<std::string>().starts_with('/')) {
        return fail(ErrorCode::kInvalidArgument,
                    "request.console: expected the absolute path of a unix socket, got {}",
                    it->dump());
      }
      request.console = it->get<std::string>();
    }
    if (const auto it = doc.find("memoryLimitMiB"); it != doc.end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 64 || it->get<int64_t>() > 65536) {
        return fail(ErrorCode::kInvalidArgument,
                    "request.memoryLimitMiB: expected an integer from 64 to 65536, got {}",
                    it->dump());
      }
      request.memory_limit_mib = it->get<uint32_t>();
    }
  }
  return request;
}

std::string controlError(const Error& error) {
  std::string code;
  switch (error.code()) {
    case ErrorCode::kNotFound:
      code = "ERR_NOT_FOUND";
      break;
    case ErrorCode::kInvalidArgument:
      code = "ERR_BAD_REQUEST";
      break;
    case ErrorCode::kAlreadyExists:
      code = "ERR_ALREADY_EXISTS";
      break;
    case ErrorCode::kUnavailable:
      code = "ERR_UNAVAILABLE";
      break;
    case ErrorCode::kFailedPrecondition:
      code = "ERR_FAILED_PRECONDITION";
      break;
    case ErrorCode::kResourceExhausted:
      code = "ERR_RESOURCE_EXHAUSTED";
      break;
    case ErrorCode::kInternal:
      code = "ERR_INTERNAL";
      break;
  }
  return Json{{"ok", false}, {"code", code}, {"error", error.message()}}.dump();
}

}  // namespace fleetlet::webview
