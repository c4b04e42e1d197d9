// The run-history sweep (run --kfp-history-sweep): exit_reconciler_history_*.
// Never namespace-labelled (the sweep counts KFP's history, not watched
// runs); every series exists from the start.

#include <chrono>

#include "common/clock.h"
#include "metrics/metrics_internal.h"

namespace exitrec {
namespace metrics_internal {
namespace {

// A history sweep pass: one listing plus a read per run (seconds to hours).
const Histogram::BucketBoundaries kSweepBuckets = {1, 5, 15, 60, 300, 900, 1800, 3600, 7200};

}  // namespace

void HistoryFamilies::registerIn(FamilyBuilder& build) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  historyScannedC = &build(BuildCounter(), "exit_reconciler_history_runs_scanned_total",
                           "Runs of KFP's history read and evaluated by the history sweep "
                           "(run --kfp-history-sweep).")
                         .Add({});
  historyMisreported =
      &build(BuildCounter(), "exit_reconciler_history_misreported_runs_total",
             "Historical runs the history sweep found mis-reported, by generation and cause.");
  for (auto gen : kGenerationLabels) {
    if (gen == "argo")
      continue;
    for (auto cause : kCauseLabels)
      historyMisreported->Add({{"generation", str(gen)}, {"cause", str(cause)}});
  }
  historyCorrectedC =
      &build(BuildCounter(), "exit_reconciler_history_runs_corrected_total",
             "Historical runs whose Workflow was gone that the history sweep reported to KFP "
             "and verified FAILED.")
           .Add({});
  historyFailedC = &build(BuildCounter(), "exit_reconciler_history_runs_failed_total",
                          "Historical runs the history sweep could not check (cluster GET), "
                          "report or verify (retried on the next pass).")
                        .Add({});
  historyUnreadableC =
      &build(BuildCounter(), "exit_reconciler_history_runs_unreadable_total",
             "Historical runs whose stored manifest is missing, offloaded or unreadable: no "
             "verdict, nothing to correct.")
           .Add({});
  auto& sweeps = build(BuildCounter(), "exit_reconciler_history_sweeps_total",
                       "History sweep passes, by result (error: listing KFP's runs failed).");
  historySweepsC[0] = &sweeps.Add({{"result", "error"}});
  historySweepsC[1] = &sweeps.Add({{"result", "success"}});
  historySweepDurationH = &build(BuildHistogram(), "exit_reconciler_history_sweep_duration_seconds",
                                 "Seconds per history sweep pass.")
                               .Add({}, kSweepBuckets);
  historyLastSuccessG =
      &build(BuildGauge(), "exit_reconciler_history_sweep_last_success_timestamp_seconds",
             "Unix time the last history sweep pass listed KFP's runs successfully (0: none "
             "yet).")
           .Add({});
}

}  // namespace metrics_internal

using metrics_internal::str;

void Metrics::historyRunScanned() {
  impl_->history.historyScannedC->Increment();
}

void Metrics::historyRunMisreported(std::string_view generation, std::string_view cause) {
  impl_->history.historyMisreported
      ->Add({{"generation", str(generationLabel(generation))}, {"cause", str(causeLabel(cause))}})
      .Increment();
}

void Metrics::historyRunCorrected() {
  impl_->history.historyCorrectedC->Increment();
}

void Metrics::historyRunFailed() {
  impl_->history.historyFailedC->Increment();
}

void Metrics::historyRunUnreadable() {
  impl_->history.historyUnreadableC->Increment();
}

void Metrics::historySweepDone(bool ok, double seconds) {
  impl_->history.historySweepsC[ok ? 1 : 0]->Increment();
  impl_->history.historySweepDurationH->Observe(seconds);
  if (ok) {
    auto now = impl_->clock->wallNow().time_since_epoch();
    impl_->history.historyLastSuccessG->Set(std::chrono::duration<double>(now).count());
  }
}

}  // namespace exitrec
