// KFP's RetryRun (backend/src/apiserver/resource/resource_manager.go, 2.17.0
// and master) with GenerateRetryExecution (backend/src/common/util/
// workflow.go, 2.5.0+ and master: kept nodes keyed by node id). Pods are not
// modelled (deletePods has nothing to delete in the simulator).

#include <nlohmann/json.hpp>

#include "k8sclient/kube_client.h"
#include "sim/kfp/kfp_api_simulator.h"
#include "sim/kfp/kfp_workflow_fields.h"

namespace exitrec {

using nlohmann::json;

namespace {

// GenerateRetryExecution: the Workflow a retry resubmits, from the stored
// manifest (the last accepted report).
Result<json> generateRetryExecution(const json& wf) {
  const std::string phase = kfpsim::statusString(wf, "phase");
  if (phase != "Failed" && phase != "Error") {
    return makeError(ErrorCode::kInvalid,
                     "Workflow must be Failed/Error to retry (phase \"" + phase + "\")");
  }
  json out = wf;
  json& md = out["metadata"];
  if (!md.contains("labels") || !md["labels"].is_object())
    md["labels"] = json::object();
  md["labels"].erase("workflows.argoproj.io/completed");
  md["labels"].erase(std::string(kfpsim::kLabelPersistedFinalState));
  md["labels"]["workflows.argoproj.io/phase"] = "Running";
  json& status = out["status"];
  status["phase"] = "Running";
  // Conditions.UpsertCondition({Completed, False}).
  json conditions = json::array();
  if (status.contains("conditions") && status["conditions"].is_array()) {
    for (const json& c : status["conditions"]) {
      if (!(c.is_object() && c.value("type", "") == "Completed"))
        conditions.push_back(c);
    }
  }
  conditions.push_back({{"type", "Completed"}, {"status", "False"}});
  status["conditions"] = conditions;
  status.erase("message");
  status["finishedAt"] = nullptr;  // metav1.Time{} marshals as null
  if (out.contains("spec") && out["spec"].is_object()) {
    auto ads = out["spec"].find("activeDeadlineSeconds");
    if (ads != out["spec"].end() && ads->is_number_integer() && ads->get<long long>() == 0)
      out["spec"].erase("activeDeadlineSeconds");
  }
  const std::string onExit = kfpsim::metaString(wf, "name") + ".onExit";
  json nodes = json::object();
  if (status.contains("nodes") && status["nodes"].is_object()) {
    for (const auto& [id, node] : status["nodes"].items()) {
      if (!node.is_object())
        continue;
      const std::string nodePhase = node.value("phase", "");
      const std::string name = node.value("name", "");
      const std::string nodeId = node.value("id", id);
      const bool exitNode = name.rfind(onExit, 0) == 0;
      if (nodePhase == "Succeeded" || nodePhase == "Skipped") {
        if (!exitNode)
          nodes[nodeId] = node;
      } else if (nodePhase == "Error" || nodePhase == "Failed" || nodePhase == "Omitted") {
        if (!exitNode && node.value("type", "") == "DAG") {
          json reset = node;
          reset["phase"] = "Running";
          reset.erase("message");
          reset["finishedAt"] = nullptr;
          nodes[nodeId] = reset;
        }
      } else {
        return makeError(ErrorCode::kInvalid, "Workflow cannot be retried with node " + nodeId +
                                                  " in " + nodePhase + " phase");
      }
    }
  }
  // Children and outbound nodes are pruned to the kept nodes.
  for (auto& [id, node] : nodes.items()) {
    (void)id;
    for (const char* field : {"children", "outboundNodes"}) {
      if (!node.contains(field) || !node[field].is_array())
        continue;
      json kept = json::array();
      for (const json& child : node[field]) {
        if (child.is_string() && nodes.contains(child.get<std::string>()))
          kept.push_back(child);
      }
      if (kept.empty())
        node.erase(field);
      else
        node[field] = kept;
    }
  }
  status["nodes"] = nodes;
  return out;
}

}  // namespace

Status KfpApiSimulator::retryRun(const std::string& runId) {
  if (Status s = connectKube(); !s)
    return s;
  if (!kube_)
    return makeError(ErrorCode::kUnsupported, "retryRun needs the Kubernetes API (kubeApiUrl)");
  Run run;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = runs_.find(runId);
    if (it == runs_.end())
      return makeError(ErrorCode::kNotFound, "retryRun: run " + runId + " not found");
    run = it->second;
  }
  if (run.manifest.empty())
    return makeError(ErrorCode::kInvalid, "retryRun: Workflow manifest cannot be empty");
  const json stored = json::parse(run.manifest, nullptr, false);
  if (stored.is_discarded())
    return makeError(ErrorCode::kInvalid, "retryRun: the stored manifest is not JSON");
  auto generated = generateRetryExecution(stored);
  if (!generated)
    return generated.error();
  json wf = std::move(generated).value();
  const bool master = options_.version == KfpVersion::kMaster;
  const auto nowSec =
      std::chrono::duration_cast<std::chrono::seconds>(clock().wallNow().time_since_epoch())
          .count();
  if (master) {
    // master: ClaimRunForRetry (State PENDING, FinishedAtInSec 0,
    // RetryGeneration + 1, RetryClaimedAtInSec now) and the claim stamped on
    // the Workflow as pipelines.kubeflow.org/retry-generation.
    std::lock_guard<std::mutex> g(mu_);
    Run& row = runs_[runId];
    if (row.state != "SUCCEEDED" && row.state != "FAILED" && row.state != "CANCELED" &&
        row.state != "SKIPPED") {
      return makeError(ErrorCode::kInvalid,
                       "Cannot claim run " + runId + " for retry: not in a terminal state");
    }
    row.retryGeneration += 1;
    row.retryClaimedAtSec = nowSec;
    row.state = "PENDING";
    row.finishedAtSec = 0;
    row.finishedAt.clear();
    run = row;
    if (!wf["metadata"].contains("annotations") || !wf["metadata"]["annotations"].is_object())
      wf["metadata"]["annotations"] = json::object();
    wf["metadata"]["annotations"][std::string(kfpsim::kAnnotationRetryGeneration)] =
        std::to_string(row.retryGeneration);
  }
  // Update the live CR at its current resourceVersion, else create it.
  const std::string ns = kfpsim::metaString(wf, "namespace");
  const std::string name = kfpsim::metaString(wf, "name");
  json applied;
  auto live = kube_->get(resources::kWorkflows, ns, name);
  std::optional<Error> updateError;
  if (live) {
    wf["metadata"]["resourceVersion"] = kfpsim::metaString(*live, "resourceVersion");
    auto updated = kube_->update(resources::kWorkflows, ns, name, wf);
    if (updated)
      applied = *updated;
    else
      updateError = updated.error();
  } else {
    updateError = live.error();
  }
  if (updateError) {
    wf["metadata"].erase("resourceVersion");
    wf["metadata"].erase("uid");
    auto created = kube_->create(resources::kWorkflows, ns, wf);
    if (!created) {
      return makeError(ErrorCode::kTransient, "Failed to retry run " + runId +
                                                  " due to error updating and creating a "
                                                  "workflow: " +
                                                  created.error().message);
    }
    applied = *created;
  }
  // UpdateRun with the resubmitted Workflow's state (RUNNING).
  std::lock_guard<std::mutex> g(mu_);
  Run& row = runs_[runId];
  row.state = stateForPhase(kfpsim::statusString(applied, "phase"));
  if (row.stateHistory.empty() || row.stateHistory.back().second != row.state)
    row.stateHistory.emplace_back(formatRfc3339(clock().wallNow()), row.state);
  row.finishedAtSec = 0;
  row.finishedAt.clear();
  row.manifest = applied.dump();
  row.resourceVersion = kfpsim::metaString(applied, "resourceVersion");
  return Status::okStatus();
}

}  // namespace exitrec
