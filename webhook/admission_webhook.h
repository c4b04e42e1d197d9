#pragma once
// The mutating admission webhook for exit-task pods.
//
// Serves POST <path> (default /mutate-pods) over HTTPS with an
// admission.k8s.io/v1 AdmissionReview. Contract:
// - Always `allowed: true`; the request uid is echoed; a JSONPatch (base64)
//   only when an exit-task pod gets values injected. Never rejects a pod.
// - Anything but a Pod CREATE, and every out-of-scope pod, is allowed
//   unchanged on the calling thread, without I/O.
// - In-scope pods are decided on a small worker pool under a hard deadline
//   (Options::deadline, default 2 s, well under the webhook's timeoutSeconds):
//   past it, or when the pool is saturated, the pod is allowed unchanged and
//   counted (`deadline_exceeded`); when the state cannot be read (API down)
//   likewise (`api_unavailable`).
// - A malformed AdmissionReview gets HTTP 400 with a message (`bad_request`).
// - TLS certificate and key are read from files and re-read when they change
//   (common/http_server.h checks at most once a second); reloadCertificates()
//   forces it.
// - GET /healthz on the same port answers 200 "ok" (for probes through the
//   webhook Service).
//
// Thread-safety: start/stop from one owner thread; review() may be called
// concurrently (the HTTP server does so).

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "webhook/resolver.h"
#include "webhook/state_provider.h"
#include "webhook/webhook_metrics.h"

namespace exitrec {

inline namespace server {
class HttpServer;  // common/http_server.h
}  // namespace server

inline constexpr std::string_view kMutatePodsPath = "/mutate-pods";

struct AdmissionWebhookOptions {
  std::string address = "0.0.0.0";
  int port = 9443;
  std::string certFile;  // PEM; required by start()
  std::string keyFile;   // PEM; may be empty when certFile holds both
  std::string path = std::string(kMutatePodsPath);
  std::chrono::milliseconds deadline{2000};
  int workers = 4;               // threads deciding in-scope pods
  std::size_t maxPending = 256;  // queued decisions beyond which pods are let through
  int serverThreads = 16;
};

// One answered review.
struct AdmissionReply {
  int httpStatus = 200;
  std::string body;          // AdmissionReview JSON, or the error message for 400
  InjectionResult result{};  // always set by review()
  bool inScope = false;
};

// Parses an AdmissionReview; builds the response. Pure; exposed for tests.
struct AdmissionRequestView {
  std::string apiVersion;  // echoed in the response
  std::string uid;
  std::string kind;   // request.kind.kind
  std::string group;  // request.kind.group
  std::string operation;
  std::string namespace_;
  nlohmann::json object;  // request.object (null when absent)
};
Result<AdmissionRequestView> parseAdmissionReview(std::string_view body);
std::string admissionResponse(std::string_view apiVersion, std::string_view uid,
                              const nlohmann::json* patch);
// The response for a well-formed review that is certainly out of scope, read
// with a validating simdjson parse of a few fields; nullopt otherwise (in
// scope, undecided, malformed: take the full path). Certainly out of scope:
// not a Pod CREATE, a pod ExitTaskResolver::worthResolving rejects, or, for a
// KFP pod that could only be a 2.0-2.3 sibling exit task, one for which
// `notExitTask` (when given) returns true — the webhook asks it whether the
// run's spec is cached and rules the pod out (no I/O). Equivalent to
// admissionResponse(.., nullptr).
using NotExitTaskCheck = std::function<bool(const PodIdentity& pod, std::string_view ownerUid)>;
std::optional<std::string> fastOutOfScopeResponse(std::string_view body,
                                                  const NotExitTaskCheck* notExitTask = nullptr);

class AdmissionWebhook {
 public:
  // `provider`, `clock` and `metrics` (nullable) must outlive the webhook.
  AdmissionWebhook(AdmissionWebhookOptions options, RunStateProvider& provider, Clock& clock,
                   WebhookMetrics* metrics);
  ~AdmissionWebhook();
  AdmissionWebhook(const AdmissionWebhook&) = delete;
  AdmissionWebhook& operator=(const AdmissionWebhook&) = delete;

  // Starts the workers and the HTTPS server. Errors: kInvalidInput for a bad
  // certificate/key or missing certFile, kTransient if the port cannot be bound.
  Status start();
  void stop();  // idempotent; waits for in-flight requests and workers
  int port() const;
  std::string baseUrl() const;
  Status reloadCertificates();

  // The whole handler without HTTP (tests, benchmarks, and the server).
  AdmissionReply review(std::string_view body);

  // Counts by result since construction (also reported to WebhookMetrics).
  // Out-of-scope reviews answered without the full parse and the worker pool
  // are counted under kOutOfScope like the others.
  std::uint64_t count(InjectionResult r) const;

 private:
  struct Job;
  void workerLoop();
  AdmissionReply reviewUnguarded(std::string_view body, Clock::SteadyTime started);
  void record(InjectionResult r, bool inScope, Clock::SteadyTime started);

  AdmissionWebhookOptions options_;
  RunStateProvider& provider_;
  ExitTaskResolver resolver_;
  NotExitTaskCheck notExitTask_;
  Clock& clock_;
  WebhookMetrics* metrics_;
  std::unique_ptr<HttpServer> server_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::array<std::atomic<std::uint64_t>, kInjectionResults> counts_{};
};

}  // namespace exitrec
