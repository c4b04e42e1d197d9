// Per-run families (exit_reconciler_runs_evaluated_total, _misreported_runs_total,
// _exit_handlers_total, _exit_task_failures_total), corrections
// (_correction_steps_total, _correction_latency_seconds) and the controller's
// tracked objects (_tracked_workflows, _objects_rejected_total,
// _runs_awaiting_persistence_agent).

#include "metrics/metrics_internal.h"

namespace exitrec {
namespace metrics_internal {
namespace {

// Latency buckets, in seconds.
const Histogram::BucketBoundaries kCorrectionBuckets = {0.1, 0.25, 0.5, 1,   2.5, 5,    10,
                                                        30,  60,   120, 300, 600, 1800, 3600};

}  // namespace

void RunFamilies::registerRunFamilies(FamilyBuilder& build) {
  using prometheus::BuildCounter;
  using prometheus::BuildHistogram;
  runsEvaluated = &build(BuildCounter(), "exit_reconciler_runs_evaluated_total",
                         "Runs evaluated by the outcome engine, by KFP generation and verdict.");
  misreported = &build(BuildCounter(), "exit_reconciler_misreported_runs_total",
                       "Completed runs whose true phase is worse than the reported one, by "
                       "generation and cause.");
  exitHandlers = &build(BuildCounter(), "exit_reconciler_exit_handlers_total",
                        "Exit handlers of evaluated completed runs, by body phase and exit-task "
                        "phase (exit-handler correctness).");
  exitTaskFailures = &build(BuildCounter(), "exit_reconciler_exit_task_failures_total",
                            "Completed runs whose exit task failed, by generation and the "
                            "--exit-task-failure policy applied.");
  correctionSteps = &build(BuildCounter(), "exit_reconciler_correction_steps_total",
                           "Attempts of each correction step, by result.");
  correctionLatency =
      &build(BuildHistogram(), "exit_reconciler_correction_latency_seconds",
             "Time from a mis-reported run's completion to its verified corrected state.");
  correctionLatencyH = &correctionLatency->Add({}, kCorrectionBuckets);
}

void RunFamilies::registerStateFamilies(FamilyBuilder& build) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  trackedWorkflows = &build(BuildGauge(), "exit_reconciler_tracked_workflows",
                            "Workflows held as compact records in memory.");
  objectsRejected =
      &build(BuildCounter(), "exit_reconciler_objects_rejected_total",
             "Runs skipped because they could not be read, evaluated, decided or written, "
             "once per resourceVersion, by reason.");
  for (std::size_t i = 0; i < kRejectReasonLabels.size(); ++i)
    objectsRejectedC[i] = &objectsRejected->Add({{"reason", str(kRejectReasonLabels[i])}});
  objectsRejectedC.back() = &objectsRejected->Add({{"reason", str(kOtherLabel)}});
  awaitingAgent =
      &build(BuildGauge(), "exit_reconciler_runs_awaiting_persistence_agent",
             "Corrected runs whose re-report by KFP's persistence agent has not been seen yet "
             "(--kfp-report=persistence-agent).");
  trackedG = &trackedWorkflows->Add({});
  awaitingAgentG = &awaitingAgent->Add({});
}

// Zero-valued series for every closed label combination of the per-run
// families, so rate() and dashboards have data from the first scrape.
void RunFamilies::precreate() {
  for (auto gen : kGenerationLabels) {
    forEach<RunVerdict, 4>([&](RunVerdict v) {
      runsEvaluated->Add({{"generation", str(gen)}, {"verdict", str(labelValue(v))}});
    });
    forEach<ExitTaskFailurePolicyLabel, 2>([&](ExitTaskFailurePolicyLabel p) {
      exitTaskFailures->Add({{"generation", str(gen)}, {"policy", str(labelValue(p))}});
    });
    if (gen == "argo")
      continue;  // plain Argo runs are never mis-reported
    for (auto cause : kCauseLabels) {
      misreported->Add({{"generation", str(gen)}, {"cause", str(cause)}});
    }
  }
  // Completed bodies × the exit task's final (or absent) phase.
  for (auto body : {"Succeeded", "Failed", "Error"}) {
    for (auto exitTask : {"Succeeded", "Failed", "Error", "Omitted", "None"}) {
      for (auto gen : {"kfp-v1", "kfp-v2-sibling", "kfp-v2-hook"}) {
        exitHandlers->Add(
            {{"generation", gen}, {"body_phase", body}, {"exit_task_phase", exitTask}});
      }
    }
  }
  forEach<CorrectionStep, 4>([&](CorrectionStep s) {
    forEach<StepResult, 4>([&](StepResult r) {
      correctionSteps->Add({{"step", str(labelValue(s))}, {"result", str(labelValue(r))}});
    });
  });
}

}  // namespace metrics_internal

using metrics_internal::str;

void Metrics::runEvaluated(std::string_view generation, RunVerdict verdict, std::string_view ns) {
  impl_->runs.runsEvaluated
      ->Add(impl_->withNs(
          {{"generation", str(generationLabel(generation))}, {"verdict", str(labelValue(verdict))}},
          ns))
      .Increment();
}

void Metrics::misreportDetected(std::string_view generation, std::string_view cause,
                                std::string_view ns) {
  impl_->runs.misreported
      ->Add(impl_->withNs(
          {{"generation", str(generationLabel(generation))}, {"cause", str(causeLabel(cause))}},
          ns))
      .Increment();
}

void Metrics::exitHandlerObserved(std::string_view generation, std::string_view bodyPhase,
                                  std::string_view exitTaskPhase, std::string_view ns) {
  impl_->runs.exitHandlers
      ->Add(impl_->withNs({{"generation", str(generationLabel(generation))},
                           {"body_phase", str(phaseLabel(bodyPhase))},
                           {"exit_task_phase", str(phaseLabel(exitTaskPhase))}},
                          ns))
      .Increment();
}

void Metrics::exitTaskFailure(std::string_view generation, ExitTaskFailurePolicyLabel policy,
                              std::string_view ns) {
  impl_->runs.exitTaskFailures
      ->Add(impl_->withNs(
          {{"generation", str(generationLabel(generation))}, {"policy", str(labelValue(policy))}},
          ns))
      .Increment();
}

void Metrics::correctionStep(CorrectionStep step, StepResult result, std::string_view ns) {
  impl_->runs.correctionSteps
      ->Add(
          impl_->withNs({{"step", str(labelValue(step))}, {"result", str(labelValue(result))}}, ns))
      .Increment();
}

void Metrics::observeCorrectionLatency(double seconds) {
  impl_->runs.correctionLatencyH->Observe(seconds);
}

void Metrics::objectRejected(std::string_view reason) {
  auto it = std::find(kRejectReasonLabels.begin(), kRejectReasonLabels.end(), reason);
  impl_->runs.objectsRejectedC[static_cast<std::size_t>(it - kRejectReasonLabels.begin())]
      ->Increment();
}

void Metrics::setTrackedWorkflows(std::int64_t count) {
  impl_->runs.trackedG->Set(static_cast<double>(count));
}

void Metrics::setRunsAwaitingPersistenceAgent(std::int64_t count) {
  impl_->runs.awaitingAgentG->Set(static_cast<double>(count));
}

}  // namespace exitrec
