#pragma once
// Errors as values at every boundary of the project.
//
// An Error carries a classified code (decided once, where the error enters the
// program), a human-readable message that names what was wrong, and optional
// details used by retry logic (HTTP status, Retry-After). Result<T> holds either
// a T or an Error. Neither type is thread-safe for concurrent mutation; both are
// cheap to move.

#include <cassert>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace exitrec {

enum class ErrorCode {
  kInvalidInput,     // malformed input data (a Workflow, JSON, flags, a file)
  kNotFound,         // 404
  kConflict,         // 409, or 422 from a failed JSON-patch test
  kGone,             // 410: resourceVersion too old / continue token expired
  kUnauthorized,     // 401
  kForbidden,        // 403
  kTooManyRequests,  // 429 (retryAfter may be set)
  kTransient,        // 5xx, connection failures, timeouts: retry with backoff
  kInvalid,          // other 4xx: the server rejected the request as invalid
  kPermanent,        // will not succeed if retried
  kUnsupported,      // a feature or format this program does not support
  kCancelled,        // the operation was cancelled (shutdown)
};

std::string_view errorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kPermanent;
  std::string message;
  int httpStatus = 0;                              // 0 when not an HTTP error
  std::optional<std::chrono::seconds> retryAfter;  // from Retry-After, if any

  Error() = default;
  Error(ErrorCode c, std::string msg) : code(c), message(std::move(msg)) {}

  // True for errors worth retrying with backoff.
  bool retryable() const {
    return code == ErrorCode::kTransient || code == ErrorCode::kTooManyRequests ||
           code == ErrorCode::kConflict || code == ErrorCode::kGone;
  }
  // "<code>: <message>" for logs and CLI output.
  std::string describe() const;
};

inline Error makeError(ErrorCode code, std::string message) {
  return Error(code, std::move(message));
}

// Result<T>: a value or an Error. Accessing the wrong alternative is a broken
// invariant and aborts.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : data_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return data_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return checked<0>(); }
  const T& value() const& { return checked<0>(); }
  T&& value() && { return std::move(checked<0>()); }
  T* operator->() { return &checked<0>(); }
  const T* operator->() const { return &checked<0>(); }
  T& operator*() & { return checked<0>(); }
  const T& operator*() const& { return checked<0>(); }

  const Error& error() const { return checkedConst<1>(); }
  Error&& takeError() && { return std::move(checked<1>()); }

 private:
  template <std::size_t I>
  auto& checked() {
    if (data_.index() != I)
      std::abort();
    return std::get<I>(data_);
  }
  template <std::size_t I>
  const auto& checkedConst() const {
    if (data_.index() != I)
      std::abort();
    return std::get<I>(data_);
  }
  template <std::size_t I>
  const auto& checked() const {
    return checkedConst<I>();
  }
  std::variant<T, Error> data_;
};

// Status: Result without a value.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  static Status okStatus() { return Status(); }

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const {
    if (!error_)
      std::abort();
    return *error_;
  }

 private:
  std::optional<Error> error_;
};

}  // namespace exitrec
