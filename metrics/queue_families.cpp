// Work queues (client-go's workqueue_* families, labelled {name}) and their
// controllers (controller-runtime's controller_runtime_* families, labelled
// {controller}); QueueMetrics, one per named queue.

#include "metrics/metrics_internal.h"

namespace exitrec {
namespace metrics_internal {
namespace {

// client-go workqueue buckets: 1 µs … 10 s (ExponentialBuckets(1e-6, 10, 8)).
const Histogram::BucketBoundaries kQueueBuckets = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10};
// controller-runtime reconcile_time_seconds buckets (trimmed).
const Histogram::BucketBoundaries kReconcileBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                       1,     2.5,  5,     10,   30,  60};

}  // namespace

void QueueFamilies::registerIn(FamilyBuilder& build) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  wqAdds = &build(BuildCounter(), "workqueue_adds_total", "Items added to the work queue.");
  wqDepth = &build(BuildGauge(), "workqueue_depth", "Items currently waiting in the work queue.");
  wqQueueDuration = &build(BuildHistogram(), "workqueue_queue_duration_seconds",
                           "Seconds an item waits in the work queue before a worker takes it.");
  wqWorkDuration = &build(BuildHistogram(), "workqueue_work_duration_seconds",
                          "Seconds a worker spends processing one item.");
  wqRetries =
      &build(BuildCounter(), "workqueue_retries_total", "Rate-limited re-adds to the work queue.");
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
}

}  // namespace metrics_internal

using metrics_internal::forEach;
using metrics_internal::idx;
using metrics_internal::kQueueBuckets;
using metrics_internal::kReconcileBuckets;
using metrics_internal::str;

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

QueueMetrics& Metrics::queue(std::string_view name) {
  metrics_internal::QueueFamilies& m = impl_->queues;
  std::lock_guard<std::mutex> lock(m.queuesMu);
  auto it = m.queues.find(name);
  if (it != m.queues.end())
    return *it->second;
  auto q = std::unique_ptr<QueueMetrics>(new QueueMetrics());
  const prometheus::Labels byName{{"name", str(name)}};
  const prometheus::Labels byController{{"controller", str(name)}};
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
  m.queues.emplace(str(name), std::move(q));
  return ref;
}

}  // namespace exitrec
