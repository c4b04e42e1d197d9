#pragma once
// A tiny builder for Workflow JSON in tests: nodes are added by name, ids
// follow Argo's rule (or are synthetic on request), parents/boundaries are
// given by node name. Output goes through the real reader.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "engine/outcome.h"
#include "engine/workflow.h"

namespace exitrec::testing {

using Json = nlohmann::ordered_json;

class WfBuilder {
 public:
  explicit WfBuilder(std::string name, bool kfp = true) : name_(std::move(name)) {
    doc_["apiVersion"] = "argoproj.io/v1alpha1";
    doc_["kind"] = "Workflow";
    doc_["metadata"]["name"] = name_;
    doc_["metadata"]["namespace"] = "kubeflow";
    if (kfp)
      doc_["metadata"]["labels"]["pipeline/runid"] = "run-123";
    doc_["spec"]["entrypoint"] = "entrypoint";
    doc_["spec"]["templates"] = Json::array();
    doc_["status"]["nodes"] = Json::object();
  }

  WfBuilder& phase(const std::string& p, bool completedLabel = true) {
    doc_["status"]["phase"] = p;
    if (completedLabel && (p == "Succeeded" || p == "Failed" || p == "Error")) {
      doc_["metadata"]["labels"]["workflows.argoproj.io/completed"] = "true";
    }
    return *this;
  }
  WfBuilder& label(const std::string& k, const std::string& v) {
    doc_["metadata"]["labels"][k] = v;
    return *this;
  }
  WfBuilder& annotation(const std::string& k, const std::string& v) {
    doc_["metadata"]["annotations"][k] = v;
    return *this;
  }
  WfBuilder& onExit(const std::string& t) {
    doc_["spec"]["onExit"] = t;
    return *this;
  }
  // A DAG template; tasks as JSON objects.
  WfBuilder& dag(const std::string& name, Json tasks, Json extra = Json::object()) {
    Json t;
    t["name"] = name;
    t["dag"] = extra;
    t["dag"]["tasks"] = std::move(tasks);
    doc_["spec"]["templates"].push_back(std::move(t));
    return *this;
  }
  WfBuilder& steps(const std::string& name, Json groups) {
    Json t;
    t["name"] = name;
    t["steps"] = std::move(groups);
    doc_["spec"]["templates"].push_back(std::move(t));
    return *this;
  }
  WfBuilder& container(const std::string& name, Json retryStrategy = nullptr) {
    Json t;
    t["name"] = name;
    t["container"]["image"] = "alpine";
    if (!retryStrategy.is_null())
      t["retryStrategy"] = std::move(retryStrategy);
    doc_["spec"]["templates"].push_back(std::move(t));
    return *this;
  }

  std::string idOf(const std::string& nodeName) const {
    auto it = synthetic_.find(nodeName);
    if (it != synthetic_.end())
      return it->second;
    return argoNodeId(name_, nodeName);
  }
  // Use a non-hash id for a node (some upstream fixtures do).
  WfBuilder& syntheticId(const std::string& nodeName, const std::string& id) {
    synthetic_[nodeName] = id;
    return *this;
  }

  // Adds a node. `parent` (by name) gets it as a child; `boundary` is the
  // enclosing DAG/Steps node name. Display name = last path segment.
  Json& node(const std::string& nodeName, const std::string& type, const std::string& phase,
             const std::string& templateName = "", const std::string& parent = "",
             const std::string& boundary = "") {
    std::string id = idOf(nodeName);
    Json& n = doc_["status"]["nodes"][id];
    n["id"] = id;
    n["name"] = nodeName;
    std::string display = nodeName;
    if (auto dot = nodeName.rfind('.'); dot != std::string::npos && nodeName != name_) {
      display = nodeName.substr(dot + 1);
    }
    n["displayName"] = display;
    n["type"] = type;
    if (!templateName.empty())
      n["templateName"] = templateName;
    if (!phase.empty())
      n["phase"] = phase;
    if (!boundary.empty())
      n["boundaryID"] = idOf(boundary);
    n["startedAt"] = "2024-10-14T09:21:00Z";
    n["finishedAt"] =
        (phase == "Running" || phase == "Pending") ? Json(nullptr) : Json("2024-10-14T09:21:18Z");
    if (phase == "Failed")
      n["message"] = "Error (exit code 1)";
    if (!parent.empty())
      child(parent, nodeName);
    return n;
  }
  WfBuilder& child(const std::string& parent, const std::string& childName) {
    doc_["status"]["nodes"][idOf(parent)]["children"].push_back(idOf(childName));
    return *this;
  }
  Json& at(const std::string& nodeName) { return doc_["status"]["nodes"][idOf(nodeName)]; }

  const std::string& name() const { return name_; }
  Json& doc() { return doc_; }
  std::string json() const { return doc_.dump(); }

  Workflow build() const {
    auto wf = parseWorkflowJson(json());
    if (!wf) {
      ADD_FAILURE() << "builder produced an unreadable workflow: " << wf.error().message;
      return Workflow{};
    }
    return std::move(wf).value();
  }
  Verdict eval(EvaluateOptions options = {}) const { return evaluate(build(), options); }

 private:
  std::string name_;
  Json doc_;
  std::map<std::string, std::string> synthetic_;
};

}  // namespace exitrec::testing
