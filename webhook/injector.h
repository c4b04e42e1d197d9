#pragma once
// ExitTaskInjector: turns an exit-task pod plus its ExitTaskState into the
// JSONPatch the webhook returns, and into the annotations both channels write.
//
// Pure: no I/O. Safe to call concurrently.
//
// What is injected (docs/exit-task-status.md):
// - env vars KFP_EXIT_HANDLER_STATUS, KFP_WORKFLOW_STATUS, KFP_WORKFLOW_FAILURES,
//   KFP_PIPELINE_TASK_FINAL_STATUS on every container that runs user code:
//   all of spec.containers except Argo's own (wait, supervisor,
//   artifact-plugin-*); never init containers; nothing in driver pods;
// - inside every `--executor_input <json>` (or `--executor_input=<json>`)
//   argument that parses as a KFP ExecutorInput: parameters of type
//   TASK_FINAL_STATUS (from the launcher's --component_spec, or recognised by
//   shape) get the true state and error; constant inputs whose spec value held
//   "{{workflow.status}}" (resolved too early to "Running") get the true status;
// - annotations under exit-reconciler.io/ recording what was injected.

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "webhook/exit_task.h"

namespace exitrec {

namespace inj {
inline constexpr std::string_view kEnvExitHandlerStatus = "KFP_EXIT_HANDLER_STATUS";
inline constexpr std::string_view kEnvWorkflowStatus = "KFP_WORKFLOW_STATUS";
inline constexpr std::string_view kEnvWorkflowFailures = "KFP_WORKFLOW_FAILURES";
inline constexpr std::string_view kEnvFinalStatus = "KFP_PIPELINE_TASK_FINAL_STATUS";

// Pod annotations (readable through the downward API).
inline constexpr std::string_view kAnnInjected = "exit-reconciler.io/injected";  // channel name
inline constexpr std::string_view kAnnInjectedAt = "exit-reconciler.io/injected-at";
inline constexpr std::string_view kAnnInjectedItems = "exit-reconciler.io/injected-items";
inline constexpr std::string_view kAnnExitHandlerStatus = "exit-reconciler.io/exit-handler-status";
inline constexpr std::string_view kAnnWorkflowStatus = "exit-reconciler.io/workflow-status";
inline constexpr std::string_view kAnnWorkflowFailures = "exit-reconciler.io/workflow-failures";
inline constexpr std::string_view kAnnFinalStatus = "exit-reconciler.io/pipeline-task-final-status";
// Workflow annotation prefix for the record of one injection:
// "exit-reconciler.io/exit-task-injection-<fnv1a32(pod name)>".
inline constexpr std::string_view kAnnWorkflowInjectionPrefix =
    "exit-reconciler.io/exit-task-injection-";

inline constexpr std::string_view kChannelWebhook = "webhook";
inline constexpr std::string_view kChannelAnnotation = "annotation";
}  // namespace inj

// Reads the identity fields from a Pod object (metadata only).
PodIdentity podIdentityOf(const nlohmann::json& pod);

// True if the pod already carries our injection record (any channel).
bool alreadyInjected(const nlohmann::json& pod);

// Argo's containers that never run user code.
bool isArgoAuxiliaryContainer(std::string_view name);

struct InjectionPlan {
  nlohmann::json patch = nlohmann::json::array();  // RFC 6902 operations
  std::map<std::string, std::string> annotations;  // the record (both channels)
  std::vector<std::string> items;                  // "env", "executor-input", "placeholder"
  int containersTouched = 0;
  bool empty() const { return items.empty(); }
};

// Builds the webhook's patch. `injectedAt` is an RFC 3339 time. A pod with no
// user code yields a plan with no items (and an empty patch).
InjectionPlan planInjection(const nlohmann::json& pod, const ExitTaskTarget& target,
                            const ExitTaskState& state, std::string_view injectedAt);

// The annotations alone (pod-annotation channel).
std::map<std::string, std::string> injectionAnnotations(const ExitTaskState& state,
                                                        std::string_view channel,
                                                        std::string_view items,
                                                        std::string_view injectedAt);

// Rewrites one ExecutorInput JSON text. Returns the new text, or "" when
// nothing changed (not an ExecutorInput, or no matching parameter).
// `finalStatusParams` names TASK_FINAL_STATUS inputs (may be empty: then
// recognised by shape). Sets *rewroteFinalStatus / *replacedPlaceholder.
std::string rewriteExecutorInput(
    std::string_view executorInput, const std::vector<std::string>& finalStatusParams,
    const ExitTaskState& state,
    const std::vector<std::pair<std::string, std::string>>& placeholders, bool* rewroteFinalStatus,
    bool* replacedPlaceholder);

// TASK_FINAL_STATUS input names from a ComponentSpec JSON (camelCase or snake_case).
std::vector<std::string> finalStatusParamsOf(std::string_view componentSpecJson);

// "a/b" -> "a~1b" (RFC 6901).
std::string jsonPointerEscape(std::string_view s);

}  // namespace exitrec
