#pragma once
// Classification of Kubernetes API failures into common/result.h codes. This
// is the one place where HTTP statuses become ErrorCodes:
//   404 NotFound; 409 Conflict (and 422 from a JSON patch with a `test` op);
//   410 Gone; 401 Unauthorized; 403 Forbidden; 429 TooManyRequests (with
//   retryAfter from Retry-After or Status.details.retryAfterSeconds);
//   5xx Transient; other 4xx Invalid carrying the server's Status message.
// Pure functions, thread-safe.

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "k8sclient/http_transport.h"

namespace exitrec {

// A parsed meta/v1 Status object (the body of API errors and of in-stream
// watch ERROR events).
struct KubeStatus {
  int code = 0;
  std::string reason;   // e.g. "NotFound", "Expired", "Conflict"
  std::string message;  // human-readable, from the server
  std::optional<int> retryAfterSeconds;
};

// Parses a Status body; nullopt if `json` is not a Status object.
std::optional<KubeStatus> parseKubeStatus(std::string_view json);

struct ErrorContext {
  std::string operation;           // e.g. "GET /api/v1/namespaces/ns/pods/p" (no query, no secrets)
  bool jsonPatchWithTest = false;  // the request was a JSON patch containing a `test` op
};

// Classifies a non-2xx response.
Error classifyHttpError(int status, const HttpHeaders& headers, std::string_view body,
                        const ErrorContext& ctx);

// Classifies the Status object of an in-stream watch ERROR event.
Error classifyStatusObject(const KubeStatus& status, const ErrorContext& ctx);

}  // namespace exitrec
