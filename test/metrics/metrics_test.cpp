#include "metrics/metrics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "common/fake_clock.h"
#include "test/metrics/exposition.h"

namespace exitrec {
namespace {

using testing::Exposition;
using testing::parseExposition;

Exposition scrape(const Metrics& m) {
  return parseExposition(m.exposition());
}

// The documented families (docs/operations.md, "Metrics reference").
const std::map<std::string, std::string> kFamilies = {
    {"exit_reconciler_runs_evaluated_total", "counter"},
    {"exit_reconciler_misreported_runs_total", "counter"},
    {"exit_reconciler_objects_rejected_total", "counter"},
    {"exit_reconciler_exit_handlers_total", "counter"},
    {"exit_reconciler_exit_task_failures_total", "counter"},
    {"exit_reconciler_correction_steps_total", "counter"},
    {"exit_reconciler_correction_latency_seconds", "histogram"},
    {"exit_reconciler_injections_total", "counter"},
    {"exit_reconciler_webhook_duration_seconds", "histogram"},
    {"exit_reconciler_webhook_certificate_reloads_total", "counter"},
    {"exit_reconciler_webhook_certificate_expiry_timestamp_seconds", "gauge"},
    {"exit_reconciler_kube_api_requests_total", "counter"},
    {"exit_reconciler_kube_api_request_duration_seconds", "histogram"},
    {"exit_reconciler_kfp_api_requests_total", "counter"},
    {"exit_reconciler_kfp_endpoint_not_found_total", "counter"},
    {"exit_reconciler_kfp_unknown_runs_total", "counter"},
    {"exit_reconciler_kfp_state_regressions_total", "counter"},
    {"exit_reconciler_kfp_api_request_duration_seconds", "histogram"},
    {"exit_reconciler_watch_restarts_total", "counter"},
    {"exit_reconciler_watch_events_total", "counter"},
    {"exit_reconciler_watch_last_activity_timestamp_seconds", "gauge"},
    {"exit_reconciler_tracked_workflows", "gauge"},
    {"exit_reconciler_runs_awaiting_persistence_agent", "gauge"},
    {"exit_reconciler_build_info", "gauge"},
    {"workqueue_adds_total", "counter"},
    {"workqueue_depth", "gauge"},
    {"workqueue_queue_duration_seconds", "histogram"},
    {"workqueue_work_duration_seconds", "histogram"},
    {"workqueue_retries_total", "counter"},
    {"workqueue_unfinished_work_seconds", "gauge"},
    {"workqueue_longest_running_processor_seconds", "gauge"},
    {"controller_runtime_reconcile_total", "counter"},
    {"controller_runtime_reconcile_errors_total", "counter"},
    {"controller_runtime_reconcile_time_seconds", "histogram"},
    {"controller_runtime_active_workers", "gauge"},
    {"controller_runtime_max_concurrent_reconciles", "gauge"},
    {"leader_election_master_status", "gauge"},
    // Run-history sweep (run --kfp-history-sweep).
    {"exit_reconciler_history_runs_scanned_total", "counter"},
    {"exit_reconciler_history_misreported_runs_total", "counter"},
    {"exit_reconciler_history_runs_corrected_total", "counter"},
    {"exit_reconciler_history_runs_failed_total", "counter"},
    {"exit_reconciler_history_runs_unreadable_total", "counter"},
    {"exit_reconciler_history_sweeps_total", "counter"},
    {"exit_reconciler_history_sweep_duration_seconds", "histogram"},
    {"exit_reconciler_history_sweep_last_success_timestamp_seconds", "gauge"},
};

TEST(Metrics, FreshRegistryExportsEveryDocumentedFamilyWithItsType) {
  Metrics m;
  m.queue("workflows");
  Exposition e = scrape(m);
  EXPECT_EQ(e.types, kFamilies);
  for (const auto& [name, type] : kFamilies) {
    EXPECT_FALSE(e.help[name].empty()) << name;
    if (type == "counter") {
      EXPECT_TRUE(name.ends_with("_total")) << name;
    }
    if (type == "histogram") {
      EXPECT_TRUE(name.ends_with("_seconds")) << name;
      EXPECT_GT(e.count(name + "_bucket"), 0) << name;
    }
  }
}

TEST(Metrics, ClosedLabelSetsArePrecreatedAtZero) {
  Metrics m;
  Exposition e = scrape(m);
  EXPECT_EQ(e.value("exit_reconciler_runs_evaluated_total",
                    {{"generation", "kfp-v2-hook"}, {"verdict", "misreported"}}),
            0.0);
  EXPECT_EQ(e.value("exit_reconciler_misreported_runs_total",
                    {{"generation", "kfp-v1"}, {"cause", "exit-task-masked-failure"}}),
            0.0);
  // Plain Argo runs are never mis-reported: no such series.
  EXPECT_EQ(e.count("exit_reconciler_misreported_runs_total"), 4 * 4);
  EXPECT_EQ(e.count("exit_reconciler_runs_evaluated_total"), 5 * 4);
  EXPECT_EQ(e.count("exit_reconciler_correction_steps_total"), 4 * 4);
  EXPECT_EQ(e.count("exit_reconciler_injections_total"), 2 * 8);
  EXPECT_EQ(e.count("exit_reconciler_watch_restarts_total"), 2 * 4);
  EXPECT_EQ(e.value("exit_reconciler_exit_handlers_total", {{"generation", "kfp-v2-sibling"},
                                                            {"body_phase", "Failed"},
                                                            {"exit_task_phase", "None"}}),
            0.0);
  EXPECT_EQ(e.value("exit_reconciler_kube_api_requests_total",
                    {{"verb", "patch"}, {"resource", "workflows"}, {"code", "200"}}),
            0.0);
  EXPECT_EQ(e.value("leader_election_master_status", {{"name", "kfp-exit-reconciler"}}), 0.0);
}

TEST(Metrics, HistorySweepCountsWithNormalizedLabelsAndStampsOnlySuccess) {
  FakeClock clock;
  MetricsOptions o;
  o.clock = &clock;
  Metrics m(o);
  Exposition fresh = scrape(m);
  EXPECT_EQ(fresh.count("exit_reconciler_history_misreported_runs_total"), 4 * 4);
  EXPECT_EQ(fresh.value("exit_reconciler_history_sweeps_total", {{"result", "error"}}), 0.0);
  m.historyRunScanned();
  m.historyRunScanned();
  m.historyRunMisreported("kfp-v1", "masked-failure");  // not an allow-listed cause
  m.historyRunMisreported("kfp-v2-hook", "hooked-task-failed");
  m.historyRunCorrected();
  m.historyRunFailed();
  m.historyRunUnreadable();
  m.historyRunUnreadable();
  m.historySweepDone(false, 3);
  Exposition e = scrape(m);
  EXPECT_EQ(e.value("exit_reconciler_history_runs_scanned_total"), 2.0);
  EXPECT_EQ(e.value("exit_reconciler_history_misreported_runs_total",
                    {{"generation", "kfp-v1"}, {"cause", "other"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_history_misreported_runs_total",
                    {{"generation", "kfp-v2-hook"}, {"cause", "hooked-task-failed"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_history_runs_corrected_total"), 1.0);
  EXPECT_EQ(e.value("exit_reconciler_history_runs_failed_total"), 1.0);
  EXPECT_EQ(e.value("exit_reconciler_history_runs_unreadable_total"), 2.0);
  EXPECT_EQ(e.value("exit_reconciler_history_sweeps_total", {{"result", "error"}}), 1.0);
  EXPECT_EQ(e.value("exit_reconciler_history_sweep_last_success_timestamp_seconds"), 0.0);
  m.historySweepDone(true, 42);
  e = scrape(m);
  EXPECT_EQ(e.value("exit_reconciler_history_sweeps_total", {{"result", "success"}}), 1.0);
  EXPECT_EQ(e.value("exit_reconciler_history_sweep_last_success_timestamp_seconds"), 1798000000.0);
  EXPECT_EQ(e.value("exit_reconciler_history_sweep_duration_seconds_count"), 2.0);
}

TEST(Metrics, RunFamiliesCountWithNormalizedLabels) {
  Metrics m;
  m.runEvaluated("kfp-v2-hook", RunVerdict::kMisreported);
  m.runEvaluated("kfp-v2-hook", RunVerdict::kMisreported);
  m.runEvaluated("kfp-v9", RunVerdict::kCorrect);  // unknown generation
  m.misreportDetected("kfp-v2-sibling", "exit-task-masked-failure");
  m.misreportDetected("kfp-v2-sibling", "some new cause");
  m.exitHandlerObserved("kfp-v1", "Failed", "");
  m.exitHandlerObserved("kfp-v1", "Failed", "Succeeded");
  m.exitHandlerObserved("kfp-v1", "Weird", "Succeeded");
  m.exitTaskFailure("kfp-v2-hook", ExitTaskFailurePolicyLabel::kIgnore);
  Exposition e = scrape(m);
  EXPECT_EQ(e.value("exit_reconciler_runs_evaluated_total",
                    {{"generation", "kfp-v2-hook"}, {"verdict", "misreported"}}),
            2.0);
  EXPECT_EQ(e.value("exit_reconciler_runs_evaluated_total",
                    {{"generation", "other"}, {"verdict", "correct"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_misreported_runs_total",
                    {{"generation", "kfp-v2-sibling"}, {"cause", "exit-task-masked-failure"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_misreported_runs_total",
                    {{"generation", "kfp-v2-sibling"}, {"cause", "other"}}),
            1.0);
  EXPECT_EQ(
      e.value("exit_reconciler_exit_handlers_total",
              {{"generation", "kfp-v1"}, {"body_phase", "Failed"}, {"exit_task_phase", "None"}}),
      1.0);
  EXPECT_EQ(e.value("exit_reconciler_exit_handlers_total", {{"generation", "kfp-v1"},
                                                            {"body_phase", "Failed"},
                                                            {"exit_task_phase", "Succeeded"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_exit_handlers_total", {{"generation", "kfp-v1"},
                                                            {"body_phase", "other"},
                                                            {"exit_task_phase", "Succeeded"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_exit_task_failures_total",
                    {{"generation", "kfp-v2-hook"}, {"policy", "ignore"}}),
            1.0);
}

TEST(Metrics, CorrectionStepsAndLatency) {
  Metrics m;
  m.correctionStep(CorrectionStep::kWorkflowPatch, StepResult::kConflict);
  m.correctionStep(CorrectionStep::kWorkflowPatch, StepResult::kSuccess);
  m.correctionStep(CorrectionStep::kKfpReport, StepResult::kPermanentError);
  m.observeCorrectionLatency(0.3);
  m.observeCorrectionLatency(45);
  Exposition e = scrape(m);
  EXPECT_EQ(e.value("exit_reconciler_correction_steps_total",
                    {{"step", "workflow_patch"}, {"result", "conflict"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_correction_steps_total",
                    {{"step", "kfp_report"}, {"result", "permanent_error"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_correction_steps_total",
                    {{"step", "kfp_verify"}, {"result", "success"}}),
            0.0);
  EXPECT_EQ(e.value("exit_reconciler_correction_latency_seconds_count"), 2.0);
  EXPECT_DOUBLE_EQ(*e.value("exit_reconciler_correction_latency_seconds_sum"), 45.3);
  EXPECT_EQ(e.value("exit_reconciler_correction_latency_seconds_bucket", {{"le", "0.5"}}), 1.0);
  EXPECT_EQ(e.value("exit_reconciler_correction_latency_seconds_bucket", {{"le", "30"}}), 1.0);
  EXPECT_EQ(e.value("exit_reconciler_correction_latency_seconds_bucket", {{"le", "60"}}), 2.0);
  EXPECT_EQ(e.value("exit_reconciler_correction_latency_seconds_bucket", {{"le", "+Inf"}}), 2.0);
}

TEST(Metrics, InjectionAndWebhook) {
  Metrics m;
  m.injection(InjectionChannel::kWebhook, InjectionResultLabel::kInjected);
  m.injection(InjectionChannel::kWebhook, InjectionResultLabel::kDeadlineExceeded);
  m.injection(InjectionChannel::kAnnotation, InjectionResultLabel::kInjected);
  m.observeWebhookLatency(true, 0.004);
  m.observeWebhookLatency(false, 0.0002);
  m.webhookCertificateLoaded(true, 1.8e9);
  m.webhookCertificateLoaded(false);
  Exposition e = scrape(m);
  EXPECT_EQ(e.value("exit_reconciler_injections_total",
                    {{"channel", "webhook"}, {"result", "deadline_exceeded"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_injections_total",
                    {{"channel", "annotation"}, {"result", "injected"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_webhook_duration_seconds_bucket",
                    {{"scope", "in_scope"}, {"le", "0.005"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_webhook_duration_seconds_bucket",
                    {{"scope", "in_scope"}, {"le", "0.0025"}}),
            0.0);
  EXPECT_EQ(e.value("exit_reconciler_webhook_duration_seconds_count", {{"scope", "out_of_scope"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_webhook_certificate_reloads_total", {{"result", "success"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_webhook_certificate_reloads_total", {{"result", "error"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_webhook_certificate_expiry_timestamp_seconds"), 1.8e9);
}

TEST(Metrics, KfpEndpointNotFoundAndUnknownRuns) {
  Metrics m;
  Exposition e = scrape(m);
  EXPECT_EQ(e.value("exit_reconciler_kfp_endpoint_not_found_total", {{"operation", "get_run"}}),
            0.0);  // pre-created, so the alert sees the series before the first 404
  m.kfpEndpointNotFound(KfpOperation::kReport);
  m.kfpEndpointNotFound(KfpOperation::kReport);
  m.kfpUnknownRun();
  e = scrape(m);
  EXPECT_EQ(e.value("exit_reconciler_kfp_endpoint_not_found_total", {{"operation", "report"}}),
            2.0);
  EXPECT_EQ(e.value("exit_reconciler_kfp_endpoint_not_found_total", {{"operation", "get_run"}}),
            0.0);
  EXPECT_EQ(e.value("exit_reconciler_kfp_unknown_runs_total", {}), 1.0);
}

TEST(Metrics, KfpStateRegressions) {
  Metrics m;
  EXPECT_EQ(scrape(m).value("exit_reconciler_kfp_state_regressions_total", {}), 0.0);
  m.kfpStateRegression();
  EXPECT_EQ(scrape(m).value("exit_reconciler_kfp_state_regressions_total", {}), 1.0);
}

TEST(Metrics, ApiRequestsAreBounded) {
  Metrics m;
  m.apiRequest("patch", "workflows", 409, 0.02);
  m.apiRequest("patch", "workflows", 200, 0.03);
  m.apiRequest("brew", "teapots", 418, 0.01);
  m.apiRequest("get", "pods", 0, 1.5);  // connection failed
  m.kfpRequest(KfpOperation::kReport, 503, 0.2);
  Exposition e = scrape(m);
  EXPECT_EQ(e.value("exit_reconciler_kube_api_requests_total",
                    {{"verb", "patch"}, {"resource", "workflows"}, {"code", "409"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_kube_api_requests_total",
                    {{"verb", "patch"}, {"resource", "workflows"}, {"code", "200"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_kube_api_requests_total",
                    {{"verb", "other"}, {"resource", "other"}, {"code", "418"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_kube_api_requests_total",
                    {{"verb", "get"}, {"resource", "pods"}, {"code", "error"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_kube_api_request_duration_seconds_count",
                    {{"verb", "patch"}, {"resource", "workflows"}}),
            2.0);
  EXPECT_EQ(
      e.value("exit_reconciler_kfp_api_requests_total", {{"operation", "report"}, {"code", "503"}}),
      1.0);
  EXPECT_EQ(httpCodeLabel(99), "error");
  EXPECT_EQ(httpCodeLabel(600), "error");
  EXPECT_EQ(httpCodeLabel(404), "404");
}

TEST(Metrics, WatchEventsStampActivityWithTheInjectedClock) {
  FakeClock clock;
  MetricsOptions options;
  options.clock = &clock;
  Metrics m(options);
  Exposition before = scrape(m);
  EXPECT_EQ(before.value("exit_reconciler_watch_last_activity_timestamp_seconds",
                         {{"resource", "workflows"}}),
            0.0);
  clock.advance(std::chrono::seconds(30));
  m.watchEvent(WatchedResource::kWorkflows, WatchEventLabel::kBookmark);
  m.watchRestart(WatchedResource::kWorkflows, WatchRestartReason::kExpired);
  m.setTrackedWorkflows(1234);
  m.setRunsAwaitingPersistenceAgent(3);
  Exposition e = scrape(m);
  double expected = std::chrono::duration<double>(clock.wallNow().time_since_epoch()).count();
  EXPECT_EQ(
      e.value("exit_reconciler_watch_last_activity_timestamp_seconds", {{"resource", "workflows"}}),
      expected);
  EXPECT_EQ(
      e.value("exit_reconciler_watch_last_activity_timestamp_seconds", {{"resource", "pods"}}),
      0.0);
  EXPECT_EQ(e.value("exit_reconciler_watch_events_total",
                    {{"resource", "workflows"}, {"type", "BOOKMARK"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_watch_restarts_total",
                    {{"resource", "workflows"}, {"reason", "expired"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_tracked_workflows"), 1234.0);
  EXPECT_EQ(e.value("exit_reconciler_runs_awaiting_persistence_agent"), 3.0);
}

TEST(Metrics, QueueHandleUsesControllerRuntimeNames) {
  Metrics m;
  QueueMetrics& q = m.queue("workflows");
  EXPECT_EQ(&q, &m.queue("workflows"));
  q.add();
  q.add();
  q.setDepth(7);
  q.retry();
  q.observeQueueDuration(0.002);
  q.observeWorkDuration(0.05);
  q.setUnfinishedWork(1.5);
  q.setLongestRunningProcessor(0.75);
  q.reconciled(ReconcileResult::kError, 0.01);
  q.reconciled(ReconcileResult::kSuccess, 0.02);
  q.setActiveWorkers(3);
  q.setMaxConcurrentReconciles(4);
  Exposition e = scrape(m);
  EXPECT_EQ(e.value("workqueue_adds_total", {{"name", "workflows"}}), 2.0);
  EXPECT_EQ(e.value("workqueue_depth", {{"name", "workflows"}}), 7.0);
  EXPECT_EQ(e.value("workqueue_retries_total", {{"name", "workflows"}}), 1.0);
  EXPECT_EQ(
      e.value("workqueue_queue_duration_seconds_bucket", {{"name", "workflows"}, {"le", "0.01"}}),
      1.0);
  EXPECT_EQ(
      e.value("workqueue_queue_duration_seconds_bucket", {{"name", "workflows"}, {"le", "0.001"}}),
      0.0);
  EXPECT_EQ(e.value("workqueue_work_duration_seconds_count", {{"name", "workflows"}}), 1.0);
  EXPECT_EQ(e.value("workqueue_unfinished_work_seconds", {{"name", "workflows"}}), 1.5);
  EXPECT_EQ(e.value("workqueue_longest_running_processor_seconds", {{"name", "workflows"}}), 0.75);
  EXPECT_EQ(e.value("controller_runtime_reconcile_total",
                    {{"controller", "workflows"}, {"result", "error"}}),
            1.0);
  EXPECT_EQ(e.value("controller_runtime_reconcile_total",
                    {{"controller", "workflows"}, {"result", "requeue_after"}}),
            0.0);
  EXPECT_EQ(e.value("controller_runtime_reconcile_errors_total", {{"controller", "workflows"}}),
            1.0);
  EXPECT_EQ(
      e.value("controller_runtime_reconcile_time_seconds_count", {{"controller", "workflows"}}),
      2.0);
  EXPECT_EQ(e.value("controller_runtime_active_workers", {{"controller", "workflows"}}), 3.0);
  EXPECT_EQ(e.value("controller_runtime_max_concurrent_reconciles", {{"controller", "workflows"}}),
            4.0);
}

TEST(Metrics, LeaderStatusAndBuildInfo) {
  MetricsOptions options;
  options.leaseName = "my-lease";
  options.version = "1.2.3";
  options.revision = "abc";
  Metrics m(options);
  EXPECT_EQ(scrape(m).value("leader_election_master_status", {{"name", "my-lease"}}), 0.0);
  m.setLeader(true);
  EXPECT_EQ(scrape(m).value("leader_election_master_status", {{"name", "my-lease"}}), 1.0);
  m.setLeader(false);
  EXPECT_EQ(scrape(m).value("leader_election_master_status", {{"name", "my-lease"}}), 0.0);
  EXPECT_EQ(
      scrape(m).value("exit_reconciler_build_info", {{"version", "1.2.3"}, {"revision", "abc"}}),
      1.0);
  // Defaults come from the build.
  Metrics d;
  EXPECT_FALSE(d.options().version.empty());
  EXPECT_EQ(scrape(d).count("exit_reconciler_build_info"), 1);
}

TEST(Metrics, NamespaceLabelOnlyWhenEnabled) {
  Metrics plain;
  plain.runEvaluated("kfp-v1", RunVerdict::kCorrect, "team-a");
  EXPECT_EQ(plain.exposition().find("team-a"), std::string::npos);
  EXPECT_EQ(plain.exposition().find("run_namespace"), std::string::npos);

  MetricsOptions options;
  options.namespaceLabel = true;
  Metrics m(options);
  m.runEvaluated("kfp-v1", RunVerdict::kCorrect, "team-a");
  m.misreportDetected("kfp-v1", "exit-task-failed", "team-a");
  m.correctionStep(CorrectionStep::kKfpReport, StepResult::kSuccess, "team-b");
  m.injection(InjectionChannel::kWebhook, InjectionResultLabel::kInjected, "team-b");
  Exposition e = scrape(m);
  EXPECT_EQ(
      e.value("exit_reconciler_runs_evaluated_total",
              {{"generation", "kfp-v1"}, {"verdict", "correct"}, {"run_namespace", "team-a"}}),
      1.0);
  EXPECT_EQ(e.value("exit_reconciler_misreported_runs_total", {{"generation", "kfp-v1"},
                                                               {"cause", "exit-task-failed"},
                                                               {"run_namespace", "team-a"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_correction_steps_total",
                    {{"step", "kfp_report"}, {"result", "success"}, {"run_namespace", "team-b"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_injections_total",
                    {{"channel", "webhook"}, {"result", "injected"}, {"run_namespace", "team-b"}}),
            1.0);
  // No namespace-less series were pre-created next to them.
  EXPECT_EQ(e.count("exit_reconciler_runs_evaluated_total"), 1);
  // prometheus-cpp omits a family until it has a series: with namespace labels
  // the per-run families appear with their first run.
  EXPECT_EQ(e.types.count("exit_reconciler_exit_handlers_total"), 0u);
  m.exitHandlerObserved("kfp-v1", "Failed", "Succeeded", "team-a");
  EXPECT_EQ(scrape(m).types.count("exit_reconciler_exit_handlers_total"), 1u);
}

TEST(Metrics, ConcurrentUpdatesAreNotLost) {
  Metrics m;
  QueueMetrics& q = m.queue("workflows");
  constexpr int kThreads = 8;
  constexpr int kEach = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        m.runEvaluated("kfp-v2", RunVerdict::kCorrect);
        m.apiRequest("get", "workflows", 200, 0.001);
        q.add();
        if (i % 1000 == 0)
          m.queue(t % 2 ? "workflows" : "pods");
      }
    });
  }
  for (auto& th : threads)
    th.join();
  Exposition e = scrape(m);
  const double total = kThreads * kEach;
  EXPECT_EQ(e.value("exit_reconciler_runs_evaluated_total",
                    {{"generation", "kfp-v2"}, {"verdict", "correct"}}),
            total);
  EXPECT_EQ(e.value("exit_reconciler_kube_api_requests_total",
                    {{"verb", "get"}, {"resource", "workflows"}, {"code", "200"}}),
            total);
  EXPECT_EQ(e.value("workqueue_adds_total", {{"name", "workflows"}}), total);
  EXPECT_EQ(e.value("workqueue_adds_total", {{"name", "pods"}}), 0.0);
}

TEST(Metrics, LabelValuesAreStable) {
  EXPECT_EQ(labelValue(RunVerdict::kNotEvaluable), "not_evaluable");
  EXPECT_EQ(labelValue(CorrectionStep::kKfpVerify), "kfp_verify");
  EXPECT_EQ(labelValue(StepResult::kTransientError), "transient_error");
  EXPECT_EQ(labelValue(InjectionResultLabel::kApiUnavailable), "api_unavailable");
  EXPECT_EQ(labelValue(WatchRestartReason::kStalled), "stalled");
  EXPECT_EQ(labelValue(KfpOperation::kGetRun), "get_run");
  EXPECT_EQ(phaseLabel(""), "None");
  EXPECT_EQ(phaseLabel("Omitted"), "Omitted");
  EXPECT_EQ(phaseLabel("running"), "other");
  EXPECT_EQ(generationLabel("argo"), "argo");
  EXPECT_EQ(causeLabel("hooked-task-failed"), "hooked-task-failed");
}

}  // namespace
}  // namespace exitrec
