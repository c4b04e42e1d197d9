// Every component's metrics interface (ControllerMetrics, TransportObserver,
// WebhookMetrics, PodAnnotationMetrics, HistorySweepMetrics) on top of the
// Prometheus families of metrics/metrics.h. This is the only file outside
// metrics/ that includes metrics.h: components report through their own
// small interfaces and label vocabularies, mapped here.

#include <cmath>

#include "controller/controller_metrics.h"
#include "controller/history_sweep.h"
#include "controller/pod_annotations/pod_annotation_metrics.h"
#include "k8sclient/metered_transport.h"
#include "metrics/metrics.h"
#include "metrics/server.h"
#include "metrics/watch_observer.h"
#include "webhook/webhook_metrics.h"

namespace exitrec {
namespace {

StepResult stepResult(std::string_view result) {
  if (result == "success")
    return StepResult::kSuccess;
  if (result == "conflict")
    return StepResult::kConflict;
  if (result == "permanent")
    return StepResult::kPermanentError;
  return StepResult::kTransientError;
}

class PrometheusControllerMetrics final : public ControllerMetrics {
 public:
  PrometheusControllerMetrics(Metrics& m, ExitTaskFailurePolicy policy)
      : m_(m), queue_(m.queue("workflows")), policy_(policy) {}

  void onStep(StepKind kind, std::string_view action, std::string_view result) override {
    CorrectionStep step = CorrectionStep::kWorkflowPatch;
    if (kind == StepKind::kReportToKfp && action == "report")
      step = CorrectionStep::kKfpReport;
    if ((kind == StepKind::kReportToKfp || kind == StepKind::kConfirmAgentReport) &&
        action == "verify")
      step = CorrectionStep::kKfpVerify;
    if (kind == StepKind::kReverifyKfp && action == "reverify")
      step = CorrectionStep::kKfpVerify;
    if (kind == StepKind::kEmitEvent)
      step = CorrectionStep::kEvent;
    m_.correctionStep(step, stepResult(result));
  }

  void onReportVerified(std::optional<std::chrono::duration<double>> sinceFinish) override {
    if (sinceFinish)
      m_.observeCorrectionLatency(sinceFinish->count());
  }

  void onKfpEndpointMissing(std::string_view operation) override {
    m_.kfpEndpointNotFound(operation == "report" ? KfpOperation::kReport : KfpOperation::kGetRun);
  }

  void onKfpRunUnknown() override { m_.kfpUnknownRun(); }
  void onKfpStateRegressed() override { m_.kfpStateRegression(); }

  void runSeen(const WorkflowRecord& r) override {
    const std::string_view generation = generationName(r.generation);
    RunVerdict verdict = RunVerdict::kCorrect;
    if (!r.completed) {
      verdict = RunVerdict::kInProgress;
    } else if (!r.evaluable) {
      verdict = RunVerdict::kNotEvaluable;
    } else if (r.misreported) {
      verdict = RunVerdict::kMisreported;
    }
    m_.runEvaluated(generation, verdict);
    if (r.misreported)
      m_.misreportDetected(generation, r.cause);
    for (const auto& [body, exitTask] : r.exitHandlers) {
      m_.exitHandlerObserved(generation, phaseName(body),
                             exitTask == Phase::kNone ? "None" : phaseName(exitTask));
    }
    if (r.exitTaskFailed) {
      m_.exitTaskFailure(generation, policy_ == ExitTaskFailurePolicy::kFail
                                         ? ExitTaskFailurePolicyLabel::kFail
                                         : ExitTaskFailurePolicyLabel::kIgnore);
    }
  }

  void objectRejected(std::string_view reason) override { m_.objectRejected(reason); }

  void trackedWorkflows(std::size_t count) override {
    m_.setTrackedWorkflows(static_cast<std::int64_t>(count));
  }

  void runsAwaitingPersistenceAgent(std::int64_t count) override {
    m_.setRunsAwaitingPersistenceAgent(count);
  }

  void watchRestart(std::string_view reason) override {
    m_.watchRestart(WatchedResource::kWorkflows, watchRestartReasonOf(reason));
  }

  void watchEvent(std::string_view type) override {
    m_.watchEvent(WatchedResource::kWorkflows, watchEventLabelOf(type));
  }

  void listed() override { m_.watchActive(WatchedResource::kWorkflows); }
  void watchActive() override { m_.watchActive(WatchedResource::kWorkflows); }

  void queueAdd() override { queue_.add(); }
  void queueDepth(std::size_t depth) override { queue_.setDepth(static_cast<std::int64_t>(depth)); }
  void queueLatency(double seconds) override { queue_.observeQueueDuration(seconds); }
  void workDuration(double seconds) override { queue_.observeWorkDuration(seconds); }
  void queueRetry() override { queue_.retry(); }
  void queueGauges(double unfinished, double longest) override {
    queue_.setUnfinishedWork(unfinished);
    queue_.setLongestRunningProcessor(longest);
  }
  void reconciled(ReconcileOutcome::Kind kind, double seconds) override {
    ReconcileResult r = ReconcileResult::kSuccess;
    if (kind == ReconcileOutcome::Kind::kRetry || kind == ReconcileOutcome::Kind::kDrop) {
      r = ReconcileResult::kError;
    } else if (kind == ReconcileOutcome::Kind::kRequeueAfter) {
      r = ReconcileResult::kRequeueAfter;
    }
    queue_.reconciled(r, seconds);
  }
  void workers(int active, int max) override {
    queue_.setActiveWorkers(active);
    queue_.setMaxConcurrentReconciles(max);
  }

  void kfpRequest(std::string_view operation, int status, double seconds) override {
    m_.kfpRequest(operation == "report" ? KfpOperation::kReport : KfpOperation::kGetRun, status,
                  seconds);
  }
  void leader(bool leading) override { m_.setLeader(leading); }

 private:
  Metrics& m_;
  QueueMetrics& queue_;
  ExitTaskFailurePolicy policy_;
};

// The run-history sweep (run --kfp-history-sweep).
class PrometheusHistorySweepMetrics final : public HistorySweepMetrics {
 public:
  explicit PrometheusHistorySweepMetrics(Metrics& m) : m_(m) {}
  void runScanned() override { m_.historyRunScanned(); }
  void runMisreported(std::string_view generation, std::string_view cause) override {
    m_.historyRunMisreported(generation, cause);
  }
  void runCorrected() override { m_.historyRunCorrected(); }
  void runFailed() override { m_.historyRunFailed(); }
  void runUnreadable() override { m_.historyRunUnreadable(); }
  void sweepDone(bool ok, double seconds) override { m_.historySweepDone(ok, seconds); }

 private:
  Metrics& m_;
};

// Every Kubernetes API request (k8sclient's MeteredTransport).
class PrometheusTransportObserver final : public TransportObserver {
 public:
  explicit PrometheusTransportObserver(Metrics& m) : m_(m) {}
  void onRequest(std::string_view verb, std::string_view resource, int status,
                 std::chrono::duration<double> latency) override {
    m_.apiRequest(verb, resource, status, latency.count());
  }

 private:
  Metrics& m_;
};

InjectionResultLabel injectionLabel(InjectionResult r) {
  switch (r) {
    case InjectionResult::kInjected:
      return InjectionResultLabel::kInjected;
    case InjectionResult::kAlreadyInjected:
      return InjectionResultLabel::kAlreadyInjected;
    case InjectionResult::kSkipped:
      return InjectionResultLabel::kSkipped;
    case InjectionResult::kOutOfScope:
      return InjectionResultLabel::kOutOfScope;
    case InjectionResult::kDeadlineExceeded:
      return InjectionResultLabel::kDeadlineExceeded;
    case InjectionResult::kApiUnavailable:
      return InjectionResultLabel::kApiUnavailable;
    case InjectionResult::kBadRequest:
      return InjectionResultLabel::kBadRequest;
    case InjectionResult::kError:
      return InjectionResultLabel::kError;
  }
  return InjectionResultLabel::kError;
}

class PrometheusWebhookMetrics final : public WebhookMetrics {
 public:
  explicit PrometheusWebhookMetrics(Metrics& m) : m_(m) {}
  void reviewed(InjectionResult result, bool inScope, double seconds) override {
    m_.injection(InjectionChannel::kWebhook, injectionLabel(result));
    m_.observeWebhookLatency(inScope, seconds);
  }
  void certificateLoaded(bool ok, double notAfterUnixSeconds) override {
    m_.webhookCertificateLoaded(ok, notAfterUnixSeconds);
  }

 private:
  Metrics& m_;
};

class PrometheusPodAnnotationMetrics final : public PodAnnotationMetrics {
 public:
  explicit PrometheusPodAnnotationMetrics(Metrics& m) : m_(m), watch_(m, WatchedResource::kPods) {}
  void injection(InjectionResult result) override {
    m_.injection(InjectionChannel::kAnnotation, injectionLabel(result));
  }
  ReflectorObserver* watchObserver() override { return &watch_; }

 private:
  Metrics& m_;
  WatchMetricsObserver watch_;
};

}  // namespace

struct MetricsEndpoint::Impl {
  std::string address;
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<ControllerMetrics> view;
  std::unique_ptr<PrometheusTransportObserver> transport;
  std::unique_ptr<PrometheusWebhookMetrics> webhook;
  std::unique_ptr<PrometheusPodAnnotationMetrics> podAnnotations;
  std::unique_ptr<PrometheusHistorySweepMetrics> historySweep;
  std::unique_ptr<MetricsServer> server;
};

MetricsEndpoint::MetricsEndpoint() : impl_(std::make_unique<Impl>()) {}
MetricsEndpoint::~MetricsEndpoint() = default;

TransportObserver& MetricsEndpoint::transportObserver() {
  return *impl_->transport;
}
WebhookMetrics& MetricsEndpoint::webhookMetrics() {
  return *impl_->webhook;
}
PodAnnotationMetrics& MetricsEndpoint::podAnnotationMetrics() {
  return *impl_->podAnnotations;
}
HistorySweepMetrics& MetricsEndpoint::historySweepMetrics() {
  return *impl_->historySweep;
}

std::unique_ptr<MetricsEndpoint> MetricsEndpoint::create(const Options& options) {
  std::unique_ptr<MetricsEndpoint> ep(new MetricsEndpoint());
  MetricsOptions mo;
  mo.leaseName = options.leaseName;
  mo.namespaceLabel = options.namespaceLabel;
  ep->impl_->address = options.address;
  ep->impl_->metrics = std::make_unique<Metrics>(mo);
  Metrics& m = *ep->impl_->metrics;
  ep->impl_->view = std::make_unique<PrometheusControllerMetrics>(m, options.exitTaskFailure);
  ep->impl_->transport = std::make_unique<PrometheusTransportObserver>(m);
  ep->impl_->webhook = std::make_unique<PrometheusWebhookMetrics>(m);
  ep->impl_->podAnnotations = std::make_unique<PrometheusPodAnnotationMetrics>(m);
  ep->impl_->historySweep = std::make_unique<PrometheusHistorySweepMetrics>(m);
  ep->view_ = ep->impl_->view.get();
  return ep;
}

Status MetricsEndpoint::serve() {
  auto server = MetricsServer::start(*impl_->metrics, impl_->address);
  if (!server) {
    Error e = server.error();
    e.message = "--metrics-addr " + impl_->address + ": " + e.message;
    return e;
  }
  impl_->server = std::move(server).value();
  return Status();
}

void MetricsEndpoint::stopServing() {
  impl_->server.reset();
}

int MetricsEndpoint::port() const {
  return impl_->server ? impl_->server->port() : 0;
}
std::string MetricsEndpoint::exposition() const {
  return impl_->metrics->exposition();
}

}  // namespace exitrec
