#pragma once
// Controller: the runtime of `exit-reconciler run` — an informer over
// completed Workflows keeping WorkflowRecord projections, a rate-limited work
// queue, N workers running the Reconciler, and the adapters that bind the
// reconciler's interfaces to k8sclient.
//
// Lifecycle (driven by run_command.cpp):
//   startInformer()  on every replica (a warm cache makes failover fast; /readyz)
//   startWorkers()   when this replica leads: enqueues every record needing work
//   stopWorkers()    on shutdown: in-flight reconciles finish, queued keys are
//                    handed back (the next leader finds them in its cache)
//   stopInformer()
//
// Watch cost: the informer's label selector admits only completed runs
// (workflows.argoproj.io/completed=true [+ pipeline/runid]), so the many
// updates of running workflows never reach this process; each admitted event
// is parsed and evaluated once in the transform, and only a compact record is
// stored. Workers GET the full object only when a step is due.
//
// Hostile objects (docs/controller.md, "Hostile input"): one Workflow never
// stops the others. Projection never throws into the informer (a run it
// cannot read is stored as a rejected record); every handler and worker runs
// behind an exception barrier; a run that is rejected, whose reconcile throws
// or whose patch is refused for good is skipped until its next change, logged
// once per resourceVersion and counted in
// exit_reconciler_objects_rejected_total{reason}.
//
// Thread-safety: the lifecycle methods are called from one thread; the rest
// is internally synchronized.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "controller/controller_metrics.h"
#include "controller/reconciler.h"
#include "controller/workflow_record.h"
#include "k8sclient/event_recorder.h"
#include "k8sclient/informer.h"
#include "k8sclient/kube_client.h"
#include "k8sclient/work_queue.h"

namespace exitrec {

// WorkflowApi over KubeClient (workflows in argoproj.io/v1alpha1).
class KubeWorkflowApi final : public WorkflowApi {
 public:
  explicit KubeWorkflowApi(KubeClient& client) : client_(client) {}
  Result<std::string> get(const std::string& ns, const std::string& name) override;
  Result<std::string> mergePatch(const std::string& ns, const std::string& name,
                                 const std::string& patch) override;

 private:
  KubeClient& client_;
};

// EventSink over k8sclient's EventRecorder (Events on the Workflow).
class RecorderEventSink final : public EventSink {
 public:
  explicit RecorderEventSink(EventRecorder& recorder) : recorder_(recorder) {}
  Status emit(const EventTarget& target, std::string_view type, std::string_view reason,
              std::string_view message) override;

 private:
  EventRecorder& recorder_;
};

class Controller {
 public:
  struct Options {
    std::string namespaceName;  // "" = all
    std::string labelSelector;
    int workers = 2;
    CorrectionConfig correction;
    std::chrono::milliseconds maxRetryDelay{std::chrono::minutes(5)};
    // Reflector watch lifetime (tests shorten it).
    std::chrono::seconds minWatchTimeout{300};
    std::chrono::seconds maxWatchTimeout{600};
    std::chrono::milliseconds idleTimeoutMargin{std::chrono::seconds(60)};
    // The informer's projection (tests replace it to prove the barrier).
    std::function<WorkflowRecord(std::string_view raw, const CorrectionConfig& config,
                                 Clock::WallTime now)>
        project = projectWorkflow;
  };

  // Every reference must outlive the controller. `kfp` may be null (no direct
  // reporting); `metrics` may be null.
  Controller(Options options, KubeClient& kube, WorkflowApi& api, KfpReporter* kfp,
             EventSink& events, Clock& clock, ControllerMetrics* metrics);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  void startInformer();
  bool hasSynced() const;
  // The workflow watch's health (k8sclient Reflector::health): for /readyz.
  Status watchHealth() const;
  void startWorkers();
  // Returns false when in-flight work did not finish within `grace`.
  bool stopWorkers(std::chrono::milliseconds grace);
  void stopInformer();

  std::size_t tracked() const;
  // Records that still need a step (for logs and the sandbox).
  std::size_t pending() const;
  std::shared_ptr<const WorkflowRecord> record(const std::string& key) const;
  // Runs skipped since start (each counted once per resourceVersion).
  std::uint64_t rejectedCount() const { return rejectedTotal_.load(); }

 private:
  class Observers;
  void enqueue(const std::string& key);
  void workerLoop();
  void process(const std::string& key);
  // Logs and counts a skipped run, once per (key, resourceVersion, reason).
  void noteRejected(const std::string& key, const std::string& resourceVersion,
                    std::string_view reason, const std::string& detail);
  // Runs `fn` (a handler on the reflector thread); a throw is logged and counted.
  template <typename Fn>
  void barrier(std::string_view where, const std::string& key, Fn&& fn) noexcept;

  Options options_;
  KubeClient& kube_;
  Clock& clock_;
  ControllerMetrics* metrics_;
  ControllerMetrics noMetrics_;
  std::unique_ptr<Observers> observers_;
  Reconciler reconciler_;
  std::unique_ptr<Informer<WorkflowRecord>> informer_;

  mutable std::mutex mu_;
  std::unique_ptr<WorkQueue> queue_;  // exists while leading
  std::vector<std::thread> workers_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> active_{0};
  // Records with WorkflowRecord::awaitingPersistenceAgent() (a gauge).
  std::atomic<std::int64_t> awaitingAgent_{0};

  // Last rejection logged per key: "<resourceVersion>/<reason>". Bounded by
  // the informer's keys (erased on delete and on a good projection).
  std::mutex rejectedMu_;
  std::unordered_map<std::string, std::string> rejectedAt_;
  std::atomic<std::uint64_t> rejectedTotal_{0};
};

}  // namespace exitrec
