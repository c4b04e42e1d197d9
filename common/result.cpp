#include "common/result.h"

namespace exitrec {

std::string_view errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidInput:
      return "InvalidInput";
    case ErrorCode::kNotFound:
      return "NotFound";
    case ErrorCode::kConflict:
      return "Conflict";
    case ErrorCode::kGone:
      return "Gone";
    case ErrorCode::kUnauthorized:
      return "Unauthorized";
    case ErrorCode::kForbidden:
      return "Forbidden";
    case ErrorCode::kTooManyRequests:
      return "TooManyRequests";
    case ErrorCode::kTransient:
      return "Transient";
    case ErrorCode::kInvalid:
      return "Invalid";
    case ErrorCode::kPermanent:
      return "Permanent";
    case ErrorCode::kUnsupported:
      return "Unsupported";
    case ErrorCode::kCancelled:
      return "Cancelled";
  }
  return "Unknown";
}

std::string Error::describe() const {
  std::string out(errorCodeName(code));
  if (httpStatus != 0)
    out += " (HTTP " + std::to_string(httpStatus) + ")";
  out += ": ";
  out += message;
  return out;
}

}  // namespace exitrec
