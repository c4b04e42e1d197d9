// metrics_e2e_target: serves a real Metrics registry on 127.0.0.1:<random>
// and applies the events it reads from stdin through the public Metrics API,
// so that test/manifests/prometheus_e2e.py can check the shipped alert rules
// with a real Prometheus server scraping a real exposer.
//
// stdout: "port <N>" once serving, then "ok" after each applied command.
// stdin commands (one per line):
//   leader <0|1>
//   misreport <generation> <cause>   a run found mis-reported and corrected:
//                                    runs_evaluated, misreported, exit_handlers,
//                                    every correction step successful, latency
//   quit
#include <iostream>
#include <sstream>
#include <string>

#include "metrics/metrics.h"
#include "metrics/server.h"

int main() {
  using namespace exitrec;
  Metrics metrics;
  metrics.queue("workflows");
  auto server = MetricsServer::start(metrics, "127.0.0.1:0");
  if (!server.ok()) {
    std::cerr << "metrics_e2e_target: " << server.error().describe() << "\n";
    return 1;
  }
  std::cout << "port " << (*server)->port() << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "quit")
      break;
    if (cmd == "leader") {
      int value = 0;
      in >> value;
      metrics.setLeader(value != 0);
    } else if (cmd == "misreport") {
      std::string generation, cause;
      in >> generation >> cause;
      metrics.runEvaluated(generation, RunVerdict::kMisreported);
      metrics.exitHandlerObserved(generation, "Failed", "Succeeded");
      metrics.misreportDetected(generation, cause);
      metrics.correctionStep(CorrectionStep::kWorkflowPatch, StepResult::kSuccess);
      metrics.correctionStep(CorrectionStep::kKfpReport, StepResult::kSuccess);
      metrics.correctionStep(CorrectionStep::kKfpVerify, StepResult::kSuccess);
      metrics.correctionStep(CorrectionStep::kEvent, StepResult::kSuccess);
      metrics.observeCorrectionLatency(1.5);
    } else {
      std::cerr << "metrics_e2e_target: unknown command \"" << line << "\"\n";
      return 64;
    }
    std::cout << "ok" << std::endl;
  }
  return 0;
}
