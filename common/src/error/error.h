#pragma once
// fleetlet::Error and Result<T>: errors are values.
//
// An Error carries one code from a small fixed set, a message that says what failed and
// where, and the errno that caused it when there is one. Errors gain context as they travel
// up: `return std::unexpected(err.wrap("pull {}", ref));` yields "pull <ref>: <message>".
// Each boundary (HTTP, gRPC, CLI exit codes) maps codes in one table of its own.

#include <fmt/format.h>

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace fleetlet {

enum class ErrorCode : std::uint8_t {
  kNotFound,
  kInvalidArgument,
  kAlreadyExists,
  kUnavailable,
  kFailedPrecondition,
  kResourceExhausted,
  kInternal,
};

std::string_view toString(ErrorCode code);

class Error {
 public:
  Error(ErrorCode code, std::string message, int sys_errno = 0)
      : code_(code), message_(std::move(message)), errno_(sys_errno) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The errno that caused this error, or 0.
  int sysErrno() const { return errno_; }

  // Returns a copy whose message is prefixed with "<context>: ".
  template <typename... Args>
  Error wrap(fmt::format_string<Args...> context, Args&&... args) const {
    return Error(code_,
                 fmt::format("{}: {}", fmt::format(context, std::forward<Args>(args)...), message_),
                 errno_);
  }

  // "<code>: <message>", for logs.
  std::string describe() const;

  bool operator==(const Error&) const = default;

 private:
  ErrorCode code_;
  std::string message_;
  int errno_;
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = Result<void>;

template <typename... Args>
std::unexpected<Error> fail(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  return std::unexpected(Error(code, fmt::format(format, std::forward<Args>(args)...)));
}

// The status of a Result<T> without its value (GCC 12's std::expected has no transform()).
template <typename T>
Status discardValue(Result<T> result) {
  if (!result) return std::unexpected(std::move(result).error());
  return {};
}

// An error for a failed system call: the message ends with strerror(err) and sysErrno() is
// err. ENOENT maps to kNotFound, EEXIST to kAlreadyExists, ENOSPC/EMFILE/ENOMEM to
// kResourceExhausted, EINVAL to kInvalidArgument, everything else to kInternal.
Error errnoError(int err, std::string_view what);

template <typename... Args>
std::unexpected<Error> failErrno(int err, fmt::format_string<Args...> format, Args&&... args) {
  return std::unexpected(errnoError(err, fmt::format(format, std::forward<Args>(args)...)));
}

}  // namespace fleetlet

#define FLEETLET_CONCAT_INNER(a, b) a##b
#define FLEETLET_CONCAT(a, b) FLEETLET_CONCAT_INNER(a, b)

// Evaluates `expr` (a Result<void>) and returns its error from the calling function.
#define FLEETLET_RETURN_IF_ERROR(expr)                             \
  do {                                                             \
    if (auto fleetlet_status_ = (expr); !fleetlet_status_) {       \
      return std::unexpected(std::move(fleetlet_status_).error()); \
    }                                                              \
  } while (false)

// `FLEETLET_ASSIGN_OR_RETURN(auto x, makeX());` declares x from a Result<T> or returns its
// error from the calling function.
#define FLEETLET_ASSIGN_OR_RETURN(lhs, expr) \
  FLEETLET_ASSIGN_OR_RETURN_IMPL(FLEETLET_CONCAT(fleetlet_result_, __LINE__), lhs, expr)
// NOLINTBEGIN(bugprone-macro-parentheses): `lhs` is a declaration (`auto x`, `const T& y`) or
// an lvalue (parentheses would be a syntax error), and `tmp` is an identifier made by the macro.
#define FLEETLET_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)      \
  auto tmp = (expr);                                        \
  if (!tmp) return std::unexpected(std::move(tmp).error()); \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)

template <>
struct fmt::formatter<fleetlet::Error> : fmt::formatter<std::string_view> {
  auto format(const fleetlet::Error& e, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(e.message(), ctx);
  }
};
