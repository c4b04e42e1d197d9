// `exit-reconciler sandbox`: the whole system on one machine with nothing to
// prepare. Starts the Kubernetes API simulator and the KFP API simulator
// in-process, seeds them with the sample runs (samples/*.json: every KFP
// generation, mis-reported and healthy, plus plain Argo) and one KFP 2.3 run
// that is still running and completes, mis-reported, a few seconds later;
// the KFP simulator first receives each run's phase as KFP's persistence agent
// reported it. Then it runs the controller against them, prints a before/after
// table and keeps /metrics up until Ctrl-C (or exits with
// --exit-after-report).

#include "controller/sandbox_command.h"

#include <spdlog/spdlog.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "controller/cli.h"
#include "controller/logging.h"
#include "controller/run_command.h"
#include "engine/outcome.h"
#include "k8sclient/cpprest_transport.h"
#include "k8sclient/kube_client.h"
#include "sim/kfp/kfp_api_simulator.h"
#include "sim/kfp/kfp_run_factory.h"
#include "sim/kube_api_simulator.h"

#ifndef EXITREC_SAMPLES_DIR
#define EXITREC_SAMPLES_DIR "samples"
#endif

namespace exitrec {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kKfpToken = "sandbox-kfp-token";

struct SeededRun {
  std::string ns, name, runId, generation, reported, truePhase, kfpBefore;
  bool misreported = false;
  bool lateCompletion = false;
};

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string annotationOf(const json& wf, const char* key) {
  if (!wf.is_object())
    return "";
  auto m = wf.find("metadata");
  if (m == wf.end())
    return "";
  auto a = m->find("annotations");
  if (a == m->end() || !a->is_object())
    return "";
  auto v = a->find(key);
  return v == a->end() ? "" : v->get<std::string>();
}

// What KFP's persistence agent would have reported when the run finished.
void agentReport(KfpApiSimulator& kfp, const std::string& workflowJson) {
  kfp.handle("POST", "/apis/v1beta1/workflows", std::string("Bearer ") + kKfpToken,
             json(workflowJson).dump());
}

volatile std::sig_atomic_t gInterrupted = 0;
void onInterrupt(int) {
  gInterrupted = 1;
}

}  // namespace

int runSandbox(int argc, char** argv) {
  cli::FlagParser parser(
      "exit-reconciler sandbox", "",
      "Runs the controller against a simulated Kubernetes API and KFP API seeded with sample "
      "runs of every KFP generation, prints a before/after table, and keeps /metrics up until "
      "Ctrl-C.");
  parser.add({"samples", "DIR", "sample Workflow JSON files to seed", "EXIT_RECONCILER_SAMPLES",
              EXITREC_SAMPLES_DIR});
  parser.add({"metrics-addr", "ADDR", "serve the controller's /metrics here",
              "EXIT_RECONCILER_METRICS_ADDR", "127.0.0.1:9090"});
  parser.add({"complete-after", "DURATION", "when the still-running run completes", "", "3s"});
  cli::FlagSpec exitAfter{
      "exit-after-report", "", "exit once the table is printed (CI)", "", "", {}, true};
  parser.add(exitAfter);
  parser.add({"log-level",
              "LEVEL",
              "controller log level",
              "",
              "warn",
              {"trace", "debug", "info", "warn", "error"}});
  auto args = parser.parse(std::span<char* const>(argv + 1, static_cast<std::size_t>(argc - 1)));
  if (!args)
    return cli::usageError(std::cerr, parser, args.error());
  if (args->helpRequested()) {
    std::cout << parser.help();
    return cli::kExitOk;
  }
  auto completeAfter = args->getDuration("complete-after");
  if (!completeAfter)
    return cli::usageError(std::cerr, parser, completeAfter.error());
  if (Status s = setupLogging("text", args->get("log-level")); !s) {
    return cli::usageError(std::cerr, parser, s.error());
  }

  // --- Simulators -----------------------------------------------------------
  const std::filesystem::path stateDir = std::filesystem::temp_directory_path() /
                                         ("exit-reconciler-sandbox-" + std::to_string(::getpid()));
  std::filesystem::create_directories(stateDir);
  KubeApiSimulator::Options ko;
  ko.stateDir = (stateDir / "kube").string();
  KubeApiSimulator kube(ko);
  if (Status s = kube.start(); !s) {
    std::cerr << "sandbox: Kubernetes API simulator: " << s.error().describe() << "\n";
    return 1;
  }
  KfpApiSimulator kfp({"127.0.0.1", 0, kKfpToken});
  if (Status s = kfp.start(); !s) {
    std::cerr << "sandbox: KFP API simulator: " << s.error().describe() << "\n";
    return 1;
  }
  const std::string tokenFile = (stateDir / "kfp-token").string();
  std::ofstream(tokenFile) << kKfpToken << "\n";

  // --- Seed -------------------------------------------------------------------
  std::vector<SeededRun> runs;
  std::set<std::string> namespaces = {"kubeflow"};
  std::vector<std::pair<std::string, std::string>> documents;  // origin, JSON
  const std::string samplesDir = args->get("samples");
  if (std::filesystem::is_directory(samplesDir)) {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(samplesDir)) {
      if (e.path().extension() == ".json")
        files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files)
      documents.emplace_back(f.filename().string(), readFile(f.string()));
  } else {
    // No samples folder (an installed binary): synthesize one run per shape.
    int i = 0;
    for (RunShape shape :
         {RunShape::kV2Sibling, RunShape::kV2Hook, RunShape::kV1, RunShape::kArgo}) {
      for (bool fails : {true, false}) {
        KfpRunSpec s;
        s.shape = shape;
        s.bodyFails = fails;
        s.name = "sample-" + std::to_string(i++);
        documents.emplace_back(s.name, makeKfpRunJson(s));
      }
    }
  }
  KfpRunSpec late;
  late.shape = RunShape::kV2Sibling;
  late.name = "late-completing-sibling";
  late.ns = "kubeflow";
  late.bodyFails = true;
  late.completed = false;
  documents.emplace_back("(generated) " + late.name, makeKfpRunJson(late));

  for (const auto& [origin, text] : documents) {
    json doc = json::parse(text, nullptr, false);
    auto wf = parseWorkflowJson(text);
    if (doc.is_discarded() || !wf) {
      std::cerr << "sandbox: skipping " << origin << ": not a Workflow\n";
      continue;
    }
    namespaces.insert(wf->namespace_);
    const Verdict v = evaluate(*wf);
    SeededRun r;
    r.ns = wf->namespace_;
    r.name = wf->name;
    r.runId = v.runId.value_or("");
    r.generation = std::string(generationName(v.generation));
    r.reported = std::string(phaseName(wf->phase));
    r.truePhase = std::string(phaseName(v.truePhase));
    r.misreported = v.misreported;
    r.lateCompletion = wf->name == late.name;
    if (!r.runId.empty()) {
      agentReport(kfp, text);
      auto run = kfp.run(r.runId);
      r.kfpBefore = run ? run->state : "-";
    } else {
      r.kfpBefore = "-";
    }
    runs.push_back(r);
    if (Status s = kube.seed(doc); !s) {
      std::cerr << "sandbox: seeding " << origin << ": " << s.error().describe() << "\n";
      return 1;
    }
  }
  for (const std::string& ns : namespaces) {
    (void)kube.seed(
        json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  }

  auto transport = makeCpprestTransport(TlsOptions{});
  if (!transport) {
    std::cerr << "sandbox: " << transport.error().describe() << "\n";
    return 1;
  }
  KubeClient client(std::shared_ptr<HttpTransport>(std::move(transport).value()), kube.baseUrl(),
                    TokenSource());

  std::cout << "Sandbox: Kubernetes API simulator at " << kube.baseUrl()
            << ", KFP API simulator at " << kfp.baseUrl() << "\n"
            << "Seeded " << runs.size() << " runs; starting the controller ("
            << "exit-reconciler run --kfp-report direct --leader-elect) ...\n";

  // --- Controller ---------------------------------------------------------------
  RunConfig config;
  config.kubeconfig = kube.kubeconfigPath();
  config.kfpApiUrl = kfp.baseUrl();
  config.kfpTokenFile = tokenFile;
  config.correction.kfpReport = KfpReportMode::kDirect;
  config.leaseNamespace = "kubeflow";
  config.leaseDuration = 4s;
  config.renewDeadline = 3s;
  config.retryPeriod = 1s;
  config.healthAddr = "127.0.0.1:0";
  config.metricsAddr = args->get("metrics-addr");
  config.maxRetryDelay = 2s;
  std::atomic<bool> stop{false};
  std::atomic<int> metricsPort{0};
  RunHooks hooks;
  hooks.onServing = [&](int, int port) { metricsPort = port; };
  std::atomic<int> controllerExit{-1};
  std::thread controller(
      [&] { controllerExit = runController(config, stop, /*handleSignals=*/false, hooks); });
  std::signal(SIGINT, onInterrupt);
  std::signal(SIGTERM, onInterrupt);

  // The running run completes, mis-reported, a little later.
  std::this_thread::sleep_for(*completeAfter);
  late.completed = true;
  json completed = json::parse(makeKfpRunJson(late));
  if (auto live = client.get(resources::kWorkflows, late.ns, late.name); live) {
    completed["metadata"]["resourceVersion"] = (*live)["metadata"]["resourceVersion"];
    // KFP's persistence agent reports the completion first (SUCCEEDED, wrongly).
    agentReport(kfp, completed.dump());
    if (auto u = client.update(resources::kWorkflows, late.ns, late.name, completed); !u) {
      std::cerr << "sandbox: completing " << late.name << ": " << u.error().describe() << "\n";
    }
    std::cout << "Run " << late.ns << "/" << late.name
              << " completed (Argo says Succeeded; its body failed).\n";
  }
  for (auto& r : runs) {
    if (r.lateCompletion) {
      r.reported = "Running -> Succeeded";
      r.kfpBefore = "RUNNING -> SUCCEEDED";
      r.truePhase = "Failed";
      r.misreported = true;
    }
  }

  // --- Wait until every mis-reported run is corrected, reported and announced ---
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  bool allDone = false;
  while (!allDone && gInterrupted == 0 && std::chrono::steady_clock::now() < deadline &&
         controllerExit < 0) {
    allDone = true;
    for (const auto& r : runs) {
      if (!r.misreported)
        continue;
      auto wf = client.get(resources::kWorkflows, r.ns, r.name);
      if (!wf || annotationOf(*wf, "exit-reconciler.io/event-emitted-at").empty())
        allDone = false;
    }
    if (!allDone)
      std::this_thread::sleep_for(200ms);
  }

  // --- Table -------------------------------------------------------------------
  struct Row {
    std::string run, generation, reported, truth, after, kfpBefore, kfpAfter, action;
  };
  std::vector<Row> rows;
  for (const auto& r : runs) {
    Row row;
    row.run = r.ns + "/" + r.name;
    row.generation = r.generation;
    row.reported = r.reported;
    row.truth = r.truePhase.empty() ? "-" : r.truePhase;
    auto wf = client.get(resources::kWorkflows, r.ns, r.name);
    row.after = wf ? (*wf)["status"].value("phase", "") : "?";
    row.kfpBefore = r.kfpBefore;
    auto run = r.runId.empty() ? std::nullopt : kfp.run(r.runId);
    row.kfpAfter = run ? run->state : "-";
    const std::string action = wf ? annotationOf(*wf, "exit-reconciler.io/action") : "";
    row.action = action.empty() ? "-" : action;
    rows.push_back(row);
  }
  std::vector<std::string> header = {"RUN", "GENERATION", "REPORTED",  "TRUE",
                                     "NOW", "KFP BEFORE", "KFP AFTER", "ACTION"};
  std::vector<std::size_t> width(header.size());
  auto cells = [](const Row& r) {
    return std::vector<std::string>{r.run,   r.generation, r.reported, r.truth,
                                    r.after, r.kfpBefore,  r.kfpAfter, r.action};
  };
  for (std::size_t i = 0; i < header.size(); ++i)
    width[i] = header[i].size();
  for (const Row& r : rows) {
    auto c = cells(r);
    for (std::size_t i = 0; i < c.size(); ++i)
      width[i] = std::max(width[i], c[i].size());
  }
  auto print = [&](const std::vector<std::string>& c) {
    for (std::size_t i = 0; i < c.size(); ++i) {
      std::cout << std::left << std::setw(static_cast<int>(width[i]) + 2) << c[i];
    }
    std::cout << "\n";
  };
  std::cout << "\n";
  print(header);
  for (const Row& r : rows)
    print(cells(r));
  std::cout << "\n"
            << (allDone ? "Every mis-reported run was corrected, reported to KFP and announced."
                        : "Not every mis-reported run was corrected in time (see the log).")
            << "\n";
  std::cout << "Metrics: http://127.0.0.1:" << metricsPort.load() << "/metrics\n";

  if (!args->getSwitch("exit-after-report")) {
    std::cout << "Press Ctrl-C to stop.\n" << std::flush;
    while (gInterrupted == 0 && controllerExit < 0)
      std::this_thread::sleep_for(100ms);
  }
  stop = true;
  controller.join();
  kfp.stop();
  kube.stop();
  std::filesystem::remove_all(stateDir);
  return allDone && controllerExit == 0 ? 0 : 1;
}

}  // namespace exitrec
