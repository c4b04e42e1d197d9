#pragma once
// Private to metrics/: what Metrics::Impl holds, split by family. Each group
// of families has a struct here and a .cpp of its own that registers its
// families (with their help text and pre-created series) and defines the
// Metrics methods that record into them:
//
//   run_families.cpp      runs, corrections and tracked-object state
//   webhook_families.cpp exit-task injection and the webhook
//   api_families.cpp     Kubernetes and KFP API requests, KFP answers
//   watch_families.cpp   watch streams
//   queue_families.cpp   work queue and controller-runtime reconcile metrics
//   history_families.cpp the run-history sweep
//   labels.cpp           label values and allow-lists
//   metrics.cpp          the registry, build info, leader status
//
// Never included outside metrics/ (prometheus-cpp types).

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "metrics/metrics.h"

namespace exitrec::metrics_internal {

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

inline std::string str(std::string_view s) {
  return std::string(s);
}

// Registers families in one registry.
class FamilyBuilder {
 public:
  explicit FamilyBuilder(prometheus::Registry& registry) : registry_(registry) {}
  template <typename T>
  Family<T>& operator()(prometheus::detail::Builder<T> builder, const std::string& name,
                        const std::string& help) {
    return builder.Name(name).Help(help).Register(registry_);
  }

 private:
  prometheus::Registry& registry_;
};

// Per-run families (namespace-labelled when enabled), corrections, and the
// controller's tracked objects. `precreate`: zero-valued series for every
// closed label combination (off with the namespace label).
struct RunFamilies {
  Family<Counter>* runsEvaluated = nullptr;
  Family<Counter>* misreported = nullptr;
  Family<Counter>* exitHandlers = nullptr;
  Family<Counter>* exitTaskFailures = nullptr;
  Family<Counter>* correctionSteps = nullptr;
  Family<Histogram>* correctionLatency = nullptr;
  Histogram* correctionLatencyH = nullptr;
  Family<Gauge>* trackedWorkflows = nullptr;
  Gauge* trackedG = nullptr;
  Family<Counter>* objectsRejected = nullptr;
  std::array<Counter*, kRejectReasonLabels.size() + 1> objectsRejectedC{};  // + other
  Family<Gauge>* awaitingAgent = nullptr;
  Gauge* awaitingAgentG = nullptr;

  void registerRunFamilies(FamilyBuilder& build);
  void registerStateFamilies(FamilyBuilder& build);
  void precreate();
};

// Exit-task injection (both channels) and the admission webhook.
struct WebhookFamilies {
  Family<Counter>* injections = nullptr;
  Family<Histogram>* webhookDuration = nullptr;
  std::array<Histogram*, 2> webhookH{};  // [0] out of scope, [1] in scope
  Family<Counter>* certReloads = nullptr;
  std::array<Counter*, 2> certReloadC{};  // [0] error, [1] success
  Family<Gauge>* certExpiry = nullptr;
  Gauge* certExpiryG = nullptr;

  void registerIn(FamilyBuilder& build);
  void precreate();
};

// Kubernetes and KFP API requests, and the KFP answers the controller acts on.
struct ApiFamilies {
  Family<Counter>* kubeRequests = nullptr;
  Family<Histogram>* kubeDuration = nullptr;
  Family<Counter>* kfpRequests = nullptr;
  Family<Histogram>* kfpDuration = nullptr;
  std::array<Counter*, 2> kfpEndpointNotFoundC{};  // by KfpOperation
  Counter* kfpUnknownRunsC = nullptr;
  Counter* kfpStateRegressionsC = nullptr;

  void registerRequestFamilies(FamilyBuilder& build);
  void registerKfpAnswerFamilies(FamilyBuilder& build);
};

// Watch streams, by resource.
struct WatchFamilies {
  Family<Counter>* watchRestarts = nullptr;
  Family<Counter>* watchEvents = nullptr;
  Family<Gauge>* watchActivity = nullptr;
  std::array<std::array<Counter*, 4>, 2> watchRestartC{};
  std::array<std::array<Counter*, 5>, 2> watchEventC{};
  std::array<Gauge*, 2> watchActivityG{};

  void registerIn(FamilyBuilder& build);
};

// client-go workqueue and controller-runtime reconcile families; one
// QueueMetrics per named queue.
struct QueueFamilies {
  Family<Counter>* wqAdds = nullptr;
  Family<Gauge>* wqDepth = nullptr;
  Family<Histogram>* wqQueueDuration = nullptr;
  Family<Histogram>* wqWorkDuration = nullptr;
  Family<Counter>* wqRetries = nullptr;
  Family<Gauge>* wqUnfinished = nullptr;
  Family<Gauge>* wqLongest = nullptr;
  Family<Counter>* crReconcileTotal = nullptr;
  Family<Counter>* crReconcileErrors = nullptr;
  Family<Histogram>* crReconcileTime = nullptr;
  Family<Gauge>* crActiveWorkers = nullptr;
  Family<Gauge>* crMaxConcurrent = nullptr;

  std::mutex queuesMu;
  std::map<std::string, std::unique_ptr<QueueMetrics>, std::less<>> queues;

  void registerIn(FamilyBuilder& build);
};

// The run-history sweep; never namespace-labelled. Every series exists from
// the start.
struct HistoryFamilies {
  Counter* historyScannedC = nullptr;
  Family<Counter>* historyMisreported = nullptr;
  Counter* historyCorrectedC = nullptr;
  Counter* historyFailedC = nullptr;
  Counter* historyUnreadableC = nullptr;
  std::array<Counter*, 2> historySweepsC{};  // [0] error, [1] success
  Histogram* historySweepDurationH = nullptr;
  Gauge* historyLastSuccessG = nullptr;

  void registerIn(FamilyBuilder& build);
};

}  // namespace exitrec::metrics_internal

namespace exitrec {

struct Metrics::Impl {
  MetricsOptions options;
  const Clock* clock;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

  metrics_internal::RunFamilies runs;
  metrics_internal::WebhookFamilies webhook;
  metrics_internal::ApiFamilies api;
  metrics_internal::WatchFamilies watch;
  metrics_internal::QueueFamilies queues;
  metrics_internal::HistoryFamilies history;
  prometheus::Gauge* leaderG = nullptr;

  explicit Impl(MetricsOptions opts);

  // Adds run_namespace when enabled.
  prometheus::Labels withNs(prometheus::Labels labels, std::string_view ns) const {
    if (options.namespaceLabel)
      labels.emplace("run_namespace", ns.empty() ? "none" : std::string(ns));
    return labels;
  }
};

}  // namespace exitrec
