#pragma once
// The pod-annotation channel: injection that needs no webhook.
//
// The controller's watch loop hands every exit-task candidate pod it sees to
// handle(). For a pod still Pending and not yet injected (by either channel),
// the same values the webhook would inject are written as pod annotations
// with one JSON merge patch (readable through the downward API, see
// docs/exit-task-status.md), and the injection is recorded on the Workflow
// under "exit-reconciler.io/exit-task-injection-<fnv1a32(pod name)>" (value:
// compact JSON {pod, node, channel, exitHandlerStatus, workflowStatus, at}).
//
// Pods to watch: label selector kExitTaskPodSelector (all KFP pods; the cheap
// filter wants() drops the rest without I/O).
//
// Thread-safety: handle() may be called concurrently for different pods.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"
#include "controller/pod_annotations/pod_annotation_metrics.h"
#include "webhook/resolver.h"
#include "webhook/state_provider.h"

namespace exitrec {

inline constexpr std::string_view kExitTaskPodSelector = "pipeline/runid";

class PodAnnotationChannel {
 public:
  // All references must outlive the channel; metrics may be null.
  PodAnnotationChannel(AnnotationWriter& writer, RunStateProvider& provider, Clock& clock,
                       PodAnnotationMetrics* metrics);

  // No I/O: the pod is Pending, carries no injection yet, and may be an
  // exit-task pod. Pods for which this is false need not be passed to handle().
  static bool wants(const nlohmann::json& pod);

  // Decides and, for an exit-task pod with user code, patches the pod's and
  // the Workflow's annotations. Returns what happened (kInjected,
  // kAlreadyInjected, kSkipped, kOutOfScope). Errors: the state could not be
  // read or a patch failed (classified by KubeClient; retry later with
  // backoff, e.g. by re-queueing the pod key). A pod that left Pending meanwhile
  // is still annotated: the record stays truthful for later readers.
  Result<InjectionResult> handle(const nlohmann::json& pod);

 private:
  AnnotationWriter& writer_;
  ExitTaskResolver resolver_;
  Clock& clock_;
  PodAnnotationMetrics* metrics_;
};

}  // namespace exitrec
