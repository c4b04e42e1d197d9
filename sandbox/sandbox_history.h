#pragma once
// The sandbox's KFP run history (issue 17): past runs KFP still records
// whose Workflow is long gone. Seeded from the sample Workflows, copied into
// other namespaces (team-a, team-b, team-c) under new run ids: mis-reported
// runs of every generation (kfp-v1 and kfp-v2 with a masked failure, the
// 2.0–2.3 sibling exit task, the ≥2.4 hooks), healthy ones, runs KFP already
// has as FAILED, manifests as Argo compressed them (status.compressedNodes),
// manifests still carrying pipeline/persistedFinalState, and one whose node
// status was offloaded (unrecoverable once the CR is gone).
//
// After the controller's part, run() audits the history
// (`audit --kfp-api-url`) and backfills it (`backfill --apply`) through the
// commands' own entry points, prints a before/after table, and checks each
// run's outcome against what the engine says of its manifest: mis-reported
// runs FAILED in KFP, every other run unchanged, no report carrying the
// label and no Workflow deletion asked of KFP.

#include <atomic>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace exitrec {

class KfpHistoryApi;
class KubeClient;

class SandboxHistory {
 public:
  // `api` must outlive this object; `kubeApiUrl` is where KFP's workflow
  // client looks for the CRs (the Kubernetes simulator).
  SandboxHistory(KfpHistoryApi& api, std::string kubeApiUrl);
  ~SandboxHistory();
  SandboxHistory(const SandboxHistory&) = delete;
  SandboxHistory& operator=(const SandboxHistory&) = delete;

  // Seeds the history from (origin, Workflow JSON) sample documents. Returns
  // the number of runs seeded.
  std::size_t seed(const std::vector<std::pair<std::string, std::string>>& documents);

  // Runs audit and backfill --apply against `kfpUrl`, prints the table and a
  // summary to `out`. Returns the number of runs whose outcome is not the
  // expected one (plus any label-carrying report or deletion): 0 is a pass.
  int run(const std::string& kfpUrl, const std::string& kfpTokenFile, const std::string& kubeconfig,
          std::ostream& out);

  struct Row {
    std::string runId, ns, name, generation, manifest, kfpBefore;
    bool misreported = false;  // the engine's verdict on the stored manifest
    bool evaluable = true;     // false: offloaded node status
    std::string audit, backfill, kfpAfter;
  };

 private:
  KfpHistoryApi& api_;
  std::unique_ptr<KubeClient> kube_;  // KFP's workflow client's view of the CRs
  std::atomic<int> deleteRequests_{0};
  std::vector<Row> rows_;
};

}  // namespace exitrec
