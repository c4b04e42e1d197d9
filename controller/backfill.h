#pragma once
// `exit-reconciler backfill`: corrects past KFP runs from KFP's own records.
//
//   exit-reconciler backfill --kfp-api-url URL [--kfp-token-file F] [--namespace NS]...
//       [--finished-after RFC3339] [--kubeconfig K] [--apply] [--report FILE] [--qps N]
//
// For every run KFP lists as SUCCEEDED (filter on the first page only): read
// its stored Workflow (GET /apis/v1beta1/runs/{id}), evaluate it, and if it
// is mis-reported and its Workflow no longer exists in the cluster (GET in
// the run's namespace through the kubeconfig; a Workflow still present is
// the controller's), POST the corrected Workflow to the report API:
// - phase, message and annotations exactly as the controller's record step
//   writes them (correction.h decideNextStep, direct mode), applied to the
//   stored manifest as a merge patch;
// - label pipeline/persistedFinalState stripped and resourceVersion cleared
//   (safeHistoricalReport): with the label KFP tries to delete the CR
//   (resource_manager.go ReportWorkflowResource) — a body carrying it is
//   never sent;
// - KFP commits the update, then answers NotFound because it cannot label
//   the missing CR: NotFound means "verify next";
// - GET /apis/v2beta1/runs/{id} must then say FAILED.
// Dry run by default (--apply writes). Idempotent: a corrected run is FAILED
// and no longer listed. Resumable: every action is appended to --report as
// it happens; rerun with the same flags (or a later --finished-after).
// Without a reachable cluster nothing is corrected, and the reason is given.
// Runs are read one at a time; the requests of a correction (cluster check,
// report, verify) are paced by --qps.
//
// Exit status: 0 nothing left to correct; 1 dry run: runs would be
// corrected; 2 usage error or any run that failed (read, report, verify).

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "controller/kfp_history_client.h"
#include "controller/reconciler.h"
#include "engine/outcome.h"
#include "engine/workflow.h"

namespace exitrec {

int runBackfill(int argc, char** argv);
int runBackfill(std::span<char* const> args, std::ostream& out, std::ostream& err);

// The report body's Workflow for a stored manifest: `recordPatch` (the
// controller's record merge patch) applied, label
// pipeline/persistedFinalState and metadata.resourceVersion removed.
// kInvalidInput when the manifest is not a JSON object.
Result<std::string> safeHistoricalReport(std::string_view manifestJson,
                                         std::string_view recordPatch);

// Whether a Workflow still exists: true, false (NotFound), or an error.
using WorkflowExists = std::function<Result<bool>(const std::string& ns, const std::string& name)>;

struct BackfillOptions {
  bool apply = false;
  double qps = 5;  // correction requests (cluster check, report, verify) a second
  EvaluateOptions evaluate;
  std::vector<std::string> namespaces;  // single-user filter on the manifest's namespace
};

// What backfill did with one run. `action`: healthy, error, skipped,
// skipped-workflow-exists, would-correct, report-failed, verify-failed,
// corrected.
struct BackfillOutcome {
  bool skip = false;  // another namespace: nothing to report
  std::string action;
  bool error = false;
  bool unreadable = false;  // error: the stored manifest could not be evaluated
  bool misreported = false;
  std::string generation;  // engine generation name ("" without a verdict)
  std::string cause;
  std::string line;  // the NDJSON action line
};

// The per-run work of backfill (and of the controller's history sweep).
// Thread-safe (the pacer is shared; one report per run).
class Backfiller {
 public:
  // `exists` null: no cluster, so nothing is corrected (`clusterProblem` says
  // why in each skipped line).
  Backfiller(KfpHistoryClient& history, KfpReporter& kfp, WorkflowExists exists,
             std::string clusterProblem, BackfillOptions options);
  ~Backfiller();
  Backfiller(const Backfiller&) = delete;
  Backfiller& operator=(const Backfiller&) = delete;

  BackfillOutcome process(const KfpRunSummary& run);

 private:
  struct Pacer;
  KfpHistoryClient& history_;
  KfpReporter& kfp_;
  WorkflowExists exists_;
  std::string clusterProblem_;
  BackfillOptions options_;
  std::unique_ptr<Pacer> pacer_;
};

}  // namespace exitrec
