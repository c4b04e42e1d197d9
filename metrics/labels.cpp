// Label values of the metric enums and the allow-lists of metrics/metrics.h.

#include <cstdlib>
#include <string>

#include "metrics/metrics_internal.h"

namespace exitrec {

using metrics_internal::allowListed;

std::string_view labelValue(RunVerdict v) {
  switch (v) {
    case RunVerdict::kCorrect:
      return "correct";
    case RunVerdict::kMisreported:
      return "misreported";
    case RunVerdict::kNotEvaluable:
      return "not_evaluable";
    case RunVerdict::kInProgress:
      return "in_progress";
  }
  std::abort();
}
std::string_view labelValue(CorrectionStep v) {
  switch (v) {
    case CorrectionStep::kWorkflowPatch:
      return "workflow_patch";
    case CorrectionStep::kKfpReport:
      return "kfp_report";
    case CorrectionStep::kKfpVerify:
      return "kfp_verify";
    case CorrectionStep::kEvent:
      return "event";
  }
  std::abort();
}
std::string_view labelValue(StepResult v) {
  switch (v) {
    case StepResult::kSuccess:
      return "success";
    case StepResult::kConflict:
      return "conflict";
    case StepResult::kTransientError:
      return "transient_error";
    case StepResult::kPermanentError:
      return "permanent_error";
  }
  std::abort();
}
std::string_view labelValue(InjectionChannel v) {
  switch (v) {
    case InjectionChannel::kWebhook:
      return "webhook";
    case InjectionChannel::kAnnotation:
      return "annotation";
  }
  std::abort();
}
std::string_view labelValue(InjectionResultLabel v) {
  switch (v) {
    case InjectionResultLabel::kInjected:
      return "injected";
    case InjectionResultLabel::kAlreadyInjected:
      return "already_injected";
    case InjectionResultLabel::kSkipped:
      return "skipped";
    case InjectionResultLabel::kOutOfScope:
      return "out_of_scope";
    case InjectionResultLabel::kDeadlineExceeded:
      return "deadline_exceeded";
    case InjectionResultLabel::kApiUnavailable:
      return "api_unavailable";
    case InjectionResultLabel::kBadRequest:
      return "bad_request";
    case InjectionResultLabel::kError:
      return "error";
  }
  std::abort();
}
std::string_view labelValue(WatchedResource v) {
  switch (v) {
    case WatchedResource::kWorkflows:
      return "workflows";
    case WatchedResource::kPods:
      return "pods";
  }
  std::abort();
}
std::string_view labelValue(WatchRestartReason v) {
  switch (v) {
    case WatchRestartReason::kExpired:
      return "expired";
    case WatchRestartReason::kClosed:
      return "closed";
    case WatchRestartReason::kError:
      return "error";
    case WatchRestartReason::kStalled:
      return "stalled";
  }
  std::abort();
}
std::string_view labelValue(WatchEventLabel v) {
  switch (v) {
    case WatchEventLabel::kAdded:
      return "ADDED";
    case WatchEventLabel::kModified:
      return "MODIFIED";
    case WatchEventLabel::kDeleted:
      return "DELETED";
    case WatchEventLabel::kBookmark:
      return "BOOKMARK";
    case WatchEventLabel::kError:
      return "ERROR";
  }
  std::abort();
}
std::string_view labelValue(KfpOperation v) {
  switch (v) {
    case KfpOperation::kReport:
      return "report";
    case KfpOperation::kGetRun:
      return "get_run";
  }
  std::abort();
}
std::string_view labelValue(ReconcileResult v) {
  switch (v) {
    case ReconcileResult::kSuccess:
      return "success";
    case ReconcileResult::kError:
      return "error";
    case ReconcileResult::kRequeue:
      return "requeue";
    case ReconcileResult::kRequeueAfter:
      return "requeue_after";
  }
  std::abort();
}
std::string_view labelValue(ExitTaskFailurePolicyLabel v) {
  switch (v) {
    case ExitTaskFailurePolicyLabel::kIgnore:
      return "ignore";
    case ExitTaskFailurePolicyLabel::kFail:
      return "fail";
  }
  std::abort();
}

std::string_view generationLabel(std::string_view generation) {
  return allowListed(generation, kGenerationLabels);
}
std::string_view causeLabel(std::string_view cause) {
  return allowListed(cause, kCauseLabels);
}
std::string_view phaseLabel(std::string_view phase) {
  if (phase.empty())
    return "None";
  return allowListed(phase, kPhaseLabels);
}
std::string httpCodeLabel(int status) {
  if (status < 100 || status > 599)
    return "error";
  return std::to_string(status);
}

WatchRestartReason watchRestartReasonOf(std::string_view reason) {
  if (reason == "closed")
    return WatchRestartReason::kClosed;
  if (reason == "idle_timeout")
    return WatchRestartReason::kStalled;
  if (reason == "gone_http" || reason == "gone_event")
    return WatchRestartReason::kExpired;
  return WatchRestartReason::kError;
}

WatchEventLabel watchEventLabelOf(std::string_view type) {
  if (type == "ADDED")
    return WatchEventLabel::kAdded;
  if (type == "MODIFIED")
    return WatchEventLabel::kModified;
  if (type == "DELETED")
    return WatchEventLabel::kDeleted;
  if (type == "BOOKMARK")
    return WatchEventLabel::kBookmark;
  return WatchEventLabel::kError;
}

}  // namespace exitrec
