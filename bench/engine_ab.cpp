// engine_ab: this tree's engine (A) against another tree's (B, built from
// EXITREC_AB_BASE), side by side in one process, with the floor as a yardstick.
//
//   engine_ab [--order api|argo|tree] [--run failed|succeeded] [--sizes 1000,10000]
//             [--seconds S]
//
// Run it through scripts/engine-ab.sh BASE_REF. Each round times the floor,
// then A and B in alternating order, so load bursts and the cache state left
// by the previous call fall on both alike. Per size it prints the medians over
// rounds of A/floor, B/floor and A/B within a round. Comparing separate
// processes on this shared machine moves by 5-10 % from run to run; within one
// process A/B repeats to about 1 %, but an identical pair is not exactly 1:
// code placement alone gives a bias of up to 2 % (see docs/benchmarks.md), so
// run the base against itself before believing a small difference.
#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/synthetic_workflow.h"

namespace exitrec_base::bench {
// bench/engine_evaluate.cpp compiled against EXITREC_AB_BASE.
bool engineEvaluate(const std::shared_ptr<const simdjson::padded_string>& text);
}  // namespace exitrec_base::bench

namespace {

using Clock = std::chrono::steady_clock;

template <typename Fn>
double secondsOf(Fn&& fn) {
  const auto start = Clock::now();
  fn();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int usage() {
  std::fprintf(stderr,
               "usage: engine_ab [--order api|argo|tree] [--run failed|succeeded] "
               "[--sizes N,N,...] [--seconds S]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using exitrec::bench::KeyOrder;
  KeyOrder order = KeyOrder::kApiServer;
  std::string orderName = "api";
  auto outcome = exitrec::bench::RunOutcome::kBodyFailed;
  std::string outcomeName = "failed";
  std::vector<int> sizes = {1000, 10000};
  double seconds = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc)
      return usage();
    const std::string value = argv[++i];
    if (arg == "--order" && exitrec::bench::parseKeyOrder(value)) {
      orderName = value;
      order = *exitrec::bench::parseKeyOrder(value);
    } else if (arg == "--run" && (value == "failed" || value == "succeeded")) {
      outcomeName = value;
      outcome = value == "failed" ? exitrec::bench::RunOutcome::kBodyFailed
                                  : exitrec::bench::RunOutcome::kSucceeded;
    } else if (arg == "--sizes") {
      sizes.clear();
      std::stringstream list(value);
      for (std::string n; std::getline(list, n, ',');)
        sizes.push_back(std::stoi(n));
    } else if (arg == "--seconds") {
      seconds = std::stod(value);
    } else {
      return usage();
    }
  }

  std::printf(
      "engine_ab: A = this tree's engine, B = the base's; medians over rounds of the "
      "ratio within a round; key order %s, run %s\n",
      orderName.c_str(), outcomeName.c_str());
  std::printf("%7s %8s %8s %8s %7s\n", "nodes", "A/floor", "B/floor", "A/B", "rounds");
  for (int target : sizes) {
    auto text = std::make_shared<const simdjson::padded_string>(
        exitrec::bench::makeWorkflow(target, order, outcome));
    const bool verdictA = exitrec::bench::engineEvaluate(text);
    if (verdictA != exitrec_base::bench::engineEvaluate(text)) {
      std::fprintf(stderr, "engine_ab: A and B disagree on whether the run is mis-reported\n");
      return 1;
    }
    simdjson::ondemand::parser parser;
    std::size_t sink = 0;
    std::vector<double> aOverFloor;
    std::vector<double> bOverFloor;
    std::vector<double> aOverB;
    const auto start = Clock::now();
    for (int round = 0;
         round < 20 || std::chrono::duration<double>(Clock::now() - start).count() < seconds;
         ++round) {
      const double floor = secondsOf([&] { sink += exitrec::bench::floorScan(parser, *text); });
      double a = 0;
      double b = 0;
      auto timeA = [&] { a = secondsOf([&] { sink += exitrec::bench::engineEvaluate(text); }); };
      auto timeB = [&] {
        b = secondsOf([&] { sink += exitrec_base::bench::engineEvaluate(text); });
      };
      if (round % 2 == 0) {
        timeA();
        timeB();
      } else {
        timeB();
        timeA();
      }
      aOverFloor.push_back(a / floor);
      bOverFloor.push_back(b / floor);
      aOverB.push_back(a / b);
    }
    std::printf("%7d %8.3f %8.3f %8.4f %7zu%s\n", target, exitrec::bench::medianOf(aOverFloor),
                exitrec::bench::medianOf(bOverFloor), exitrec::bench::medianOf(aOverB),
                aOverB.size(), sink == 0 ? " " : "");
  }
  return 0;
}
