#include "controller/correction.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "common/rfc3339.h"
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

json guardedMetadata(const Workflow& wf) {
  json meta = json::object();
  meta["resourceVersion"] = wf.resourceVersion;
  return meta;
}

// Marker patches touch only one annotation of ours. They are deliberately not
// guarded by resourceVersion: a merge patch of one annotation cannot lose
// anyone else's change, and a conflict there would make the finished step
// (a KFP report, an event) run twice.
std::string markerPatch(std::string_view key, std::string value) {
  json annotations = json::object();
  annotations[str(key)] = std::move(value);
  return dumpJson(json{{"metadata", {{"annotations", annotations}}}});
}

// One failure with every tenant-controlled string bounded.
Failure boundedFailure(const Failure& f) {
  Failure b = f;
  b.displayName = boundedText(f.displayName, kMaxFieldBytes);
  b.message = boundedText(f.message, kMaxFailureMessageBytes);
  b.templateName = boundedText(f.templateName, kMaxFieldBytes);
  b.podName = boundedText(f.podName, kMaxFieldBytes);
  b.finishedAt = boundedText(f.finishedAt, kMaxFieldBytes);
  b.nodeName = boundedText(f.nodeName, kMaxFieldBytes);
  return b;
}

json failureJson(const Failure& f) {
  return {{"displayName", f.displayName},
          {"message", f.message},
          {"templateName", f.templateName},
          {"phase", str(phaseName(f.phase))},
          {"podName", f.podName},
          {"finishedAt", f.finishedAt.empty() ? json(nullptr) : json(f.finishedAt)},
          {"nodeName", f.nodeName}};
}

// Argo's workflow.failures keys plus nodeName (the full node path: KFP v2
// failures are all displayed as "executor", the path names the task). At most
// kMaxRecordedFailures entries, each bounded, and the whole array within
// kFailuresBudgetBytes (entries that would pass it are left out).
std::string failuresJson(const std::vector<Failure>& failures) {
  json out = json::array();
  std::size_t bytes = 2;
  for (const Failure& f : failures) {
    if (out.size() == kMaxRecordedFailures)
      break;
    json item = failureJson(boundedFailure(f));
    const std::size_t size = dumpJson(item).size() + 1;
    if (bytes + size > kFailuresBudgetBytes)
      break;
    bytes += size;
    out.push_back(std::move(item));
  }
  return dumpJson(out);
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
  annotations[str(ann::kCause)] = boundedText(
      exitTaskIgnored ? std::string("exit-task-failed") : verdict.cause.value_or(std::string()),
      kMaxFieldBytes);
  annotations[str(ann::kFailures)] = failuresJson(failures);
  annotations[str(ann::kAction)] = str(action);
  annotations[str(ann::kRecordedAt)] = timestamp;
  // A (re-)record restarts the later steps.
  annotations[str(ann::kKfpReportedAt)] = nullptr;
  annotations[str(ann::kKfpReportError)] = nullptr;
  annotations[str(ann::kEventEmittedAt)] = nullptr;
  annotations[str(ann::kKfpReportAttempts)] = nullptr;

  json patch = json::object();
  json meta = guardedMetadata(wf);
  if (action == ann::kActionCorrected) {
    annotations[str(ann::kCorrectedAt)] = timestamp;
    const std::string original = originalMessage(wf);
    annotations[str(ann::kOriginalMessage)] = original.empty() ? json(nullptr) : json(original);
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
  step.patch = dumpJson(patch);
  return step;
}

// A string member of a hostile JSON object, "" when absent or not a string.
std::string stringField(const json& object, const char* key, std::size_t maxBytes) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string())
    return {};
  return boundedText(it->get_ref<const std::string&>(), maxBytes);
}

// Reads back the failures annotation for messages. The text is hostile: any
// JSON (or none) may be there; wrong types read as empty, and nothing throws.
std::vector<Failure> failuresFromAnnotation(const std::string& text) {
  std::vector<Failure> out;
  if (text.size() > 4 * kFailuresBudgetBytes)
    return out;  // not written by us
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_array())
    return out;
  for (const auto& item : parsed) {
    if (out.size() == kMaxRecordedFailures)
      break;
    if (!item.is_object())
      continue;
    Failure f;
    f.displayName = stringField(item, "displayName", kMaxFieldBytes);
    f.message = stringField(item, "message", kMaxFailureMessageBytes);
    f.templateName = stringField(item, "templateName", kMaxFieldBytes);
    f.phase = parsePhase(stringField(item, "phase", kMaxFieldBytes));
    f.nodeName = stringField(item, "nodeName", kMaxFieldBytes);
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
  const std::string cause = boundedText(annotationOr(annotations, ann::kCause), kMaxFieldBytes);
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
      message += ". KFP rejected the report: " +
                 boundedText(annotationOr(annotations, ann::kKfpReportError), kMaxFieldBytes);
    } else if (config.kfpReport == KfpReportMode::kDirect &&
               progress.kfpReportAttempts >= kMaxKfpReports) {
      message += ". Not reported to KFP: the report-attempt counter " +
                 str(ann::kKfpReportAttempts) + " is spent or unreadable.";
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
  step.eventMessage = boundedText(message, kMaxEventMessageBytes);

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
    case StepKind::kReverifyKfp:
      return "kfp-reverify";
  }
  return "none";
}

CorrectionProgress readProgress(const std::map<std::string, std::string>& annotations) {
  CorrectionProgress p;
  p.kfpReported = hasAnnotation(annotations, ann::kKfpReportedAt);
  p.kfpReportFailed = hasAnnotation(annotations, ann::kKfpReportError);
  p.eventEmitted = hasAnnotation(annotations, ann::kEventEmittedAt);
  p.kfpReverified = hasAnnotation(annotations, ann::kKfpReverifiedAt);
  if (p.kfpReported)
    p.kfpReportedAt = parseRecordedTime(annotationOr(annotations, ann::kKfpReportedAt));
  if (hasAnnotation(annotations, ann::kKfpReportAttempts)) {
    const std::string text = annotationOr(annotations, ann::kKfpReportAttempts);
    const bool digits =
        !text.empty() && text.size() <= 2 &&
        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    p.kfpReportAttempts = digits ? std::min(std::stoi(text), kMaxKfpReports) : kMaxKfpReports;
  }

  const bool any = hasAnnotation(annotations, ann::kTruePhase) ||
                   hasAnnotation(annotations, ann::kAction) ||
                   hasAnnotation(annotations, ann::kReportedPhase);
  if (!any)
    return p;
  // Only values the record step writes are accepted; the text is compared
  // whole, so "Failed " or "failed" is garbage too.
  auto finalPhase = [&](std::string_view key) {
    const std::string text = annotationOr(annotations, key);
    const Phase phase = parsePhase(text);
    return isCompleted(phase) && text == phaseName(phase) ? phase : Phase::kNone;
  };
  const Phase truePhase = finalPhase(ann::kTruePhase);
  const Phase reportedPhase = finalPhase(ann::kReportedPhase);
  const std::string action = annotationOr(annotations, ann::kAction);
  if (truePhase == Phase::kNone) {
    p.invalid = str(ann::kTruePhase) + " is not Succeeded, Failed or Error";
  } else if (reportedPhase == Phase::kNone) {
    p.invalid = str(ann::kReportedPhase) + " is not Succeeded, Failed or Error";
  } else if (action != ann::kActionCorrected && action != ann::kActionObserved &&
             action != ann::kActionExitTaskIgnored) {
    p.invalid = str(ann::kAction) + " is not corrected, observed or exit-task-ignored";
  } else if (action != ann::kActionExitTaskIgnored && !isFailedOrError(truePhase)) {
    p.invalid = "a " + action + " record whose true phase is not Failed or Error";
  }
  if (!p.invalid.empty())
    return p;
  p.recorded = true;
  p.action = action;
  p.truePhase = truePhase;
  p.reportedPhase = reportedPhase;
  return p;
}

bool isCompletedRun(const Workflow& wf) {
  auto it = wf.labels.find(str(lbl::kCompleted));
  return it != wf.labels.end() && it->second == "true" && isCompleted(wf.phase);
}

namespace {

// The phase the run's failures give, derived as the engine derives a
// Succeeded run's true phase (engine/outcome.cpp, evaluate: any Failed
// failure → Failed, else any Error → Error; exit-task failures count under
// --exit-task-failure=fail). kSucceeded when nothing failed. Needed because
// on a run whose status.phase is already Failed the verdict's truePhase is
// that phase whatever the nodes say.
Phase phaseFromFailures(const Verdict& verdict, ExitTaskFailurePolicy policy) {
  bool anyFailed = false;
  bool anyError = false;
  auto scan = [&](const std::vector<Failure>& list) {
    for (const Failure& f : list)
      (f.phase == Phase::kFailed ? anyFailed : anyError) = true;
  };
  scan(verdict.failures);
  if (policy == ExitTaskFailurePolicy::kFail)
    scan(verdict.exitTaskFailures);
  return anyFailed ? Phase::kFailed : anyError ? Phase::kError : Phase::kSucceeded;
}

// Whether a well-formed record describes the object as it is now (see the
// header): only then do its later steps (report, event, confirmation) run.
bool recordIsCurrent(const Workflow& wf, const Verdict& verdict, const CorrectionConfig& config,
                     const CorrectionProgress& progress) {
  if (!progress.recorded || !verdict.evaluable)
    return false;
  if (progress.action == ann::kActionCorrected) {
    return wf.phase == progress.truePhase &&
           phaseFromFailures(verdict, config.exitTaskFailure) == progress.truePhase;
  }
  if (progress.action == ann::kActionObserved)
    return verdict.misreported;
  return !verdict.exitTaskFailures.empty();  // exit-task-ignored
}

}  // namespace

NextStep decideNextStep(const Workflow& wf, const Verdict& verdict, const CorrectionConfig& config,
                        Clock::WallTime now) {
  if (!isCompletedRun(wf))
    return none("not-completed");
  if (wf.labels.count(str(lbl::kRunId)) == 0)
    return none("not-kfp-run");

  const CorrectionProgress progress = readProgress(wf.annotations);
  if (!recordIsCurrent(wf, verdict, config, progress)) {
    // Unrecorded, unusable or stale: the nodes alone decide. This is also how
    // an overwritten correction, or a KFP retry that masks a failure again,
    // is (re-)corrected: the current verdict says mis-reported.
    std::string note = progress.invalid.empty()
                           ? (progress.recorded ? "record of an earlier state ignored" : "")
                           : "annotations ignored: " + progress.invalid;
    NextStep step;
    if (!verdict.evaluable) {
      step = none("not-evaluable");
    } else if (verdict.misreported) {
      step = recordStep(wf, verdict, config,
                        config.correct ? ann::kActionCorrected : ann::kActionObserved, now);
    } else if (verdict.generation == Generation::kKfpV2Hook &&
               config.exitTaskFailure == ExitTaskFailurePolicy::kIgnore &&
               !verdict.exitTaskFailures.empty()) {
      step = recordStep(wf, verdict, config, ann::kActionExitTaskIgnored, now);
    } else {
      step = none("healthy");
    }
    step.note = std::move(note);
    return step;
  }

  if (progress.action == ann::kActionObserved && config.correct)
    return recordStep(wf, verdict, config, ann::kActionCorrected, now);  // correction turned on

  if (progress.action == ann::kActionCorrected && config.kfpReport == KfpReportMode::kDirect &&
      !progress.kfpReported && !progress.kfpReportFailed &&
      progress.kfpReportAttempts < kMaxKfpReports) {
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
  if (progress.action == ann::kActionCorrected && config.kfpReverify && progress.kfpReported &&
      !progress.kfpReverified && !progress.kfpReportFailed) {
    // Due kKfpReverifyDelay after kfp-reported-at. A time that cannot be read
    // or lies in the future (a tenant wrote it) is due now: one GET, then the
    // marker, never an endless wait.
    const auto wait = progress.kfpReportedAt && *progress.kfpReportedAt <= now
                          ? *progress.kfpReportedAt + kKfpReverifyDelay - now
                          : Clock::WallTime::duration::zero();
    if (wait > Clock::WallTime::duration::zero()) {
      NextStep step = none(std::string(kAwaitingKfpReverify));
      // Rounded up: never back a millisecond early.
      step.requeueAfter = std::chrono::ceil<std::chrono::milliseconds>(wait);
      return step;
    }
    NextStep step;
    step.kind = StepKind::kReverifyKfp;
    step.why = "re-verify the KFP run state";
    return step;
  }
  return none("done");
}

std::string kfpReportedPatch(Clock::WallTime now) {
  return markerPatch(ann::kKfpReportedAt, formatRfc3339(now));
}

std::string kfpReportFailedPatch(std::string_view error) {
  // Annotations are size-limited; the error text only needs to be recognisable.
  return markerPatch(ann::kKfpReportError, boundedText(error, 1024));
}

std::string kfpReportAttemptsPatch(int attempts) {
  return markerPatch(ann::kKfpReportAttempts, std::to_string(attempts));
}

std::string agentRereportPatch(int attempts) {
  json patch = json::parse(kfpReportAttemptsPatch(attempts));
  patch["metadata"]["labels"] = {{str(lbl::kPersistedFinalState), nullptr}};
  return dumpJson(patch);
}

std::string kfpReverifiedPatch(Clock::WallTime now) {
  return markerPatch(ann::kKfpReverifiedAt, formatRfc3339(now));
}

std::string kfpStateRegressedPatch(KfpReportMode mode, int attempts, std::string_view state) {
  json patch = json::parse(kfpReportAttemptsPatch(attempts));
  json& annotations = patch["metadata"]["annotations"];
  annotations[str(ann::kKfpReportedAt)] = nullptr;
  annotations[str(ann::kKfpReverifiedAt)] = nullptr;
  if (attempts >= kMaxKfpReports) {
    annotations[str(ann::kKfpReportError)] = boundedText(
        "KFP run state went back from FAILED to " + boundedText(state, kMaxFieldBytes) +
            " after a verified report, " + std::to_string(attempts) + " times: not reported again",
        1024);
  } else if (mode == KfpReportMode::kPersistenceAgent) {
    patch["metadata"]["labels"] = {{str(lbl::kPersistedFinalState), nullptr}};
  }
  return dumpJson(patch);
}

std::optional<Clock::WallTime> parseRecordedTime(const std::string& text) {
  auto t = parseRfc3339(text);
  if (!t)
    return std::nullopt;
  return *t;
}

std::string boundedText(std::string_view text, std::size_t maxBytes) {
  if (text.size() <= maxBytes)
    return std::string(text);
  static constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // "…" in UTF-8
  if (maxBytes < kEllipsis.size())
    return {};
  std::size_t cut = maxBytes - kEllipsis.size();
  // Back off to the start of a UTF-8 sequence (continuation bytes are 10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
    --cut;
  return std::string(text.substr(0, cut)) + std::string(kEllipsis);
}

std::string summarizeFailures(const std::vector<Failure>& failures, std::size_t limit) {
  std::string out;
  std::size_t shown = 0;
  for (const Failure& f : failures) {
    if (shown == limit)
      break;
    if (!out.empty())
      out += "; ";
    const Failure b = boundedFailure(f);
    out += boundedText(failureLabel(b), kMaxFieldBytes);
    out += ": ";
    out += b.message.empty() ? str(phaseName(b.phase)) : b.message;
    ++shown;
  }
  if (failures.size() > shown) {
    out += "; and " + std::to_string(failures.size() - shown) + " more";
  }
  return out;
}

std::string originalMessage(const Workflow& wf) {
  if (wf.message.rfind(kCorrectedMessagePrefix, 0) == 0) {
    // Ours (a re-applied correction): the original was kept at the first one.
    return boundedText(annotationOr(wf.annotations, ann::kOriginalMessage), 1024);
  }
  return boundedText(wf.message, 1024);
}

std::string correctedMessage(const Workflow& wf, const Verdict& verdict) {
  std::string msg = str(kCorrectedMessagePrefix) + "reported " + str(phaseName(wf.phase)) +
                    ", truly " + str(phaseName(verdict.truePhase));
  if (verdict.cause)
    msg += " (" + boundedText(*verdict.cause, kMaxFieldBytes) + ")";
  const std::string failures = summarizeFailures(verdict.failures);
  if (!failures.empty())
    msg += ": " + failures;
  const std::string original = originalMessage(wf);
  if (!original.empty())
    msg += " | original message: " + original;
  return msg;
}

}  // namespace exitrec
