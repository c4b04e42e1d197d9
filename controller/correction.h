#pragma once
// The correction state machine: pure decisions, no I/O.
//
// Given a Workflow (engine model), the engine's Verdict on it and the
// controller's own annotations already on it, decideNextStep() says what to do
// next for that run:
//
//   record  → report to KFP (direct mode, corrected runs only) → event
//           → re-verify KFP's state (corrected runs with a KFP client) → done
//
// Re-verification: KFP 2.0-2.16 store whatever report arrives last, with no
// resourceVersion fence (resource_manager.go ReportWorkflowResource and
// run_store.go UpdateRun at 2.4.0 and 2.16.1), so a report of an older
// snapshot that lands after our verified report puts the old state back. So
// kKfpReverifyDelay after kfp-reported-at the run state is read once more:
// FAILED writes kfp-reverified-at; another state (a regression) removes
// kfp-reported-at and counts one more kfp-report-attempts, so the run is
// reported again (direct) or the agent is made to re-report it (label
// removed), and that new verification is re-checked in turn. Every
// regression spends one of the kMaxKfpReports; the last one ends in
// kfp-report-error. A late report after the re-verification is not seen.
//
// With --kfp-report=persistence-agent the record patch drops the label
// pipeline/persistedFinalState, and a corrected run waits after its event
// until KFP puts that label back: the KFP API server adds it once the agent
// has re-reported the run in a final state. Then the run state is verified
// (when a KFP client is configured) and kfp-reported-at is written.
//
// Each step leaves a marker annotation (see controller/annotations.h), so the
// decision is a function of the object alone: restart-safe, idempotent, and a
// crash between two steps resumes at the step that did not finish.
//
// Our annotations are hostile input (anyone who may edit the Workflow writes
// them, and KFP's RetryRun brings back those of the last report). A record
// drives the later steps only when it is well-formed AND describes the
// current object (recordIsCurrent in the .cpp):
// - corrected: status.phase is the recorded true phase and the nodes justify
//   it (their failures give that phase, as the engine derives it);
// - observed: the verdict still says mis-reported;
// - exit-task-ignored: an exit task still failed.
// Anything else (unknown phases or actions, a record of an earlier attempt
// of a run KFP retried, a forged record on a healthy run) is treated as
// unrecorded: the run is evaluated from its nodes alone. A correction is
// (re-)applied only when the current verdict says mis-reported, so a KFP
// retry that truly succeeds stays Succeeded and is not reported again, and a
// retried 2.0–2.3 run that masks a failure again is corrected again.
//
// Bounds: a failure's message ≤ kMaxFailureMessageBytes, other strings ≤
// kMaxFieldBytes, ≤ kMaxRecordedFailures failures and ≤ kFailuresBudgetBytes
// for the failures annotation; status.message is built from the original
// message (kept in ann::kOriginalMessage) and never nests our own; KFP reports
// per record ≤ kMaxKfpReports (ann::kKfpReportAttempts).
//
// Safety rules enforced here:
// - A workflow that is not completed (label workflows.argoproj.io/completed
//   != "true" or a non-final status.phase) is never touched: Argo owns it.
// - Only KFP runs (label pipeline/runid) are written to; plain Argo workflows
//   are evaluated for metrics only.
// - The record patch (the one that rewrites phase/labels) carries
//   metadata.resourceVersion, so a stale decision gives 409 and is redone.
//   Marker patches touch a single annotation of ours and are not guarded
//   (see markerPatch in the .cpp: a conflict there would repeat a KFP report).
// - The completed label is never written, so never removed.
//
// Thread-safety: all functions are pure and may be called concurrently.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "engine/outcome.h"
#include "engine/workflow.h"

namespace exitrec {

enum class KfpReportMode : std::uint8_t {
  kDirect,            // POST the corrected Workflow to the KFP report API ourselves
  kPersistenceAgent,  // remove pipeline/persistedFinalState; KFP's agent re-reports
};
std::string_view kfpReportModeName(KfpReportMode mode);  // "direct" | "persistence-agent"

struct CorrectionConfig {
  bool correct = true;  // false: observe only (annotations + event, phase untouched)
  KfpReportMode kfpReport = KfpReportMode::kDirect;
  ExitTaskFailurePolicy exitTaskFailure = ExitTaskFailurePolicy::kIgnore;
  // Whether KFP's run state can be read (a KFP client is configured): only
  // then is a verified report re-verified. The Reconciler clears it without one.
  bool kfpReverify = true;
};

// Progress markers read back from the annotations.
struct CorrectionProgress {
  // A well-formed record: true-phase, reported-phase and action present, each
  // a value the record step writes, and consistent with each other.
  bool recorded = false;
  // Our annotations are present but unusable (recorded is false): why.
  std::string invalid;
  std::string action;  // ann::kAction value, "" when not recorded
  Phase truePhase = Phase::kNone;
  Phase reportedPhase = Phase::kNone;
  bool kfpReported = false;
  bool kfpReportFailed = false;
  bool eventEmitted = false;
  // Reports KFP accepted without a confirmed state; an unreadable counter
  // reads as kMaxKfpReports (garbage never buys another report).
  int kfpReportAttempts = 0;
  bool kfpReverified = false;
  // ann::kKfpReportedAt parsed; nullopt when absent or not RFC 3339.
  std::optional<Clock::WallTime> kfpReportedAt;
};
CorrectionProgress readProgress(const std::map<std::string, std::string>& annotations);

enum class StepKind : std::uint8_t {
  kNone,         // nothing to do; NextStep::why says why
  kRecord,       // send NextStep::patch (guarded merge patch)
  kReportToKfp,  // POST the current object to KFP, verify the run state, then
                 // send kfpReportedPatch() or kfpReportFailedPatch()
  kEmitEvent,    // emit the event described in NextStep, then send NextStep::patch (marker)
  // Persistence-agent mode: the agent has re-reported the corrected run (the
  // final-state label is back). Verify the KFP run state if a KFP client is
  // configured, then send kfpReportedPatch().
  kConfirmAgentReport,
  // A corrected run verified FAILED kKfpReverifyDelay ago: GET the KFP run
  // again, then kfpReverifiedPatch(), or kfpStateRegressedPatch() when it is
  // no longer FAILED.
  kReverifyKfp,
};
// "none", "record", "kfp-report", "event", "kfp-agent-confirm", "kfp-reverify"
std::string_view stepKindName(StepKind kind);

struct NextStep {
  StepKind kind = StepKind::kNone;
  // kNone: "not-completed", "not-kfp-run", "not-evaluable", "healthy", "done",
  // "awaiting-persistence-agent", "awaiting-kfp-reverify".
  // Otherwise a short description for logs, e.g. "record corrected".
  std::string why;
  // kNone "awaiting-kfp-reverify": come back after this long (> 0).
  std::chrono::milliseconds requeueAfter{0};
  std::string patch;   // merge patch JSON for kRecord and kEmitEvent
  std::string action;  // kRecord: the ann::kAction value written
  // Why our annotations were ignored, when they were ("" otherwise): for logs.
  std::string note;
  // kEmitEvent only:
  std::string eventType;  // "Warning"
  std::string eventReason;
  std::string eventMessage;
};

// Whether the workflow is completed in the sense the controller acts on:
// completed label "true" and a final status.phase.
bool isCompletedRun(const Workflow& wf);

NextStep decideNextStep(const Workflow& wf, const Verdict& verdict, const CorrectionConfig& config,
                        Clock::WallTime now);

// Marker patches for the outcome of a kReportToKfp step.
std::string kfpReportedPatch(Clock::WallTime now);
std::string kfpReportFailedPatch(std::string_view error);
// KFP accepted `attempts` reports of the current record, none confirmed yet.
std::string kfpReportAttemptsPatch(int attempts);
// Persistence-agent mode: KFP labelled the run with a state other than FAILED.
// Removes pipeline/persistedFinalState again (the agent then re-reports the
// corrected object) and records `attempts`. Unguarded, like the markers.
std::string agentRereportPatch(int attempts);
// The re-verification found the run still FAILED.
std::string kfpReverifiedPatch(Clock::WallTime now);
// The re-verification found `state` (not FAILED): kfp-reported-at removed and
// `attempts` recorded, so that the report step (direct) or the agent (the
// label removed too, persistence-agent mode) runs again; when `attempts`
// reaches kMaxKfpReports, kfp-report-error instead of another report.
std::string kfpStateRegressedPatch(KfpReportMode mode, int attempts, std::string_view state);

// A time we recorded in an annotation ("2026-12-07T21:30:49Z"), read with the
// common RFC 3339 parser; nullopt when unreadable or out of range (a tenant
// may have written anything there).
std::optional<Clock::WallTime> parseRecordedTime(const std::string& text);

// The corrected status.message: what really failed, then the run's original
// message (originalMessage()), each part bounded. Never contains a previous
// corrected message, so re-applying a correction does not grow it.
std::string correctedMessage(const Workflow& wf, const Verdict& verdict);
// The run's message before any correction of ours: status.message, or when
// that is one of ours, the ann::kOriginalMessage annotation. ≤ 1 KiB.
std::string originalMessage(const Workflow& wf);
inline constexpr std::string_view kCorrectedMessagePrefix = "exit-reconciler: ";

// `text` cut to at most `maxBytes` bytes without splitting a UTF-8 sequence;
// a cut text ends with "…" (within the limit).
std::string boundedText(std::string_view text, std::size_t maxBytes);

// "fail-op: Error (exit code 1); print-op: ..." for at most `limit` failures.
std::string summarizeFailures(const std::vector<Failure>& failures, std::size_t limit = 3);

// NextStep::why of a corrected run waiting for KFP's persistence agent to
// re-report it (persistence-agent mode).
inline constexpr std::string_view kAwaitingPersistenceAgent = "awaiting-persistence-agent";

// Bounds on what we write (Kubernetes caps all annotations of an object at
// 256 KiB together; the run's own annotations share that budget).
inline constexpr std::size_t kMaxRecordedFailures = 20;         // failures annotation entries
inline constexpr std::size_t kMaxFailureMessageBytes = 1024;    // one failure's message
inline constexpr std::size_t kMaxFieldBytes = 256;              // names, phases, cause
inline constexpr std::size_t kFailuresBudgetBytes = 16 * 1024;  // the whole failures annotation
inline constexpr std::size_t kMaxEventMessageBytes = 1024;      // an Event's message
// KFP reports accepted per record before the run is marked kfp-report-error.
inline constexpr int kMaxKfpReports = 3;
// How long after a verified report KFP's run state is read again. A report
// KFP applies late was held up somewhere (the persistence agent's stale
// informer cache until its relist or 30 s resync, a stalled API server
// replica, a client's retry): 60 s covers the agent's resync twice over.
inline constexpr std::chrono::seconds kKfpReverifyDelay{60};
inline constexpr std::string_view kAwaitingKfpReverify = "awaiting-kfp-reverify";

// Event reasons.
inline constexpr std::string_view kReasonCorrected = "RunPhaseCorrected";
inline constexpr std::string_view kReasonMisreported = "RunPhaseMisreported";
inline constexpr std::string_view kReasonExitTaskFailed = "ExitTaskFailed";

}  // namespace exitrec
