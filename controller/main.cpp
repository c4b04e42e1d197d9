// exit-reconciler: one binary, one subcommand per job. Each subcommand lives
// in its own file with an `int runX(int argc, char** argv)` entry point.
#include <malloc.h>

#include <array>
#include <iostream>

#include "controller/audit.h"
#include "controller/cli.h"
#include "controller/run_command.h"
#include "controller/sandbox_command.h"

namespace {

constexpr std::array kCommands = {
    exitrec::cli::Subcommand{"audit",
                             "evaluate Workflows from files or stdin; report mis-reported runs",
                             &exitrec::runAudit},
    exitrec::cli::Subcommand{"run", "run the controller: watch KFP runs, correct mis-reported ones",
                             &exitrec::runRun},
    exitrec::cli::Subcommand{"sandbox",
                             "run the controller against simulated Kubernetes and KFP APIs "
                             "seeded with sample runs",
                             &exitrec::runSandbox},
};

}  // namespace

int main(int argc, char** argv) {
  // Large list/watch bodies are read on cpprest's pool threads; with glibc's
  // default of one arena per thread their buffers stay resident after use.
  // Two arenas keep steady-state memory per watched workflow under 4 KiB
  // (bench/k8sclient/informer_bench, docs/k8sclient.md#benchmark).
  mallopt(M_ARENA_MAX, 2);
  return exitrec::cli::dispatch(
      "exit-reconciler",
      "kfp-exit-reconciler: makes Kubeflow Pipelines report the true outcome of runs that use "
      "dsl.ExitHandler.",
      kCommands, argc, argv, std::cout, std::cerr);
}
