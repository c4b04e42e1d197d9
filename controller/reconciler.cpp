#include "controller/reconciler.h"

#include <spdlog/spdlog.h>

#include <ctime>

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

std::optional<Clock::WallTime> parseRfc3339(const std::string& text) {
  std::tm tm{};
  if (text.size() < 20)
    return std::nullopt;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1))
    return std::nullopt;
  return Clock::WallTime(std::chrono::seconds(t));
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
    : api_(api), kfp_(kfp), events_(events), clock_(clock), config_(config), observer_(observer) {}

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

std::optional<ReconcileOutcome> Reconciler::verifyRunState(const Workflow& wf, StepKind kind,
                                                           std::string& markPatch) {
  const std::string& runId = wf.labels.at(std::string(lbl::kRunId));  // decideNextStep checked
  Result<std::string> state = kfp_->runState(runId);
  if (!state && permanentKfpError(state.error())) {
    // Retrying cannot help (e.g. the run was deleted from KFP): record it.
    observer().onStep(kind, "verify", "permanent");
    spdlog::error("{}/{}: KFP run {} cannot be verified (not retried): {}", wf.namespace_, wf.name,
                  runId, state.error().describe());
    markPatch = kfpReportFailedPatch("verify KFP run " + runId + ": " + state.error().message);
    return std::nullopt;
  }
  if (!state) {
    observer().onStep(kind, "verify", "error");
    return retry("verify KFP run " + runId, state.error());
  }
  if (*state != kExpectedKfpState) {
    observer().onStep(kind, "verify", "error");
    return retry("verify KFP run " + runId,
                 Error(ErrorCode::kTransient, "KFP run state is " + *state + " after the report, " +
                                                  "expected " + std::string(kExpectedKfpState)));
  }
  spdlog::info("{}/{}: KFP run {} is {}", wf.namespace_, wf.name, runId, *state);
  markPatch = verified(wf, kind);
  return std::nullopt;
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
        Status reported = kfp_->reportWorkflow(*current);
        std::string markPatch;
        if (reported) {
          observer().onStep(step.kind, "report", "success");
          if (auto r = verifyRunState(wf, step.kind, markPatch))
            return *r;
        } else if (permanentKfpError(reported.error())) {
          observer().onStep(step.kind, "report", "permanent");
          spdlog::error("{}/{}: KFP rejected the report (not retried): {}", ns, name,
                        reported.error().describe());
          markPatch = kfpReportFailedPatch(reported.error().message);
        } else {
          observer().onStep(step.kind, "report", "error");
          spdlog::warn("{}/{}: KFP report failed, will retry: {}", ns, name,
                       reported.error().describe());
          return retry("KFP report", reported.error());
        }
        if (auto r = applyPatch(markPatch, StepKind::kReportToKfp, "mark"))
          return *r;
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
