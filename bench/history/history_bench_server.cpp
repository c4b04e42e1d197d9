// history_bench_server: a KFP API server (sim/kfp/kfp_history_api.h) seeded
// with a synthetic run history, for the run-history benchmark
// (bench/history/run_history_bench.sh) and manual tries.
//
//   history_bench_server [--runs N] [--port P] [--multi-user NS] [--seed S]
//
// Runs are KFP 2.0–2.3 runs of 20 to 2,000 nodes (log-uniform over 24 sizes,
// bench/synthetic_workflow.h); one in three had a failed body and is
// mis-reported. Manifests are rendered per request from one template per size
// (the run id written into the template's pipeline/runid label), so 100,000
// runs take little memory; each is copied once, into the response body, on
// the server's worker threads (the simulator is the fixture: it should not
// be what both sides of the benchmark wait for). Prints the base URL on stdout, then serves until
// stdin closes.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bench/synthetic_workflow.h"
#include "sim/kfp/kfp_history_api.h"

namespace {

constexpr std::string_view kTemplateRunId = "5b2c1a7e-3d4f-4e5a-9b6c-7d8e9f0a1b2c";

std::string runIdFor(std::size_t i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%08x-0000-4000-8000-%012x", static_cast<unsigned>(i),
                static_cast<unsigned>(i));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t runs = 100000;
  int port = 0;
  std::string multiUserNs;
  unsigned seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    std::string value = argv[i + 1];
    if (flag == "--runs") {
      runs = std::stoul(value);
    } else if (flag == "--port") {
      port = std::stoi(value);
    } else if (flag == "--multi-user") {
      multiUserNs = value;
    } else if (flag == "--seed") {
      seed = static_cast<unsigned>(std::stoul(value));
    } else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  constexpr int kSizes = 24;
  struct Template {
    std::string json;
    std::size_t runIdAt;
  };
  std::vector<Template> templates;  // [size][outcome]
  for (int s = 0; s < kSizes; ++s) {
    const int nodes = static_cast<int>(std::lround(20.0 * std::pow(100.0, s / (kSizes - 1.0))));
    for (auto outcome :
         {exitrec::bench::RunOutcome::kSucceeded, exitrec::bench::RunOutcome::kBodyFailed}) {
      Template t;
      t.json = exitrec::bench::makeWorkflow(nodes, exitrec::bench::KeyOrder::kApiServer, outcome);
      // The JSON string literal KFP sends (the run id has nothing to escape).
      t.json = nlohmann::json(t.json).dump();
      t.runIdAt = t.json.find(kTemplateRunId);
      if (t.runIdAt == std::string::npos) {
        std::cerr << "template without the run id label\n";
        return 1;
      }
      templates.push_back(std::move(t));
    }
  }
  exitrec::KfpHistoryApi::Options options;
  options.multiUser = !multiUserNs.empty();
  exitrec::KfpHistoryApi api(options);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> size(0, kSizes - 1);
  std::uniform_int_distribution<int> outcome(0, 2);
  std::vector<std::uint8_t> templateOf(runs);
  for (std::size_t i = 0; i < runs; ++i) {
    const int t = size(rng) * 2 + (outcome(rng) == 0 ? 1 : 0);
    templateOf[i] = static_cast<std::uint8_t>(t);
    exitrec::KfpHistoryApi::HistoryRun run;
    run.runId = runIdFor(i);
    run.displayName = "bench-" + std::to_string(i);
    run.ns = multiUserNs.empty() ? "kubeflow" : multiUserNs;
    run.state = "SUCCEEDED";
    run.createdAt = 1767225600 + static_cast<std::int64_t>(i) * 60;
    run.finishedAt = run.createdAt + 300;
    api.addRun(std::move(run));
  }
  api.setEncodedManifestProvider(
      [&](const exitrec::KfpHistoryApi::HistoryRun& run, std::string& out) {
        const std::size_t index = std::stoul(run.runId.substr(0, 8), nullptr, 16);
        const Template& t = templates[templateOf[index]];
        // One copy of the template, straight into the response body.
        const std::size_t at = out.size();
        out.reserve(at + t.json.size() + 2);
        out += t.json;
        out.replace(at + t.runIdAt, kTemplateRunId.size(), run.runId);
        return true;
      });
  if (auto s = api.start("127.0.0.1", port, 32); !s) {
    std::cerr << "cannot start: " << s.error().message << "\n";
    return 1;
  }
  std::cout << api.baseUrl() << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  api.stop();
  return 0;
}
