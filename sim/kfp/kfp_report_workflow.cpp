// ReportWorkflowResource of the KFP API server, per version
// (backend/src/apiserver/resource/resource_manager.go at 2.0.0, 2.3.0, 2.4.0,
// 2.16.1, 2.17.0 and master 7b70c7b95f). Every step names its upstream source.

#include <nlohmann/json.hpp>
#include <thread>

#include "k8sclient/kube_client.h"
#include "sim/kfp/kfp_api_simulator.h"
#include "sim/kfp/kfp_report_handler.h"
#include "sim/kfp/kfp_workflow_fields.h"

namespace exitrec {

using nlohmann::json;
using namespace kfpsim;

namespace {

using RpcResult = KfpApiSimulator::RpcResult;

// util.NewNotFoundError / NewInvalidInputError / NewUnavailableServerError /
// NewInternalServerError (backend/src/common/util/error.go): a UserError
// whose status message is the wrapped chain and whose detail carries the
// external message.
RpcResult userError(int code, const std::string& kind, const std::string& external,
                    const std::string& cause) {
  RpcResult r;
  r.code = code;
  r.external = external;
  r.message = kind + ": " + external + (cause.empty() ? "" : ": " + cause);
  return r;
}

// A plain Go error wrapped with util.Wrapf reaches ToGRPCError's default
// branch: Internal, "Internal error: ...", detail code Unknown.
RpcResult plainError(const std::string& chain) {
  RpcResult r;
  r.code = grpc_code::kInternal;
  r.message = "Internal error: " + chain;
  r.external = r.message;
  r.detailCode = grpc_code::kUnknown;
  return r;
}

// The text client-go's StatusError gives for a Kubernetes failure.
std::string kubeText(const Error& e) {
  return e.message;
}

// util.Wrap(err, msg) on a UserError prefixes the chain, keeping the code.
RpcResult wrap(RpcResult r, const std::string& msg) {
  r.message = msg + ": " + r.message;
  return r;
}

}  // namespace

KfpReportHandler::KfpReportHandler(KfpApiSimulator& sim) : sim_(sim) {}

bool KfpReportHandler::hasCluster() const {
  return sim_.kube_ != nullptr;
}

std::optional<Error> KfpReportHandler::deleteWorkflow(const std::string& ns,
                                                      const std::string& name) {
  if (!hasCluster())
    return std::nullopt;
  Status s = sim_.kube_->remove(resources::kWorkflows, ns, name);
  if (s)
    return std::nullopt;
  return s.error();
}

Result<json> KfpReportHandler::getWorkflow(const std::string& ns, const std::string& name) {
  if (!hasCluster()) {
    Error e(ErrorCode::kNotFound, "no cluster");
    e.httpStatus = 404;
    return e;
  }
  return sim_.kube_->get(resources::kWorkflows, ns, name);
}

void KfpReportHandler::pause(int retry, bool exponential) {
  if (!exponential)
    return;  // backoff.NewConstantBackOff(100): 100 ns between attempts
  // backoff.NewExponentialBackOff (cenkalti/backoff v4) with InitialInterval
  // 100 ms, MaxInterval 5 s, Multiplier 1.5 (jitter left out).
  double ms = static_cast<double>(sim_.options_.backoffInitial.count());
  for (int i = 0; i < retry; ++i)
    ms *= 1.5;
  const auto cap = static_cast<double>(sim_.options_.backoffMax.count());
  if (ms > cap)
    ms = cap;
  if (ms > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long long>(ms)));
}

// backoff.Retry(op, backoff.WithMaxRetries(policy, 10)): 11 attempts at most;
// `permanent` stops at once (backoff.Permanent).
std::optional<Error> KfpReportHandler::retry(const std::function<std::optional<Error>()>& op,
                                             bool exponential,
                                             const std::function<bool(const Error&)>& permanent) {
  std::optional<Error> err;
  for (int attempt = 0; attempt <= 10; ++attempt) {
    if (attempt > 0)
      pause(attempt - 1, exponential);
    err = op();
    if (!err || (permanent && permanent(*err)))
      return err;
  }
  return err;
}

std::optional<RpcResult> KfpReportHandler::deleteOnLabel(const Report& rep) {
  // "if execSpec.PersistedFinalState() { ...Delete(ctx, name) ... }" — every
  // version; NotFound returns NotFound (kubeflow/pipelines#4484) before any
  // write, other errors Internal.
  auto err = deleteWorkflow(rep.ns, rep.name);
  if (hasCluster())
    sim_.recordDeletion({rep.ns, rep.name, rep.runId, "persisted-final-state",
                         !err || err->httpStatus != 404, sim_.clock().wallNow()});
  if (!err)
    return std::nullopt;
  const std::string ext = "Failed to delete the completed workflow for run " + rep.runId;
  if (err->httpStatus == 404)
    return userError(grpc_code::kNotFound, "NotFoundError", ext, kubeText(*err));
  return userError(grpc_code::kInternal, "InternalServerError", ext, kubeText(*err));
}

std::optional<RpcResult> KfpReportHandler::fenceResourceVersion(const Report& rep) {
  // 2.17.0+ workflowStillMatchesReportedVersion: an empty reported RV passes;
  // a missing CR passes ("proceed with the reported terminal state"); a
  // different live RV defers the report (terminalWorkflowReportDeferredError:
  // Unavailable).
  if (rep.resourceVersion.empty())
    return std::nullopt;
  auto live = getWorkflow(rep.ns, rep.name);
  if (!live) {
    if (live.error().httpStatus == 404)
      return std::nullopt;
    return plainError(
        "Failed to verify current workflow version while reporting completed "
        "workflow " +
        rep.name + ": " + kubeText(live.error()));
  }
  if (metaString(*live, "resourceVersion") == rep.resourceVersion)
    return std::nullopt;
  const std::string reason =
      "workflow resource version changed before terminal report was "
      "persisted";
  return userError(grpc_code::kUnavailable, "ServiceUnavailable",
                   "Skipping terminal workflow report for run " + rep.runId + " workflow " +
                       rep.name + ": " + reason,
                   reason);
}

std::optional<RpcResult> KfpReportHandler::labelFinalState(const Report& rep) {
  const std::string ext = "Failed to add PersistedFinalState label to workflow " + rep.name;
  std::optional<Error> err;
  bool conflict = false;
  if (sim_.options_.version < KfpVersion::k2_17) {
    // 2.0–2.16 addWorkflowLabel: merge patch, backoff.NewConstantBackOff(100)
    // (nanoseconds), 10 retries.
    if (!hasCluster())
      return std::nullopt;
    const json patch = {{"metadata", {{"labels", {{kLabelPersistedFinalState, "true"}}}}}};
    err = retry(
        [&]() -> std::optional<Error> {
          auto r = sim_.kube_->mergePatch(resources::kWorkflows, rep.ns, rep.name, patch);
          return r ? std::nullopt : std::optional<Error>(r.error());
        },
        /*exponential=*/false, nullptr);
  } else {
    // 2.17.0+ addWorkflowLabelIfWorkflowUnchanged: JSON patch with a `test` of
    // /metadata/resourceVersion (when reported), retried with
    // newStandardBackoffPolicy; only apierrors.IsConflict (HTTP 409) is
    // permanent and means "not added". A failed `test` answers 422 Invalid
    // (apiserver patch.go), which is not a conflict: retried, then returned.
    if (!hasCluster())
      return std::nullopt;
    json ops = json::array();
    if (!rep.resourceVersion.empty()) {
      ops.push_back(
          {{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", rep.resourceVersion}});
    }
    ops.push_back({{"op", "add"},
                   {"path", "/metadata/labels/pipeline~1persistedFinalState"},
                   {"value", "true"}});
    err = retry(
        [&]() -> std::optional<Error> {
          auto r = sim_.kube_->jsonPatch(resources::kWorkflows, rep.ns, rep.name, ops);
          return r ? std::nullopt : std::optional<Error>(r.error());
        },
        /*exponential=*/true, [](const Error& e) { return e.httpStatus == 409; });
    conflict = err && err->httpStatus == 409;
    if (conflict) {
      const std::string reason =
          "workflow resource version changed before persistedFinalState label could be added";
      return userError(grpc_code::kUnavailable, "ServiceUnavailable",
                       "Skipping terminal workflow report for run " + rep.runId + " workflow " +
                           rep.name + ": " + reason,
                       reason);
    }
  }
  if (!err)
    return std::nullopt;
  if (err->httpStatus == 404)
    return userError(grpc_code::kNotFound, "NotFoundError", ext, kubeText(*err));
  return plainError(ext + ": " + kubeText(*err));
}

// The unknown-run branch ("if jobId == \"\" { if updateError != nil ...").
RpcResult KfpReportHandler::unknownRun(const Report& rep, const json& wf) {
  const std::string notFound = "ResourceNotFoundError: Run " + rep.runId + " not found";
  if (sim_.options_.version >= KfpVersion::k2_17) {
    // 2.17.0+: skip GC while now - creationTimestamp < grace period (the
    // Workflow may be ahead of its row); Go's zero time when unset.
    const auto created = parseRfc3339Seconds(metaString(wf, "creationTimestamp")).value_or(0);
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(sim_.clock().wallNow().time_since_epoch())
            .count();
    if (created != 0 && now - created < sim_.options_.workflowGcGracePeriod.count()) {
      return userError(grpc_code::kUnavailable, "ServiceUnavailable",
                       "Skipping GC for workflow " + rep.name + " - will retry",
                       "workflow " + rep.name + " is within GC grace period");
    }
    // Deleted with newStandardBackoffPolicy; NotFound counts as done.
    auto err = retry(
        [&]() -> std::optional<Error> {
          auto e = deleteWorkflow(rep.ns, rep.name);
          if (e && e->httpStatus == 404)
            return std::nullopt;
          return e;
        },
        /*exponential=*/true, nullptr);
    if (hasCluster())
      sim_.recordDeletion(
          {rep.ns, rep.name, rep.runId, "unknown-run", true, sim_.clock().wallNow()});
    if (err) {
      return userError(
          grpc_code::kInternal, "InternalServerError",
          "Failed to delete the obsolete workflow for run " + rep.runId + " after multiple retries",
          kubeText(*err));
    }
  } else {
    // 2.0–2.16: one Delete; NotFound answers NotFound, others Internal.
    auto err = deleteWorkflow(rep.ns, rep.name);
    if (hasCluster())
      sim_.recordDeletion({rep.ns, rep.name, rep.runId, "unknown-run",
                           !err || err->httpStatus != 404, sim_.clock().wallNow()});
    if (err) {
      const std::string ext = "Failed to delete the obsolete workflow for run " + rep.runId;
      if (err->httpStatus == 404)
        return userError(grpc_code::kNotFound, "NotFoundError", ext, kubeText(*err));
      return userError(grpc_code::kInternal, "InternalServerError", ext, kubeText(*err));
    }
  }
  // "return nil, util.Wrapf(updateError, ...)": the run store's NotFound.
  RpcResult r =
      userError(grpc_code::kNotFound, "NotFoundError", "Run " + rep.runId + " not found", "");
  r.message = "Failed to report workflow name=\"" + rep.name + "\" namespace=\"" + rep.ns +
              "\" runId=\"" + rep.runId + "\": Failed to update the run: " + notFound;
  return r;
}

// master: the retry-generation fence. Returns "skip" (accept as a no-op), an
// error, or nothing (go on).
std::optional<RpcResult> KfpReportHandler::fenceRetryGeneration(const Report& rep, const json& wf,
                                                                const KfpApiSimulator::Run& run,
                                                                bool& skip) {
  skip = false;
  const std::int64_t reported = retryGeneration(wf);
  if (run.retryGeneration <= 0 || reported >= run.retryGeneration)
    return std::nullopt;
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(sim_.clock().wallNow().time_since_epoch())
          .count();
  const std::int64_t claimAge = now - run.retryClaimedAtSec;
  if (run.retryClaimedAtSec > 0 && claimAge <= sim_.options_.retryClaimGrace.count()) {
    skip = true;  // "Skipping stale terminal report ... as a successful no-op"
    return std::nullopt;
  }
  auto live = getWorkflow(rep.ns, rep.name);
  if (live && retryGeneration(*live) >= run.retryGeneration) {
    skip = true;
    return std::nullopt;
  }
  if (!live && live.error().httpStatus != 404) {
    return userError(grpc_code::kUnavailable, "ServiceUnavailable",
                     "Cannot verify live workflow before accepting a stale-generation report for "
                     "run " +
                         rep.runId + " - will retry",
                     kubeText(live.error()));
  }
  return std::nullopt;  // provably not applied: accept
}

RpcResult KfpReportHandler::reportWorkflowResource(const json& wf, Report& rep) {
  const KfpVersion version = sim_.options_.version;
  const bool master = version == KfpVersion::kMaster;
  if (!metaMapValue(wf, "labels", kLabelRunId)) {
    return userError(grpc_code::kInvalidArgument, "InvalidInputError",
                     "Workflow[" + rep.name + "] missing the Run ID label", "");
  }
  const std::string jobId = scheduledWorkflowUid(wf);
  const bool persisted = rep.carriedFinalStateLabel;
  const bool final = isFinalPhase(rep.phase);
  std::string state = KfpApiSimulator::stateForPhase(rep.phase);
  if (isTerminating(wf))
    state = "CANCELING";  // RunTerminatingConditionsV1 ("Terminating").ToV2()
  rep.state = state;

  // 2.0–2.17: delete-on-label comes first of all.
  if (!master && persisted) {
    if (auto e = deleteOnLabel(rep))
      return *e;
  }
  if (version >= KfpVersion::k2_17 && final) {
    if (auto e = fenceResourceVersion(rep))
      return *e;
  }

  // r.GetRun(runId): a snapshot of the row.
  std::optional<KfpApiSimulator::Run> snapshot;
  {
    std::lock_guard<std::mutex> g(sim_.mu_);
    auto it = sim_.runs_.find(rep.runId);
    if (it != sim_.runs_.end())
      snapshot = it->second;
  }
  if (master) {
    if (snapshot && final) {
      bool skip = false;
      if (auto e = fenceRetryGeneration(rep, wf, *snapshot, skip))
        return *e;
      if (skip)
        return {};
    }
    // master: delete-on-label after the generation fence.
    if (persisted) {
      if (auto e = deleteOnLabel(rep))
        return *e;
    }
  }

  const std::int64_t finishedAt = finishedAtSeconds(wf);
  const auto nowText = formatRfc3339(sim_.clock().wallNow());
  if (snapshot) {
    // runStore.UpdateRun: Conditions, State, StateHistory (appended on
    // change), FinishedAtInSec, WorkflowRuntimeManifest; master adds
    // "WHERE RetryGeneration = ?" (0 rows: NotFound).
    std::lock_guard<std::mutex> g(sim_.mu_);
    auto it = sim_.runs_.find(rep.runId);
    if (it == sim_.runs_.end() ||
        (master && it->second.retryGeneration != snapshot->retryGeneration)) {
      return wrap(userError(grpc_code::kNotFound, "ResourceNotFoundError",
                            "Run " + rep.runId + " not found", ""),
                  "Failed to report a workflow for existing run " + rep.runId +
                      " during updating the run. Check if the run entry is corrupted");
    }
    KfpApiSimulator::Run& run = it->second;
    run.state = state;
    if (run.stateHistory.empty() || run.stateHistory.back().second != state)
      run.stateHistory.emplace_back(nowText, state);
    run.finishedAtSec = finishedAt;
    run.finishedAt =
        finishedAt == 0 ? "" : formatRfc3339(Clock::WallTime(std::chrono::seconds(finishedAt)));
    run.manifest = wf.dump();
    run.resourceVersion = rep.resourceVersion;
  } else if (jobId.empty()) {
    return unknownRun(rep, wf);
  } else {
    // A run of a recurring run: created from the report (GetJob, then
    // runStore.CreateRun with the Workflow's name and creationTimestamp).
    std::lock_guard<std::mutex> g(sim_.mu_);
    auto job = sim_.jobs_.find(jobId);
    if (job == sim_.jobs_.end()) {
      return wrap(userError(grpc_code::kNotFound, "ResourceNotFoundError",
                            "Job " + jobId + " not found", ""),
                  "Failed to report a workflow for run " + rep.runId +
                      " due to error retrieving recurring run " + jobId);
    }
    KfpApiSimulator::Run run;
    run.runId = rep.runId;
    run.displayName = rep.name;
    run.workflowName = rep.name;
    run.workflowNamespace = job->second.empty() ? rep.ns : job->second;
    run.recurringRunId = jobId;
    run.createdAt = metaString(wf, "creationTimestamp");
    run.state = state;
    run.stateHistory.emplace_back(nowText, state);
    run.finishedAtSec = finishedAt;
    run.finishedAt =
        finishedAt == 0 ? "" : formatRfc3339(Clock::WallTime(std::chrono::seconds(finishedAt)));
    run.manifest = wf.dump();
    run.resourceVersion = rep.resourceVersion;
    sim_.runs_.emplace(run.runId, run);
  }

  if (final) {
    if (version >= KfpVersion::k2_17) {
      // runStillMatchesReportedFinalState: re-read the row.
      std::lock_guard<std::mutex> g(sim_.mu_);
      auto it = sim_.runs_.find(rep.runId);
      if (it == sim_.runs_.end() || it->second.state != state ||
          it->second.finishedAtSec != finishedAt) {
        const std::string reason = "run state changed while reporting terminal workflow state";
        return userError(grpc_code::kUnavailable, "ServiceUnavailable",
                         "Skipping terminal workflow report for run " + rep.runId + " workflow " +
                             rep.name + ": " + reason,
                         reason);
      }
    }
    if (auto e = labelFinalState(rep))
      return *e;
  }
  return {};
}

}  // namespace exitrec
