#pragma once
// Reconciler: executes the correction state machine (controller/correction.h)
// for one workflow key through small interfaces, so it is unit-testable with
// fakes and knows nothing of HTTP, queues or metrics libraries.
//
// One reconcile() call GETs the full object, evaluates it with the engine and
// then performs steps until the machine says "none" or a step cannot complete
// now. Each step's patch returns the updated object, on which the next
// decision is made (so the KFP report carries the patched resourceVersion).
// A 409 refetches and decides again.
//
// KFP safety (docs/controller.md, "KFP interaction"): a report is sent only
// for a run KFP knows (GET run first), never carries the label
// pipeline/persistedFinalState, carries the resourceVersion of the object the
// record patch returned, and at most kMaxKfpReports accepted reports are made
// per record (ann::kKfpReportAttempts). A verified report is re-verified
// once kKfpReverifyDelay later (correction.h): the wait is a kRequeueAfter,
// and a state that went back from FAILED is reported again within that cap.
//
// Thread-safety: reconcile() may run concurrently for different keys (the work
// queue never hands one key to two workers) provided the injected interfaces
// are thread-safe.

#include <chrono>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"
#include "controller/correction.h"
#include "controller/kfp_report_body.h"

namespace exitrec {

// Access to Workflow objects in the Kubernetes API.
class WorkflowApi {
 public:
  virtual ~WorkflowApi() = default;
  // Full Workflow JSON. kNotFound when it no longer exists.
  virtual Result<std::string> get(const std::string& ns, const std::string& name) = 0;
  // JSON merge patch; returns the patched object's JSON. kConflict when the
  // patch's metadata.resourceVersion is stale.
  virtual Result<std::string> mergePatch(const std::string& ns, const std::string& name,
                                         const std::string& patch) = 0;
};

// The KFP backend's report and run APIs.
//
// Error meanings (classified once, by the implementation):
// - kNotFound: KFP's own gRPC NotFound. From runState(): the run does not
//   exist. From reportWorkflow(): KFP did not know the run (and, before 2.17's
//   grace period, deleted the Workflow CR), or the CR vanished while KFP
//   labelled it; only runState() tells which.
// - kTransient with httpStatus 404 (isKfpEndpointMissing): the URL serves no
//   KFP API (a wrong --kfp-api-url path, an ingress 404). A configuration
//   error, never a fact about a run: retried with backoff.
// - kInvalid/kInvalidInput/kPermanent (400: will never be accepted),
//   kTransient/kTooManyRequests (retry with backoff), kUnauthorized/kForbidden
//   (credentials).
class KfpReporter {
 public:
  virtual ~KfpReporter() = default;
  // Reports the workflow (its full JSON, built by kfpReportableWorkflow() in
  // controller/kfp_report_body.h: never carrying pipeline/persistedFinalState).
  virtual Status reportWorkflow(std::string_view workflowJson) = 0;
  // v2beta1 run state name, e.g. "FAILED".
  virtual Result<std::string> runState(const std::string& runId) = 0;
};

// A KFP answer that says the endpoint is missing, not the run (see above).
inline bool isKfpEndpointMissing(const Error& e) {
  return e.code == ErrorCode::kTransient && e.httpStatus == 404;
}

struct EventTarget {
  std::string ns;
  std::string name;
  std::string uid;
  std::string resourceVersion;
};

// Kubernetes Events on the Workflow.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual Status emit(const EventTarget& target, std::string_view type, std::string_view reason,
                      std::string_view message) = 0;
};

// Hooks for metrics (all optional no-ops by default). Called from workers:
// implementations must be thread-safe.
class ReconcileObserver {
 public:
  virtual ~ReconcileObserver() = default;
  // A full object was evaluated (once per reconcile).
  virtual void onVerdict(const Verdict& /*verdict*/) {}
  // A step finished; result is "success", "conflict", "error" or "permanent".
  virtual void onStep(StepKind /*kind*/, std::string_view /*action*/, std::string_view /*result*/) {
  }
  // The KFP run state was verified after a report; latency from the run's
  // finishedAt to now (negative or unknown finishedAt gives nullopt).
  virtual void onReportVerified(std::optional<std::chrono::duration<double>> /*sinceFinish*/) {}
  // KFP answered 404 without its NotFound status: no KFP API at the
  // configured URL. operation is "report" or "get_run".
  virtual void onKfpEndpointMissing(std::string_view /*operation*/) {}
  // GET run answered NotFound: the run is unknown to KFP (never reported to).
  virtual void onKfpRunUnknown() {}
  // The re-verification found a verified run no longer FAILED in KFP: a late
  // report of an older snapshot overwrote it (KFP 2.0-2.16).
  virtual void onKfpStateRegressed() {}
};

struct ReconcileOutcome {
  enum class Kind : std::uint8_t {
    kDone,          // nothing more to do for now (Forget)
    kRetry,         // transient failure: requeue rate-limited
    kRequeueAfter,  // come back after `after` (Forget + AddAfter)
    kDrop,          // permanent failure: wait for the next event (Forget)
  };
  Kind kind = Kind::kDone;
  std::chrono::milliseconds after{0};
  std::string detail;  // why, for logs
  std::optional<Error> error;
};
std::string_view reconcileOutcomeName(ReconcileOutcome::Kind kind);  // "success", "error", ...

class Reconciler {
 public:
  Reconciler(WorkflowApi& api, KfpReporter* kfp, EventSink& events, Clock& clock,
             CorrectionConfig config, ReconcileObserver* observer = nullptr);

  ReconcileOutcome reconcile(const std::string& ns, const std::string& name);

  // How many conflicts one reconcile absorbs (refetch + decide) before it
  // gives the key back to the queue's rate limiter.
  static constexpr int kMaxConflicts = 3;
  // KFP state that confirms a corrected report (Failed and Error both map here).
  static constexpr std::string_view kExpectedKfpState = "FAILED";

 private:
  Result<std::string> patch(const std::string& ns, const std::string& name,
                            const std::string& body);
  ReconcileObserver& observer() { return observer_ ? *observer_ : noop_; }
  // What a KFP step leaves: a marker patch to send (may be empty), then an
  // outcome to return (or continue deciding when none).
  struct KfpStepResult {
    std::string markPatch;
    std::optional<ReconcileOutcome> then;
  };
  // The direct-mode report of the corrected object `currentJson` (exactly as
  // the record patch returned it): GET the run first (an unknown run is never
  // reported: KFP would delete its Workflow), report the body without the
  // final-state label, verify; `attempts` accepted reports were made before.
  KfpStepResult reportToKfp(const Workflow& wf, const std::string& currentJson, int attempts);
  // The marker of a run KFP does not know (GET run answered NotFound);
  // `afterReport`: it answered so only after our report.
  std::string unknownRun(const Workflow& wf, const std::string& runId, StepKind kind,
                         const Error& error, bool afterReport);
  // Persistence-agent mode, the label is back: GETs the run of `wf` and checks
  // it is kExpectedKfpState. Returns the outcome to return when the check must
  // be retried; otherwise nullopt with `markPatch` set to kfpReportedPatch()
  // (verified), kfpReportFailedPatch() (the run is gone, or still not FAILED
  // after kMaxKfpReports agent reports) or agentRereportPatch() (another state
  // won: make the agent report again). Needs kfp_.
  std::optional<ReconcileOutcome> verifyRunState(const Workflow& wf, StepKind kind,
                                                 std::string& markPatch);
  // kReverifyKfp: GETs the run of `wf` once more. Returns the outcome to return
  // when the read must be retried; otherwise nullopt with `markPatch` set to
  // kfpReverifiedPatch() (still FAILED, or the run is gone from KFP: nothing
  // to fix) or kfpStateRegressedPatch().
  std::optional<ReconcileOutcome> reverifyRunState(const Workflow& wf, std::string& markPatch);
  // Tells the observer the KFP report of `wf` is verified; returns the marker
  // patch that records it.
  std::string verified(const Workflow& wf, StepKind kind);
  // Now minus the run's status.finishedAt, when known and not negative.
  std::optional<std::chrono::duration<double>> sinceFinished(const Workflow& wf) const;

  WorkflowApi& api_;
  KfpReporter* kfp_;  // null when reporting is not configured
  EventSink& events_;
  Clock& clock_;
  CorrectionConfig config_;
  ReconcileObserver* observer_;
  ReconcileObserver noop_;
};

}  // namespace exitrec
