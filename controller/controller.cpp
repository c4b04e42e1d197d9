#include "controller/controller.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <nlohmann/json.hpp>

#include "k8sclient/rate_limiter.h"

namespace exitrec {

// ---------------------------------------------------------------------------
// Adapters

Result<std::string> KubeWorkflowApi::get(const std::string& ns, const std::string& name) {
  return client_.getRaw(resources::kWorkflows, ns, name);
}

Result<std::string> KubeWorkflowApi::mergePatch(const std::string& ns, const std::string& name,
                                                const std::string& patch) {
  if (!nlohmann::json::accept(patch)) {
    // The state machine builds every patch; an unparsable one is a bug.
    std::abort();
  }
  // The patched Workflow comes back as the server wrote it: the reconciler
  // reads it once, on the engine's fast path (no DOM, no re-serialization).
  // A body that is not JSON then fails that read, as a GET's would.
  return client_.mergePatchRaw(resources::kWorkflows, ns, name, patch);
}

Status RecorderEventSink::emit(const EventTarget& target, std::string_view type,
                               std::string_view reason, std::string_view message) {
  ObjectReference ref;
  ref.apiVersion = "argoproj.io/v1alpha1";
  ref.kind = "Workflow";
  ref.namespaceName = target.ns;
  ref.name = target.name;
  ref.uid = target.uid;
  return recorder_.record(ref, type == "Normal" ? EventType::kNormal : EventType::kWarning,
                          std::string(reason), std::string(message));
}

// ---------------------------------------------------------------------------
// Observers: k8sclient hooks → ControllerMetrics.

class Controller::Observers final : public ReflectorObserver, public WorkQueueObserver {
 public:
  explicit Observers(ControllerMetrics& m) : m_(m) {}
  void onWatchRestart(std::string_view, std::string_view reason) override {
    m_.watchRestart(reason);
  }
  // Watch events (bookmarks included) come from the reflector, not from the
  // informer's handlers: a relist's items are not watch events.
  void onWatchEvent(std::string_view, std::string_view type) override { m_.watchEvent(type); }
  void onWatchClosedNormally(std::string_view) override { m_.watchActive(); }
  void onListed(std::string_view, std::size_t items, std::chrono::milliseconds took) override {
    m_.listed();
    spdlog::info("listed {} completed workflows in {} ms", items, took.count());
  }
  void onAdd(std::string_view) override { m_.queueAdd(); }
  void onDepth(std::string_view, std::size_t depth) override { m_.queueDepth(depth); }
  void onQueueLatency(std::string_view, std::chrono::nanoseconds waited) override {
    m_.queueLatency(std::chrono::duration<double>(waited).count());
  }
  void onWorkDuration(std::string_view, std::chrono::nanoseconds took) override {
    m_.workDuration(std::chrono::duration<double>(took).count());
  }
  void onRetry(std::string_view) override { m_.queueRetry(); }

 private:
  ControllerMetrics& m_;
};

// ---------------------------------------------------------------------------
// Controller

Controller::Controller(Options options, KubeClient& kube, WorkflowApi& api, KfpReporter* kfp,
                       EventSink& events, Clock& clock, ControllerMetrics* metrics)
    : options_(std::move(options)),
      kube_(kube),
      clock_(clock),
      metrics_(metrics != nullptr ? metrics : &noMetrics_),
      observers_(std::make_unique<Observers>(*metrics_)),
      reconciler_(api, kfp, events, clock, options_.correction, metrics_) {}

Controller::~Controller() {
  stopWorkers(std::chrono::seconds(30));
  stopInformer();
}

void Controller::startInformer() {
  ReflectorOptions ro;
  ro.resource = resources::kWorkflows;
  ro.namespaceName = options_.namespaceName;
  ro.labelSelector = options_.labelSelector;
  // KFP Workflows are large (~100 KB to 1 MB each): small list pages bound the
  // memory a (re)list holds at once; the records themselves are tiny.
  ro.pageSize = 50;
  ro.minWatchTimeout = options_.minWatchTimeout;
  ro.maxWatchTimeout = options_.maxWatchTimeout;
  ro.idleTimeoutMargin = options_.idleTimeoutMargin;
  const CorrectionConfig correction = options_.correction;
  Clock* clock = &clock_;
  auto project = options_.project;
  // Never an error and never a throw: either would skip the object silently
  // (the informer logs an error on every relist) or, thrown through the list
  // splitter, fail the whole list. A rejected record is stored instead.
  auto transform = [correction, clock, project](const ObjectMeta& meta,
                                                std::string_view raw) -> Result<WorkflowRecord> {
    WorkflowRecord rec;
    try {
      rec = project(raw, correction, clock->wallNow());
    } catch (const std::exception& e) {
      rec = rejectedRecord(kRejectProjection, std::string("projection threw: ") + e.what());
    } catch (...) {
      rec = rejectedRecord(kRejectProjection, "projection threw a non-standard exception");
    }
    if (!rec.rejected.empty()) {
      rec.uid = meta.uid;
      rec.resourceVersion = meta.resourceVersion;
    }
    return rec;
  };
  Informer<WorkflowRecord>::Handlers handlers;
  // Runs waiting for KFP's persistence agent: counted from the records as
  // they come and go, so the gauge needs no walk over the store.
  auto countAwaiting = [this](const WorkflowRecord* before, const WorkflowRecord* after) {
    const int delta = static_cast<int>(after != nullptr && after->awaitingPersistenceAgent()) -
                      static_cast<int>(before != nullptr && before->awaitingPersistenceAgent());
    if (delta != 0)
      metrics_->runsAwaitingPersistenceAgent(awaitingAgent_ += delta);
  };
  // A rejected record is logged and counted; a good one clears the key's mark.
  auto screen = [this](const std::string& key, const WorkflowRecord& rec) {
    if (!rec.rejected.empty()) {
      noteRejected(key, rec.resourceVersion, rec.rejected, rec.rejectDetail);
    } else {
      std::lock_guard<std::mutex> g(rejectedMu_);
      rejectedAt_.erase(key);
    }
  };
  handlers.onAdd = [this, countAwaiting, screen](const std::string& key,
                                                 const Informer<WorkflowRecord>::Ptr& rec) {
    barrier("add", key, [&] {
      screen(key, *rec);
      // A run that could not be read has no verdict; one over a bound is
      // counted as not evaluable.
      if (rec->rejected.empty() || rec->rejected == kRejectTooLarge)
        metrics_->runSeen(*rec);
      metrics_->trackedWorkflows(informer_ ? informer_->size() : 0);
      countAwaiting(nullptr, rec.get());
      if (rec->needsWork())
        enqueue(key);
    });
  };
  handlers.onUpdate = [this, countAwaiting, screen](const std::string& key,
                                                    const Informer<WorkflowRecord>::Ptr& old,
                                                    const Informer<WorkflowRecord>::Ptr& rec) {
    barrier("update", key, [&] {
      screen(key, *rec);
      countAwaiting(old.get(), rec.get());
      if (rec->needsWork())
        enqueue(key);
    });
  };
  handlers.onDelete = [this, countAwaiting](const std::string& key,
                                            const Informer<WorkflowRecord>::Ptr& last, bool) {
    barrier("delete", key, [&] {
      metrics_->trackedWorkflows(informer_ ? informer_->size() : 0);
      countAwaiting(last.get(), nullptr);
      {
        std::lock_guard<std::mutex> g(rejectedMu_);
        rejectedAt_.erase(key);
      }
      std::lock_guard<std::mutex> g(mu_);
      if (queue_)
        queue_->forget(key);
    });
  };
  informer_ = std::make_unique<Informer<WorkflowRecord>>(kube_, clock_, ro, transform, handlers,
                                                         observers_.get());
  informer_->start();
}

template <typename Fn>
void Controller::barrier(std::string_view where, const std::string& key, Fn&& fn) noexcept {
  try {
    fn();
  } catch (const std::exception& e) {
    noteRejected(key, "", kRejectProjection, std::string(where) + " handler threw: " + e.what());
  } catch (...) {
    noteRejected(key, "", kRejectProjection,
                 std::string(where) + " handler threw a non-standard exception");
  }
}

void Controller::noteRejected(const std::string& key, const std::string& resourceVersion,
                              std::string_view reason, const std::string& detail) {
  try {
    std::string mark = resourceVersion;
    mark.append("/").append(reason);
    {
      std::lock_guard<std::mutex> g(rejectedMu_);
      std::string& last = rejectedAt_[key];
      // An unknown resourceVersion (a handler threw) is logged every time.
      if (!resourceVersion.empty() && last == mark)
        return;
      last = std::move(mark);
    }
    ++rejectedTotal_;
    metrics_->objectRejected(reason);
    spdlog::warn(
        "{}: skipped (reason {}, resourceVersion {}): {}; nothing is done for this run "
        "until it changes",
        key, reason, resourceVersion.empty() ? "unknown" : resourceVersion, detail);
  } catch (...) {
    // Out of memory while reporting: nothing more can be done, and the caller
    // must go on with the other runs.
  }
}

bool Controller::hasSynced() const {
  return informer_ && informer_->hasSynced();
}

Status Controller::watchHealth() const {
  if (!informer_)
    return Error(ErrorCode::kTransient, "workflows watch: not started");
  return informer_->reflector().health();
}

void Controller::enqueue(const std::string& key) {
  std::lock_guard<std::mutex> g(mu_);
  if (queue_ && !stopping_)
    queue_->add(key);
}

void Controller::startWorkers() {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (queue_)
      return;
    std::vector<std::unique_ptr<RateLimiter>> limiters;
    limiters.push_back(std::make_unique<ItemExponentialFailureRateLimiter>(
        std::chrono::milliseconds(5), options_.maxRetryDelay));
    limiters.push_back(std::make_unique<BucketRateLimiter>(clock_, 10.0, 100));
    queue_ = std::make_unique<WorkQueue>("workflows", clock_,
                                         std::make_unique<MaxOfRateLimiter>(std::move(limiters)),
                                         observers_.get());
    stopping_ = false;
  }
  // Everything the cache already knows that still needs a step.
  std::size_t queued = 0;
  if (informer_) {
    for (const std::string& key : informer_->keys()) {
      auto rec = informer_->get(key);
      if (rec && rec->needsWork()) {
        enqueue(key);
        ++queued;
      }
    }
  }
  metrics_->workers(0, options_.workers);
  spdlog::info("leading: starting {} workers, {} runs queued", options_.workers, queued);
  std::lock_guard<std::mutex> g(mu_);
  for (int i = 0; i < options_.workers; ++i)
    workers_.emplace_back([this] { workerLoop(); });
}

void Controller::workerLoop() {
  WorkQueue* queue = nullptr;
  {
    std::lock_guard<std::mutex> g(mu_);
    queue = queue_.get();
  }
  while (auto key = queue->get()) {
    if (stopping_) {
      // Hand the key back: it stays in the informer's cache (needsWork) and
      // the next leader picks it up.
      queue->done(*key);
      continue;
    }
    metrics_->workers(++active_, options_.workers);
    // The thread's exception barrier: one run's throw must neither end the
    // process (std::terminate) nor this worker.
    try {
      process(*key);
    } catch (const std::exception& e) {
      queue->forget(*key);
      noteRejected(*key, "", kRejectReconcile, std::string("worker threw: ") + e.what());
    } catch (...) {
      queue->forget(*key);
      noteRejected(*key, "", kRejectReconcile, "worker threw a non-standard exception");
    }
    metrics_->workers(--active_, options_.workers);
    queue->done(*key);
    metrics_->queueGauges(std::chrono::duration<double>(queue->unfinishedWork()).count(),
                          std::chrono::duration<double>(queue->longestRunningProcessor()).count());
  }
}

void Controller::process(const std::string& key) {
  WorkQueue& queue = *queue_;
  auto rec = informer_ ? informer_->get(key) : nullptr;
  if (!rec || !rec->needsWork()) {
    // Deleted, or the cache already shows the work done.
    queue.forget(key);
    return;
  }
  const std::size_t slash = key.find('/');
  const std::string ns = slash == std::string::npos ? "" : key.substr(0, slash);
  const std::string name = slash == std::string::npos ? key : key.substr(slash + 1);
  const auto start = std::chrono::steady_clock::now();
  ReconcileOutcome out;
  try {
    out = reconciler_.reconcile(ns, name);
  } catch (const std::exception& e) {
    // Deterministic for this version of the object: retrying would spin.
    queue.forget(key);
    noteRejected(key, rec->resourceVersion, kRejectReconcile,
                 std::string("reconcile threw: ") + e.what());
    return;
  } catch (...) {
    queue.forget(key);
    noteRejected(key, rec->resourceVersion, kRejectReconcile,
                 "reconcile threw a non-standard exception");
    return;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_->reconciled(out.kind, seconds);
  switch (out.kind) {
    case ReconcileOutcome::Kind::kDone:
      spdlog::debug("{}: {}", key, out.detail);
      queue.forget(key);
      break;
    case ReconcileOutcome::Kind::kRetry:
      spdlog::warn("{}: {} failed, retrying: {}", key, out.detail,
                   out.error ? out.error->describe() : "");
      if (out.error && out.error->retryAfter) {
        queue.addAfter(key, *out.error->retryAfter);
      } else {
        queue.addRateLimited(key);
      }
      break;
    case ReconcileOutcome::Kind::kRequeueAfter:
      queue.forget(key);
      queue.addAfter(key, out.after);
      break;
    case ReconcileOutcome::Kind::kDrop:
      // The object as stored cannot be read (the engine's errors are
      // kInvalidInput; the API's never are) or the API refused a step for
      // good (e.g. 422): skipped until the object changes.
      noteRejected(key, rec->resourceVersion,
                   out.error && out.error->code == ErrorCode::kInvalidInput ? kRejectParse
                   : out.detail.rfind("patch", 0) == 0                      ? kRejectPatch
                                                                            : kRejectReconcile,
                   out.detail + " failed permanently: " +
                       (out.error ? out.error->describe() : std::string()));
      queue.forget(key);
      break;
  }
}

bool Controller::stopWorkers(std::chrono::milliseconds grace) {
  std::vector<std::thread> workers;
  WorkQueue* queue = nullptr;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!queue_ || stopping_)
      return true;
    stopping_ = true;
    queue = queue_.get();
    workers.swap(workers_);
  }
  queue->shutDown();
  // Join with a deadline: a reconcile blocked on a slow API call may outlive
  // the grace period; its progress is in annotations, so leaving is safe.
  struct JoinState {
    std::mutex m;
    std::condition_variable cv;
    bool joined = false;
  };
  auto state = std::make_shared<JoinState>();
  auto shared = std::make_shared<std::vector<std::thread>>(std::move(workers));
  std::thread joiner([state, shared] {
    for (auto& t : *shared)
      t.join();
    std::lock_guard<std::mutex> g(state->m);
    state->joined = true;
    state->cv.notify_all();
  });
  std::unique_lock<std::mutex> lk(state->m);
  const bool ok = state->cv.wait_for(lk, grace, [&] { return state->joined; });
  lk.unlock();
  if (!ok) {
    // The queue stays alive for the stragglers; the process is about to exit.
    spdlog::warn("shutdown: in-flight reconciles did not finish within {} ms", grace.count());
    joiner.detach();
    return false;
  }
  joiner.join();
  std::lock_guard<std::mutex> g(mu_);
  queue_.reset();
  return true;
}

void Controller::stopInformer() {
  if (informer_)
    informer_->stop();
}

std::size_t Controller::tracked() const {
  return informer_ ? informer_->size() : 0;
}

std::size_t Controller::pending() const {
  if (!informer_)
    return 0;
  std::size_t n = 0;
  for (const std::string& key : informer_->keys()) {
    auto rec = informer_->get(key);
    if (rec && rec->needsWork())
      ++n;
  }
  return n;
}

std::shared_ptr<const WorkflowRecord> Controller::record(const std::string& key) const {
  return informer_ ? informer_->get(key) : nullptr;
}

}  // namespace exitrec
