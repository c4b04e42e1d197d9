// The audit's one-line JSON. nlohmann's ordered_json keeps the documented key
// order; invalid UTF-8 (cannot come from our readers, but Verdicts can be built
// by hand) is replaced rather than thrown on.
#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "engine/outcome.h"

namespace exitrec {

namespace {

using Json = nlohmann::ordered_json;

Json phaseJson(Phase p) {
  return std::string(phaseName(p));
}

Json failureJson(const Failure& f) {
  Json j = Json::object();
  j["displayName"] = f.displayName;
  j["message"] = f.message;
  j["templateName"] = f.templateName;
  j["phase"] = phaseJson(f.phase);
  j["podName"] = f.podName;
  j["finishedAt"] = f.finishedAt.empty() ? Json(nullptr) : Json(f.finishedAt);
  return j;
}

Json failuresJson(const std::vector<Failure>& failures) {
  Json arr = Json::array();
  for (const auto& f : failures)
    arr.push_back(failureJson(f));
  return arr;
}

}  // namespace

std::string verdictToJson(const Verdict& v) {
  Json j = Json::object();
  j["namespace"] = v.namespace_;
  j["name"] = v.name;
  j["runId"] = v.runId ? Json(*v.runId) : Json(nullptr);
  j["generation"] = std::string(generationName(v.generation));
  j["reportedPhase"] = phaseJson(v.reportedPhase);
  j["truePhase"] = phaseJson(v.truePhase);
  j["misreported"] = v.misreported;
  j["cause"] = v.cause ? Json(*v.cause) : Json(nullptr);
  j["failures"] = failuresJson(v.failures);
  Json handlers = Json::array();
  for (const auto& h : v.exitHandlers) {
    Json e = Json::object();
    e["name"] = h.name;
    e["bodyPhase"] = phaseJson(h.bodyPhase);
    e["exitTask"] = h.exitTask;
    e["exitTaskPhase"] = phaseJson(h.exitTaskPhase);
    handlers.push_back(std::move(e));
  }
  j["exitHandlers"] = std::move(handlers);
  return dumpJson(j);
}

std::string failuresToJson(const std::vector<Failure>& failures) {
  return dumpJson(failuresJson(failures));
}

}  // namespace exitrec
