// KfpHistoryApi::report: ReportWorkflowResource for runs of this store
// (resource/resource_manager.go, 2.0.0-2.16.x; see kfp_history_api.h).

#include <ctime>

#include "sim/kfp/kfp_history_api_internal.h"

namespace exitrec {

using kfphistory::detail::findPath;
using kfphistory::detail::invalid;
using kfphistory::detail::json;
using kfphistory::detail::kFinalStateLabel;
using kfphistory::detail::kRunIdLabel;
using kfphistory::detail::rpcError;
using kfphistory::detail::stringAt;

namespace {

// KFP's ToV2(upper(phase)) (util/execution_status.go RuntimeState.ToV2).
std::string stateForPhase(const std::string& phase) {
  if (phase == "Pending")
    return "PENDING";
  if (phase == "Running")
    return "RUNNING";
  if (phase == "Succeeded")
    return "SUCCEEDED";
  if (phase == "Failed" || phase == "Error")
    return "FAILED";
  return "RUNTIME_STATE_UNSPECIFIED";
}

bool isFinalState(const std::string& state) {
  return state == "SUCCEEDED" || state == "FAILED" || state == "SKIPPED" || state == "CANCELED";
}

}  // namespace

KfpHistoryApi::Response KfpHistoryApi::report(const Auth& auth, const std::string& body) {
  ReportRecord rec;
  auto finish = [&](Response r) {
    rec.status = r.status;
    std::lock_guard<std::mutex> g(mu_);
    reports_.push_back(rec);
    return r;
  };
  // ReportWorkflowV1 → IsAuthorized(report workflows), cluster scope (2.1.0+).
  if (options_.multiUser && auth.identity != nullptr && !auth.identity->mayReport) {
    return finish(rpcError(403, 7, "PermissionDenied: Failed to report workflow"));
  }
  json outer = json::parse(body, nullptr, false);
  json wf =
      outer.is_string() ? json::parse(outer.get_ref<const std::string&>(), nullptr, false) : json();
  if (!wf.is_object())
    return finish(invalid("Could not unmarshal the workflow"));
  const std::string name = stringAt(wf, "metadata", "name");
  const std::string ns = stringAt(wf, "metadata", "namespace");
  const std::string uid = stringAt(wf, "metadata", "uid");
  if (name.empty() || ns.empty() || uid.empty())  // validateReportWorkflowRequest
    return finish(invalid("The workflow must have a name, a namespace and a uid"));
  const json* labels = findPath(wf, "metadata", "labels");
  if (labels != nullptr && labels->is_object()) {
    if (auto r = labels->find(kRunIdLabel); r != labels->end() && r->is_string())
      rec.runId = r->get<std::string>();
    rec.hadFinalStateLabel = labels->contains(kFinalStateLabel);
  }
  rec.phase = stringAt(wf, "status", "phase");
  if (rec.runId.empty())
    return finish(invalid("Workflow[" + name + "] missing the Run ID label"));

  std::unique_lock<std::mutex> lock(mu_);
  Cluster cluster = cluster_;
  auto exists = [&] { return cluster.exists && cluster.exists(ns, name); };
  auto remove = [&] {
    bool removed = cluster.remove ? cluster.remove(ns, name) : false;
    rec.deletedWorkflow = rec.deletedWorkflow || removed;
    return removed;
  };
  if (rec.hadFinalStateLabel && !remove()) {
    lock.unlock();
    return finish(rpcError(
        404, 5, "Failed to delete the completed workflow for run " + rec.runId + ": NotFound"));
  }
  auto it = runs_.find(rec.runId);
  if (it == runs_.end()) {
    // No ScheduledWorkflow owner in our model: delete the CR, NotFound.
    remove();
    lock.unlock();
    return finish(rpcError(404, 5, "Failed to report a workflow: run " + rec.runId + " not found"));
  }
  HistoryRun& run = it->second;
  const std::string state = stateForPhase(rec.phase);
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  if (run.stateHistory.empty() || run.stateHistory.back().second != state)
    run.stateHistory.emplace_back(now, state);
  run.state = state;
  std::string finishedAt = stringAt(wf, "status", "finishedAt");
  auto finished = finishedAt.empty() ? Result<std::int64_t>(std::int64_t{0})
                                     : kfphistory::parseTimestamp(finishedAt);
  run.finishedAt = finished ? *finished : 0;
  run.manifest = outer.get<std::string>();
  rec.wroteRun = true;
  const bool crExists = exists();
  lock.unlock();
  // addWorkflowLabel on the missing CR: NotFound after the commit.
  if (isFinalState(state) && !crExists) {
    return finish(rpcError(
        404, 5, "Failed to add PersistedFinalState label to workflow " + name + ": NotFound"));
  }
  return finish({200, "{}"});
}

}  // namespace exitrec
