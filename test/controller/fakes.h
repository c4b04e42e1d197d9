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
    return it->second.dump();
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

// KFP: records reports; the run state follows the last reported phase.
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
    const std::string phase = wf["status"]["phase"];
    const std::string runId = wf["metadata"]["labels"]["pipeline/runid"];
    states[runId] = (phase == "Failed" || phase == "Error") ? "FAILED" : "SUCCEEDED";
    if (stickyState)
      states[runId] = *stickyState;
    return Status::okStatus();
  }
  Result<std::string> runState(const std::string& runId) override {
    std::lock_guard<std::mutex> g(mu_);
    if (!stateErrors.empty()) {
      Error e = stateErrors.front();
      stateErrors.pop_front();
      return e;
    }
    auto it = states.find(runId);
    if (it == states.end())
      return Error(ErrorCode::kNotFound, "run not found");
    return it->second;
  }

  int attempts = 0;
  std::vector<nlohmann::json> reported;
  std::map<std::string, std::string> states;
  std::optional<std::string> stickyState;  // force the state GET answers
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
