#include "controller/kfp_report_body.h"

#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "controller/annotations.h"

namespace exitrec {
namespace {

using nlohmann::json;

}  // namespace

Result<std::string> kfpReportableWorkflow(std::string_view workflowJson,
                                          KfpReportBodyOptions options) {
  json wf = json::parse(workflowJson, nullptr, /*allow_exceptions=*/false);
  if (!wf.is_object())
    return Error(ErrorCode::kInvalidInput, "KFP report: the Workflow is not a JSON object");
  auto meta = wf.find("metadata");
  if (meta == wf.end() || !meta->is_object())
    return Error(ErrorCode::kInvalidInput, "KFP report: the Workflow has no metadata object");
  if (auto labels = meta->find("labels"); labels != meta->end()) {
    if (!labels->is_object() && !labels->is_null()) {
      return Error(ErrorCode::kInvalidInput,
                   "KFP report: the Workflow's metadata.labels is not an object");
    }
    if (labels->is_object())
      labels->erase(std::string(lbl::kPersistedFinalState));
  }
  if (!options.keepResourceVersion)
    meta->erase("resourceVersion");
  return dumpJson(wf);
}

Result<std::string> kfpReportBody(std::string_view workflowJson, KfpReportBodyOptions options) {
  Result<std::string> wf = kfpReportableWorkflow(workflowJson, options);
  if (!wf)
    return wf.error();
  return dumpJson(json(*wf));
}

bool carriesPersistedFinalState(std::string_view workflowJson) {
  json wf = json::parse(workflowJson, nullptr, /*allow_exceptions=*/false);
  if (!wf.is_object())
    return false;
  auto meta = wf.find("metadata");
  if (meta == wf.end() || !meta->is_object())
    return false;
  auto labels = meta->find("labels");
  return labels != meta->end() && labels->is_object() &&
         labels->contains(std::string(lbl::kPersistedFinalState));
}

}  // namespace exitrec
