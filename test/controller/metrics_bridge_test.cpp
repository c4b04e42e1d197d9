// MetricsEndpoint: each component's metrics interface lands in the right
// Prometheus family (controller/metrics_bridge.cpp, the only code that maps
// component vocabularies onto metrics/metrics.h).

#include <gtest/gtest.h>

#include <chrono>

#include "controller/controller_metrics.h"
#include "controller/history_sweep.h"
#include "controller/pod_annotations/pod_annotation_metrics.h"
#include "k8sclient/metered_transport.h"
#include "k8sclient/reflector.h"
#include "test/metrics/exposition.h"
#include "webhook/webhook_metrics.h"

namespace exitrec {
namespace {

using testing::Exposition;
using testing::parseExposition;

class MetricsBridgeTest : public ::testing::Test {
 protected:
  Exposition scrape() { return parseExposition(endpoint_->exposition()); }
  std::unique_ptr<MetricsEndpoint> endpoint_ = MetricsEndpoint::create({});
};

TEST_F(MetricsBridgeTest, KubernetesRequestsFromTheTransportObserver) {
  endpoint_->transportObserver().onRequest("patch", "workflows", 409,
                                           std::chrono::milliseconds(20));
  endpoint_->transportObserver().onRequest("get", "pods", 0, std::chrono::milliseconds(1));
  Exposition e = scrape();
  EXPECT_EQ(e.value("exit_reconciler_kube_api_requests_total",
                    {{"verb", "patch"}, {"resource", "workflows"}, {"code", "409"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_kube_api_requests_total",
                    {{"verb", "get"}, {"resource", "pods"}, {"code", "error"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_kube_api_request_duration_seconds_count",
                    {{"verb", "patch"}, {"resource", "workflows"}}),
            1.0);
}

TEST_F(MetricsBridgeTest, WebhookReviewsAndCertificates) {
  endpoint_->webhookMetrics().reviewed(InjectionResult::kInjected, true, 0.004);
  endpoint_->webhookMetrics().reviewed(InjectionResult::kDeadlineExceeded, true, 2.0);
  endpoint_->webhookMetrics().reviewed(InjectionResult::kOutOfScope, false, 0.0001);
  endpoint_->webhookMetrics().certificateLoaded(true, 1.8e9);
  Exposition e = scrape();
  EXPECT_EQ(
      e.value("exit_reconciler_injections_total", {{"channel", "webhook"}, {"result", "injected"}}),
      1.0);
  EXPECT_EQ(e.value("exit_reconciler_injections_total",
                    {{"channel", "webhook"}, {"result", "deadline_exceeded"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_injections_total",
                    {{"channel", "annotation"}, {"result", "injected"}}),
            0.0);
  EXPECT_EQ(e.value("exit_reconciler_webhook_duration_seconds_count", {{"scope", "in_scope"}}),
            2.0);
  EXPECT_EQ(e.value("exit_reconciler_webhook_duration_seconds_count", {{"scope", "out_of_scope"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_webhook_certificate_reloads_total", {{"result", "success"}}),
            1.0);
  EXPECT_EQ(e.value("exit_reconciler_webhook_certificate_expiry_timestamp_seconds"), 1.8e9);
}

TEST_F(MetricsBridgeTest, EveryInjectionResultKeepsItsLabel) {
  const std::pair<InjectionResult, const char*> all[] = {
      {InjectionResult::kInjected, "injected"},
      {InjectionResult::kAlreadyInjected, "already_injected"},
      {InjectionResult::kSkipped, "skipped"},
      {InjectionResult::kOutOfScope, "out_of_scope"},
      {InjectionResult::kDeadlineExceeded, "deadline_exceeded"},
      {InjectionResult::kApiUnavailable, "api_unavailable"},
      {InjectionResult::kBadRequest, "bad_request"},
      {InjectionResult::kError, "error"},
  };
  static_assert(std::size(all) == kInjectionResults);
  for (const auto& [result, label] : all)
    endpoint_->podAnnotationMetrics().injection(result);
  Exposition e = scrape();
  for (const auto& [result, label] : all) {
    EXPECT_EQ(
        e.value("exit_reconciler_injections_total", {{"channel", "annotation"}, {"result", label}}),
        1.0)
        << label;
  }
}

TEST_F(MetricsBridgeTest, PodsWatchEventsFromThePodAnnotationObserver) {
  ReflectorObserver* watch = endpoint_->podAnnotationMetrics().watchObserver();
  ASSERT_NE(watch, nullptr);
  watch->onWatchEvent("pods", "ADDED");
  watch->onWatchRestart("pods", "gone_http");
  Exposition e = scrape();
  EXPECT_EQ(
      e.value("exit_reconciler_watch_events_total", {{"resource", "pods"}, {"type", "ADDED"}}),
      1.0);
  EXPECT_EQ(
      e.value("exit_reconciler_watch_events_total", {{"resource", "workflows"}, {"type", "ADDED"}}),
      0.0);
  EXPECT_EQ(e.value("exit_reconciler_watch_restarts_total",
                    {{"resource", "pods"}, {"reason", "expired"}}),
            1.0);
}

TEST_F(MetricsBridgeTest, HistorySweepCounters) {
  endpoint_->historySweepMetrics().runScanned();
  endpoint_->historySweepMetrics().runCorrected();
  Exposition e = scrape();
  EXPECT_EQ(e.value("exit_reconciler_history_runs_scanned_total"), 1.0);
  EXPECT_EQ(e.value("exit_reconciler_history_runs_corrected_total"), 1.0);
}

}  // namespace
}  // namespace exitrec
