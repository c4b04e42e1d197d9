#pragma once
// Fakes for the reconciler's interfaces (controller/reconciler.h).

#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "controller/reconciler.h"

namespace exitrec::testing {

// An in-memory Workflow store with merge-patch semantics and optimistic
// concurrency on metadata.resourceVersion, like the API server.
class FakeWorkflowApi : public WorkflowApi {
 public:
  void put(const std::string& json) {
    std::lock_guard<std::mutex> g(mu_);
    nlohmann::json obj = nlohmann::json::parse(json);
    obj["metadata"]["resourceVersion"] = std::to_string(++rv_);
    objects_[key(obj)] = obj;
  }

  Result<std::string> get(const std::string& ns, const std::string& name) override {
    std::lock_guard<std::mutex> g(mu_);
    ++gets;
    if (!getErrors.empty()) {
      Error e = getErrors.front();
      getErrors.pop_front();
      return e;
    }
    auto it = objects_.find(ns + "/" + name);
    if (it == objects_.end())
      return Error(ErrorCode::kNotFound, "workflow not found");
    return it->second.dump();
  }

  Result<std::string> mergePatch(const std::string& ns, const std::string& name,
                                 const std::string& patch) override {
    std::lock_guard<std::mutex> g(mu_);
    patches.push_back(patch);
    auto it = objects_.find(ns + "/" + name);
    if (it == objects_.end())
      return Error(ErrorCode::kNotFound, "workflow not found");
    if (concurrentWritesBeforeNextPatch > 0) {
      // Someone else writes first: the object's resourceVersion moves on.
      --concurrentWritesBeforeNextPatch;
      it->second["metadata"]["annotations"]["other-writer"] = std::to_string(rv_);
      it->second["metadata"]["resourceVersion"] = std::to_string(++rv_);
    }
    if (!patchErrors.empty()) {
      Error e = patchErrors.front();
      patchErrors.pop_front();
      return e;
    }
    nlohmann::json p = nlohmann::json::parse(patch);
    if (p.contains("metadata") && p["metadata"].contains("resourceVersion") &&
        p["metadata"]["resourceVersion"] != it->second["metadata"]["resourceVersion"]) {
      ++conflicts;
      return Error(ErrorCode::kConflict, "the object has been modified");
    }
    it->second.merge_patch(p);
    it->second["metadata"]["resourceVersion"] = std::to_string(++rv_);
    ++appliedPatches;
    patchedVersions.push_back(std::to_string(rv_));
    return it->second.dump();
  }

  // What KFP's workflow client does (resource_manager.go): Delete, and the
  // label patch after a terminal report. False when the object is gone.
  bool erase(const std::string& ns, const std::string& name) {
    std::lock_guard<std::mutex> g(mu_);
    return objects_.erase(ns + "/" + name) != 0;
  }
  bool exists(const std::string& ns, const std::string& name) {
    std::lock_guard<std::mutex> g(mu_);
    return objects_.count(ns + "/" + name) != 0;
  }
  bool addLabel(const std::string& ns, const std::string& name, const std::string& key,
                const std::string& value) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = objects_.find(ns + "/" + name);
    if (it == objects_.end())
      return false;
    if (it->second["metadata"]["labels"].value(key, std::string()) != value) {
      it->second["metadata"]["labels"][key] = value;
      it->second["metadata"]["resourceVersion"] = std::to_string(++rv_);
    }
    return true;
  }

  nlohmann::json object(const std::string& ns, const std::string& name) {
    std::lock_guard<std::mutex> g(mu_);
    return objects_.at(ns + "/" + name);
  }
  void mutate(const std::string& ns, const std::string& name,
              const std::function<void(nlohmann::json&)>& fn) {
    std::lock_guard<std::mutex> g(mu_);
    fn(objects_.at(ns + "/" + name));
    objects_.at(ns + "/" + name)["metadata"]["resourceVersion"] = std::to_string(++rv_);
  }

  std::vector<std::string> patches;
  std::vector<std::string> patchedVersions;  // resourceVersion each applied patch returned
  int appliedPatches = 0;
  int conflicts = 0;
  int gets = 0;
  int concurrentWritesBeforeNextPatch = 0;
  std::deque<Error> getErrors;
  std::deque<Error> patchErrors;

 private:
  static std::string key(const nlohmann::json& obj) {
    return obj["metadata"]["namespace"].get<std::string>() + "/" +
           obj["metadata"]["name"].get<std::string>();
  }
  std::mutex mu_;
  std::map<std::string, nlohmann::json> objects_;
  long rv_ = 100;
};

// KFP's report handler as far as the controller must care, after
// ReportWorkflowResource (backend/src/apiserver/resource/resource_manager.go,
// 2.0.0–2.16.x): a body carrying pipeline/persistedFinalState DELETES the
// Workflow CR (then the run is updated); a run id KFP does not know deletes
// the CR and answers NotFound; a terminal report labels the CR. Run state
// follows the reported phase (Error → FAILED). Known runs are the keys of
// `states` (KFP creates runs itself; reports never do here).
// With `cluster` unset, deletions and labels are only counted.
class FakeKfp : public KfpReporter {
 public:
  Status reportWorkflow(std::string_view workflowJson) override {
    std::lock_guard<std::mutex> g(mu_);
    ++attempts;
    if (!reportErrors.empty()) {
      Error e = reportErrors.front();
      reportErrors.pop_front();
      return e;
    }
    nlohmann::json wf = nlohmann::json::parse(workflowJson);
    reported.push_back(wf);
    const std::string ns = wf["metadata"]["namespace"];
    const std::string name = wf["metadata"]["name"];
    const auto& labels = wf["metadata"]["labels"];
    if (labels.contains("pipeline/persistedFinalState")) {
      ++reportsWithFinalStateLabel;
      deleted.push_back(ns + "/" + name);
      if (cluster)
        cluster->erase(ns, name);
    }
    const std::string phase = wf["status"]["phase"];
    const std::string runId = labels["pipeline/runid"];
    if (states.count(runId) == 0) {
      deleted.push_back(ns + "/" + name);
      if (cluster)
        cluster->erase(ns, name);
      return Error(ErrorCode::kNotFound, "Failed to report workflow: run " + runId + " not found");
    }
    states[runId] = (phase == "Failed" || phase == "Error") ? "FAILED" : "SUCCEEDED";
    if (stickyState)
      states[runId] = *stickyState;
    if (forgetRunOnReport)
      states.erase(runId);  // the run was deleted from KFP meanwhile
    const bool final = phase == "Failed" || phase == "Error" || phase == "Succeeded";
    if (final && cluster && !cluster->addLabel(ns, name, "pipeline/persistedFinalState", "true"))
      return Error(ErrorCode::kNotFound, "Failed to add PersistedFinalState label");
    return Status::okStatus();
  }
  Result<std::string> runState(const std::string& runId) override {
    std::lock_guard<std::mutex> g(mu_);
    ++stateReads;
    if (!stateErrors.empty()) {
      Error e = stateErrors.front();
      stateErrors.pop_front();
      return e;
    }
    auto it = states.find(runId);
    if (it == states.end())
      return Error(ErrorCode::kNotFound, "Failed to get a run: run " + runId + " not found");
    return it->second;
  }

  FakeWorkflowApi* cluster = nullptr;
  int attempts = 0;
  int stateReads = 0;
  int reportsWithFinalStateLabel = 0;
  std::vector<std::string> deleted;  // "ns/name" of every CR KFP deleted
  std::vector<nlohmann::json> reported;
  std::map<std::string, std::string> states;
  std::optional<std::string> stickyState;  // force the state GET answers
  bool forgetRunOnReport = false;
  std::deque<Error> reportErrors;
  std::deque<Error> stateErrors;

 private:
  std::mutex mu_;
};

class FakeEvents : public EventSink {
 public:
  struct Event {
    EventTarget target;
    std::string type, reason, message;
  };
  Status emit(const EventTarget& target, std::string_view type, std::string_view reason,
              std::string_view message) override {
    std::lock_guard<std::mutex> g(mu_);
    if (!errors.empty()) {
      Error e = errors.front();
      errors.pop_front();
      return e;
    }
    events.push_back({target, std::string(type), std::string(reason), std::string(message)});
    return Status::okStatus();
  }
  std::vector<Event> events;
  std::deque<Error> errors;

 private:
  std::mutex mu_;
};

}  // namespace exitrec::testing
