// exit-reconciler-sandbox: the development sandbox (scripts/sandbox.sh runs
// it). It links both API simulators, so it is built beside them and never
// installed: the product binaries (exit-reconciler, exit-reconciler-operator)
// and the image carry no simulator code (test/manifests/
// check_product_binaries.py).
#include <malloc.h>

#include "sandbox/sandbox_command.h"

int main(int argc, char** argv) {
  // As in exit-reconciler-operator (controller/operator_main.cpp): the
  // controller runs in-process here, with the same allocator settings.
  mallopt(M_ARENA_MAX, 2);
  return exitrec::runSandbox(argc, argv);
}
