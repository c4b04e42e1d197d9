// The KFP simulator's run store entry points and its Kubernetes client
// (KFP's getWorkflowClient): kept apart from kfp_api_simulator.cpp, which
// includes the server-side HTTP types (common/http_server.h).

#include <nlohmann/json.hpp>

#include "k8sclient/cpprest_transport.h"
#include "k8sclient/kube_client.h"
#include "sim/kfp/kfp_api_simulator.h"
#include "sim/kfp/kfp_workflow_fields.h"

namespace exitrec {

using nlohmann::json;

Status KfpApiSimulator::connectKube() {
  if (options_.kubeApiUrl.empty() || kube_)
    return Status::okStatus();
  const std::string& url = options_.kubeApiUrl;
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return makeError(ErrorCode::kInvalidInput,
                     "KFP simulator: --kube-api-url must be an http(s) URL, got \"" + url + "\"");
  }
  auto transport = makeCpprestTransport(TlsOptions{});
  if (!transport)
    return transport.error();
  kubeTransport_ = std::shared_ptr<HttpTransport>(std::move(transport).value());
  TokenSource tokens =
      options_.kubeToken.empty() ? TokenSource() : TokenSource::fixed(options_.kubeToken);
  KubeClientOptions ko;
  ko.userAgent = "kfp-apisim/ml-pipeline";
  kube_ = std::make_shared<KubeClient>(kubeTransport_, url, tokens, ko);
  return Status::okStatus();
}

Result<KfpApiSimulator::Run> KfpApiSimulator::createRun(const CreateRunRequest& request) {
  if (Status s = connectKube(); !s)
    return s.error();
  // Reports wait while a run is being created (see createMu_).
  std::unique_lock<std::shared_mutex> creating(createMu_);
  if (request.runId.empty())
    return makeError(ErrorCode::kInvalidInput, "createRun: the run id is empty");
  {
    std::lock_guard<std::mutex> g(mu_);
    if (runs_.count(request.runId) != 0) {
      return makeError(ErrorCode::kInvalidInput,
                       "createRun: run " + request.runId + " already exists");
    }
  }
  std::string name = request.workflowName;
  std::string ns = request.ns;
  if (request.workflow) {
    // resource_manager.go CreateRun: the Workflow CR is created first
    // (getWorkflowClient(ns).Create), then the run row.
    if (!kube_) {
      return makeError(ErrorCode::kUnsupported,
                       "createRun: a Workflow needs the Kubernetes API (kubeApiUrl)");
    }
    json wf = *request.workflow;
    if (!wf.is_object() || (wf.contains("metadata") && !wf["metadata"].is_object()))
      return makeError(ErrorCode::kInvalidInput, "createRun: the Workflow is not an object");
    if (ns.empty())
      ns = kfpsim::metaString(wf, "namespace");
    if (ns.empty())
      return makeError(ErrorCode::kInvalidInput, "createRun: no namespace for the Workflow");
    wf["metadata"]["namespace"] = ns;
    if (!wf["metadata"].contains("labels") || !wf["metadata"]["labels"].is_object())
      wf["metadata"]["labels"] = json::object();
    wf["metadata"]["labels"][std::string(kfpsim::kLabelRunId)] = request.runId;
    wf["metadata"].erase("resourceVersion");
    auto created = kube_->create(resources::kWorkflows, ns, wf);
    if (!created)
      return created.error();
    name = kfpsim::metaString(*created, "name");
  }
  if (name.empty() || ns.empty()) {
    return makeError(ErrorCode::kInvalidInput,
                     "createRun: run " + request.runId + " needs a Workflow name and namespace");
  }
  // runStore.CreateRun: State PENDING, StateHistory [{now, PENDING}],
  // CreatedAtInSec = ScheduledAtInSec = now, Name = the CR's name.
  Run run;
  run.runId = request.runId;
  run.displayName = request.displayName.empty() ? name : request.displayName;
  run.workflowName = name;
  run.workflowNamespace = ns;
  run.createdAt = formatRfc3339(clock().wallNow());
  run.state = "PENDING";
  run.stateHistory.emplace_back(run.createdAt, run.state);
  std::lock_guard<std::mutex> g(mu_);
  runs_[run.runId] = run;
  return run;
}

void KfpApiSimulator::addRecurringRun(const std::string& jobId, const std::string& ns) {
  std::lock_guard<std::mutex> g(mu_);
  jobs_[jobId] = ns;
}

KfpApiSimulator::Response KfpApiSimulator::controlWith(const std::string& method,
                                                       const std::string& path, const json& args) {
  auto fail = [&](int code, const std::string& message) {
    RpcResult r;
    r.code = code;
    r.message = message;
    r.external = message;
    return errorResponse(r);
  };
  if (method == "POST" && path == "/_kfp/fail") {
    failNext(args.value("count", 1), args.value("status", 503));
    return {200, "{}"};
  }
  if (method == "POST" && path == "/_kfp/delay") {
    setDelay(std::chrono::milliseconds(args.value("ms", 0)));
    return {200, "{}"};
  }
  if (method == "POST" && path == "/_kfp/token") {
    setToken(args.value("token", ""));
    return {200, "{}"};
  }
  if (method == "POST" && path == "/_kfp/outage") {
    setOutage(args.value("on", true));
    return {200, "{}"};
  }
  if (method == "GET" && path == "/_kfp/reports")
    return {200, reportsToJson(reports())};
  if (method == "GET" && path == "/_kfp/deletions") {
    json out = json::array();
    for (const Deletion& d : deletions()) {
      out.push_back({{"namespace", d.ns},
                     {"name", d.name},
                     {"runId", d.runId},
                     {"reason", d.reason},
                     {"existed", d.existed},
                     {"at", formatRfc3339(d.at)}});
    }
    return {200, out.dump()};
  }
  if (method == "POST" && path == "/_kfp/runs") {
    CreateRunRequest req;
    req.runId = args.value("run_id", "");
    req.displayName = args.value("display_name", "");
    req.ns = args.value("namespace", "");
    req.workflowName = args.value("workflow_name", "");
    if (auto w = args.find("workflow"); w != args.end())
      req.workflow = *w;
    auto r = createRun(req);
    if (!r)
      return fail(grpc_code::kInvalidArgument, r.error().describe());
    return {200, runToJson(*r)};
  }
  if (method == "POST" && path == "/_kfp/retry") {
    if (Status st = retryRun(args.value("run_id", "")); !st)
      return fail(grpc_code::kInvalidArgument, st.error().describe());
    return {200, "{}"};
  }
  if (method == "POST" && path == "/_kfp/recurring-runs") {
    const std::string id = args.value("id", "");
    if (id.empty())
      return fail(grpc_code::kInvalidArgument, "recurring run id is empty");
    addRecurringRun(id, args.value("namespace", ""));
    return {200, "{}"};
  }
  return fail(grpc_code::kNotFound, "Not Found: " + method + " " + path);
}

}  // namespace exitrec
