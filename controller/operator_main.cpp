// exit-reconciler-operator: the long-running half of exit-reconciler, with
// the Kubernetes client, HTTP/TLS servers and metrics. Normally started by
// `exit-reconciler run|backfill` (controller/main.cpp exec()s it with argv
// unchanged); `audit` is served here too, by the same code, so this binary
// alone still does every job. It links no simulator: the sandbox is the
// development binary exit-reconciler-sandbox (sandbox/).
#include <malloc.h>

#include <array>
#include <iostream>

#include "controller/audit.h"
#include "controller/backfill.h"
#include "controller/cli.h"
#include "controller/history_audit.h"
#include "controller/run_command.h"
#include "controller/subcommands.h"

namespace {

namespace sub = exitrec::subcommands;

constexpr std::array kCommands = {
    exitrec::cli::Subcommand{sub::kAudit, sub::kAuditSummary, &exitrec::runAuditCommand},
    exitrec::cli::Subcommand{sub::kBackfill, sub::kBackfillSummary, &exitrec::runBackfill},
    exitrec::cli::Subcommand{sub::kRun, sub::kRunSummary, &exitrec::runRun},
};

}  // namespace

int main(int argc, char** argv) {
  // Large list/watch bodies are read on cpprest's pool threads; with glibc's
  // default of one arena per thread their buffers stay resident after use.
  // Two arenas keep steady-state memory per watched workflow under 4 KiB
  // (bench/k8sclient/informer_bench, docs/k8sclient.md#benchmark).
  mallopt(M_ARENA_MAX, 2);
  if (sub::asksForSandbox(argc, argv)) {
    std::cerr << sub::kOperator << ": error: " << sub::kSandboxMoved << "\n";
    return exitrec::cli::kExitUsage;
  }
  return exitrec::cli::dispatch(sub::kOperator, sub::kDescription, kCommands, argc, argv, std::cout,
                                std::cerr);
}
