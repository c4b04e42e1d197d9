#pragma once
// Names and one-line summaries of exit-reconciler's subcommands, shared by the
// two binaries that serve them so their `--help` listings cannot drift:
// - exit-reconciler (controller/main.cpp): the launcher users and the image
//   run. It serves `audit` itself and exec()s the operator for the rest.
// - exit-reconciler-operator (controller/operator_main.cpp): `run` and
//   `backfill` (and `audit`, same code), with the HTTP, TLS and metrics stack.
// The sandbox is not one of them: it is the development binary
// exit-reconciler-sandbox (sandbox/), so no simulator ships in the image.

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

// `sandbox` was a subcommand until it moved out of the product binaries. Both
// binaries answer it (and `help sandbox`) with kSandboxMoved and exit with
// cli::kExitUsage, instead of a bare "unknown command".
inline constexpr std::string_view kSandbox = "sandbox";
inline constexpr std::string_view kSandboxMoved =
    "`sandbox` is not part of exit-reconciler: the sandbox is the development binary "
    "exit-reconciler-sandbox (build/sandbox/exit-reconciler-sandbox in a source checkout), "
    "started with scripts/sandbox.sh";

// True when argv asks for the sandbox: `PROGRAM sandbox ...` or
// `PROGRAM help sandbox`.
inline bool asksForSandbox(int argc, char** argv) {
  if (argc >= 2 && argv[1] != nullptr && argv[1] == kSandbox)
    return true;
  return argc >= 3 && argv[1] != nullptr && argv[2] != nullptr &&
         std::string_view(argv[1]) == "help" && argv[2] == kSandbox;
}

}  // namespace exitrec::subcommands
