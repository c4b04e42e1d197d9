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
// Thread-safety: reconcile() may run concurrently for different keys (the work
// queue never hands one key to two workers) provided the injected interfaces
// are thread-safe.

#include <chrono>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"
#include "controller/correction.h"

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
class KfpReporter {
 public:
  virtual ~KfpReporter() = default;
  // Reports the workflow (its full JSON). Errors: kInvalid/kInvalidInput/
  // kPermanent (400: will never be accepted), kTransient/kTooManyRequests
  // (retry with backoff), kUnauthorized/kForbidden (credentials).
  virtual Status reportWorkflow(std::string_view workflowJson) = 0;
  // v2beta1 run state name, e.g. "FAILED".
  virtual Result<std::string> runState(const std::string& runId) = 0;
};

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
  // GETs the run of `wf` from KFP and checks it is kExpectedKfpState. Returns
  // the outcome to return when the check must be retried; otherwise nullopt,
  // with `markPatch` set to kfpReportedPatch() (verified, observer told) or to
  // kfpReportFailedPatch() (KFP gave a permanent error, e.g. the run is gone).
  // Needs kfp_.
  std::optional<ReconcileOutcome> verifyRunState(const Workflow& wf, StepKind kind,
                                                 std::string& markPatch);
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
