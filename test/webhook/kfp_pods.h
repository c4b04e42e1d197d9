#pragma once
// Test-side pod factory: the Pod objects Argo (v4 layout: init + wait + main,
// `argoexec emissary ... --` command prefix) and the KFP driver (pod-spec
// patch of launcher pods: /kfp-launcher/launch flags incl. --executor_input and
// --component_spec, user command as args) would create for a node of a
// Workflow, where the Workflow is a compiled KFP spec with status written by
// test/fixtures RuntimeBuilder. See test/webhook/data/README.md.

#include <nlohmann/json.hpp>
#include <string>

namespace exitrec::testing {

struct PodBuildOptions {
  // The node's template when the node is not in status.nodes yet.
  std::string templateName;
  // PipelineTaskFinalStatus.state as the driver reads it from MLMD.
  std::string mlmdState = "COMPLETE";
  // KFP >= 2.17 puts pipelines.kubeflow.org/runtime-role on templates.
  bool runtimeRoleAnnotation = true;
  // Put the launcher flags into args instead of command (older layouts).
  bool launcherFlagsInArgs = false;
  std::string uid = "0b6d2c1e-8f43-4a57-9e21-6c3d5f7a8b90";  // Workflow uid (ownerReference)
};

// The pod for `nodeName` of `workflow` (JSON with metadata, spec, status).
nlohmann::json buildArgoPod(const nlohmann::json& workflow, const std::string& nodeName,
                            const PodBuildOptions& options = {});

// An admission.k8s.io/v1 AdmissionReview for the CREATE of `pod`.
nlohmann::json admissionReviewFor(const nlohmann::json& pod, const std::string& uid);

// Applies RFC 6902 add/replace/remove operations (what the API server does
// with the webhook's patch). Aborts the test on an invalid operation.
nlohmann::json applyJsonPatch(nlohmann::json doc, const nlohmann::json& ops);

// The env value of `name` in container `container` ("" if absent).
std::string envOf(const nlohmann::json& pod, const std::string& container, const std::string& name);

// The parsed --executor_input value of container `container` (null if absent).
nlohmann::json executorInputOf(const nlohmann::json& pod, const std::string& container);

}  // namespace exitrec::testing
