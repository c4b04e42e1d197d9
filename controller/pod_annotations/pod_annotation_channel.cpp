#include "controller/pod_annotations/pod_annotation_channel.h"

#include <spdlog/spdlog.h>

#include "webhook/injector.h"

namespace exitrec {

PodAnnotationChannel::PodAnnotationChannel(AnnotationWriter& writer, RunStateProvider& provider,
                                           Clock& clock, PodAnnotationMetrics* metrics)
    : writer_(writer), resolver_(provider, clock), clock_(clock), metrics_(metrics) {}

bool PodAnnotationChannel::wants(const nlohmann::json& pod) {
  if (!pod.is_object() || alreadyInjected(pod))
    return false;
  auto status = pod.find("status");
  if (status != pod.end() && status->is_object()) {
    auto phase = status->find("phase");
    if (phase != status->end() && phase->is_string() && *phase != "Pending")
      return false;
  }
  return ExitTaskResolver::worthResolving(podIdentityOf(pod));
}

Result<InjectionResult> PodAnnotationChannel::handle(const nlohmann::json& pod) {
  auto count = [&](InjectionResult r) {
    if (metrics_ != nullptr)
      metrics_->injection(r);
    return r;
  };
  ExitTaskDecision d = resolver_.decide(pod);
  using O = ExitTaskDecision::Outcome;
  switch (d.outcome) {
    case O::kOutOfScope:
      return count(InjectionResult::kOutOfScope);
    case O::kNoUserCode:
      return count(InjectionResult::kSkipped);
    case O::kAlreadyInjected:
      return count(InjectionResult::kAlreadyInjected);
    case O::kStateUnavailable:
      count(InjectionResult::kApiUnavailable);
      return d.error.value_or(Error(ErrorCode::kTransient, "run state unavailable"));
    case O::kInject:
      break;
  }
  const PodIdentity id = podIdentityOf(pod);
  const std::string at = formatRfc3339(clock_.wallNow());
  auto annotations = injectionAnnotations(d.state, inj::kChannelAnnotation, "annotations", at);
  Status patched = writer_.annotatePod(id.namespace_, id.name, annotations);
  if (!patched.ok()) {
    count(InjectionResult::kError);
    return patched.error();
  }

  nlohmann::json record = {{"pod", id.name},
                           {"node", id.nodeName},
                           {"channel", inj::kChannelAnnotation},
                           {"exitHandlerStatus", phaseName(d.state.exitHandlerStatus)},
                           {"workflowStatus", phaseName(d.state.workflowStatus)},
                           {"at", at}};
  const std::string key =
      std::string(inj::kAnnWorkflowInjectionPrefix) + std::to_string(fnv1a32(id.name));
  Status wfPatched =
      writer_.annotateWorkflow(id.namespace_, id.workflowName, {{key, record.dump()}});
  if (!wfPatched.ok()) {
    // The pod carries the values already; only the Workflow's record is missing.
    spdlog::warn("annotation channel: pod {}/{} annotated, Workflow record failed: {}",
                 id.namespace_, id.name, wfPatched.error().describe());
    count(InjectionResult::kError);
    return wfPatched.error();
  }
  spdlog::info("annotation channel: annotated exit-task pod {}/{} (exit handler {}, run so far {})",
               id.namespace_, id.name, phaseName(d.state.exitHandlerStatus),
               phaseName(d.state.workflowStatus));
  return count(InjectionResult::kInjected);
}

}  // namespace exitrec
