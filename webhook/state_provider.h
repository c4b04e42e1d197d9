#pragma once
// Where the webhook and the pod-annotation channel read a run's state.
//
// RunStateProvider is the seam; KubeRunStateProvider is the production
// implementation (the controller's cache where it has a fresh copy, else a
// live GET through KubeClient; the run's pods through a labelled LIST).
// Tests use their own fakes.
//
// Thread-safety: implementations must allow concurrent calls.

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

namespace exitrec {

class KubeClient;

class RunStateProvider {
 public:
  virtual ~RunStateProvider() = default;

  // The current Workflow (spec and status). Errors as classified by the
  // client: kNotFound, kTransient (API down), kInvalidInput (unparseable), ...
  virtual Result<std::shared_ptr<const Workflow>> workflow(std::string_view ns,
                                                           std::string_view name) = 0;

  // The Workflow's spec only, for scope decisions. May be served from a cache
  // (the spec never changes); `uid`, when known, invalidates a stale entry.
  // Default: workflow().
  virtual Result<std::shared_ptr<const Workflow>> workflowSpec(std::string_view ns,
                                                               std::string_view name,
                                                               std::string_view uid);

  // Finished pods of the run (label workflows.argoproj.io/workflow=<name>):
  // their node names and phases. Pods still running are left out.
  virtual Result<std::vector<PodObservation>> finishedRunPods(std::string_view ns,
                                                              std::string_view workflowName) = 0;
};

// The controller's cache, when it holds a full, fresh Workflow. Returns null
// when it has none (the controller keeps compact records by default).
class WorkflowCache {
 public:
  virtual ~WorkflowCache() = default;
  virtual std::shared_ptr<const Workflow> freshWorkflow(std::string_view ns,
                                                        std::string_view name) = 0;
};

// A finished pod's observation, or nullopt for pods not yet finished.
// Pod phase Succeeded -> Succeeded; Failed -> Failed, message from the main
// container's termination ("Error (exit code 1)", "OOMKilled (exit code 137)").
std::optional<PodObservation> observePod(const nlohmann::json& pod);

class KubeRunStateProvider final : public RunStateProvider {
 public:
  struct Options {
    std::size_t specCacheEntries = 512;  // runs whose spec is kept for scope decisions
  };
  // `client` must outlive this object; `cache` may be null.
  KubeRunStateProvider(KubeClient& client, WorkflowCache* cache, Options options);
  KubeRunStateProvider(KubeClient& client, WorkflowCache* cache)
      : KubeRunStateProvider(client, cache, Options{}) {}

  Result<std::shared_ptr<const Workflow>> workflow(std::string_view ns,
                                                   std::string_view name) override;
  Result<std::shared_ptr<const Workflow>> workflowSpec(std::string_view ns, std::string_view name,
                                                       std::string_view uid) override;
  Result<std::vector<PodObservation>> finishedRunPods(std::string_view ns,
                                                      std::string_view workflowName) override;

 private:
  KubeClient& client_;
  WorkflowCache* cache_;
  Options options_;
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
