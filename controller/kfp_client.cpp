#include "controller/kfp_client.h"

#include <nlohmann/json.hpp>
#include <optional>

#include "common/clock.h"
#include "common/url_encoding.h"
#include "controller/kfp_report_body.h"

namespace exitrec {
namespace {

using nlohmann::json;

std::string trimSlash(std::string url) {
  while (!url.empty() && url.back() == '/')
    url.pop_back();
  return url;
}

// A grpc-gateway status body: {"code": <grpc code>, "message": ...} (v2) or
// {"error", "code", "message", "details"} (v1). Its numeric code, if any.
std::optional<int> grpcCode(const json& body) {
  if (!body.is_object())
    return std::nullopt;
  auto c = body.find("code");
  if (c == body.end() || !c->is_number_integer())
    return std::nullopt;
  return c->get<int>();
}

// Whether a 404 is KFP's own NotFound answer rather than "no such endpoint".
// KFP's handlers answer gRPC NotFound (code 5) with a descriptive message
// ("Failed to report workflow: ..." from ReportWorkflowResource, "Failed to
// get a run: ..." from GetRun). A path nothing serves gives instead:
// - under /apis/ on KFP with grpc-gateway v2 (2.14.0+): DefaultRoutingErrorHandler
//   (runtime/errors.go) answers status.Error(codes.NotFound,
//   http.StatusText(404)), i.e. {"code":5,"message":"Not Found"};
// - with grpc-gateway v1 (2.0–2.5.x), its ServeMux answers the plain text
//   "Not Found" (runtime/mux.go, OtherErrorHandler);
// - outside /apis/, KFP's gorilla router, an ingress or a proxy answer their
//   own text or HTML page.
bool kfpNotFound(const json& body, const std::string& message) {
  return grpcCode(body) == 5 && !message.empty() && message != "Not Found";
}

}  // namespace

Error classifyKfpError(std::string_view operation, int status, const HttpHeaders& headers,
                       std::string_view body) {
  std::string message;
  json parsed = json::parse(body, nullptr, false);
  if (parsed.is_object()) {
    if (auto m = parsed.find("message"); m != parsed.end() && m->is_string()) {
      message = m->get<std::string>();
    } else if (auto e = parsed.find("error"); e != parsed.end() && e->is_string()) {
      message = e->get<std::string>();
    }
  }
  const bool fromKfp = kfpNotFound(parsed, message);
  if (message.empty())
    message = std::string(body.substr(0, 256));
  std::string text =
      std::string(operation) + ": KFP answered HTTP " + std::to_string(status) + ": " + message;
  ErrorCode code = ErrorCode::kInvalid;
  if (status == 401) {
    code = ErrorCode::kUnauthorized;
  } else if (status == 403) {
    code = ErrorCode::kForbidden;
  } else if (status == 404 && fromKfp) {
    code = ErrorCode::kNotFound;
  } else if (status == 404) {
    // Configuration, not a run: retried with backoff (isKfpEndpointMissing).
    code = ErrorCode::kTransient;
    text += " (no KFP API at this URL: check --kfp-api-url and any ingress in front of KFP)";
  } else if (status == 429) {
    code = ErrorCode::kTooManyRequests;
  } else if (status >= 500 || status == 408) {
    code = ErrorCode::kTransient;
  }
  Error e(code, std::move(text));
  e.httpStatus = status;
  if (const std::string* ra = headers.find("Retry-After")) {
    try {
      e.retryAfter = std::chrono::seconds(std::stoi(*ra));
    } catch (const std::exception&) {
      // An HTTP-date Retry-After is rare from KFP; the rate limiter applies.
    }
  }
  return e;
}

KfpClient::KfpClient(HttpTransport& transport, const TokenSource& token, Options options,
                     RequestHook hook)
    : transport_(transport), token_(token), options_(std::move(options)), hook_(std::move(hook)) {
  options_.baseUrl = trimSlash(options_.baseUrl);
}

Result<HttpResponse> KfpClient::exchange(std::string_view operation, HttpRequest request) {
  request.timeout = options_.timeout;
  request.headers.set("Accept", "application/json");
  for (int attempt = 0; attempt < 2; ++attempt) {
    Result<std::string> token = token_.token();
    if (!token)
      return token.error();
    if (!token->empty())
      request.headers.set("Authorization", "Bearer " + *token);
    const auto start = std::chrono::steady_clock::now();
    Result<HttpResponse> response = transport_.send(request);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (hook_)
      hook_(operation, response ? response->status : 0, seconds);
    if (!response)
      return response.error();
    if (response->status == 401 && attempt == 0 && token_.invalidate())
      continue;
    if (response->status < 200 || response->status > 299) {
      return classifyKfpError(std::string(operation) + " " + request.method + " " + request.url,
                              response->status, response->headers, response->body);
    }
    return response;
  }
  // Unreachable: the second attempt always returns.
  std::abort();
}

Status KfpClient::reportWorkflow(std::string_view workflowJson) {
  HttpRequest req;
  req.method = "POST";
  req.url = options_.baseUrl + "/apis/v1beta1/workflows";
  req.headers.set("Content-Type", "application/json");
  // Never send what could make KFP delete the Workflow (kfp_report_body.h).
  Result<std::string> body = kfpReportBody(workflowJson);
  if (!body)
    return body.error();
  req.body = std::move(body).value();
  Result<HttpResponse> r = exchange("report", std::move(req));
  if (!r)
    return r.error();
  return Status::okStatus();
}

Result<std::string> KfpClient::runState(const std::string& runId) {
  HttpRequest req;
  req.method = "GET";
  // Run IDs are UUIDs; anything else is escaped so a label value cannot
  // change the path.
  req.url = options_.baseUrl + "/apis/v2beta1/runs/" + urlEncode(runId);
  Result<HttpResponse> r = exchange("get_run", std::move(req));
  if (!r)
    return r.error();
  json run = json::parse(r->body, nullptr, false);
  if (!run.is_object()) {
    return Error(ErrorCode::kTransient, "get_run " + runId + ": KFP answered a non-object body");
  }
  auto state = run.find("state");
  if (state == run.end() || !state->is_string()) {
    // proto JSON omits unset enums: the state is RUNTIME_STATE_UNSPECIFIED.
    return std::string("RUNTIME_STATE_UNSPECIFIED");
  }
  return state->get<std::string>();
}

}  // namespace exitrec
