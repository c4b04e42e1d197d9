#pragma once
// `exit-reconciler run`: the operator process.

#include <atomic>
#include <functional>

#include "controller/run_config.h"

namespace exitrec {

// Entry point for the subcommand table (argv[0] == "run").
int runRun(int argc, char** argv);

// Runs the controller until `stop` turns true (or SIGTERM/SIGINT when
// `handleSignals`), then shuts down: watches stopped, in-flight work finished
// or handed back, lease released. Returns the process exit code: 0 after a
// requested stop, 1 when startup failed. When leadership is lost without
// being given up (a renewal failed or stalled past the renew deadline) it
// does not return: the process exits with status 1 at once, without draining
// (leader-only writes are already refused by the lease fence).
struct RunHooks {
  // Called once the controller is serving (ports bound, informer started).
  std::function<void(int healthPort, int metricsPort)> onServing;
};
int runController(const RunConfig& config, std::atomic<bool>& stop, bool handleSignals,
                  const RunHooks& hooks = {});

}  // namespace exitrec
