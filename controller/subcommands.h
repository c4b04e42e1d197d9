#pragma once
// Names and one-line summaries of exit-reconciler's subcommands, shared by the
// two binaries that serve them so their `--help` listings cannot drift:
// - exit-reconciler (controller/main.cpp): the launcher users and the image
//   run. It serves `audit` itself and exec()s the operator for the rest.
// - exit-reconciler-operator (controller/operator_main.cpp): `run` and
//   `sandbox` (and `audit`, same code), with the HTTP, TLS and metrics stack.

#include <string_view>

namespace exitrec::subcommands {

inline constexpr std::string_view kLauncher = "exit-reconciler";
inline constexpr std::string_view kOperator = "exit-reconciler-operator";

inline constexpr std::string_view kDescription =
    "kfp-exit-reconciler: makes Kubeflow Pipelines report the true outcome of runs that use "
    "dsl.ExitHandler.";

inline constexpr std::string_view kAudit = "audit";
inline constexpr std::string_view kAuditSummary =
    "evaluate Workflows from files or stdin, or KFP's run history (--kfp-api-url); report "
    "mis-reported runs";
inline constexpr std::string_view kBackfill = "backfill";
inline constexpr std::string_view kBackfillSummary =
    "correct past KFP runs whose Workflow is gone, from KFP's stored manifests (dry run by "
    "default)";
inline constexpr std::string_view kRun = "run";
inline constexpr std::string_view kRunSummary =
    "run the controller: watch KFP runs, correct mis-reported ones";
inline constexpr std::string_view kSandbox = "sandbox";
inline constexpr std::string_view kSandboxSummary =
    "run the controller against simulated Kubernetes and KFP APIs seeded with sample runs";

}  // namespace exitrec::subcommands
