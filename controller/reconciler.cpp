#include "controller/reconciler.h"

#include <spdlog/spdlog.h>

#include <ctime>

#include "common/rfc3339.h"
#include "controller/annotations.h"
#include "engine/outcome.h"
#include "engine/workflow.h"

namespace exitrec {
namespace {

using Kind = ReconcileOutcome::Kind;

ReconcileOutcome done(std::string why) {
  return {Kind::kDone, {}, std::move(why), std::nullopt};
}

ReconcileOutcome retry(std::string why, Error error) {
  return {Kind::kRetry, {}, std::move(why), std::move(error)};
}

ReconcileOutcome drop(std::string why, Error error) {
  return {Kind::kDrop, {}, std::move(why), std::move(error)};
}

// A KFP error the server will keep giving for the same body.
bool permanentKfpError(const Error& e) {
  return e.code == ErrorCode::kInvalid || e.code == ErrorCode::kInvalidInput ||
         e.code == ErrorCode::kPermanent || e.code == ErrorCode::kNotFound ||
         e.code == ErrorCode::kUnsupported;
}

// Classifies a Kubernetes API failure of a step.
ReconcileOutcome apiFailure(std::string_view what, const Error& e) {
  if (e.code == ErrorCode::kNotFound)
    return done(std::string(what) + ": workflow gone");
  if (e.retryable() || e.code == ErrorCode::kUnauthorized || e.code == ErrorCode::kCancelled) {
    return retry(std::string(what), e);
  }
  return drop(std::string(what), e);
}

}  // namespace

std::string_view reconcileOutcomeName(ReconcileOutcome::Kind kind) {
  switch (kind) {
    case Kind::kDone:
      return "success";
    case Kind::kRetry:
      return "error";
    case Kind::kRequeueAfter:
      return "requeue_after";
    case Kind::kDrop:
      return "permanent";
  }
  return "success";
}

Reconciler::Reconciler(WorkflowApi& api, KfpReporter* kfp, EventSink& events, Clock& clock,
                       CorrectionConfig config, ReconcileObserver* observer)
    : api_(api), kfp_(kfp), events_(events), clock_(clock), config_(config), observer_(observer) {
  config_.kfpReverify = config.kfpReverify && kfp != nullptr;  // nothing to read without a client
}

Result<std::string> Reconciler::patch(const std::string& ns, const std::string& name,
                                      const std::string& body) {
  return api_.mergePatch(ns, name, body);
}

std::optional<std::chrono::duration<double>> Reconciler::sinceFinished(const Workflow& wf) const {
  if (auto finished = parseRfc3339(wf.finishedAt)) {
    auto d = clock_.wallNow() - *finished;
    if (d.count() >= 0)
      return std::chrono::duration<double>(d);
  }
  return std::nullopt;
}

std::string Reconciler::unknownRun(const Workflow& wf, const std::string& runId, StepKind kind,
                                   const Error& error, bool afterReport) {
  observer().onKfpRunUnknown();
  observer().onStep(kind, "verify", "permanent");
  spdlog::error("{}/{}: KFP has no run {} ({}); not retried", wf.namespace_, wf.name, runId,
                error.describe());
  const std::string what =
      "KFP has no run " + runId + " (GET /apis/v2beta1/runs/" + runId + " answered NotFound)";
  if (afterReport)
    return kfpReportFailedPatch(what + " after the report: the run is gone from KFP");
  return kfpReportFailedPatch(what + ": not reported, because KFP deletes the Workflow of a " +
                              "run it does not know");
}

std::optional<ReconcileOutcome> Reconciler::verifyRunState(const Workflow& wf, StepKind kind,
                                                           std::string& markPatch) {
  const std::string& runId = wf.labels.at(std::string(lbl::kRunId));  // decideNextStep checked
  Result<std::string> state = kfp_->runState(runId);
  if (!state && state.error().code == ErrorCode::kNotFound) {
    markPatch = unknownRun(wf, runId, kind, state.error(), /*afterReport=*/true);
    return std::nullopt;
  }
  if (!state && permanentKfpError(state.error())) {
    // Retrying cannot help: record it.
    observer().onStep(kind, "verify", "permanent");
    spdlog::error("{}/{}: KFP run {} cannot be verified (not retried): {}", wf.namespace_, wf.name,
                  runId, state.error().describe());
    markPatch = kfpReportFailedPatch("verify KFP run " + runId + ": " + state.error().message);
    return std::nullopt;
  }
  if (!state) {
    if (isKfpEndpointMissing(state.error()))
      observer().onKfpEndpointMissing("get_run");
    observer().onStep(kind, "verify", "error");
    return retry("verify KFP run " + runId, state.error());
  }
  if (*state != kExpectedKfpState) {
    // KFP labelled the CR after storing another state: a report of a snapshot
    // older than our patch won (possible on KFP 2.0-2.16, which has no
    // resourceVersion fence). The agent skips labelled CRs until its TTL, so
    // waiting cannot help: drop the label again so that it re-reports the
    // corrected object, a bounded number of times.
    const int attempts = readProgress(wf.annotations).kfpReportAttempts + 1;
    const std::string why = "KFP run state is " + *state + " after the agent's report, expected " +
                            std::string(kExpectedKfpState);
    if (attempts >= kMaxKfpReports) {
      observer().onStep(kind, "verify", "permanent");
      spdlog::error("{}/{}: {}; giving up after {} agent reports", wf.namespace_, wf.name, why,
                    attempts);
      markPatch = kfpReportFailedPatch("KFP run " + runId + " not confirmed FAILED after " +
                                       std::to_string(attempts) + " agent reports: " + why);
      return std::nullopt;
    }
    observer().onStep(kind, "verify", "error");
    spdlog::warn("{}/{}: {}; asking the agent to report again", wf.namespace_, wf.name, why);
    markPatch = agentRereportPatch(attempts);
    return std::nullopt;
  }
  spdlog::info("{}/{}: KFP run {} is {}", wf.namespace_, wf.name, runId, *state);
  markPatch = verified(wf, kind);
  return std::nullopt;
}

std::optional<ReconcileOutcome> Reconciler::reverifyRunState(const Workflow& wf,
                                                             std::string& markPatch) {
  constexpr StepKind kind = StepKind::kReverifyKfp;
  const std::string& runId = wf.labels.at(std::string(lbl::kRunId));  // decideNextStep checked
  Result<std::string> state = kfp_->runState(runId);
  if (!state && (state.error().code == ErrorCode::kNotFound || permanentKfpError(state.error()))) {
    // The run was deleted from KFP since (or cannot be read): nothing to put
    // right. The marker ends the re-verification.
    observer().onStep(kind, "reverify", "permanent");
    spdlog::warn("{}/{}: KFP run {} not re-verified: {}", wf.namespace_, wf.name, runId,
                 state.error().describe());
    markPatch = kfpReverifiedPatch(clock_.wallNow());
    return std::nullopt;
  }
  if (!state) {
    if (isKfpEndpointMissing(state.error()))
      observer().onKfpEndpointMissing("get_run");
    observer().onStep(kind, "reverify", "error");
    return retry("re-verify KFP run " + runId, state.error());
  }
  if (*state == kExpectedKfpState) {
    observer().onStep(kind, "reverify", "success");
    spdlog::debug("{}/{}: KFP run {} is still {}", wf.namespace_, wf.name, runId, *state);
    markPatch = kfpReverifiedPatch(clock_.wallNow());
    return std::nullopt;
  }
  // A report of an older snapshot landed after our verified one (KFP 2.0-2.16
  // store whatever arrives last). The verified report turned out unconfirmed:
  // it counts, and the run is reported again while the cap allows.
  observer().onKfpStateRegressed();
  const int attempts = readProgress(wf.annotations).kfpReportAttempts + 1;
  if (attempts >= kMaxKfpReports) {
    observer().onStep(kind, "reverify", "permanent");
    spdlog::error(
        "{}/{}: KFP run {} went back from {} to {} after verification; {} reports spent, "
        "giving up",
        wf.namespace_, wf.name, runId, kExpectedKfpState, *state, attempts);
  } else {
    observer().onStep(kind, "reverify", "error");
    spdlog::warn("{}/{}: KFP run {} went back from {} to {} after verification; reporting again",
                 wf.namespace_, wf.name, runId, kExpectedKfpState, *state);
  }
  markPatch = kfpStateRegressedPatch(config_.kfpReport, attempts, *state);
  return std::nullopt;
}

Reconciler::KfpStepResult Reconciler::reportToKfp(const Workflow& wf,
                                                  const std::string& currentJson, int attempts) {
  constexpr StepKind kind = StepKind::kReportToKfp;
  const std::string& runId = wf.labels.at(std::string(lbl::kRunId));  // decideNextStep checked
  const std::string where = wf.namespace_ + "/" + wf.name;

  // 1. Does KFP know the run? ReportWorkflowResource deletes the Workflow CR of
  //    a run id missing from its database when no ScheduledWorkflow owns it
  //    (resource_manager.go, 2.0.0 to master; 2.17 after a grace period).
  Result<std::string> before = kfp_->runState(runId);
  if (!before) {
    const Error& e = before.error();
    if (e.code == ErrorCode::kNotFound)
      return {unknownRun(wf, runId, kind, e, /*afterReport=*/false), std::nullopt};
    if (isKfpEndpointMissing(e))
      observer().onKfpEndpointMissing("get_run");
    if (permanentKfpError(e)) {
      observer().onStep(kind, "verify", "permanent");
      spdlog::error("{}: KFP run {} cannot be read (not retried): {}", where, runId, e.describe());
      return {kfpReportFailedPatch("get KFP run " + runId + ": " + e.message), std::nullopt};
    }
    observer().onStep(kind, "verify", "error");
    return {"", retry("get KFP run " + runId + " before reporting", e)};
  }
  if (*before == kExpectedKfpState) {
    // Already FAILED (e.g. KFP's agent reported the corrected object): a
    // report would add nothing.
    spdlog::info("{}: KFP run {} is already {}; not reported again", where, runId, *before);
    return {verified(wf, kind), std::nullopt};
  }

  // 2. Report the object exactly as the record patch returned it (its
  //    resourceVersion is what KFP 2.17+ fences on), minus the label that
  //    makes KFP delete it.
  Result<std::string> body = kfpReportableWorkflow(currentJson);
  if (!body) {
    observer().onStep(kind, "report", "permanent");
    return {kfpReportFailedPatch(body.error().message), std::nullopt};
  }
  Status reported = kfp_->reportWorkflow(*body);
  if (!reported) {
    const Error& e = reported.error();
    if (isKfpEndpointMissing(e)) {
      // Configuration, not this run: never recorded on the run.
      observer().onKfpEndpointMissing("report");
      observer().onStep(kind, "report", "error");
      spdlog::error("{}: KFP report endpoint missing, will retry: {}", where, e.describe());
      return {"", retry("KFP report endpoint missing", e)};
    }
    if (e.code == ErrorCode::kNotFound) {
      // KFP's NotFound: the run is unknown, or the CR vanished while KFP
      // labelled it (after storing the state). GET run below tells.
      observer().onStep(kind, "report", "error");
      spdlog::warn("{}: KFP answered NotFound to the report; checking the run: {}", where,
                   e.describe());
    } else if (permanentKfpError(e)) {
      observer().onStep(kind, "report", "permanent");
      spdlog::error("{}: KFP rejected the report (not retried): {}", where, e.describe());
      return {kfpReportFailedPatch(e.message), std::nullopt};
    } else {
      observer().onStep(kind, "report", "error");
      spdlog::warn("{}: KFP report failed, will retry: {}", where, e.describe());
      return {"", retry("KFP report", e)};
    }
  } else {
    observer().onStep(kind, "report", "success");
  }

  // 3. Verify. Only a NotFound from GET run means the run is gone.
  Result<std::string> after = kfp_->runState(runId);
  if (!after && after.error().code == ErrorCode::kNotFound)
    return {unknownRun(wf, runId, kind, after.error(), /*afterReport=*/true), std::nullopt};
  if (after && *after == kExpectedKfpState) {
    spdlog::info("{}: KFP run {} is {}", where, runId, *after);
    return {verified(wf, kind), std::nullopt};
  }
  // KFP took the report but the state is not confirmed: it counts.
  Error why = after ? Error(ErrorCode::kTransient, "KFP run state is " + *after +
                                                       " after the report, expected " +
                                                       std::string(kExpectedKfpState))
                    : after.error();
  if (!after && isKfpEndpointMissing(why))
    observer().onKfpEndpointMissing("get_run");
  ++attempts;
  if (attempts >= kMaxKfpReports) {
    observer().onStep(kind, "verify", "permanent");
    spdlog::error("{}: KFP run {} not confirmed after {} reports; giving up: {}", where, runId,
                  attempts, why.describe());
    return {kfpReportFailedPatch("KFP run " + runId + " not confirmed FAILED after " +
                                 std::to_string(attempts) + " reports: " + why.message),
            std::nullopt};
  }
  observer().onStep(kind, "verify", "error");
  return {kfpReportAttemptsPatch(attempts), retry("verify KFP run " + runId, why)};
}

std::string Reconciler::verified(const Workflow& wf, StepKind kind) {
  observer().onStep(kind, "verify", "success");
  observer().onReportVerified(sinceFinished(wf));
  return kfpReportedPatch(clock_.wallNow());
}

ReconcileOutcome Reconciler::reconcile(const std::string& ns, const std::string& name) {
  Result<std::string> current = api_.get(ns, name);
  if (!current)
    return apiFailure("get", current.error());

  int conflicts = 0;
  bool observed = false;
  // Each pass performs one step; the machine has at most four (record, report
  // or agent confirmation, event, done) plus conflict refetches, so the bound
  // is never reached in a correct run. Reaching it means the object keeps
  // changing under us.
  for (int pass = 0; pass < 8 + kMaxConflicts; ++pass) {
    Result<Workflow> parsed = parseWorkflowJson(*current);
    if (!parsed) {
      return drop(std::string("parse ").append(ns).append("/").append(name), parsed.error());
    }
    const Workflow& wf = *parsed;
    const Verdict verdict = evaluate(wf, EvaluateOptions{config_.exitTaskFailure});
    if (!observed) {
      observer().onVerdict(verdict);
      observed = true;
    }
    const NextStep step = decideNextStep(wf, verdict, config_, clock_.wallNow());
    if (step.kind == StepKind::kNone && step.requeueAfter.count() > 0)
      return {Kind::kRequeueAfter, step.requeueAfter, step.why, std::nullopt};
    if (step.kind == StepKind::kNone)
      return done(step.why);
    spdlog::debug("{}/{}: {}", ns, name, step.why);

    // Runs a patch step: the object it returns becomes current; a conflict
    // refetches (then the loop decides again).
    auto applyPatch = [&](const std::string& body, StepKind kind,
                          std::string_view action) -> std::optional<ReconcileOutcome> {
      Result<std::string> patched = patch(ns, name, body);
      if (patched) {
        observer().onStep(kind, action, "success");
        current = std::move(patched).value();
        return std::nullopt;
      }
      const Error& e = patched.error();
      if (e.code == ErrorCode::kConflict) {
        observer().onStep(kind, action, "conflict");
        if (++conflicts > kMaxConflicts)
          return retry("patch conflicts", e);
        spdlog::debug("{}/{}: conflict on {}, refetching", ns, name, stepKindName(kind));
        current = api_.get(ns, name);
        if (!current)
          return apiFailure("refetch after conflict", current.error());
        return std::nullopt;
      }
      observer().onStep(kind, action, e.retryable() ? "error" : "permanent");
      return apiFailure(std::string("patch (") + std::string(stepKindName(kind)) + ")", e);
    };

    switch (step.kind) {
      case StepKind::kNone:
        break;
      case StepKind::kRecord: {
        if (auto r = applyPatch(step.patch, step.kind, step.action))
          return *r;
        if (step.action == ann::kActionCorrected) {
          spdlog::info("{}/{}: corrected phase {} -> {} ({})", ns, name, phaseName(wf.phase),
                       phaseName(verdict.truePhase), verdict.cause.value_or(""));
        } else {
          spdlog::info("{}/{}: recorded ({})", ns, name, step.action);
        }
        break;
      }
      case StepKind::kReportToKfp: {
        if (kfp_ == nullptr) {
          // Direct mode without a client is a configuration bug caught at start.
          std::abort();
        }
        KfpStepResult r = reportToKfp(wf, *current, readProgress(wf.annotations).kfpReportAttempts);
        if (!r.markPatch.empty()) {
          if (auto o = applyPatch(r.markPatch, StepKind::kReportToKfp, "mark"))
            return *o;
        }
        if (r.then)
          return *r.then;
        break;
      }
      case StepKind::kConfirmAgentReport: {
        // Without a KFP client the label is the evidence: the API server adds
        // it only after storing a final state reported from the corrected
        // object (our patch removed it in the same write as the phase).
        std::string markPatch;
        if (kfp_ != nullptr) {
          if (auto r = verifyRunState(wf, step.kind, markPatch))
            return *r;
        } else {
          spdlog::info("{}/{}: KFP's persistence agent re-reported the corrected run", ns, name);
          markPatch = verified(wf, step.kind);
        }
        if (auto r = applyPatch(markPatch, step.kind, "mark"))
          return *r;
        break;
      }
      case StepKind::kReverifyKfp: {
        std::string markPatch;
        if (auto r = reverifyRunState(wf, markPatch))
          return *r;
        if (auto r = applyPatch(markPatch, step.kind, "mark"))
          return *r;
        break;
      }
      case StepKind::kEmitEvent: {
        EventTarget target{wf.namespace_, wf.name, wf.uid, wf.resourceVersion};
        Status emitted = events_.emit(target, step.eventType, step.eventReason, step.eventMessage);
        if (!emitted) {
          const Error& e = emitted.error();
          if (e.retryable() || e.code == ErrorCode::kUnauthorized) {
            observer().onStep(step.kind, step.eventReason, "error");
            return retry("emit event", e);
          }
          // Events are best effort: a permanent failure (e.g. RBAC) must not
          // block the key forever. Log loudly and mark the step done.
          observer().onStep(step.kind, step.eventReason, "permanent");
          spdlog::error("{}/{}: event {} not emitted: {}", ns, name, step.eventReason,
                        e.describe());
        }
        if (auto r = applyPatch(step.patch, step.kind, step.eventReason))
          return *r;
        break;
      }
    }
  }
  return retry("too many passes", Error(ErrorCode::kTransient, "object kept changing"));
}

}  // namespace exitrec
