#include "k8sclient/api_error.h"

#include <nlohmann/json.hpp>

namespace exitrec {

std::optional<KubeStatus> parseKubeStatus(std::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("kind", "") != "Status")
    return std::nullopt;
  KubeStatus s;
  if (auto it = j.find("code"); it != j.end() && it->is_number_integer())
    s.code = it->get<int>();
  if (auto it = j.find("reason"); it != j.end() && it->is_string())
    s.reason = *it;
  if (auto it = j.find("message"); it != j.end() && it->is_string())
    s.message = *it;
  if (auto d = j.find("details"); d != j.end() && d->is_object()) {
    if (auto r = d->find("retryAfterSeconds"); r != d->end() && r->is_number_integer()) {
      s.retryAfterSeconds = r->get<int>();
    }
  }
  return s;
}

namespace {

ErrorCode codeFor(int status, const ErrorContext& ctx) {
  switch (status) {
    case 401:
      return ErrorCode::kUnauthorized;
    case 403:
      return ErrorCode::kForbidden;
    case 404:
      return ErrorCode::kNotFound;
    case 409:
      return ErrorCode::kConflict;
    case 410:
      return ErrorCode::kGone;
    case 422:
      return ctx.jsonPatchWithTest ? ErrorCode::kConflict : ErrorCode::kInvalid;
    case 429:
      return ErrorCode::kTooManyRequests;
    default:
      break;
  }
  if (status >= 500)
    return ErrorCode::kTransient;
  if (status >= 400)
    return ErrorCode::kInvalid;
  // 1xx/3xx are not expected from the API server; treat as a server fault.
  return ErrorCode::kTransient;
}

std::optional<int> parseRetryAfter(const std::string* header) {
  if (header == nullptr || header->empty())
    return std::nullopt;
  int v = 0;
  for (char c : *header) {
    if (c < '0' || c > '9')
      return std::nullopt;  // HTTP-date form: not sent by the API server
    v = v * 10 + (c - '0');
    if (v > 86400)
      return 86400;
  }
  return v;
}

Error build(int status, const std::string& reason, const std::string& message,
            std::optional<int> retryAfter, const ErrorContext& ctx) {
  std::string msg = ctx.operation + ": HTTP " + std::to_string(status);
  if (!reason.empty())
    msg += " " + reason;
  if (!message.empty())
    msg += ": " + message;
  Error e(codeFor(status, ctx), std::move(msg));
  e.httpStatus = status;
  if (retryAfter)
    e.retryAfter = std::chrono::seconds(*retryAfter);
  return e;
}

}  // namespace

Error classifyHttpError(int status, const HttpHeaders& headers, std::string_view body,
                        const ErrorContext& ctx) {
  auto st = parseKubeStatus(body);
  std::optional<int> retryAfter = parseRetryAfter(headers.find("Retry-After"));
  if (!retryAfter && st)
    retryAfter = st->retryAfterSeconds;
  std::string message;
  std::string reason;
  if (st) {
    message = st->message;
    reason = st->reason;
  } else if (!body.empty()) {
    // Not a Status (e.g. a proxy's error page): keep a short excerpt.
    message = std::string(body.substr(0, 200));
  }
  return build(status, reason, message, retryAfter, ctx);
}

Error classifyStatusObject(const KubeStatus& status, const ErrorContext& ctx) {
  const int code = status.code != 0 ? status.code : 500;
  return build(code, status.reason, status.message, status.retryAfterSeconds, ctx);
}

}  // namespace exitrec
