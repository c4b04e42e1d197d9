#pragma once
// PersistenceAgentSim: KFP's persistence agent (backend/src/agent/persistence)
// for Workflows, read at 2.0.0, 2.4.0, 2.16.1, 2.17.0 and master, where the
// parts modelled here do not differ:
// - persistence_agent.go / main.go: a Workflow informer over all namespaces
//   (or one), no label selector, resync every 30 s
//   (util.NewExecutionInformerOrFatal → argoinformer.NewSharedInformerFactory);
// - worker/persistence_worker.go PersistenceWorker: add and update enqueue
//   the key with AddRateLimited (enforceRequeueDelays = true) on a
//   NewItemExponentialFailureRateLimiter(1 s, 360 s) queue, delete with Add;
//   a transient error re-queues with AddRateLimited, a permanent one or a
//   success Forgets the key (the next resync brings it back);
// - worker/workflow_saver.go Save(): the Workflow from the informer cache
//   (gone: permanent); no pipeline/runid label: skip; the label
//   pipeline/persistedFinalState present and now - status.finishedAt < TTL:
//   skip; otherwise ReportWorkflow with the whole Workflow, labels included
//   (so after the TTL, KFP deletes the CR);
// - client/pipeline_client.go ReportWorkflow: gRPC InvalidArgument and
//   NotFound are permanent, everything else transient.
// Not modelled: the ScheduledWorkflow worker, run metrics reporting, the
// namespace-owner lookup of 2.0–2.3, token refresh.
//
// TTL: TTL_SECONDS_AFTER_WORKFLOW_FINISH=86400 in KFP's manifests (the flag's
// own default is 7 days). KFP 2.17's Argo ttlStrategy (3600 s) deletes
// Workflows long before that, so the post-TTL report never happens there.
//
// Time: the TTL test, the queue delays and the resync use the injected Clock
// (upstream Save() uses time.Now()), so tests can step past the TTL.
// Thread-safety: start/stop from one thread; the accessors from any.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/result.h"
#include "sim/kfp/kfp_api_simulator.h"

namespace exitrec {

class KubeClient;
class HttpTransport;
class WorkQueue;
template <typename T>
class Informer;

class PersistenceAgentSim {
 public:
  struct Options {
    std::string kubeApiUrl{};  // the Kubernetes API (e.g. the kube simulator's baseUrl())
    std::string kubeToken{};
    std::string namespaceName{};  // "" = all namespaces
    std::chrono::seconds ttlSecondsAfterWorkflowFinish{86400};
    std::chrono::milliseconds defaultJobBackOff{1000};  // persistence_worker.go
    std::chrono::milliseconds maxJobBackOff{360000};
    std::chrono::seconds resyncPeriod{30};
    // false: enqueue with Add instead of AddRateLimited (upstream's "For testing").
    bool enforceRequeueDelays = true;
    Clock* clock = nullptr;  // nullptr: the system clock
  };

  // ReportWorkflowV1 over gRPC; in-process: KfpApiSimulator::reportFromAgent.
  using ReportFn = std::function<KfpApiSimulator::RpcResult(const std::string& workflowJson)>;

  struct Stats {
    std::size_t saves = 0;    // Save() calls finished
    std::size_t reports = 0;  // ReportWorkflow calls
    std::size_t reportedOk = 0;
    std::size_t skippedNoRunId = 0;
    std::size_t skippedPersisted = 0;  // labelled and within the TTL
    std::size_t permanentFailures = 0;
    std::size_t transientFailures = 0;
  };

  PersistenceAgentSim(Options options, ReportFn report);
  ~PersistenceAgentSim();
  PersistenceAgentSim(const PersistenceAgentSim&) = delete;
  PersistenceAgentSim& operator=(const PersistenceAgentSim&) = delete;

  Status start();
  void stop();
  bool hasSynced() const;
  Stats stats() const;
  // Keys waiting or being processed (0 when idle).
  std::size_t pending() const;

 private:
  using Cached = std::string;  // the Workflow's raw JSON, as the informer cache holds it

  void enqueue(const std::string& key);
  void workerLoop();
  void resyncLoop();
  // workflow_saver.go Save(); returns true for success, false + `transient`.
  bool save(const std::string& key, bool& transient);
  Clock& clock() const;

  Options options_;
  ReportFn report_;
  std::shared_ptr<HttpTransport> transport_;
  std::unique_ptr<KubeClient> client_;
  std::unique_ptr<WorkQueue> queue_;
  std::unique_ptr<Informer<Cached>> informer_;
  std::thread worker_;
  std::thread resync_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool started_ = false;

  mutable std::mutex statsMu_;
  Stats stats_;
  std::atomic<std::size_t> inFlight_{0};
};

}  // namespace exitrec
