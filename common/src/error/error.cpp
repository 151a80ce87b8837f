#include "error/error.h"

#include <cerrno>
#include <cstring>

namespace fleetlet {

std::string_view toString(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kAlreadyExists:
      return "already exists";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kFailedPrecondition:
      return "failed precondition";
    case ErrorCode::kResourceExhausted:
      return "resource exhausted";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

std::string Error::describe() const { return fmt::format("{}: {}", toString(code_), message_); }

Error errnoError(int err, std::string_view what) {
  ErrorCode code = ErrorCode::kInternal;
  switch (err) {
    case ENOENT:
      code = ErrorCode::kNotFound;
      break;
    case EEXIST:
      code = ErrorCode::kAlreadyExists;
      break;
    case ENOSPC:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case EDQUOT:
      code = ErrorCode::kResourceExhausted;
      break;
    case EINVAL:
      code = ErrorCode::kInvalidArgument;
      break;
    case ECONNREFUSED:
    case ETIMEDOUT:
    case EAGAIN:
      code = ErrorCode::kUnavailable;
      break;
    default:
      break;
  }
  return Error(code, fmt::format("{}: {}", what, std::strerror(err)), err);
}

}  // namespace fleetlet
