#pragma once
// Where the webhook and the pod-annotation channel read a run's state.
//
// RunStateProvider is the seam; KubeRunStateProvider is the production
// implementation (the Workflow through a live GET with KubeClient, shared and
// briefly reused by WorkflowReads; the run's pods through a labelled LIST).
// Not the controller's informer: it keeps only completed runs, as compact
// records without nodes, and an exit task runs before its run completes.
// Tests use their own fakes.
//
// Thread-safety: implementations must allow concurrent calls.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "engine/workflow.h"
#include "webhook/exit_task.h"
#include "webhook/workflow_reads.h"

namespace exitrec {

class KubeClient;

class RunStateProvider {
 public:
  virtual ~RunStateProvider() = default;

  // The current Workflow (spec and status). Errors as classified by the
  // client: kNotFound, kTransient (API down), kInvalidInput (unparseable), ...
  virtual Result<std::shared_ptr<const Workflow>> workflow(std::string_view ns,
                                                           std::string_view name) = 0;

  // A copy read recently enough for a run whose exit handler body is already
  // final in it (see KubeRunStateProvider::Options::maxAge); callers must fall
  // back to workflow() when the copy does not show the body as final. `uid`,
  // when known, rejects a copy of an older Workflow of the same name.
  // Default: workflow().
  virtual Result<std::shared_ptr<const Workflow>> recentWorkflow(std::string_view ns,
                                                                 std::string_view name,
                                                                 std::string_view uid);

  // The Workflow's spec only, for scope decisions. May be served from a cache
  // (the spec never changes); `uid`, when known, invalidates a stale entry.
  // Default: workflow().
  virtual Result<std::shared_ptr<const Workflow>> workflowSpec(std::string_view ns,
                                                               std::string_view name,
                                                               std::string_view uid);

  // The spec workflowSpec() would return, only when it is already cached (no
  // I/O; null otherwise). Default: null.
  virtual std::shared_ptr<const Workflow> cachedWorkflowSpec(std::string_view ns,
                                                             std::string_view name,
                                                             std::string_view uid);

  // Finished pods of the run (label workflows.argoproj.io/workflow=<name>):
  // their node names and phases. Pods still running are left out.
  virtual Result<std::vector<PodObservation>> finishedRunPods(std::string_view ns,
                                                              std::string_view workflowName) = 0;
};

// A finished pod's observation, or nullopt for pods not yet finished.
// Pod phase Succeeded -> Succeeded; Failed -> Failed, message from the main
// container's termination ("Error (exit code 1)", "OOMKilled (exit code 137)").
std::optional<PodObservation> observePod(const nlohmann::json& pod);

// Live reads go through WorkflowReads: concurrent reviews of one run share a
// GET (workflow(): only a GET that started after the call), and
// recentWorkflow() serves a copy whose GET started at most `reads.maxAge` ago
// (refreshed in the background after `reads.refreshAfter`). Why that is
// fresh enough: the resolver uses such a copy only when the exit handler's
// body is already final in it, and final node phases never change in Argo,
// so the exit handler status and the body's failures are exactly those of a
// live read; only failures elsewhere in the run in the last maxAge could be
// missing, and the stored Workflow itself lags the pods by a reconcile.
class KubeRunStateProvider final : public RunStateProvider {
 public:
  struct Options {
    std::size_t specCacheEntries = 512;  // runs whose spec is kept for scope decisions
    WorkflowReads::Options reads;        // whole-Workflow reads (bounded, short-lived)
  };
  struct Stats {
    WorkflowReads::Stats reads;
    std::chrono::nanoseconds getTime{0};    // inside KubeClient::getRaw (transport)
    std::chrono::nanoseconds parseTime{0};  // parseWorkflowJson
    std::uint64_t bytes = 0;                // JSON bytes read
  };
  // `client` and `clock` must outlive this object.
  KubeRunStateProvider(KubeClient& client, Clock& clock, Options options);
  KubeRunStateProvider(KubeClient& client, Clock& clock)
      : KubeRunStateProvider(client, clock, Options{}) {}

  Result<std::shared_ptr<const Workflow>> workflow(std::string_view ns,
                                                   std::string_view name) override;
  Result<std::shared_ptr<const Workflow>> recentWorkflow(std::string_view ns, std::string_view name,
                                                         std::string_view uid) override;
  Result<std::shared_ptr<const Workflow>> workflowSpec(std::string_view ns, std::string_view name,
                                                       std::string_view uid) override;
  std::shared_ptr<const Workflow> cachedWorkflowSpec(std::string_view ns, std::string_view name,
                                                     std::string_view uid) override;
  Result<std::vector<PodObservation>> finishedRunPods(std::string_view ns,
                                                      std::string_view workflowName) override;

  Stats stats() const;

 private:
  Result<std::shared_ptr<const Workflow>> fetch(std::string_view ns, std::string_view name);

  KubeClient& client_;
  Options options_;
  std::atomic<std::int64_t> getNanos_{0}, parseNanos_{0};
  std::atomic<std::uint64_t> bytes_{0};
  WorkflowReads reads_;
  std::mutex mu_;
  // ns/name -> spec-only Workflow (nodes dropped); bounded, cleared when full.
  std::unordered_map<std::string, std::shared_ptr<const Workflow>> specs_;
};

// Writes annotations for the pod-annotation channel (merge patches). The seam
// between that channel and KubeClient. Thread-safe implementations.
class AnnotationWriter {
 public:
  virtual ~AnnotationWriter() = default;
  virtual Status annotatePod(std::string_view ns, std::string_view name,
                             const std::map<std::string, std::string>& annotations) = 0;
  virtual Status annotateWorkflow(std::string_view ns, std::string_view name,
                                  const std::map<std::string, std::string>& annotations) = 0;
};

// JSON merge patches of metadata.annotations through KubeClient (no
// resourceVersion guard: only keys this project owns are added).
class KubeAnnotationWriter final : public AnnotationWriter {
 public:
  explicit KubeAnnotationWriter(KubeClient& client) : client_(client) {}
  Status annotatePod(std::string_view ns, std::string_view name,
                     const std::map<std::string, std::string>& annotations) override;
  Status annotateWorkflow(std::string_view ns, std::string_view name,
                          const std::map<std::string, std::string>& annotations) override;

 private:
  KubeClient& client_;
};

// Keeps only what scope decisions read (metadata and spec), dropping nodes.
std::shared_ptr<const Workflow> specOnly(const Workflow& wf);

}  // namespace exitrec
