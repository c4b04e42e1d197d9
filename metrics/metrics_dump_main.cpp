// exit-reconciler-metrics-dump: prints /metrics of a fresh Metrics object, as
// the controller exposes it right after start (its "workflows" queue
// registered, standby: leader status 0). Used by the dashboard and alert-rule
// consistency tests, and handy for reviewing metric names.
#include <cstdio>
#include <cstring>
#include <string>

#include "metrics/metrics.h"

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::printf(
          "usage: exit-reconciler-metrics-dump\n"
          "Prints the Prometheus text exposition of a freshly started controller's\n"
          "metrics registry (all families, zero-valued series).\n");
      return 0;
    }
    std::fprintf(stderr, "exit-reconciler-metrics-dump: unknown argument \"%s\"\n", argv[i]);
    return 64;
  }
  exitrec::Metrics metrics;
  metrics.queue("workflows");
  std::string text = metrics.exposition();
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}
