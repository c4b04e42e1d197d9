#pragma once
// The controller's Prometheus metrics: every family the operator sees, with
// typed, bounded labels. docs/operations.md ("Metrics reference") lists each
// name, type, label set and meaning; keep the two in step.
//
// Contract:
// - All families exist from construction on, and every label combination of a
//   closed enum is pre-created with value 0, so dashboards and alert rules see
//   series before the first event (except where a namespace label is enabled:
//   namespaces are not known up front: prometheus-cpp omits a family until it
//   has a series, so those families appear with their first sample).
// - Label values are bounded: each comes from an enum below or from a fixed
//   allow-list (generation, cause, phase, verb, resource); anything else is
//   reported as "other". No run ids, workflow names or pod names, ever. The
//   run's namespace appears only with MetricsOptions::namespaceLabel, as the
//   label `run_namespace` (the scrape itself adds `namespace` for the pod).
// - Thread-safety: every method may be called concurrently from any thread.
//   Handles returned by queue() stay valid as long as the Metrics object.
// - prometheus-cpp types stay behind the pimpl; include metrics/server.h (or
//   use exposition()) to serve them.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace exitrec {

class Clock;

// The verdict on one evaluated run (label `verdict`).
enum class RunVerdict : std::uint8_t {
  kCorrect,       // "correct": reported phase matches the true outcome
  kMisreported,   // "misreported": completed, and the true phase is worse than reported
  kNotEvaluable,  // "not_evaluable": e.g. node status offloaded
  kInProgress,    // "in_progress": not completed yet
};

// One step of correcting a mis-reported run (label `step`).
enum class CorrectionStep : std::uint8_t {
  kWorkflowPatch,  // "workflow_patch": the guarded merge patch on the Workflow
  kKfpReport,      // "kfp_report": POST to the KFP report API (or persistence-agent relabel)
  kKfpVerify,      // "kfp_verify": GET the run from KFP and check its state
  kEvent,          // "event": the RunPhaseCorrected Warning Event
};

// The outcome of one attempt at a step (label `result`).
enum class StepResult : std::uint8_t {
  kSuccess,         // "success"
  kConflict,        // "conflict": 409 / stale resourceVersion, refetched and decided again
  kTransientError,  // "transient_error": 5xx, unavailable, timeout; retried with backoff
  kPermanentError,  // "permanent_error": e.g. KFP 400; recorded, not retried
};

enum class InjectionChannel : std::uint8_t {
  kWebhook,     // "webhook": the mutating admission webhook
  kAnnotation,  // "annotation": the pod-annotation channel of the watch loop
};

enum class InjectionResultLabel : std::uint8_t {
  kInjected,          // "injected": values injected
  kAlreadyInjected,   // "already_injected": the pod already carries them
  kSkipped,           // "skipped": in scope, nothing to inject (e.g. a driver pod)
  kOutOfScope,        // "out_of_scope": not an exit-task pod; allowed unchanged
  kDeadlineExceeded,  // "deadline_exceeded": allowed unchanged past the deadline
  kApiUnavailable,    // "api_unavailable": could not read the Workflow; allowed unchanged
  kBadRequest,        // "bad_request": malformed AdmissionReview, answered 400
  kError,             // "error": any other failure; allowed unchanged
};

enum class WatchedResource : std::uint8_t {
  kWorkflows,  // "workflows"
  kPods,       // "pods"
};

enum class WatchRestartReason : std::uint8_t {
  kExpired,  // "expired": 410 Gone / resourceVersion too old; relisted
  kClosed,   // "closed": the server ended the stream (timeoutSeconds, EOF)
  kError,    // "error": transport or decode error
  kStalled,  // "stalled": the server never closed the watch: no data for its
             // timeoutSeconds + the idle margin (the reflector's watchdog)
};

enum class WatchEventLabel : std::uint8_t {
  kAdded,     // "ADDED"
  kModified,  // "MODIFIED"
  kDeleted,   // "DELETED"
  kBookmark,  // "BOOKMARK"
  kError,     // "ERROR"
};

enum class KfpOperation : std::uint8_t {
  kReport,  // "report": POST /apis/v1beta1/workflows
  kGetRun,  // "get_run": GET /apis/v2beta1/runs/{id}
};

// controller-runtime's reconcile result values (label `result`).
enum class ReconcileResult : std::uint8_t {
  kSuccess,       // "success"
  kError,         // "error"
  kRequeue,       // "requeue"
  kRequeueAfter,  // "requeue_after"
};

enum class ExitTaskFailurePolicyLabel : std::uint8_t {
  kIgnore,  // "ignore"
  kFail,    // "fail"
};

// The label value of each enum value, as exported.
std::string_view labelValue(RunVerdict v);
std::string_view labelValue(CorrectionStep v);
std::string_view labelValue(StepResult v);
std::string_view labelValue(InjectionChannel v);
std::string_view labelValue(InjectionResultLabel v);
std::string_view labelValue(WatchedResource v);
std::string_view labelValue(WatchRestartReason v);
std::string_view labelValue(WatchEventLabel v);
std::string_view labelValue(KfpOperation v);
std::string_view labelValue(ReconcileResult v);
std::string_view labelValue(ExitTaskFailurePolicyLabel v);

// The reflector's restart reasons and event types (k8sclient/reflector.h
// ReflectorObserver) as label values: "closed" -> kClosed; "idle_timeout" ->
// kStalled; "gone_http"/"gone_event" -> kExpired; anything else -> kError.
// Event types "ADDED" .. "ERROR"; anything else -> kError.
WatchRestartReason watchRestartReasonOf(std::string_view reflectorReason);
WatchEventLabel watchEventLabelOf(std::string_view type);

// Allow-lists for values owned by other modules (the engine's generationName(),
// Verdict::cause and phaseName()). Anything else is exported as "other"; an
// empty phase (the exit task never ran) as "None".
inline constexpr std::array<std::string_view, 5> kGenerationLabels = {
    "kfp-v1", "kfp-v2-sibling", "kfp-v2-hook", "kfp-v2", "argo"};
inline constexpr std::array<std::string_view, 4> kCauseLabels = {
    "exit-task-masked-failure", "exit-task-failed", "hooked-task-failed", "node-status-offloaded"};
inline constexpr std::array<std::string_view, 9> kPhaseLabels = {
    "None", "Pending", "Running", "Succeeded", "Skipped", "Failed", "Error", "Omitted", "Unknown"};
inline constexpr std::array<std::string_view, 7> kApiVerbLabels = {
    "get", "list", "watch", "create", "update", "patch", "delete"};
inline constexpr std::array<std::string_view, 6> kApiResourceLabels = {
    "workflows", "pods", "events", "leases", "secrets", "mutatingwebhookconfigurations"};
inline constexpr std::string_view kOtherLabel = "other";
// Why a run was skipped as hostile or broken (controller/workflow_record.h).
inline constexpr std::array<std::string_view, 6> kRejectReasonLabels = {
    "parse", "too-large", "projection", "decide", "reconcile", "patch"};

// The Kubernetes API calls the controller makes in normal operation (the RBAC
// seed in manifests/rbac-calls.txt). Their request counters (with the
// success code) and latency histograms exist from the start at 0.
struct ApiCall {
  std::string_view verb;
  std::string_view resource;
  int successStatus;
};
inline constexpr std::array<ApiCall, 13> kKnownApiCalls = {{
    {"get", "workflows", 200},
    {"list", "workflows", 200},
    {"watch", "workflows", 200},
    {"patch", "workflows", 200},
    {"get", "pods", 200},
    {"list", "pods", 200},
    {"watch", "pods", 200},
    {"patch", "pods", 200},
    {"create", "events", 201},
    {"patch", "events", 200},
    {"get", "leases", 200},
    {"create", "leases", 201},
    {"update", "leases", 200},
}};

// Normalizers used for those allow-lists (exposed for tests and callers that
// want to know what will be exported).
std::string_view generationLabel(std::string_view generation);
std::string_view causeLabel(std::string_view cause);
std::string_view phaseLabel(std::string_view phase);
// An HTTP status as its decimal text; 0 or anything outside 100..599 (no
// response) is "error".
std::string httpCodeLabel(int status);

struct MetricsOptions {
  // Lease name, exported as leader_election_master_status{name}.
  std::string leaseName = "kfp-exit-reconciler";
  // Adds `run_namespace` to the per-run families (--metrics-namespace-label).
  bool namespaceLabel = false;
  // Build info; defaults are the values CMake compiled in.
  std::string version;
  std::string revision;
  // Wall clock for *_timestamp_seconds gauges. Not owned; must outlive the
  // Metrics object. nullptr = SystemClock::instance().
  const Clock* clock = nullptr;
};

class Metrics;

// One work queue and its controller (client-go workqueue metrics plus
// controller-runtime's reconcile metrics), labelled {name} / {controller}.
// Obtained from Metrics::queue(); cheap, lock-free calls.
class QueueMetrics {
 public:
  void add();                                       // workqueue_adds_total
  void setDepth(std::int64_t depth);                // workqueue_depth
  void observeQueueDuration(double seconds);        // workqueue_queue_duration_seconds
  void observeWorkDuration(double seconds);         // workqueue_work_duration_seconds
  void retry();                                     // workqueue_retries_total
  void setUnfinishedWork(double seconds);           // workqueue_unfinished_work_seconds
  void setLongestRunningProcessor(double seconds);  // workqueue_longest_running_processor_seconds
  // controller_runtime_reconcile_total{result} (+ reconcile_errors_total on
  // kError) and controller_runtime_reconcile_time_seconds.
  void reconciled(ReconcileResult result, double seconds);
  void setActiveWorkers(std::int64_t workers);  // controller_runtime_active_workers
  void setMaxConcurrentReconciles(
      std::int64_t max);  // controller_runtime_max_concurrent_reconciles

 private:
  friend class Metrics;
  QueueMetrics() = default;
  prometheus::Counter* adds_ = nullptr;
  prometheus::Gauge* depth_ = nullptr;
  prometheus::Histogram* queueDuration_ = nullptr;
  prometheus::Histogram* workDuration_ = nullptr;
  prometheus::Counter* retries_ = nullptr;
  prometheus::Gauge* unfinished_ = nullptr;
  prometheus::Gauge* longest_ = nullptr;
  std::array<prometheus::Counter*, 4> reconcileTotal_{};
  prometheus::Counter* reconcileErrors_ = nullptr;
  prometheus::Histogram* reconcileTime_ = nullptr;
  prometheus::Gauge* activeWorkers_ = nullptr;
  prometheus::Gauge* maxConcurrent_ = nullptr;
};

class Metrics {
 public:
  explicit Metrics(MetricsOptions options = {});
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // --- Runs ------------------------------------------------------------
  // exit_reconciler_runs_evaluated_total{generation, verdict}
  void runEvaluated(std::string_view generation, RunVerdict verdict, std::string_view ns = {});
  // exit_reconciler_misreported_runs_total{generation, cause}
  void misreportDetected(std::string_view generation, std::string_view cause,
                         std::string_view ns = {});
  // exit_reconciler_exit_handlers_total{generation, body_phase, exit_task_phase}
  void exitHandlerObserved(std::string_view generation, std::string_view bodyPhase,
                           std::string_view exitTaskPhase, std::string_view ns = {});
  // exit_reconciler_exit_task_failures_total{generation, policy}
  void exitTaskFailure(std::string_view generation, ExitTaskFailurePolicyLabel policy,
                       std::string_view ns = {});

  // --- Corrections -------------------------------------------------------
  // exit_reconciler_correction_steps_total{step, result}
  void correctionStep(CorrectionStep step, StepResult result, std::string_view ns = {});
  // exit_reconciler_correction_latency_seconds: the run's finishedAt to the
  // verified KFP state (or the last step of the chosen report mode).
  void observeCorrectionLatency(double seconds);

  // --- Injection ----------------------------------------------------------
  // exit_reconciler_injections_total{channel, result}
  void injection(InjectionChannel channel, InjectionResultLabel result, std::string_view ns = {});
  // exit_reconciler_webhook_duration_seconds{scope="in_scope"|"out_of_scope"}
  void observeWebhookLatency(bool inScope, double seconds);
  // exit_reconciler_webhook_certificate_reloads_total{result} and, on success,
  // exit_reconciler_webhook_certificate_expiry_timestamp_seconds.
  void webhookCertificateLoaded(bool ok, double notAfterUnixSeconds = 0);

  // --- APIs ----------------------------------------------------------------
  // exit_reconciler_kube_api_requests_total{verb, resource, code} and
  // exit_reconciler_kube_api_request_duration_seconds{verb, resource}.
  // `status` is the HTTP status, 0 when no response arrived.
  void apiRequest(std::string_view verb, std::string_view resource, int status, double seconds);
  // exit_reconciler_kfp_api_requests_total{operation, code} and
  // exit_reconciler_kfp_api_request_duration_seconds{operation}.
  void kfpRequest(KfpOperation operation, int status, double seconds);
  // exit_reconciler_kfp_endpoint_not_found_total{operation}: a 404 without
  // KFP's NotFound status (no KFP API at the configured URL).
  void kfpEndpointNotFound(KfpOperation operation);
  // exit_reconciler_kfp_unknown_runs_total: a corrected run not reported
  // because GET run answered NotFound.
  void kfpUnknownRun();
  // exit_reconciler_kfp_state_regressions_total: a verified run found no
  // longer FAILED in KFP when re-verified (a late report of an older state).
  void kfpStateRegression();

  // --- Watches -------------------------------------------------------------
  // exit_reconciler_watch_restarts_total{resource, reason}
  void watchRestart(WatchedResource resource, WatchRestartReason reason);
  // exit_reconciler_watch_events_total{resource, type}; also sets
  // exit_reconciler_watch_last_activity_timestamp_seconds{resource} to now.
  void watchEvent(WatchedResource resource, WatchEventLabel type);
  // Sets the activity timestamp without an event: a list succeeded, or the
  // server closed a quiet watch normally (see k8sclient/reflector.h).
  void watchActive(WatchedResource resource);
  // exit_reconciler_objects_rejected_total{reason}: a run skipped because it
  // could not be read, evaluated, decided or written (once per
  // resourceVersion); reason from kRejectReasonLabels, else "other".
  void objectRejected(std::string_view reason);
  // exit_reconciler_tracked_workflows: compact records held in memory.
  void setTrackedWorkflows(std::int64_t count);
  // exit_reconciler_runs_awaiting_persistence_agent: corrected runs whose
  // re-report by KFP's persistence agent has not been seen yet.
  void setRunsAwaitingPersistenceAgent(std::int64_t count);

  // --- Run-history sweep (run --kfp-history-sweep, controller/history_sweep.h)
  // exit_reconciler_history_runs_scanned_total: runs of KFP's history read
  // and evaluated by the sweep.
  void historyRunScanned();
  // exit_reconciler_history_misreported_runs_total{generation, cause}:
  // historical runs found mis-reported (allow-listed as the live family).
  void historyRunMisreported(std::string_view generation, std::string_view cause);
  // exit_reconciler_history_runs_corrected_total: reported and verified FAILED.
  void historyRunCorrected();
  // exit_reconciler_history_runs_failed_total: a run that could not be
  // checked (cluster GET), reported or verified.
  void historyRunFailed();
  // exit_reconciler_history_runs_unreadable_total: a run whose stored
  // manifest is missing, offloaded or unreadable (no verdict).
  void historyRunUnreadable();
  // exit_reconciler_history_sweeps_total{result="success"|"error"} (error:
  // listing failed), exit_reconciler_history_sweep_duration_seconds and, on
  // success, exit_reconciler_history_sweep_last_success_timestamp_seconds.
  void historySweepDone(bool ok, double seconds);

  // --- Process ---------------------------------------------------------------
  // The handle of work queue `name` (created on first use; use a constant
  // name such as "workflows": it is a label value).
  QueueMetrics& queue(std::string_view name);
  // leader_election_master_status{name=<lease>}: 1 leader, 0 standby.
  void setLeader(bool leader);

  // The text exposition format (what /metrics serves).
  std::string exposition() const;
  // The registry, for MetricsServer and tests.
  std::shared_ptr<prometheus::Registry> registry() const;
  const MetricsOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace exitrec
