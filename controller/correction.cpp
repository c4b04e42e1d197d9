#include "controller/correction.h"

#include <nlohmann/json.hpp>

#include "controller/annotations.h"

namespace exitrec {
namespace {

using nlohmann::json;

std::string annotationOr(const std::map<std::string, std::string>& annotations,
                         std::string_view key, const std::string& fallback = {}) {
  auto it = annotations.find(std::string(key));
  return it == annotations.end() ? fallback : it->second;
}

bool hasAnnotation(const std::map<std::string, std::string>& annotations, std::string_view key) {
  return annotations.count(std::string(key)) != 0;
}

std::string str(std::string_view v) {
  return std::string(v);
}

// Workflow text is not guaranteed to be valid UTF-8; never throw on it.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json guardedMetadata(const Workflow& wf) {
  json meta = json::object();
  meta["resourceVersion"] = wf.resourceVersion;
  return meta;
}

// Phase order for "worse than": Succeeded < Error < Failed is not what we need;
// the engine already decides `misreported`. Here we only need "did someone
// overwrite a correction", i.e. status.phase is no longer failed/errored.
bool correctionOverwritten(const Workflow& wf, const CorrectionProgress& progress) {
  return progress.action == ann::kActionCorrected && isFailedOrError(progress.truePhase) &&
         !isFailedOrError(wf.phase);
}

// Marker patches touch only one annotation of ours. They are deliberately not
// guarded by resourceVersion: a merge patch of one annotation cannot lose
// anyone else's change, and a conflict there would make the finished step
// (a KFP report, an event) run twice.
std::string markerPatch(std::string_view key, std::string value) {
  json annotations = json::object();
  annotations[str(key)] = std::move(value);
  return dump(json{{"metadata", {{"annotations", annotations}}}});
}

// Argo's workflow.failures keys plus nodeName (the full node path: KFP v2
// failures are all displayed as "executor", the path names the task).
std::string failuresJson(const std::vector<Failure>& failures) {
  json out = json::array();
  for (const Failure& f : failures) {
    out.push_back({{"displayName", f.displayName},
                   {"message", f.message},
                   {"templateName", f.templateName},
                   {"phase", str(phaseName(f.phase))},
                   {"podName", f.podName},
                   {"finishedAt", f.finishedAt.empty() ? json(nullptr) : json(f.finishedAt)},
                   {"nodeName", f.nodeName}});
  }
  return dump(out);
}

// What to call a failure in messages: the task, not KFP's generic "executor".
std::string failureLabel(const Failure& f) {
  std::string label = f.displayName.empty() ? f.templateName : f.displayName;
  if ((label == "executor" || label.empty()) && !f.nodeName.empty()) {
    std::string path = f.nodeName;
    const std::string suffix = ".executor";
    if (path.size() > suffix.size() &&
        path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
      path.resize(path.size() - suffix.size());
    }
    const std::size_t dot = path.rfind('.');
    label = dot == std::string::npos ? path : path.substr(dot + 1);
  }
  return label;
}

std::vector<Failure> capped(const std::vector<Failure>& failures) {
  if (failures.size() <= kMaxRecordedFailures)
    return failures;
  return std::vector<Failure>(failures.begin(),
                              failures.begin() + static_cast<long>(kMaxRecordedFailures));
}

NextStep recordStep(const Workflow& wf, const Verdict& verdict, const CorrectionConfig& config,
                    std::string_view action, Clock::WallTime now) {
  const bool exitTaskIgnored = action == ann::kActionExitTaskIgnored;
  const std::vector<Failure>& failures =
      exitTaskIgnored ? verdict.exitTaskFailures : verdict.failures;
  const Phase truePhase = exitTaskIgnored ? wf.phase : verdict.truePhase;
  const std::string timestamp = formatRfc3339(now);

  json annotations = json::object();
  annotations[str(ann::kTruePhase)] = str(phaseName(truePhase));
  annotations[str(ann::kReportedPhase)] = str(phaseName(wf.phase));
  annotations[str(ann::kCause)] =
      exitTaskIgnored ? std::string("exit-task-failed") : verdict.cause.value_or(std::string());
  annotations[str(ann::kFailures)] = failuresJson(capped(failures));
  annotations[str(ann::kAction)] = str(action);
  annotations[str(ann::kRecordedAt)] = timestamp;
  // A (re-)record restarts the later steps.
  annotations[str(ann::kKfpReportedAt)] = nullptr;
  annotations[str(ann::kKfpReportError)] = nullptr;
  annotations[str(ann::kEventEmittedAt)] = nullptr;

  json patch = json::object();
  json meta = guardedMetadata(wf);
  if (action == ann::kActionCorrected) {
    annotations[str(ann::kCorrectedAt)] = timestamp;
    json labels = json::object();
    labels[str(lbl::kPhase)] = str(phaseName(verdict.truePhase));
    if (config.kfpReport == KfpReportMode::kPersistenceAgent) {
      labels[str(lbl::kPersistedFinalState)] = nullptr;  // agent re-reports the run
    }
    meta["labels"] = labels;
    patch["status"] = {{"phase", str(phaseName(verdict.truePhase))},
                       {"message", correctedMessage(wf, verdict)}};
  }
  meta["annotations"] = annotations;
  patch["metadata"] = meta;

  NextStep step;
  step.kind = StepKind::kRecord;
  step.action = str(action);
  step.why = "record " + step.action;
  step.patch = dump(patch);
  return step;
}

std::vector<Failure> failuresFromAnnotation(const std::string& text) {
  std::vector<Failure> out;
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_array())
    return out;
  for (const auto& item : parsed) {
    if (!item.is_object())
      continue;
    Failure f;
    f.displayName = item.value("displayName", "");
    f.message = item.value("message", "");
    f.templateName = item.value("templateName", "");
    f.phase = parsePhase(item.value("phase", ""));
    if (auto n = item.find("nodeName"); n != item.end() && n->is_string()) {
      f.nodeName = n->get<std::string>();
    }
    out.push_back(std::move(f));
  }
  return out;
}

NextStep eventStep(const CorrectionProgress& progress,
                   const std::map<std::string, std::string>& annotations,
                   const CorrectionConfig& config, Clock::WallTime now) {
  NextStep step;
  step.kind = StepKind::kEmitEvent;
  step.why = "event " + progress.action;
  step.eventType = "Warning";
  const std::string failures =
      summarizeFailures(failuresFromAnnotation(annotationOr(annotations, ann::kFailures, "[]")));
  const std::string cause = annotationOr(annotations, ann::kCause);
  const std::string reported = str(phaseName(progress.reportedPhase));
  const std::string truth = str(phaseName(progress.truePhase));
  std::string message;
  if (progress.action == ann::kActionCorrected) {
    step.eventReason = str(kReasonCorrected);
    message = "Run phase corrected from " + reported + " to " + truth + " (" + cause + ")";
    if (!failures.empty())
      message += ": " + failures;
    if (progress.kfpReported) {
      message += ". KFP run state verified FAILED.";
    } else if (progress.kfpReportFailed) {
      message += ". KFP rejected the report: " + annotationOr(annotations, ann::kKfpReportError);
    } else if (config.kfpReport == KfpReportMode::kPersistenceAgent) {
      message += ". KFP's persistence agent will re-report the run.";
    } else {
      message += ".";
    }
  } else if (progress.action == ann::kActionObserved) {
    step.eventReason = str(kReasonMisreported);
    message = "Run reported " + reported + " but truly " + truth + " (" + cause + ")";
    if (!failures.empty())
      message += ": " + failures;
    message += ". Observe mode: phase not corrected.";
  } else {
    step.eventReason = str(kReasonExitTaskFailed);
    message = "Exit task failed";
    if (!failures.empty())
      message += ": " + failures;
    message += ". Run phase left " + reported + " (--exit-task-failure=ignore).";
  }
  step.eventMessage = std::move(message);

  step.patch = markerPatch(ann::kEventEmittedAt, formatRfc3339(now));
  return step;
}

NextStep none(std::string why) {
  NextStep step;
  step.why = std::move(why);
  return step;
}

}  // namespace

std::string_view kfpReportModeName(KfpReportMode mode) {
  return mode == KfpReportMode::kDirect ? "direct" : "persistence-agent";
}

std::string_view stepKindName(StepKind kind) {
  switch (kind) {
    case StepKind::kNone:
      return "none";
    case StepKind::kRecord:
      return "record";
    case StepKind::kReportToKfp:
      return "kfp-report";
    case StepKind::kEmitEvent:
      return "event";
    case StepKind::kConfirmAgentReport:
      return "kfp-agent-confirm";
  }
  return "none";
}

CorrectionProgress readProgress(const std::map<std::string, std::string>& annotations) {
  CorrectionProgress p;
  p.recorded = hasAnnotation(annotations, ann::kTruePhase);
  if (p.recorded) {
    p.action = annotationOr(annotations, ann::kAction, str(ann::kActionCorrected));
    p.truePhase = parsePhase(annotationOr(annotations, ann::kTruePhase));
    p.reportedPhase = parsePhase(annotationOr(annotations, ann::kReportedPhase));
  }
  p.kfpReported = hasAnnotation(annotations, ann::kKfpReportedAt);
  p.kfpReportFailed = hasAnnotation(annotations, ann::kKfpReportError);
  p.eventEmitted = hasAnnotation(annotations, ann::kEventEmittedAt);
  return p;
}

bool isCompletedRun(const Workflow& wf) {
  auto it = wf.labels.find(str(lbl::kCompleted));
  return it != wf.labels.end() && it->second == "true" && isCompleted(wf.phase);
}

NextStep decideNextStep(const Workflow& wf, const Verdict& verdict, const CorrectionConfig& config,
                        Clock::WallTime now) {
  if (!isCompletedRun(wf))
    return none("not-completed");
  if (wf.labels.count(str(lbl::kRunId)) == 0)
    return none("not-kfp-run");

  const CorrectionProgress progress = readProgress(wf.annotations);
  const bool upgradeObserved =
      progress.action == ann::kActionObserved && config.correct && verdict.misreported;
  const bool overwritten = config.correct && correctionOverwritten(wf, progress);

  if (!progress.recorded || upgradeObserved || overwritten) {
    if (overwritten) {
      // Someone (e.g. a stale full Update) put the old phase back: reapply.
      Verdict again = verdict;
      again.truePhase = progress.truePhase;
      if (!again.cause) {
        std::string cause = annotationOr(wf.annotations, ann::kCause);
        if (!cause.empty())
          again.cause = cause;
      }
      return recordStep(wf, again, config, ann::kActionCorrected, now);
    }
    if (!verdict.evaluable)
      return none("not-evaluable");
    if (verdict.misreported) {
      return recordStep(wf, verdict, config,
                        config.correct ? ann::kActionCorrected : ann::kActionObserved, now);
    }
    if (!progress.recorded && verdict.generation == Generation::kKfpV2Hook &&
        config.exitTaskFailure == ExitTaskFailurePolicy::kIgnore &&
        !verdict.exitTaskFailures.empty()) {
      return recordStep(wf, verdict, config, ann::kActionExitTaskIgnored, now);
    }
    if (!progress.recorded)
      return none("healthy");
  }

  if (progress.action == ann::kActionCorrected && config.kfpReport == KfpReportMode::kDirect &&
      !progress.kfpReported && !progress.kfpReportFailed) {
    NextStep step;
    step.kind = StepKind::kReportToKfp;
    step.why = "report corrected phase to KFP";
    return step;
  }
  if (!progress.eventEmitted)
    return eventStep(progress, wf.annotations, config, now);
  if (progress.action == ann::kActionCorrected &&
      config.kfpReport == KfpReportMode::kPersistenceAgent && !progress.kfpReported &&
      !progress.kfpReportFailed) {
    // Our record patch dropped the final-state label; the KFP API server puts
    // it back after the agent's final report. Until then there is nothing to
    // do: the label's return is an update the watch delivers.
    if (wf.labels.count(str(lbl::kPersistedFinalState)) == 0)
      return none(std::string(kAwaitingPersistenceAgent));
    NextStep step;
    step.kind = StepKind::kConfirmAgentReport;
    step.why = "confirm the persistence agent's report";
    return step;
  }
  return none("done");
}

std::string kfpReportedPatch(Clock::WallTime now) {
  return markerPatch(ann::kKfpReportedAt, formatRfc3339(now));
}

std::string kfpReportFailedPatch(std::string_view error) {
  // Annotations are size-limited; the error text only needs to be recognisable.
  return markerPatch(ann::kKfpReportError, std::string(error.substr(0, 1024)));
}

std::string summarizeFailures(const std::vector<Failure>& failures, std::size_t limit) {
  std::string out;
  std::size_t shown = 0;
  for (const Failure& f : failures) {
    if (shown == limit)
      break;
    if (!out.empty())
      out += "; ";
    out += failureLabel(f);
    out += ": ";
    out += f.message.empty() ? str(phaseName(f.phase)) : f.message;
    ++shown;
  }
  if (failures.size() > shown) {
    out += "; and " + std::to_string(failures.size() - shown) + " more";
  }
  return out;
}

std::string correctedMessage(const Workflow& wf, const Verdict& verdict) {
  std::string msg = "exit-reconciler: reported " + str(phaseName(wf.phase)) + ", truly " +
                    str(phaseName(verdict.truePhase));
  if (verdict.cause)
    msg += " (" + *verdict.cause + ")";
  const std::string failures = summarizeFailures(verdict.failures);
  if (!failures.empty())
    msg += ": " + failures;
  if (!wf.message.empty())
    msg += " | original message: " + wf.message;
  return msg;
}

}  // namespace exitrec
