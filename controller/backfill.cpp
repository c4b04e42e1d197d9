#include "controller/backfill.h"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/clock.h"
#include "common/json_text.h"
#include "controller/annotations.h"
#include "controller/cli.h"
#include "controller/correction.h"
#include "controller/history_audit.h"
#include "controller/kfp_client.h"
#include "controller/kfp_report_body.h"
#include "k8sclient/client_factory.h"
#include "k8sclient/kube_config.h"

namespace exitrec {
namespace {

using nlohmann::json;

constexpr std::string_view kDescription =
    "Corrects past KFP runs from KFP's own records: for every run KFP lists as SUCCEEDED,\n"
    "reads its stored Workflow, evaluates it, and when it is mis-reported and its Workflow\n"
    "no longer exists in the cluster, reports the corrected Workflow to KFP (label\n"
    "pipeline/persistedFinalState stripped, so KFP never deletes anything) and verifies that\n"
    "KFP now says FAILED. Runs whose Workflow still exists are left to the controller.\n"
    "\n"
    "Dry run unless --apply. Every action is printed (NDJSON) and appended to --report.\n"
    "Re-running is safe: corrected runs are FAILED and no longer listed.\n"
    "\n"
    "Exit status: 0 nothing left to correct; 1 dry run found runs to correct; 2 usage\n"
    "error or a run that could not be read, reported or verified.";

}  // namespace

// Spaces requests at 1/qps (all threads of one backfill share it).
struct Backfiller::Pacer {
  explicit Pacer(double qps)
      : interval_(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(1.0 / qps))) {}
  void wait() {
    std::chrono::steady_clock::time_point slot;
    {
      std::lock_guard<std::mutex> g(mu_);
      const auto now = std::chrono::steady_clock::now();
      next_ = std::max(next_, now);
      slot = next_;
      next_ += interval_;
    }
    std::this_thread::sleep_until(slot);
  }

  std::chrono::steady_clock::duration interval_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point next_{};
};

namespace {

struct Action {
  std::string runId;
  std::string ns;
  std::string name;
  std::string action;  // see runBackfill's table in docs/history.md
  std::string detail;
  std::string cause;
  std::string truePhase;
  bool dryRun = true;
};

std::string actionLine(const Action& a) {
  json j = {{"time", formatRfc3339(std::chrono::system_clock::now())},
            {"kfpRunId", a.runId},
            {"action", a.action},
            {"dryRun", a.dryRun},
            {"source", "kfp-history"}};
  if (!a.ns.empty())
    j["namespace"] = a.ns;
  if (!a.name.empty())
    j["name"] = a.name;
  if (!a.cause.empty())
    j["cause"] = a.cause;
  if (!a.truePhase.empty())
    j["truePhase"] = a.truePhase;
  if (!a.detail.empty())
    j["detail"] = a.detail;
  return dumpJson(j);
}

}  // namespace

Result<std::string> safeHistoricalReport(std::string_view manifestJson,
                                         std::string_view recordPatch) {
  json wf = json::parse(manifestJson, nullptr, false);
  if (!wf.is_object())
    return makeError(ErrorCode::kInvalidInput, "stored workflow manifest is not a JSON object");
  json patch = json::parse(recordPatch, nullptr, false);
  if (!patch.is_object())
    return makeError(ErrorCode::kInvalidInput, "record patch is not a JSON object");
  wf.merge_patch(patch);
  // The label is stripped (KFP would try to delete the CR); resourceVersion is
  // dropped: 2.17+ fences on it only when the CR exists, an empty one passes,
  // and a same-named new CR is never mistaken for ours.
  return kfpReportableWorkflow(dumpJson(wf), {.keepResourceVersion = false});
}

Backfiller::Backfiller(KfpHistoryClient& history, KfpReporter& kfp, WorkflowExists exists,
                       std::string clusterProblem, BackfillOptions options)
    : history_(history),
      kfp_(kfp),
      exists_(std::move(exists)),
      clusterProblem_(std::move(clusterProblem)),
      options_(std::move(options)),
      pacer_(std::make_unique<Pacer>(options_.qps)) {}

Backfiller::~Backfiller() = default;

BackfillOutcome Backfiller::process(const KfpRunSummary& run) {
  BackfillOutcome r;
  Action a;
  a.runId = run.runId;
  a.dryRun = !options_.apply;
  auto finish = [&](std::string action, std::string detail = {}) {
    a.action = action;
    a.detail = std::move(detail);
    r.action = std::move(action);
    r.cause = a.cause;
    r.line = actionLine(a);
    return r;
  };
  // Reads are sequential (one run at a time) and not paced: --qps bounds the
  // requests of a correction (cluster check, report, verify).
  StoredRunEvaluation e = evaluateStoredRun(history_, run, options_.evaluate, options_.namespaces);
  if (e.otherNamespace) {
    r.skip = true;
    return r;
  }
  if (e.workflow) {
    a.ns = e.workflow->namespace_;
    a.name = e.workflow->name;
  }
  if (!e.verdict) {
    r.error = true;
    r.unreadable = true;
    return finish("error", e.error);
  }
  const Verdict& v = *e.verdict;
  r.generation = std::string(generationName(v.generation));
  if (!v.misreported)
    return finish("healthy");
  r.misreported = true;
  a.cause = v.cause.value_or("");
  a.truePhase = std::string(phaseName(v.truePhase));
  CorrectionConfig config;
  config.kfpReport = KfpReportMode::kDirect;
  config.exitTaskFailure = options_.evaluate.exitTaskFailure;
  // The controller's record step on this run, as if it had seen it.
  NextStep step = decideNextStep(*e.workflow, v, config, std::chrono::system_clock::now());
  if (step.kind != StepKind::kRecord || step.action != ann::kActionCorrected)
    return finish("skipped", "the controller would not correct it (" + step.why + ")");
  if (!exists_)
    return finish("skipped", clusterProblem_);
  pacer_->wait();
  auto existing = exists_(a.ns, a.name);
  if (!existing) {
    r.error = true;
    return finish("error", "cannot check whether the Workflow exists: " + existing.error().message);
  }
  if (*existing) {
    return finish("skipped-workflow-exists",
                  "Workflow " + a.ns + "/" + a.name + " still exists: the controller corrects it");
  }
  auto body = safeHistoricalReport(e.manifest->text, step.patch);
  if (!body) {
    r.error = true;
    return finish("error", body.error().message);
  }
  if (carriesPersistedFinalState(*body)) {  // never: safeHistoricalReport strips it
    r.error = true;
    return finish("error", "refusing to send a report carrying pipeline/persistedFinalState");
  }
  if (!options_.apply)
    return finish("would-correct", "Workflow gone; would report phase " + a.truePhase);
  pacer_->wait();
  Status reported = kfp_.reportWorkflow(*body);
  if (!reported && reported.error().code != ErrorCode::kNotFound) {
    r.error = true;
    return finish("report-failed", reported.error().message);
  }
  // NotFound is expected: KFP committed the run, then could not label the
  // missing CR. Verify.
  pacer_->wait();
  auto state = kfp_.runState(run.runId);
  if (!state) {
    r.error = true;
    return finish("verify-failed", state.error().message);
  }
  if (*state != "FAILED") {
    r.error = true;
    return finish("verify-failed", "KFP still says " + *state + " after the report");
  }
  return finish("corrected", "KFP now says FAILED");
}

int runBackfill(std::span<char* const> rawArgs, std::ostream& out, std::ostream& err) {
  cli::FlagParser parser("exit-reconciler backfill", "--kfp-api-url URL",
                         std::string(kDescription));
  addHistoryFlags(parser);
  parser.add({.name = "kubeconfig",
              .valueName = "PATH",
              .help = "cluster to check Workflows in (default: $KUBECONFIG, in-cluster, "
                      "~/.kube/config)"});
  parser.add(
      {.name = "apply", .help = "write the corrections (default: dry run)", .isSwitch = true});
  parser.add(
      {.name = "report", .valueName = "FILE", .help = "append every action (NDJSON) to this file"});
  parser.add({.name = "qps",
              .valueName = "N",
              .help = "most correction requests a second (cluster check, report, verify)",
              .defaultValue = "5"});
  std::vector<std::string> namespaces;
  std::vector<char*> args = takeNamespaces(rawArgs, namespaces);
  auto parsed = parser.parse(args, cli::processEnv());
  if (!parsed.ok())
    return cli::usageError(err, parser, parsed.error());
  if (parsed->helpRequested()) {
    out << parser.help();
    return cli::kExitOk;
  }
  if (!parsed->positional().empty()) {
    return cli::usageError(err, parser,
                           makeError(ErrorCode::kInvalidInput, "backfill takes no operands"));
  }
  auto qps = parsed->getInt("qps", 1, 1000);
  if (!qps)
    return cli::usageError(err, parser, qps.error());
  const bool apply = parsed->get("apply") == "true";

  std::ofstream reportFile;
  if (!parsed->get("report").empty()) {
    reportFile.open(parsed->get("report"), std::ios::app);
    if (!reportFile) {
      err << "backfill: cannot open --report " << parsed->get("report") << " for appending\n";
      return cli::kExitUsage;
    }
  }
  // Only runs KFP reports as SUCCEEDED can be mis-reported; a corrected run is
  // FAILED and drops out of the listing (idempotence).
  auto connection = connectHistory(*parsed, namespaces, {"SUCCEEDED"});
  if (!connection) {
    err << "backfill: " << connection.error().message << "\n";
    return cli::kExitUsage;
  }
  HistoryConnection& c = *connection;
  // Backfill works run by run: one report in flight, paced.
  c.scan.concurrency = 1;

  // The cluster: without it nothing can be corrected.
  std::unique_ptr<KubeClient> kube;
  std::string clusterProblem;
  if (auto cfg = loadRestConfig(parsed->get("kubeconfig")); !cfg) {
    clusterProblem = "no cluster configuration: " + cfg.error().message;
  } else if (auto client = makeKubeClient(*cfg, SystemClock::instance()); !client) {
    clusterProblem = "cannot build a cluster client: " + client.error().message;
  } else {
    kube = std::move(*client);
  }
  if (!clusterProblem.empty()) {
    err << "backfill: " << clusterProblem
        << "; without the cluster it cannot tell which runs' Workflows are gone, so it corrects "
           "nothing"
        << (apply ? "" : " (dry run: listing what it would consider)") << "\n";
    if (apply)
      return cli::kExitUsage;
  }

  KfpClient::Options ko;
  ko.baseUrl = parsed->get("kfp-api-url");
  KfpClient kfp(*c.transport, c.token, ko);
  BackfillOptions options;
  options.apply = apply;
  options.qps = static_cast<double>(*qps);
  options.evaluate = c.evaluate;
  options.namespaces = c.scan.namespaces;
  WorkflowExists exists;
  if (kube) {
    exists = [&kube](const std::string& ns, const std::string& name) -> Result<bool> {
      auto got = kube->get(resources::kWorkflows, ns, name);
      if (got)
        return true;
      if (got.error().code == ErrorCode::kNotFound)
        return false;
      return got.error();
    };
  }
  std::size_t wouldCorrect = 0;
  std::size_t failed = 0;
  HistoryScanCounters counters;

  Backfiller backfiller(*c.client, kfp, exists, clusterProblem, options);
  auto work = [&](const KfpRunSummary& run, const std::string&) {
    BackfillOutcome o = backfiller.process(run);
    HistoryRunResult r;
    r.skip = o.skip;
    r.error = o.error;
    r.misreported = o.misreported;
    r.line = std::move(o.line);
    if (o.action == "would-correct")
      ++wouldCorrect;
    return r;
  };
  auto emit = [&](const HistoryRunResult& r) {
    out << r.line << '\n' << std::flush;
    if (reportFile.is_open())
      reportFile << r.line << '\n' << std::flush;
    if (r.error)
      ++failed;
  };
  Status status = Status::okStatus();
  {
    HistoryProgress progress(err, counters, ::isatty(STDERR_FILENO) == 1, "backfill");
    status = scanHistory(*c.client, c.scan, work, emit, counters);
  }
  if (!status) {
    err << "backfill: listing KFP runs failed: " << status.error().message << "\n";
    return cli::kExitUsage;
  }
  if (failed > 0)
    return cli::kExitUsage;
  return wouldCorrect > 0 ? cli::kExitFindings : cli::kExitOk;
}

int runBackfill(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  std::span<char* const> args(argv, static_cast<std::size_t>(argc));
  return runBackfill(args.subspan(1), std::cout, std::cerr);
}

}  // namespace exitrec
