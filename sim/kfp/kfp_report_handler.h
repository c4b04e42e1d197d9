#pragma once
// KfpReportHandler: ReportWorkflowResource of the KFP API server for one
// report (sim/kfp/kfp_report_workflow.cpp), with KFP's workflow client (the
// simulator's KubeClient) and its backoff policies. Internal to
// KfpApiSimulator; one instance per report, on the reporting thread.

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"
#include "sim/kfp/kfp_api_simulator.h"

namespace exitrec {

class KfpReportHandler {
 public:
  using Report = KfpApiSimulator::Report;
  using RpcResult = KfpApiSimulator::RpcResult;

  explicit KfpReportHandler(KfpApiSimulator& sim);

  // `rep` carries the validated identity (ns, name, runId, phase, RV, label);
  // its `state` is filled in.
  RpcResult reportWorkflowResource(const nlohmann::json& wf, Report& rep);

 private:
  bool hasCluster() const;
  std::optional<Error> deleteWorkflow(const std::string& ns, const std::string& name);
  Result<nlohmann::json> getWorkflow(const std::string& ns, const std::string& name);
  void pause(int retry, bool exponential);
  std::optional<Error> retry(const std::function<std::optional<Error>()>& op, bool exponential,
                             const std::function<bool(const Error&)>& permanent);

  std::optional<RpcResult> deleteOnLabel(const Report& rep);
  std::optional<RpcResult> fenceResourceVersion(const Report& rep);
  std::optional<RpcResult> fenceRetryGeneration(const Report& rep, const nlohmann::json& wf,
                                                const KfpApiSimulator::Run& run, bool& skip);
  std::optional<RpcResult> labelFinalState(const Report& rep);
  RpcResult unknownRun(const Report& rep, const nlohmann::json& wf);

  KfpApiSimulator& sim_;
};

}  // namespace exitrec
