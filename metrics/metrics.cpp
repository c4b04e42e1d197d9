#include "metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>

#include "common/clock.h"

#ifndef EXITREC_VERSION
#define EXITREC_VERSION "unknown"
#endif
#ifndef EXITREC_REVISION
#define EXITREC_REVISION "unknown"
#endif

namespace exitrec {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::Labels;

template <typename E>
constexpr std::size_t idx(E e) {
  return static_cast<std::size_t>(e);
}

// Enumerates every value of a contiguous enum [0, N).
template <typename E, std::size_t N, typename F>
void forEach(F&& f) {
  for (std::size_t i = 0; i < N; ++i)
    f(static_cast<E>(i));
}

template <std::size_t N>
std::string_view allowListed(std::string_view value, const std::array<std::string_view, N>& list) {
  auto it = std::find(list.begin(), list.end(), value);
  return it == list.end() ? kOtherLabel : *it;
}

std::string str(std::string_view s) {
  return std::string(s);
}

// Latency buckets, in seconds.
const Histogram::BucketBoundaries kCorrectionBuckets = {0.1, 0.25, 0.5, 1,   2.5, 5,    10,
                                                        30,  60,   120, 300, 600, 1800, 3600};
const Histogram::BucketBoundaries kWebhookBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1,    2.5};
const Histogram::BucketBoundaries kRequestBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                     0.5,   1,    2.5,   5,    10,  30};
// client-go workqueue buckets: 1 µs … 10 s (ExponentialBuckets(1e-6, 10, 8)).
const Histogram::BucketBoundaries kQueueBuckets = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10};
// controller-runtime reconcile_time_seconds buckets (trimmed).
// A history sweep pass: one listing plus a read per run (seconds to hours).
const Histogram::BucketBoundaries kSweepBuckets = {1, 5, 15, 60, 300, 900, 1800, 3600, 7200};
const Histogram::BucketBoundaries kReconcileBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                       1,     2.5,  5,     10,   30,  60};

}  // namespace

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

// ---------------------------------------------------------------------------
// QueueMetrics

void QueueMetrics::add() {
  adds_->Increment();
}
void QueueMetrics::setDepth(std::int64_t depth) {
  depth_->Set(static_cast<double>(depth));
}
void QueueMetrics::observeQueueDuration(double seconds) {
  queueDuration_->Observe(seconds);
}
void QueueMetrics::observeWorkDuration(double seconds) {
  workDuration_->Observe(seconds);
}
void QueueMetrics::retry() {
  retries_->Increment();
}
void QueueMetrics::setUnfinishedWork(double seconds) {
  unfinished_->Set(seconds);
}
void QueueMetrics::setLongestRunningProcessor(double seconds) {
  longest_->Set(seconds);
}
void QueueMetrics::reconciled(ReconcileResult result, double seconds) {
  reconcileTotal_[idx(result)]->Increment();
  if (result == ReconcileResult::kError)
    reconcileErrors_->Increment();
  reconcileTime_->Observe(seconds);
}
void QueueMetrics::setActiveWorkers(std::int64_t workers) {
  activeWorkers_->Set(static_cast<double>(workers));
}
void QueueMetrics::setMaxConcurrentReconciles(std::int64_t max) {
  maxConcurrent_->Set(static_cast<double>(max));
}

// ---------------------------------------------------------------------------
// Metrics

struct Metrics::Impl {
  MetricsOptions options;
  const Clock* clock;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

  Family<Counter>* runsEvaluated;
  Family<Counter>* misreported;
  Family<Counter>* exitHandlers;
  Family<Counter>* exitTaskFailures;
  Family<Counter>* correctionSteps;
  Family<Histogram>* correctionLatency;
  Family<Counter>* injections;
  Family<Histogram>* webhookDuration;
  Family<Counter>* certReloads;
  Family<Gauge>* certExpiry;
  Family<Counter>* kubeRequests;
  Family<Histogram>* kubeDuration;
  Family<Counter>* kfpRequests;
  Family<Histogram>* kfpDuration;
  Family<Counter>* watchRestarts;
  Family<Counter>* watchEvents;
  Family<Gauge>* watchActivity;
  Family<Gauge>* trackedWorkflows;
  Family<Counter>* objectsRejected;
  std::array<prometheus::Counter*, kRejectReasonLabels.size() + 1> objectsRejectedC{};  // + other
  Family<Gauge>* awaitingAgent;
  Family<Counter>* wqAdds;
  Family<Gauge>* wqDepth;
  Family<Histogram>* wqQueueDuration;
  Family<Histogram>* wqWorkDuration;
  Family<Counter>* wqRetries;
  Family<Gauge>* wqUnfinished;
  Family<Gauge>* wqLongest;
  Family<Counter>* crReconcileTotal;
  Family<Counter>* crReconcileErrors;
  Family<Histogram>* crReconcileTime;
  Family<Gauge>* crActiveWorkers;
  Family<Gauge>* crMaxConcurrent;
  Family<Gauge>* leader;
  Family<Gauge>* buildInfo;

  // Pre-created children of the unlabelled-by-namespace hot paths.
  Histogram* correctionLatencyH = nullptr;
  std::array<Histogram*, 2> webhookH{};  // [0] out of scope, [1] in scope
  std::array<std::array<Counter*, 4>, 2> watchRestartC{};
  std::array<std::array<Counter*, 5>, 2> watchEventC{};
  std::array<Gauge*, 2> watchActivityG{};
  Gauge* trackedG = nullptr;
  Gauge* awaitingAgentG = nullptr;
  Gauge* leaderG = nullptr;
  std::array<Counter*, 2> certReloadC{};  // [0] error, [1] success
  Gauge* certExpiryG = nullptr;

  // KFP answers the controller acts on (not per-request counts).
  std::array<Counter*, 2> kfpEndpointNotFoundC{};  // by KfpOperation
  Counter* kfpUnknownRunsC = nullptr;
  Counter* kfpStateRegressionsC = nullptr;

  // Run-history sweep.
  Counter* historyScannedC = nullptr;
  Family<Counter>* historyMisreported = nullptr;
  Counter* historyCorrectedC = nullptr;
  Counter* historyFailedC = nullptr;
  Counter* historyUnreadableC = nullptr;
  std::array<Counter*, 2> historySweepsC{};  // [0] error, [1] success
  Histogram* historySweepDurationH = nullptr;
  Gauge* historyLastSuccessG = nullptr;

  std::mutex queuesMu;
  std::map<std::string, std::unique_ptr<QueueMetrics>, std::less<>> queues;

  template <typename T>
  Family<T>& build(prometheus::detail::Builder<T> builder, const std::string& name,
                   const std::string& help) {
    return builder.Name(name).Help(help).Register(*registry);
  }

  // Adds run_namespace when enabled.
  Labels withNs(Labels labels, std::string_view ns) const {
    if (options.namespaceLabel)
      labels.emplace("run_namespace", ns.empty() ? "none" : str(ns));
    return labels;
  }

  explicit Impl(MetricsOptions opts)
      : options(std::move(opts)), clock(options.clock ? options.clock : &SystemClock::instance()) {
    using prometheus::BuildCounter;
    using prometheus::BuildGauge;
    using prometheus::BuildHistogram;
    if (options.version.empty())
      options.version = EXITREC_VERSION;
    if (options.revision.empty())
      options.revision = EXITREC_REVISION;

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
    injections = &build(BuildCounter(), "exit_reconciler_injections_total",
                        "Exit-task pod injections, by channel and result.");
    webhookDuration = &build(BuildHistogram(), "exit_reconciler_webhook_duration_seconds",
                             "Admission webhook handling time, by scope.");
    certReloads = &build(BuildCounter(), "exit_reconciler_webhook_certificate_reloads_total",
                         "Webhook serving certificate (re)loads, by result.");
    certExpiry =
        &build(BuildGauge(), "exit_reconciler_webhook_certificate_expiry_timestamp_seconds",
               "NotAfter of the loaded webhook serving certificate, Unix seconds.");
    kubeRequests = &build(BuildCounter(), "exit_reconciler_kube_api_requests_total",
                          "Kubernetes API requests, by verb, resource and HTTP code.");
    kubeDuration = &build(BuildHistogram(), "exit_reconciler_kube_api_request_duration_seconds",
                          "Kubernetes API request latency (watch: time to response headers).");
    kfpRequests = &build(BuildCounter(), "exit_reconciler_kfp_api_requests_total",
                         "KFP API requests, by operation and HTTP code.");
    kfpDuration = &build(BuildHistogram(), "exit_reconciler_kfp_api_request_duration_seconds",
                         "KFP API request latency, by operation.");
    watchRestarts = &build(BuildCounter(), "exit_reconciler_watch_restarts_total",
                           "Watch streams restarted, by resource and reason.");
    watchEvents = &build(BuildCounter(), "exit_reconciler_watch_events_total",
                         "Watch events received, by resource and type.");
    watchActivity =
        &build(BuildGauge(), "exit_reconciler_watch_last_activity_timestamp_seconds",
               "Unix time of the last watch event, bookmark or successful list, by resource "
               "(0 = not watched).");
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
    wqAdds = &build(BuildCounter(), "workqueue_adds_total", "Items added to the work queue.");
    wqDepth = &build(BuildGauge(), "workqueue_depth", "Items currently waiting in the work queue.");
    wqQueueDuration = &build(BuildHistogram(), "workqueue_queue_duration_seconds",
                             "Seconds an item waits in the work queue before a worker takes it.");
    wqWorkDuration = &build(BuildHistogram(), "workqueue_work_duration_seconds",
                            "Seconds a worker spends processing one item.");
    wqRetries = &build(BuildCounter(), "workqueue_retries_total",
                       "Rate-limited re-adds to the work queue.");
    wqUnfinished = &build(BuildGauge(), "workqueue_unfinished_work_seconds",
                          "Seconds of in-progress work not yet observed by "
                          "workqueue_work_duration_seconds.");
    wqLongest = &build(BuildGauge(), "workqueue_longest_running_processor_seconds",
                       "Age in seconds of the longest-running item being "
                       "processed.");
    crReconcileTotal =
        &build(BuildCounter(), "controller_runtime_reconcile_total", "Reconciles, by result.");
    crReconcileErrors = &build(BuildCounter(), "controller_runtime_reconcile_errors_total",
                               "Reconciles that returned an error.");
    crReconcileTime = &build(BuildHistogram(), "controller_runtime_reconcile_time_seconds",
                             "Seconds per reconcile.");
    crActiveWorkers =
        &build(BuildGauge(), "controller_runtime_active_workers", "Workers busy right now.");
    crMaxConcurrent = &build(BuildGauge(), "controller_runtime_max_concurrent_reconciles",
                             "Configured number of workers (--workers).");
    leader = &build(BuildGauge(), "leader_election_master_status",
                    "1 while this replica holds the lease named by `name`, 0 on a standby.");
    buildInfo = &build(BuildGauge(), "exit_reconciler_build_info",
                       "Always 1; labels carry the build's version and revision.");

    buildInfo->Add({{"version", options.version}, {"revision", options.revision}}).Set(1);
    leaderG = &leader->Add({{"name", options.leaseName}});
    leaderG->Set(0);
    trackedG = &trackedWorkflows->Add({});
    awaitingAgentG = &awaitingAgent->Add({});
    correctionLatencyH = &correctionLatency->Add({}, kCorrectionBuckets);
    webhookH[0] = &webhookDuration->Add({{"scope", "out_of_scope"}}, kWebhookBuckets);
    webhookH[1] = &webhookDuration->Add({{"scope", "in_scope"}}, kWebhookBuckets);
    certReloadC[0] = &certReloads->Add({{"result", "error"}});
    certReloadC[1] = &certReloads->Add({{"result", "success"}});
    certExpiryG = &certExpiry->Add({});

    forEach<WatchedResource, 2>([&](WatchedResource r) {
      watchActivityG[idx(r)] = &watchActivity->Add({{"resource", str(labelValue(r))}});
      forEach<WatchRestartReason, 4>([&](WatchRestartReason why) {
        watchRestartC[idx(r)][idx(why)] = &watchRestarts->Add(
            {{"resource", str(labelValue(r))}, {"reason", str(labelValue(why))}});
      });
      forEach<WatchEventLabel, 5>([&](WatchEventLabel t) {
        watchEventC[idx(r)][idx(t)] =
            &watchEvents->Add({{"resource", str(labelValue(r))}, {"type", str(labelValue(t))}});
      });
    });
    forEach<KfpOperation, 2>([&](KfpOperation op) {
      kfpRequests->Add({{"operation", str(labelValue(op))}, {"code", "200"}});
      kfpDuration->Add({{"operation", str(labelValue(op))}}, kRequestBuckets);
    });

    auto& endpointNotFound =
        build(BuildCounter(), "exit_reconciler_kfp_endpoint_not_found_total",
              "KFP answers of HTTP 404 without KFP's NotFound status, by operation: no KFP API "
              "at --kfp-api-url (a configuration error; retried).");
    forEach<KfpOperation, 2>([&](KfpOperation op) {
      kfpEndpointNotFoundC[idx(op)] = &endpointNotFound.Add({{"operation", str(labelValue(op))}});
    });
    kfpUnknownRunsC = &build(BuildCounter(), "exit_reconciler_kfp_unknown_runs_total",
                             "Corrected runs not reported because KFP has no such run (GET run "
                             "answered NotFound; a report would make KFP delete the Workflow).")
                           .Add({});
    kfpStateRegressionsC =
        &build(BuildCounter(), "exit_reconciler_kfp_state_regressions_total",
               "Verified runs found no longer FAILED in KFP when re-verified: a late report of "
               "an older Workflow state overwrote the correction (KFP 2.0-2.16); reported again.")
             .Add({});
    for (const ApiCall& call : kKnownApiCalls) {
      kubeRequests->Add({{"verb", str(call.verb)},
                         {"resource", str(call.resource)},
                         {"code", httpCodeLabel(call.successStatus)}});
      kubeDuration->Add({{"verb", str(call.verb)}, {"resource", str(call.resource)}},
                        kRequestBuckets);
    }

    buildHistorySweepFamilies();
    if (!options.namespaceLabel)
      precreatePerRunSeries();
  }

  // Run-history sweep families; never namespace-labelled (the sweep counts
  // KFP's history, not watched runs). Every series exists from the start.
  void buildHistorySweepFamilies() {
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
    historySweepDurationH =
        &build(BuildHistogram(), "exit_reconciler_history_sweep_duration_seconds",
               "Seconds per history sweep pass.")
             .Add({}, kSweepBuckets);
    historyLastSuccessG =
        &build(BuildGauge(), "exit_reconciler_history_sweep_last_success_timestamp_seconds",
               "Unix time the last history sweep pass listed KFP's runs successfully (0: none "
               "yet).")
             .Add({});
  }

  // Zero-valued series for every closed label combination of the per-run
  // families, so rate() and dashboards have data from the first scrape.
  void precreatePerRunSeries() {
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
    forEach<InjectionChannel, 2>([&](InjectionChannel c) {
      forEach<InjectionResultLabel, 8>([&](InjectionResultLabel r) {
        injections->Add({{"channel", str(labelValue(c))}, {"result", str(labelValue(r))}});
      });
    });
  }
};

Metrics::Metrics(MetricsOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Metrics::~Metrics() = default;

void Metrics::runEvaluated(std::string_view generation, RunVerdict verdict, std::string_view ns) {
  impl_->runsEvaluated
      ->Add(impl_->withNs(
          {{"generation", str(generationLabel(generation))}, {"verdict", str(labelValue(verdict))}},
          ns))
      .Increment();
}

void Metrics::misreportDetected(std::string_view generation, std::string_view cause,
                                std::string_view ns) {
  impl_->misreported
      ->Add(impl_->withNs(
          {{"generation", str(generationLabel(generation))}, {"cause", str(causeLabel(cause))}},
          ns))
      .Increment();
}

void Metrics::exitHandlerObserved(std::string_view generation, std::string_view bodyPhase,
                                  std::string_view exitTaskPhase, std::string_view ns) {
  impl_->exitHandlers
      ->Add(impl_->withNs({{"generation", str(generationLabel(generation))},
                           {"body_phase", str(phaseLabel(bodyPhase))},
                           {"exit_task_phase", str(phaseLabel(exitTaskPhase))}},
                          ns))
      .Increment();
}

void Metrics::exitTaskFailure(std::string_view generation, ExitTaskFailurePolicyLabel policy,
                              std::string_view ns) {
  impl_->exitTaskFailures
      ->Add(impl_->withNs(
          {{"generation", str(generationLabel(generation))}, {"policy", str(labelValue(policy))}},
          ns))
      .Increment();
}

void Metrics::correctionStep(CorrectionStep step, StepResult result, std::string_view ns) {
  impl_->correctionSteps
      ->Add(
          impl_->withNs({{"step", str(labelValue(step))}, {"result", str(labelValue(result))}}, ns))
      .Increment();
}

void Metrics::observeCorrectionLatency(double seconds) {
  impl_->correctionLatencyH->Observe(seconds);
}

void Metrics::injection(InjectionChannel channel, InjectionResultLabel result,
                        std::string_view ns) {
  impl_->injections
      ->Add(impl_->withNs(
          {{"channel", str(labelValue(channel))}, {"result", str(labelValue(result))}}, ns))
      .Increment();
}

void Metrics::observeWebhookLatency(bool inScope, double seconds) {
  impl_->webhookH[inScope ? 1 : 0]->Observe(seconds);
}

void Metrics::webhookCertificateLoaded(bool ok, double notAfterUnixSeconds) {
  impl_->certReloadC[ok ? 1 : 0]->Increment();
  if (ok)
    impl_->certExpiryG->Set(notAfterUnixSeconds);
}

void Metrics::apiRequest(std::string_view verb, std::string_view resource, int status,
                         double seconds) {
  std::string v = str(allowListed(verb, kApiVerbLabels));
  std::string r = str(allowListed(resource, kApiResourceLabels));
  impl_->kubeRequests->Add({{"verb", v}, {"resource", r}, {"code", httpCodeLabel(status)}})
      .Increment();
  impl_->kubeDuration->Add({{"verb", v}, {"resource", r}}, kRequestBuckets).Observe(seconds);
}

void Metrics::kfpRequest(KfpOperation operation, int status, double seconds) {
  std::string op = str(labelValue(operation));
  impl_->kfpRequests->Add({{"operation", op}, {"code", httpCodeLabel(status)}}).Increment();
  impl_->kfpDuration->Add({{"operation", op}}, kRequestBuckets).Observe(seconds);
}

void Metrics::kfpEndpointNotFound(KfpOperation operation) {
  impl_->kfpEndpointNotFoundC[idx(operation)]->Increment();
}

void Metrics::kfpUnknownRun() {
  impl_->kfpUnknownRunsC->Increment();
}

void Metrics::historyRunScanned() {
  impl_->historyScannedC->Increment();
}

void Metrics::historyRunMisreported(std::string_view generation, std::string_view cause) {
  impl_->historyMisreported
      ->Add({{"generation", str(generationLabel(generation))}, {"cause", str(causeLabel(cause))}})
      .Increment();
}

void Metrics::historyRunCorrected() {
  impl_->historyCorrectedC->Increment();
}

void Metrics::historyRunFailed() {
  impl_->historyFailedC->Increment();
}

void Metrics::historyRunUnreadable() {
  impl_->historyUnreadableC->Increment();
}

void Metrics::historySweepDone(bool ok, double seconds) {
  impl_->historySweepsC[ok ? 1 : 0]->Increment();
  impl_->historySweepDurationH->Observe(seconds);
  if (ok) {
    auto now = impl_->clock->wallNow().time_since_epoch();
    impl_->historyLastSuccessG->Set(std::chrono::duration<double>(now).count());
  }
}

void Metrics::kfpStateRegression() {
  impl_->kfpStateRegressionsC->Increment();
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

void Metrics::watchRestart(WatchedResource resource, WatchRestartReason reason) {
  impl_->watchRestartC[idx(resource)][idx(reason)]->Increment();
}

void Metrics::watchEvent(WatchedResource resource, WatchEventLabel type) {
  impl_->watchEventC[idx(resource)][idx(type)]->Increment();
  watchActive(resource);
}

void Metrics::watchActive(WatchedResource resource) {
  auto now = impl_->clock->wallNow().time_since_epoch();
  impl_->watchActivityG[idx(resource)]->Set(std::chrono::duration<double>(now).count());
}

void Metrics::objectRejected(std::string_view reason) {
  auto it = std::find(kRejectReasonLabels.begin(), kRejectReasonLabels.end(), reason);
  impl_->objectsRejectedC[static_cast<std::size_t>(it - kRejectReasonLabels.begin())]->Increment();
}

void Metrics::setTrackedWorkflows(std::int64_t count) {
  impl_->trackedG->Set(static_cast<double>(count));
}

void Metrics::setRunsAwaitingPersistenceAgent(std::int64_t count) {
  impl_->awaitingAgentG->Set(static_cast<double>(count));
}

QueueMetrics& Metrics::queue(std::string_view name) {
  std::lock_guard<std::mutex> lock(impl_->queuesMu);
  auto it = impl_->queues.find(name);
  if (it != impl_->queues.end())
    return *it->second;
  auto q = std::unique_ptr<QueueMetrics>(new QueueMetrics());
  const Labels byName{{"name", str(name)}};
  const Labels byController{{"controller", str(name)}};
  Impl& m = *impl_;
  q->adds_ = &m.wqAdds->Add(byName);
  q->depth_ = &m.wqDepth->Add(byName);
  q->queueDuration_ = &m.wqQueueDuration->Add(byName, kQueueBuckets);
  q->workDuration_ = &m.wqWorkDuration->Add(byName, kQueueBuckets);
  q->retries_ = &m.wqRetries->Add(byName);
  q->unfinished_ = &m.wqUnfinished->Add(byName);
  q->longest_ = &m.wqLongest->Add(byName);
  forEach<ReconcileResult, 4>([&](ReconcileResult r) {
    q->reconcileTotal_[idx(r)] =
        &m.crReconcileTotal->Add({{"controller", str(name)}, {"result", str(labelValue(r))}});
  });
  q->reconcileErrors_ = &m.crReconcileErrors->Add(byController);
  q->reconcileTime_ = &m.crReconcileTime->Add(byController, kReconcileBuckets);
  q->activeWorkers_ = &m.crActiveWorkers->Add(byController);
  q->maxConcurrent_ = &m.crMaxConcurrent->Add(byController);
  auto& ref = *q;
  impl_->queues.emplace(str(name), std::move(q));
  return ref;
}

void Metrics::setLeader(bool leader) {
  impl_->leaderG->Set(leader ? 1 : 0);
}

std::string Metrics::exposition() const {
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

std::shared_ptr<prometheus::Registry> Metrics::registry() const {
  return impl_->registry;
}

const MetricsOptions& Metrics::options() const {
  return impl_->options;
}

}  // namespace exitrec
