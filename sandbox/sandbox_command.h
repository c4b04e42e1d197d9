#pragma once
// exit-reconciler-sandbox: the controller against in-process Kubernetes and
// KFP API simulators seeded with sample runs; prints a before/after table.
// argv[0] is the program; the flags follow (see --help).

namespace exitrec {

int runSandbox(int argc, char** argv);

}  // namespace exitrec
