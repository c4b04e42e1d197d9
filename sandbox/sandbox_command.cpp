// exit-reconciler-sandbox: the whole system on one machine with nothing to
// prepare. A development tool built beside the simulators (sandbox/
// CMakeLists.txt); the product binaries and the image carry none of it.
// Starts the Kubernetes API simulator, the KFP API simulator (in the
// KFP version of --kfp-version, with KFP's workflow client to the Kubernetes
// simulator, so it deletes and labels Workflows as the real server does) and
// KFP's persistence-agent emulation, in-process. Every KFP run is created the
// way KFP creates it (CreateRun: the Workflow CR, then the run row); the agent
// then reports the sample runs (every KFP generation, mis-reported and
// healthy, plus plain Argo) and KFP labels them pipeline/persistedFinalState.
// One KFP 2.3 run is still running and completes, mis-reported, a few seconds
// after the controller starts, racing the agent. The controller runs against
// all of it; the before/after table shows what KFP recorded and whether KFP
// deleted any Workflow (counted in the Kubernetes simulator's mutation log).
// KFP also holds a run history whose Workflows are gone (sandbox/
// sandbox_history.h): once the controller is done, `audit --kfp-api-url` and
// `backfill --apply` run against it and a second table shows what they found
// and corrected.
// /metrics stays up until Ctrl-C (or it exits with --exit-after-report: non-zero
// when a Workflow was deleted, a mis-reported run is not FAILED in KFP, or a
// history run is not as expected: a gone mis-reported run not corrected, any
// other run changed, a report carrying the label or a deletion asked of KFP).

#include "sandbox/sandbox_command.h"

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
#include "sandbox/sandbox_history.h"
#include "sim/kfp/kfp_api_simulator.h"
#include "sim/kfp/kfp_history_api.h"
#include "sim/kfp/kfp_run_factory.h"
#include "sim/kfp/kfp_workflow_fields.h"
#include "sim/kfp/persistence_agent_sim.h"
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

// Workflow deletions in the Kubernetes simulator's mutation log (only KFP
// deletes Workflows here), by "namespace/name".
std::set<std::string> deletedWorkflows(const KubeApiSimulator& kube) {
  std::set<std::string> out;
  const std::string marker = "/workflows/";
  for (const auto& m : kube.mutationLog()) {
    const auto at = m.path.find(marker);
    const auto nsAt = m.path.find("/namespaces/");
    if (m.verb != "delete" || at == std::string::npos || nsAt == std::string::npos)
      continue;
    const std::string ns = m.path.substr(nsAt + 12, at - nsAt - 12);
    out.insert(ns + "/" + m.path.substr(at + marker.size()));
  }
  return out;
}

volatile std::sig_atomic_t gInterrupted = 0;
void onInterrupt(int) {
  gInterrupted = 1;
}

}  // namespace

int runSandbox(int argc, char** argv) {
  cli::FlagParser parser(
      "exit-reconciler-sandbox", "",
      "Runs the controller against a simulated Kubernetes API and KFP API seeded with sample "
      "runs of every KFP generation, prints a before/after table, and keeps /metrics up until "
      "Ctrl-C.");
  parser.add({"samples", "DIR", "sample Workflow JSON files to seed", "EXIT_RECONCILER_SAMPLES",
              EXITREC_SAMPLES_DIR});
  parser.add({"metrics-addr", "ADDR", "serve the controller's /metrics here",
              "EXIT_RECONCILER_METRICS_ADDR", "127.0.0.1:9090"});
  parser.add({"complete-after", "DURATION", "when the still-running run completes", "", "3s"});
  parser.add({"kfp-version",
              "VERSION",
              "the KFP API server the KFP simulator imitates",
              "",
              "2.4-2.16",
              {"2.0-2.3", "2.4-2.16", "2.17", "master"}});
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
  KfpApiSimulator::Options kfpOptions;
  kfpOptions.token = kKfpToken;
  kfpOptions.version = parseKfpVersion(args->get("kfp-version")).value_or(KfpVersion::k2_4To2_16);
  kfpOptions.kubeApiUrl = kube.baseUrl();
  // KFP's run history (list, get v1/v2, reports of its runs): served at the
  // KFP simulator's address, beside its live runs.
  KfpHistoryApi history;
  KfpHistoryApi::Identity controllerIdentity;
  controllerIdentity.allNamespaces = true;
  controllerIdentity.mayReport = true;
  history.addIdentity(kKfpToken, controllerIdentity);
  SandboxHistory sandboxHistory(history, kube.baseUrl());
  KfpApiSimulator kfp(kfpOptions);
  kfp.attachHistory(&history);
  if (Status s = kfp.start(); !s) {
    std::cerr << "sandbox: KFP API simulator: " << s.error().describe() << "\n";
    return 1;
  }
  const std::string tokenFile = (stateDir / "kfp-token").string();
  std::ofstream(tokenFile) << kKfpToken << "\n";

  // --- Seed -------------------------------------------------------------------
  std::vector<SeededRun> runs;
  std::int64_t oldestFinish = 0;  // Unix seconds of the oldest sample's status.finishedAt
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
    // No samples folder (the source tree moved): synthesize one run per shape.
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

  for (const std::string& ns : namespaces) {
    (void)kube.seed(
        json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  }
  for (const auto& [origin, text] : documents) {
    json doc = json::parse(text, nullptr, false);
    auto wf = parseWorkflowJson(text);
    if (doc.is_discarded() || !wf) {
      std::cerr << "sandbox: skipping " << origin << ": not a Workflow\n";
      continue;
    }
    if (namespaces.insert(wf->namespace_).second) {
      (void)kube.seed(json{
          {"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", wf->namespace_}}}});
    }
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
    if (const auto f = kfpsim::finishedAtSeconds(doc); f > 0)
      oldestFinish = oldestFinish == 0 ? f : std::min(oldestFinish, f);
    if (!r.runId.empty()) {
      // KFP's CreateRun: the Workflow CR first, then the run row (PENDING).
      KfpApiSimulator::CreateRunRequest req;
      req.runId = r.runId;
      req.workflow = doc;
      if (auto created = kfp.createRun(req); !created) {
        std::cerr << "sandbox: creating the KFP run of " << origin << ": "
                  << created.error().describe() << "\n";
        return 1;
      }
    } else if (Status s = kube.seed(doc); !s) {
      std::cerr << "sandbox: seeding " << origin << ": " << s.error().describe() << "\n";
      return 1;
    }
    runs.push_back(r);
  }

  const std::size_t historyRuns = sandboxHistory.seed(documents);

  auto transport = makeCpprestTransport(TlsOptions{});
  if (!transport) {
    std::cerr << "sandbox: " << transport.error().describe() << "\n";
    return 1;
  }
  KubeClient client(std::shared_ptr<HttpTransport>(std::move(transport).value()), kube.baseUrl(),
                    TokenSource());

  // --- KFP's persistence agent -------------------------------------------------
  // It reports every run and KFP labels the finished ones, so the controller
  // meets what it meets in a real cluster: completed Workflows that already
  // carry pipeline/persistedFinalState.
  PersistenceAgentSim::Options agentOptions;
  agentOptions.kubeApiUrl = kube.baseUrl();
  // KFP's 24 h TTL counts from status.finishedAt, and the samples finished long
  // ago: the agent's post-TTL report would make KFP delete them at once. The
  // TTL is stretched to 24 h past the oldest sample.
  if (const auto f = kfpsim::parseRfc3339Seconds(late.finishedAt); f && *f > 0)
    oldestFinish = oldestFinish == 0 ? *f : std::min(oldestFinish, *f);
  const auto nowSeconds = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  if (oldestFinish > 0 && nowSeconds > oldestFinish) {
    agentOptions.ttlSecondsAfterWorkflowFinish += std::chrono::seconds(nowSeconds - oldestFinish);
  }
  PersistenceAgentSim agent(agentOptions,
                            [&kfp](const std::string& w) { return kfp.reportFromAgent(w); });
  if (Status s = agent.start(); !s) {
    std::cerr << "sandbox: persistence agent: " << s.error().describe() << "\n";
    return 1;
  }
  const auto agentDeadline = std::chrono::steady_clock::now() + 30s;
  auto agentCaughtUp = [&] {
    for (const auto& r : runs) {
      auto run = r.runId.empty() ? std::nullopt : kfp.run(r.runId);
      if (run && run->state == "PENDING")
        return false;
    }
    return true;
  };
  while (!agentCaughtUp() && std::chrono::steady_clock::now() < agentDeadline)
    std::this_thread::sleep_for(100ms);
  for (auto& r : runs) {
    auto run = r.runId.empty() ? std::nullopt : kfp.run(r.runId);
    r.kfpBefore = run ? run->state : "-";
  }

  std::cout << "Sandbox: Kubernetes API simulator at " << kube.baseUrl()
            << ", KFP API simulator (KFP " << kfpVersionName(kfpOptions.version) << ") at "
            << kfp.baseUrl() << ", KFP persistence agent emulated\n"
            << "Seeded " << runs.size() << " runs, and " << historyRuns
            << " past runs in KFP's history whose Workflow is gone; starting the controller ("
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
  StopSource stop;
  std::atomic<int> metricsPort{0};
  RunHooks hooks;
  hooks.onServing = [&](int, int port) { metricsPort = port; };
  std::atomic<int> controllerExit{-1};
  std::thread controller([&] { controllerExit = runController(config, stop, hooks); });
  std::signal(SIGINT, onInterrupt);
  std::signal(SIGTERM, onInterrupt);

  // The running run completes, mis-reported, a little later.
  std::this_thread::sleep_for(*completeAfter);
  late.completed = true;
  json completed = json::parse(makeKfpRunJson(late));
  if (auto live = client.get(resources::kWorkflows, late.ns, late.name); live) {
    completed["metadata"] = (*live)["metadata"];
    completed["metadata"]["labels"]["workflows.argoproj.io/completed"] = "true";
    completed["metadata"]["labels"]["workflows.argoproj.io/phase"] = "Succeeded";
    // Argo completes it; KFP's persistence agent reports it (SUCCEEDED, wrongly)
    // while the controller corrects it.
    if (auto u = client.update(resources::kWorkflows, late.ns, late.name, completed); !u) {
      std::cerr << "sandbox: completing " << late.name << ": " << u.error().describe() << "\n";
    }
    std::cout << "Run " << late.ns << "/" << late.name
              << " completed (Argo says Succeeded; its body failed).\n";
  }
  for (auto& r : runs) {
    if (r.lateCompletion) {
      r.reported = "Running -> Succeeded";
      r.kfpBefore = r.kfpBefore + " -> SUCCEEDED";
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
      if (deletedWorkflows(kube).count(r.ns + "/" + r.name) != 0)
        continue;  // gone for good: reported below as a failure
      auto wf = client.get(resources::kWorkflows, r.ns, r.name);
      if (!wf || annotationOf(*wf, "exit-reconciler.io/event-emitted-at").empty())
        allDone = false;
    }
    if (!allDone)
      std::this_thread::sleep_for(200ms);
  }
  const std::set<std::string> deleted = deletedWorkflows(kube);

  // --- Table -------------------------------------------------------------------
  struct Row {
    std::string run, generation, reported, truth, after, kfpBefore, kfpAfter, action, deleted;
  };
  std::vector<Row> rows;
  int kfpNotFailed = 0;
  for (const auto& r : runs) {
    Row row;
    row.run = r.ns + "/" + r.name;
    row.generation = r.generation;
    row.reported = r.reported;
    row.truth = r.truePhase.empty() ? "-" : r.truePhase;
    auto wf = client.get(resources::kWorkflows, r.ns, r.name);
    const bool wasDeleted = deleted.count(row.run) != 0;
    row.after = wf ? (*wf)["status"].value("phase", "") : (wasDeleted ? "(deleted)" : "?");
    row.deleted = wasDeleted ? "DELETED" : "-";
    row.kfpBefore = r.kfpBefore;
    auto run = r.runId.empty() ? std::nullopt : kfp.run(r.runId);
    row.kfpAfter = run ? run->state : "-";
    const std::string action = wf ? annotationOf(*wf, "exit-reconciler.io/action") : "";
    row.action = action.empty() ? "-" : action;
    rows.push_back(row);
    if (r.misreported && !r.runId.empty() && row.kfpAfter != "FAILED")
      ++kfpNotFailed;
  }
  std::vector<std::string> header = {"RUN",        "GENERATION", "REPORTED", "TRUE",    "NOW",
                                     "KFP BEFORE", "KFP AFTER",  "ACTION",   "WORKFLOW"};
  std::vector<std::size_t> width(header.size());
  auto cells = [](const Row& r) {
    return std::vector<std::string>{r.run,       r.generation, r.reported, r.truth,  r.after,
                                    r.kfpBefore, r.kfpAfter,   r.action,   r.deleted};
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
            << (!deleted.empty()
                    ? "KFP DELETED Workflows (see the WORKFLOW column): the run is gone."
                : allDone ? "Every mis-reported run was corrected, reported to KFP and announced."
                          : "Not every mis-reported run was corrected in time (see the log).")
            << "\n";
  std::cout << "Workflows deleted by KFP: " << deleted.size()
            << (deleted.empty() ? ""
                                : " (a report carried pipeline/persistedFinalState, or KFP "
                                  "did not know the run)")
            << "\nMis-reported runs not FAILED in KFP: " << kfpNotFailed << "\n";

  // --- KFP's history: audit and backfill ------------------------------------------
  const int historyProblems =
      sandboxHistory.run(kfp.baseUrl(), tokenFile, kube.kubeconfigPath(), std::cout);

  std::cout << "Metrics: http://127.0.0.1:" << metricsPort.load() << "/metrics\n";

  if (!args->getSwitch("exit-after-report")) {
    std::cout << "Press Ctrl-C to stop.\n" << std::flush;
    while (gInterrupted == 0 && controllerExit < 0)
      std::this_thread::sleep_for(100ms);
  }
  stop.requestStop("sandbox finished");
  controller.join();
  agent.stop();
  kfp.stop();
  kube.stop();
  std::filesystem::remove_all(stateDir);
  return allDone && controllerExit == 0 && deleted.empty() && kfpNotFailed == 0 &&
                 historyProblems == 0
             ? 0
             : 1;
}

}  // namespace exitrec
