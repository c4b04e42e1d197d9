// engine_bench: how fast the engine reads and evaluates big KFP Workflows,
// against the floor (simdjson On-Demand parse + scan of every node's phase)
// and against a plain nlohmann DOM parse, all in this one process.
//
//   engine_bench [--sizes 100,1000,10000,50000] [--min-seconds S] [--order ORDER]
//   engine_bench --write FILE --nodes N [--order ORDER]  (writes one synthetic workflow)
//   engine_bench --profile N [--min-seconds S | --iterations K] [--order ORDER]
//                                  (only the engine, in a loop, for perf or callgrind)
//
// ORDER is the key order of the synthetic workflow: api (the default, what
// the API server serves), argo or tree; see bench/synthetic_workflow.h.
#include <malloc.h>
#include <simdjson.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bench/synthetic_workflow.h"
#include "engine/json_reader.h"
#include "engine/outcome.h"
#include "engine/workflow.h"

namespace {

using Clock = std::chrono::steady_clock;
using exitrec::bench::engineEvaluate;
using exitrec::bench::floorScan;
using exitrec::bench::KeyOrder;
using exitrec::bench::makeWorkflow;
using exitrec::bench::medianOf;
using exitrec::bench::parseKeyOrder;

// Median wall time of fn() in seconds, over at least `minReps` runs and at
// least `minSeconds` in total (after one warm-up run).
double timeMedian(const std::function<void()>& fn, int minReps, double minSeconds) {
  fn();
  std::vector<double> samples;
  auto start = Clock::now();
  while (static_cast<int>(samples.size()) < minReps ||
         std::chrono::duration<double>(Clock::now() - start).count() < minSeconds) {
    auto t0 = Clock::now();
    fn();
    samples.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    if (samples.size() >= 1000)
      break;
  }
  return medianOf(samples);
}

// Several functions timed round-robin (one call of each per round), so a
// burst of load on the shared machine hits all of them alike. Returns each
// one's median, and the median over rounds of each one's time divided by the
// first one's in the same round (the paired ratio: the least noisy estimate
// when the machine's speed drifts between seconds).
struct InterleavedTimes {
  std::vector<double> medians;
  std::vector<double> pairedRatios;  // [0] is 1
};
InterleavedTimes timeInterleaved(const std::vector<std::function<void()>>& fns, int minReps,
                                 double minSeconds) {
  std::vector<std::vector<double>> samples(fns.size());
  for (const auto& fn : fns)
    fn();
  auto start = Clock::now();
  while (static_cast<int>(samples[0].size()) < minReps ||
         std::chrono::duration<double>(Clock::now() - start).count() < minSeconds) {
    for (std::size_t i = 0; i < fns.size(); ++i) {
      auto t0 = Clock::now();
      fns[i]();
      samples[i].push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    if (samples[0].size() >= 1000)
      break;
  }
  InterleavedTimes out;
  for (std::size_t i = 0; i < fns.size(); ++i) {
    std::vector<double> ratios;
    for (std::size_t r = 0; r < samples[i].size(); ++r)
      ratios.push_back(samples[i][r] / samples[0][r]);
    out.pairedRatios.push_back(medianOf(ratios));
    out.medians.push_back(medianOf(samples[i]));
  }
  return out;
}

long residentBytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0;
  long resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// Peak memory fn() adds on top of the process as it is: run in a forked
// child, peak RSS minus the RSS at the start of the child.
double extraPeakMb(const std::function<void()>& fn) {
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    malloc_trim(0);  // give back heap pages freed by earlier runs, so they are not reused unseen
    long before = residentBytes();
    fn();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    double mb = (static_cast<double>(ru.ru_maxrss) * 1024.0 - static_cast<double>(before)) / 1e6;
    ssize_t w = write(fds[1], &mb, sizeof mb);
    _exit(w == sizeof mb ? 0 : 1);
  }
  close(fds[1]);
  double mb = -1;
  if (read(fds[0], &mb, sizeof mb) != sizeof mb)
    mb = -1;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return mb;
}

int writeFile(const std::string& path, int nodes, KeyOrder order) {
  std::string text = makeWorkflow(nodes, order);
  std::ofstream(path, std::ios::binary) << text;
  std::printf("wrote %s: %d target nodes, %.1f MB\n", path.c_str(), nodes,
              static_cast<double>(text.size()) / 1e6);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes = {100, 1000, 10000, 50000};
  double minSeconds = 0.5;
  std::string writePath;
  int writeNodes = 50000;
  int profileNodes = 0;
  int iterations = 0;  // --profile: a fixed count instead of a duration (for callgrind)
  KeyOrder order = KeyOrder::kApiServer;
  std::string orderName = "api";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--sizes") {
      sizes.clear();
      std::stringstream ss(next());
      for (std::string s; std::getline(ss, s, ',');)
        sizes.push_back(std::stoi(s));
    } else if (a == "--min-seconds") {
      minSeconds = std::stod(next());
    } else if (a == "--write") {
      writePath = next();
    } else if (a == "--profile") {
      profileNodes = std::stoi(next());
    } else if (a == "--iterations") {
      iterations = std::stoi(next());
    } else if (a == "--nodes") {
      writeNodes = std::stoi(next());
    } else if (a == "--order" && parseKeyOrder(orderName = next())) {
      order = *parseKeyOrder(orderName);
    } else {
      std::fprintf(
          stderr,
          "usage: engine_bench [--sizes N,N,...] [--min-seconds S] | --write FILE "
          "[--nodes N] | --profile N [--iterations K]; all take [--order api|argo|tree]\n");
      return 2;
    }
  }
  if (!writePath.empty())
    return writeFile(writePath, writeNodes, order);
  if (profileNodes > 0) {
    // Only (c), in a loop, for `perf record`.
    auto owned = std::make_shared<const simdjson::padded_string>(makeWorkflow(profileNodes, order));
    std::size_t hits = 0;
    auto start = Clock::now();
    for (int i = 0; iterations > 0 ? i < iterations
                                   : std::chrono::duration<double>(Clock::now() - start).count() <
                                         minSeconds * 10;
         ++i) {
      hits += engineEvaluate(owned) ? 1 : 0;
    }
    std::printf("%zu evaluations\n", hits);
    return 0;
  }

  std::printf(
      "engine_bench: median per workflow; (a) simdjson On-Demand parse + scan of every "
      "node's phase (floor), (b) nlohmann DOM parse, (c) engine readWorkflows (same padded buffer, "
      "in place) + "
      "evaluate; c' = c with the nodes map read by the validating On-Demand decoder instead of "
      "the structural-index scan; a, c, c' timed round-robin; c/a pair = median over rounds of "
      "c/a within a round; peak = extra RSS of one run in a forked child; key order: %s\n\n",
      orderName.c_str());
  std::printf("%7s %8s %10s %10s %10s %8s %8s %9s %10s %9s %9s %9s %8s %9s\n", "nodes", "MB",
              "a ms", "b ms", "c ms", "c/a", "c/b", "c MB/s", "c ns/node", "peak a", "peak b",
              "peak c", "c'/a", "c/a pair");
  double nsPerNode1k = 0;
  double ratio1k = 0;
  double worstScaling = 0;
  double worstRelative = 0;
  bool ok = true;
  for (int target : sizes) {
    std::string text = makeWorkflow(target, order);
    auto parsed = exitrec::parseWorkflowJson(text);
    if (!parsed.ok()) {
      std::fprintf(stderr, "engine rejected the synthetic workflow: %s\n",
                   parsed.error().message.c_str());
      return 1;
    }
    std::size_t nodes = parsed->nodes.size();
    if (!exitrec::evaluate(*parsed).misreported) {
      std::fprintf(stderr, "synthetic run not found mis-reported: %s\n",
                   exitrec::verdictToJson(exitrec::evaluate(*parsed)).c_str());
      return 1;
    }
    auto owned = std::make_shared<const simdjson::padded_string>(text);
    const simdjson::padded_string& padded = *owned;
    simdjson::ondemand::parser parser;
    std::size_t sink = 0;
    int reps = nodes <= 1000 ? 50 : nodes <= 10000 ? 15 : 7;
    // a, c and c' (c with the nodes map read by the validating On-Demand
    // decoder instead of the structural-index scan) side by side.
    InterleavedTimes acv = timeInterleaved(
        {[&] { sink += floorScan(parser, padded); }, [&] { sink += engineEvaluate(owned) ? 1 : 0; },
         [&] {
           exitrec::setNodeScanFastPath(false);
           sink += engineEvaluate(owned) ? 1 : 0;
           exitrec::setNodeScanFastPath(true);
         }},
        reps, minSeconds);
    double a = acv.medians[0];
    double c = acv.medians[1];
    double cValidating = acv.medians[2];
    double cPaired = acv.pairedRatios[1];
    double b = timeMedian([&] { sink += nlohmann::json::parse(text).size(); }, reps, minSeconds);
    double peakA = extraPeakMb([&] {
      simdjson::ondemand::parser p;
      sink += floorScan(p, padded);
    });
    double peakB = extraPeakMb([&] { sink += nlohmann::json::parse(text).size(); });
    double peakC = extraPeakMb([&] { sink += engineEvaluate(owned) ? 1 : 0; });
    double nsPerNode = c * 1e9 / static_cast<double>(nodes);
    const double megabytes = static_cast<double>(text.size()) / 1e6;
    if (target == 1000) {
      nsPerNode1k = nsPerNode;
      ratio1k = c / a;
    }
    if (nsPerNode1k > 0 && target >= 10000) {
      worstScaling = std::max(worstScaling, nsPerNode / nsPerNode1k);
      worstRelative = std::max(worstRelative, (c / a) / ratio1k);
    }
    if (target >= 1000 && c > 2 * a)
      ok = false;
    std::printf(
        "%7zu %8.2f %10.3f %10.3f %10.3f %8.2f %8.2f %9.0f %10.0f %8.1fM %8.1fM %8.1fM %8.2f "
        "%9.2f\n",
        nodes, megabytes, a * 1e3, b * 1e3, c * 1e3, c / a, c / b, megabytes / c, nsPerNode, peakA,
        peakB, peakC, cValidating / a, cPaired);
    if (sink == 0)
      std::printf(" ");  // keeps the work observable
  }
  std::printf("\ntarget c <= 2 x a for >= 1k nodes: %s\n", ok ? "met" : "MISSED");
  if (worstScaling > 0) {
    // The floor (a) is linear by construction, so c/a growing with size is what
    // would show a super-linear walk; raw ns/node also moves with cache and load.
    std::printf(
        "scaling: c ns/node at >= 10k nodes is at most %.2f x that at 1k nodes; c/a at most "
        "%.2f x its 1k value (%s)\n",
        worstScaling, worstRelative, worstRelative <= 1.5 ? "linear" : "NOT linear");
  }
  return 0;
}
