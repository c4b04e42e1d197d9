#pragma once
// KfpClient: the KFP backend's report and run APIs over the project's
// HttpTransport (k8sclient/http_transport.h); no HTTP library of its own.
//
// - reportWorkflow: POST {kfp}/apis/v1beta1/workflows; the body is built by
//   kfpReportBody() (controller/kfp_report_body.h): a JSON string literal
//   holding the serialized Workflow WITHOUT the label
//   pipeline/persistedFinalState, whatever the caller passed (a report that
//   carries it makes KFP delete the Workflow).
// - runState: GET {kfp}/apis/v2beta1/runs/{run_id} → the `state` field.
// - Every request carries `Authorization: Bearer <token>` when the token
//   source has one (a projected service-account token, audience
//   pipelines.kubeflow.org). The file is re-read when due and at once on a
//   401, after which the request is retried once.
//
// Error classification (once, here): 400 and other 4xx → kInvalid (permanent:
// the same body will be rejected again); 404 with KFP's own gRPC NotFound
// status → kNotFound; any other 404 (the URL serves no KFP API: a wrong
// --kfp-api-url path, an ingress) → kTransient with httpStatus 404, see
// isKfpEndpointMissing() in reconciler.h; 401 → kUnauthorized;
// 403 → kForbidden; 429 → kTooManyRequests (Retry-After); 5xx and transport
// failures → kTransient. No retries or sleeps here beyond the single 401
// retry: backoff belongs to the work queue.
//
// Thread-safety: all methods may be called concurrently (the transport and
// the token source are thread-safe).

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "controller/reconciler.h"
#include "k8sclient/http_transport.h"
#include "k8sclient/token_source.h"

namespace exitrec {

class KfpClient final : public KfpReporter {
 public:
  struct Options {
    std::string baseUrl;  // e.g. "http://ml-pipeline.kubeflow:8888" (no trailing slash needed)
    std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  };
  // Called after every HTTP exchange: operation ("report" | "get_run"), HTTP
  // status (0 when no response arrived) and duration.
  using RequestHook = std::function<void(std::string_view operation, int status, double seconds)>;

  KfpClient(HttpTransport& transport, const TokenSource& token, Options options,
            RequestHook hook = nullptr);

  Status reportWorkflow(std::string_view workflowJson) override;
  Result<std::string> runState(const std::string& runId) override;

 private:
  Result<HttpResponse> exchange(std::string_view operation, HttpRequest request);

  HttpTransport& transport_;
  TokenSource token_;
  Options options_;
  RequestHook hook_;
};

// Classifies a non-2xx KFP response (googleRpcStatus body) as described above.
Error classifyKfpError(std::string_view operation, int status, const HttpHeaders& headers,
                       std::string_view body);

}  // namespace exitrec
