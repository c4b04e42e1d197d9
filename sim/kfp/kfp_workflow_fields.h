#pragma once
// Checked reads of the Workflow fields KFP's report path looks at
// (util.Workflow accessors in backend/src/common/util/workflow.go). The
// reported body is hostile: every accessor tolerates missing or mistyped
// fields. Pure functions, thread-safe.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/rfc3339.h"

namespace exitrec::kfpsim {

inline constexpr std::string_view kLabelRunId = "pipeline/runid";
inline constexpr std::string_view kLabelPersistedFinalState = "pipeline/persistedFinalState";
inline constexpr std::string_view kAnnotationRetryGeneration =
    "pipelines.kubeflow.org/retry-generation";

// wf.metadata.<field>.<key> when it is a string.
std::optional<std::string> metaMapValue(const nlohmann::json& wf, std::string_view field,
                                        std::string_view key);
std::string metaString(const nlohmann::json& wf, std::string_view key);
std::string statusString(const nlohmann::json& wf, std::string_view key);

// A type error the Go unmarshaller would reject (labels not a string map, ...),
// or "" when the Workflow decodes.
std::string decodeProblem(const nlohmann::json& wf);

// Workflow.ScheduledWorkflowUUIDAsStringOrEmpty: the uid of an owner
// reference with apiVersion kubeflow.org/v1beta1, kind ScheduledWorkflow.
std::string scheduledWorkflowUid(const nlohmann::json& wf);

// Workflow.IsInFinalState: phase Succeeded, Failed or Error.
bool isFinalPhase(std::string_view phase);
// Workflow.IsTerminating: spec.activeDeadlineSeconds == 0 and not final.
bool isTerminating(const nlohmann::json& wf);

// RFC 3339 (as metav1.Time decodes it) to Unix seconds; nullopt if absent or
// unparsable: common/rfc3339.h.
using ::exitrec::parseRfc3339Seconds;
// Workflow.FinishedAt: status.finishedAt in Unix seconds, 0 when unset.
std::int64_t finishedAtSeconds(const nlohmann::json& wf);

// resource_manager.go reportedRetryGeneration (master): the annotation as an
// int64, 0 when absent or malformed.
std::int64_t retryGeneration(const nlohmann::json& wf);

}  // namespace exitrec::kfpsim
