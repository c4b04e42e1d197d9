#include "sim/kfp/kfp_run_factory.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/workflow.h"

namespace exitrec {
namespace {

using nlohmann::json;

struct NodeDraft {
  std::string name;
  std::string displayName;
  std::string type;  // Pod | DAG | Skipped
  std::string templateName;
  std::string boundaryName;  // empty: none
  std::string phase;
  std::string message;
  bool hooked = false;
  bool driver = false;
  std::vector<std::string> children;  // node names
  std::vector<std::string> outbound;  // node names (DAG nodes)
};

// Builds status.nodes following Argo's DAG bookkeeping: a task without
// dependencies is a child of its boundary node; a dependent task is a child of
// each outbound node of its dependencies.
class NodeBuilder {
 public:
  explicit NodeBuilder(std::string wf) : wf_(std::move(wf)) {}

  NodeDraft& add(const std::string& boundary, const std::string& task, const std::string& type,
                 const std::string& templ, const std::string& phase,
                 const std::vector<std::string>& deps) {
    const std::string name = boundary.empty() ? task : boundary + "." + task;
    NodeDraft& n = nodes_[name];
    n.name = name;
    n.displayName = task;
    n.type = type;
    n.templateName = templ;
    n.boundaryName = boundary;
    n.phase = phase;
    order_.push_back(name);
    if (!boundary.empty()) {
      if (deps.empty()) {
        nodes_[boundary].children.push_back(name);
      } else {
        for (const std::string& dep : deps) {
          for (const std::string& out : outboundOf(std::string(boundary).append(".").append(dep))) {
            nodes_[out].children.push_back(name);
          }
        }
      }
    }
    return n;
  }

  std::vector<std::string> outboundOf(const std::string& name) {
    NodeDraft& n = nodes_[name];
    if (n.type == "Pod" || n.outbound.empty())
      return {name};
    return n.outbound;
  }

  // A KFP v2 container task: X-driver (Pod) → X (DAG) → X.executor (Pod).
  void containerTask(const std::string& boundary, const std::string& task, bool fails, bool running,
                     const std::vector<std::string>& deps) {
    NodeDraft& d =
        add(boundary, task + "-driver", "Pod", "system-container-driver", "Succeeded", deps);
    d.driver = true;
    const std::string phase = running ? "Running" : (fails ? "Failed" : "Succeeded");
    add(boundary, task, "DAG", "system-container-executor", phase, {task + "-driver"});
    NodeDraft& e =
        add(boundary + "." + task, "executor", "Pod", "system-container-impl", phase, {});
    if (fails)
      e.message = "Error (exit code 1)";
    if (fails)
      nodes_[boundary + "." + task].message = "child '" + nodeId(e.name) + "' failed";
    nodes_[boundary + "." + task].outbound = {e.name};
  }

  // A KFP v1 / plain Argo container step: one Pod.
  void podTask(const std::string& boundary, const std::string& task, const std::string& templ,
               bool fails, bool running, const std::vector<std::string>& deps) {
    NodeDraft& n = add(boundary, task, "Pod", templ,
                       running ? "Running" : (fails ? "Failed" : "Succeeded"), deps);
    if (fails)
      n.message = "Error (exit code 1)";
  }

  NodeDraft& node(const std::string& name) { return nodes_[name]; }

  std::string nodeId(const std::string& name) const { return argoNodeId(wf_, name); }

  json toJson(const std::string& startedAt, const std::string& finishedAt) {
    json out = json::object();
    for (const std::string& name : order_) {
      const NodeDraft& n = nodes_[name];
      const std::string id = nodeId(n.name);
      const bool done = n.phase != "Running" && n.phase != "Pending";
      json j = {{"id", id},
                {"name", n.name},
                {"displayName", n.displayName},
                {"type", n.type},
                {"templateName", n.templateName},
                {"templateScope", "local/" + wf_},
                {"phase", n.phase},
                {"startedAt", startedAt},
                {"finishedAt", done ? json(finishedAt) : json(nullptr)},
                {"progress", "1/1"}};
      if (!n.boundaryName.empty())
        j["boundaryID"] = nodeId(n.boundaryName);
      if (!n.message.empty())
        j["message"] = n.message;
      if (n.hooked)
        j["nodeFlag"] = {{"hooked", true}};
      if (!n.children.empty()) {
        json children = json::array();
        for (const std::string& c : n.children)
          children.push_back(nodeId(c));
        j["children"] = children;
      }
      if (!n.outbound.empty()) {
        json outs = json::array();
        for (const std::string& o : n.outbound)
          outs.push_back(nodeId(o));
        j["outboundNodes"] = outs;
      }
      if (n.type == "Pod") {
        j["hostNodeName"] = "worker-node-1";
        j["resourcesDuration"] = {{"cpu", 3}, {"memory", 12}};
        if (done) {
          j["outputs"] = {{"exitCode", n.phase == "Failed" ? "1" : "0"}};
        }
        if (n.driver) {
          // Real driver nodes carry their resolved inputs; keep a realistic size.
          j["inputs"] = {{"parameters",
                          {{{"name", "component"},
                            {"value", R"({"executorLabel":"exec-)" + n.displayName +
                                          R"(","inputDefinitions":{"parameters":{"message":{)"
                                          R"("parameterType":"STRING"}}}})"}},
                           {{"name", "task"},
                            {"value", R"({"taskInfo":{"name":")" + n.displayName +
                                          R"("},"cachingOptions":{"enableCache":true}})"}},
                           {{"name", "parent-dag-id"}, {"value", "42"}}}}};
        }
      }
      out[id] = std::move(j);
    }
    return out;
  }

 private:
  std::string wf_;
  std::map<std::string, NodeDraft> nodes_;
  std::vector<std::string> order_;
};

json containerTemplate(const std::string& name, const std::string& image) {
  return {{"name", name},
          {"container",
           {{"image", image},
            {"command", {"sh", "-c"}},
            {"args", {"echo running " + name}},
            {"resources", {{"requests", {{"cpu", "100m"}}}}}}}};
}

json dagTask(const std::string& name, const std::string& templ, const std::string& depends) {
  json t = {{"name", name}, {"template", templ}};
  if (!depends.empty())
    t["depends"] = depends;
  return t;
}

std::string opName(int i) {
  return "op-" + std::to_string(i);
}

const char* kSiblingDepends =
    "exit-handler-1.Succeeded || exit-handler-1.Skipped || exit-handler-1.Failed || "
    "exit-handler-1.Errored";

}  // namespace

std::string argoPhaseFor(const KfpRunSpec& spec) {
  if (!spec.completed)
    return "Running";
  switch (spec.shape) {
    case RunShape::kV2Sibling:
      // The sibling exit task is root's only leaf: its phase is the run's.
      return spec.exitTaskFails ? "Failed" : "Succeeded";
    case RunShape::kV2Hook:
      // Exit hooks never change a DAG's phase.
      return spec.bodyFails ? "Failed" : "Succeeded";
    case RunShape::kV1:
      // Workflow-level onExit override.
      return (spec.bodyFails || spec.exitTaskFails) ? "Failed" : "Succeeded";
    case RunShape::kArgo:
      return spec.bodyFails ? "Failed" : "Succeeded";
  }
  return "Succeeded";
}

std::string makeKfpRunJson(const KfpRunSpec& spec) {
  const std::string& w = spec.name;
  const bool running = !spec.completed;
  const std::string phase = argoPhaseFor(spec);
  const bool v2 = spec.shape == RunShape::kV2Sibling || spec.shape == RunShape::kV2Hook;
  NodeBuilder b(w);
  json templates = json::array();
  std::vector<std::string> bodyTaskNames;
  bodyTaskNames.reserve(static_cast<std::size_t>(std::max(spec.bodyTasks, 0)));
  for (int i = 0; i < spec.bodyTasks; ++i)
    bodyTaskNames.push_back(opName(i));
  const std::string bodyPhase = running ? "Running" : (spec.bodyFails ? "Failed" : "Succeeded");
  const std::string exitPhase = spec.exitTaskFails ? "Failed" : "Succeeded";

  if (v2) {
    // entrypoint → root-driver, root
    b.add("", w, "DAG", "entrypoint", phase, {});
    b.add(w, "root-driver", "Pod", "system-dag-driver", "Succeeded", {}).driver = true;
    b.add(w, "root", "DAG", "root", phase, {"root-driver"});
    const std::string root = w + ".root";
    b.add(root, "exit-handler-1-driver", "Pod", "system-dag-driver", "Succeeded", {}).driver = true;
    b.add(root, "exit-handler-1", "DAG", "comp-exit-handler-1", bodyPhase,
          {"exit-handler-1-driver"});
    const std::string ehName = root + ".exit-handler-1";
    std::vector<std::string> ehOutbound;
    for (int i = 0; i < spec.bodyTasks; ++i) {
      const bool fails = spec.bodyFails && i == 0;
      const bool taskRunning = running && i == 0;
      b.containerTask(ehName, opName(i), fails, taskRunning, {});
      ehOutbound.push_back(ehName + "." + opName(i) + ".executor");
    }
    b.node(ehName).outbound = ehOutbound;
    if (spec.bodyFails && !running) {
      b.node(ehName).message = "child '" + b.nodeId(ehName + ".op-0") + "' failed";
    }

    json rootTasks = json::array(
        {dagTask("exit-handler-1-driver", "system-dag-driver", ""),
         dagTask("exit-handler-1", "comp-exit-handler-1", "exit-handler-1-driver.Succeeded")});
    if (spec.shape == RunShape::kV2Sibling) {
      if (!running) {
        NodeDraft& d = b.add(root, "print-op-driver", "Pod", "system-container-driver", "Succeeded",
                             {"exit-handler-1"});
        d.driver = true;
        b.add(root, "print-op", "DAG", "system-container-executor", exitPhase, {"print-op-driver"});
        NodeDraft& e =
            b.add(root + ".print-op", "executor", "Pod", "system-container-impl", exitPhase, {});
        if (spec.exitTaskFails)
          e.message = "Error (exit code 1)";
        b.node(root + ".print-op").outbound = {e.name};
        b.node(root).outbound = {e.name};
        b.node(w).outbound = {e.name};
      }
      json driver = dagTask("print-op-driver", "system-container-driver", kSiblingDepends);
      driver["arguments"] = {
          {"parameters",
           {{{"name", "task"},
             {"value", R"({"taskInfo":{"name":"print-op"},"dependentTasks":["exit-handler-1"],)"
                       R"("triggerPolicy":{"strategy":"ALL_UPSTREAM_TASKS_COMPLETED"}})"}}}}};
      rootTasks.push_back(driver);
      rootTasks.push_back(
          dagTask("print-op", "system-container-executor", "print-op-driver.Succeeded"));
    } else {
      rootTasks[1]["hooks"] = {{"exit",
                                {{"template", "exit-hook-root-print-op"},
                                 {"arguments",
                                  {{"parameters",
                                    {{{"name", "parent-dag-id"},
                                      {"value", "{{inputs.parameters.parent-dag-id}}"}}}}}}}}};
      if (!running) {
        NodeDraft& hook =
            b.add(root, "exit-handler-1.onExit", "DAG", "exit-hook-root-print-op", exitPhase, {});
        hook.hooked = true;
        // The hook node is a child of the hooked task's node, not of root.
        b.node(root).children.pop_back();
        b.node(ehName).children.push_back(hook.name);
        const std::string hookName = hook.name;
        b.node(hookName).displayName = "exit-handler-1.onExit";
        b.containerTask(hookName, "print-op", spec.exitTaskFails, false, {});
        b.node(hookName).outbound = {hookName + ".print-op.executor"};
      }
      templates.push_back(
          {{"name", "exit-hook-root-print-op"},
           {"inputs", {{"parameters", {{{"name", "parent-dag-id"}}}}}},
           {"dag",
            {{"tasks",
              {dagTask("print-op-driver", "system-container-driver", ""),
               dagTask("print-op", "system-container-executor", "print-op-driver.Succeeded")}}}}});
      b.node(root).outbound = ehOutbound;
      b.node(w).outbound = ehOutbound;
    }
    json bodyTasksJson = json::array();
    for (const std::string& t : bodyTaskNames) {
      bodyTasksJson.push_back(dagTask(t + "-driver", "system-container-driver", ""));
      bodyTasksJson.push_back(dagTask(t, "system-container-executor", t + "-driver.Succeeded"));
    }
    templates.push_back({{"name", "entrypoint"},
                         {"dag",
                          {{"tasks",
                            {dagTask("root-driver", "system-dag-driver", ""),
                             dagTask("root", "root", "root-driver.Succeeded")}}}}});
    templates.push_back({{"name", "root"}, {"dag", {{"tasks", rootTasks}}}});
    templates.push_back({{"name", "comp-exit-handler-1"}, {"dag", {{"tasks", bodyTasksJson}}}});
    templates.push_back({{"name", "system-container-executor"},
                         {"dag", {{"tasks", {dagTask("executor", "system-container-impl", "")}}}}});
    templates.push_back(containerTemplate("system-container-driver", "kfp-driver:2.3.0"));
    templates.push_back(containerTemplate("system-dag-driver", "kfp-driver:2.3.0"));
    templates.push_back(containerTemplate("system-container-impl", "python:3.11"));
  } else {
    // kV1 and kArgo: a DAG of pods; v1 adds the workflow-level onExit.
    const bool v1 = spec.shape == RunShape::kV1;
    const std::string entry = v1 ? "pipeline" : "main";
    b.add("", w, "DAG", entry, running ? "Running" : bodyPhase, {});
    std::string boundary = w;
    if (v1) {
      b.add(w, "exit-handler-1", "DAG", "exit-handler-1", bodyPhase, {});
      boundary = w + ".exit-handler-1";
    }
    std::vector<std::string> outs;
    json tasks = json::array();
    for (int i = 0; i < spec.bodyTasks; ++i) {
      b.podTask(boundary, opName(i), "op", spec.bodyFails && i == 0, running && i == 0, {});
      outs.push_back(boundary + "." + opName(i));
      tasks.push_back(dagTask(opName(i), "op", ""));
    }
    b.node(boundary).outbound = outs;
    if (v1)
      b.node(w).outbound = outs;
    if (v1 && !running) {
      NodeDraft& ex = b.add("", w + ".onExit", "Pod", "print-op", exitPhase, {});
      ex.displayName = w + ".onExit";
      ex.hooked = true;
      if (spec.exitTaskFails)
        ex.message = "Error (exit code 1)";
    }
    if (v1) {
      templates.push_back(
          {{"name", "pipeline"},
           {"dag", {{"tasks", {dagTask("exit-handler-1", "exit-handler-1", "")}}}}});
      templates.push_back({{"name", "exit-handler-1"}, {"dag", {{"tasks", tasks}}}});
      templates.push_back(containerTemplate("print-op", "python:3.7"));
    } else {
      templates.push_back({{"name", "main"}, {"dag", {{"tasks", tasks}}}});
    }
    templates.push_back(containerTemplate("op", "python:3.7"));
  }

  json labels = {{"workflows.argoproj.io/completed", spec.completed ? "true" : "false"},
                 {"workflows.argoproj.io/phase", phase}};
  json annotations = json::object();
  const std::string uid = spec.uid.empty() ? "uid-" + w : spec.uid;
  if (spec.shape != RunShape::kArgo) {
    labels["pipeline/runid"] = spec.runId.empty() ? "run-" + w : spec.runId;
    annotations["pipelines.kubeflow.org/run_name"] = w;
  }
  if (spec.shape == RunShape::kV1) {
    annotations["pipelines.kubeflow.org/kfp_sdk_version"] = "1.8.22";
    labels["pipelines.kubeflow.org/pipeline-sdk-type"] = "kfp";
  }
  json specJson = {{"entrypoint", spec.shape == RunShape::kV1     ? "pipeline"
                                  : spec.shape == RunShape::kArgo ? "main"
                                                                  : "entrypoint"},
                   {"serviceAccountName", "pipeline-runner"},
                   {"templates", templates}};
  if (v2) {
    specJson["podMetadata"] = {{"labels", {{"pipelines.kubeflow.org/v2_component", "true"}}},
                               {"annotations", {{"pipelines.kubeflow.org/v2_component", "true"}}}};
  }
  if (spec.shape == RunShape::kV1)
    specJson["onExit"] = "print-op";

  json status = {{"phase", phase},
                 {"startedAt", spec.startedAt},
                 {"finishedAt", spec.completed ? json(spec.finishedAt) : json(nullptr)},
                 {"progress", "1/1"},
                 {"nodes", b.toJson(spec.startedAt, spec.finishedAt)}};
  if (phase == "Failed") {
    status["message"] = "child '" + b.nodeId(w + (v2 ? ".root" : "")) + "' failed";
  }
  json wf = {{"apiVersion", "argoproj.io/v1alpha1"},
             {"kind", "Workflow"},
             {"metadata",
              {{"name", w},
               {"namespace", spec.ns},
               {"uid", uid},
               {"creationTimestamp", spec.startedAt},
               {"labels", labels},
               {"annotations", annotations}}},
             {"spec", specJson},
             {"status", status}};
  return wf.dump();
}

}  // namespace exitrec
