#pragma once
// Names of the labels and annotations the controller reads and writes.
//
// Everything the controller records lives under the domain it owns,
// `exit-reconciler.io/`. These annotations are also the controller's only
// progress store: every step of a correction writes its marker, so a restart
// resumes where the previous process stopped and never repeats a finished step.

#include <string_view>

namespace exitrec::ann {

inline constexpr std::string_view kPrefix = "exit-reconciler.io/";

// Written by the record step (one guarded merge patch).
inline constexpr std::string_view kTruePhase = "exit-reconciler.io/true-phase";
inline constexpr std::string_view kReportedPhase = "exit-reconciler.io/reported-phase";
inline constexpr std::string_view kCause = "exit-reconciler.io/cause";
inline constexpr std::string_view kFailures = "exit-reconciler.io/failures";  // compact JSON array
// What the record step did: one of the kAction* values below.
inline constexpr std::string_view kAction = "exit-reconciler.io/action";
inline constexpr std::string_view kRecordedAt = "exit-reconciler.io/recorded-at";
// Set only when the phase was rewritten (action "corrected").
inline constexpr std::string_view kCorrectedAt = "exit-reconciler.io/corrected-at";
// The run's status.message before our first correction (≤ 1 KiB), so a
// re-applied correction builds status.message from it instead of nesting ours.
inline constexpr std::string_view kOriginalMessage = "exit-reconciler.io/original-message";

// Written by the later steps.
inline constexpr std::string_view kKfpReportedAt = "exit-reconciler.io/kfp-reported-at";
inline constexpr std::string_view kKfpReportError = "exit-reconciler.io/kfp-report-error";
inline constexpr std::string_view kEventEmittedAt = "exit-reconciler.io/event-emitted-at";
// Reports KFP accepted (2xx) for the current record whose run state was not
// then confirmed FAILED: a decimal count, bounds the reports per record
// (kMaxKfpReports in correction.h). Reset by every (re-)record.
inline constexpr std::string_view kKfpReportAttempts = "exit-reconciler.io/kfp-report-attempts";
// When KFP's run state was checked again, kKfpReverifyDelay after
// kKfpReportedAt, and still FAILED (correction.h). Removed with kKfpReportedAt
// when the state went back: the next verified report is re-checked too.
inline constexpr std::string_view kKfpReverifiedAt = "exit-reconciler.io/kfp-reverified-at";

// Values of kAction.
inline constexpr std::string_view kActionCorrected = "corrected";  // phase rewritten
inline constexpr std::string_view kActionObserved = "observed";    // --correct=false
// A ≥2.4 exit task failed under --exit-task-failure=ignore: recorded, phase left alone.
inline constexpr std::string_view kActionExitTaskIgnored = "exit-task-ignored";

}  // namespace exitrec::ann

namespace exitrec::lbl {

inline constexpr std::string_view kRunId = "pipeline/runid";
inline constexpr std::string_view kPersistedFinalState = "pipeline/persistedFinalState";
inline constexpr std::string_view kCompleted = "workflows.argoproj.io/completed";
inline constexpr std::string_view kPhase = "workflows.argoproj.io/phase";

}  // namespace exitrec::lbl
