#pragma once
// `exit-reconciler run`: the operator process.

#include <functional>

#include "controller/run_config.h"
#include "runtime/stop_source.h"

namespace exitrec {

// Entry point for the subcommand table (argv[0] == "run").
int runRun(int argc, char** argv);

// Runs the controller as a composition of components under the Manager
// (runtime/manager.h) until `stop` is requested (runRun requests it on
// SIGTERM/SIGINT), then shuts down: leader-only work stopped (in-flight work
// finished or handed back), lease released, watches and servers stopped.
// Returns the process exit code: 0 after a requested stop, 1 when startup
// failed. When leadership is lost without
// being given up (a renewal failed or stalled past the renew deadline) it
// does not return: the process exits with status 1 at once, without draining
// (leader-only writes are already refused by the lease fence).
struct RunHooks {
  // Called once the controller is serving (ports bound, informer started).
  std::function<void(int healthPort, int metricsPort)> onServing;
};
int runController(const RunConfig& config, StopSource& stop, const RunHooks& hooks = {});

}  // namespace exitrec
