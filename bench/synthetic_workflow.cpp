#include "bench/synthetic_workflow.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "engine/workflow.h"

namespace exitrec::bench {

namespace {

const char* kWf = "kfp-run-7h2kq";

struct Gen {
  std::string out;
  int clock = 0;
  std::string wf = kWf;

  std::string id(const std::string& name) const { return argoNodeId(wf, name); }
  std::string stamp() {
    int t = 36000 + clock++;
    char buf[32];
    std::snprintf(buf, sizeof buf, "2026-11-02T%02d:%02d:%02dZ", (t / 3600) % 24, (t / 60) % 60,
                  t % 60);
    return buf;
  }

  // Appends one node; returns its id.
  std::string node(const std::string& name, const std::string& display, const char* type,
                   const char* templateName, const std::string& boundary, const char* phase,
                   const std::vector<std::string>& children, const char* message = "") {
    std::string nid = id(name);
    if (out.back() != '{')
      out += ',';
    out += "\"" + nid + "\":{\"id\":\"" + nid + "\",\"name\":\"" + name + "\",\"displayName\":\"" +
           display + "\",\"type\":\"" + type + "\",\"templateName\":\"" + templateName +
           "\",\"templateScope\":\"local/" + wf + "\",\"phase\":\"" + phase + "\"";
    if (!boundary.empty())
      out += ",\"boundaryID\":\"" + boundary + "\"";
    if (*message != 0)
      out += std::string(",\"message\":\"") + message + "\"";
    std::string started = stamp();  // two statements: argument evaluation order is unspecified
    std::string finished = stamp();
    out += ",\"startedAt\":\"" + started + "\",\"finishedAt\":\"" + finished +
           "\",\"progress\":\"1/1\",\"resourcesDuration\":{\"cpu\":1,\"memory\":9}";
    if (std::string(type) == "Pod") {
      out += ",\"hostNodeName\":\"gke-pool-2-x8kq\",\"outputs\":{";
      if (std::string(templateName).ends_with("driver")) {
        out += "\"parameters\":[{\"name\":\"cached-decision\",\"value\":\"false\"}],";
      }
      out += "\"exitCode\":\"";
      out += std::string(phase) == "Succeeded" ? "0" : "1";
      out += "\"}";
    }
    if (!children.empty()) {
      out += ",\"children\":[";
      for (std::size_t i = 0; i < children.size(); ++i) {
        if (i > 0)
          out += ',';
        out += "\"" + children[i] + "\"";
      }
      out += "]";
    }
    out += "}";
    return nid;
  }

  // One KFP container task: driver pod → executor DAG → impl pod. Returns the
  // pod id (the outbound node dependents hang off).
  std::string task(const std::string& parent, const std::string& boundary, const std::string& t,
                   bool fail, const std::vector<std::string>& dependents) {
    std::string dag = parent + "." + t;
    std::string pod = dag + ".executor";
    node(parent + "." + t + "-driver", t + "-driver", "Pod", "system-container-driver", boundary,
         "Succeeded", {id(dag)});
    node(dag, t, "DAG", "system-container-executor", boundary, fail ? "Failed" : "Succeeded",
         {id(pod)});
    return node(pod, "executor", "Pod", "system-container-impl", id(dag),
                fail ? "Failed" : "Succeeded", dependents, fail ? "Error (exit code 1)" : "");
  }
};

const char* kSpec =
    R"({"entrypoint":"entrypoint","podMetadata":{"labels":{"pipelines.kubeflow.org/v2_component":"true"}},"templates":[
{"name":"system-container-driver","container":{"image":"ghcr.io/kubeflow/kfp-driver:2.3.0","command":["driver"]}},
{"name":"system-dag-driver","container":{"image":"ghcr.io/kubeflow/kfp-driver:2.3.0","command":["driver"]}},
{"name":"system-container-executor","dag":{"tasks":[{"name":"executor","template":"system-container-impl","when":"{{inputs.parameters.cached-decision}} != true"}]}},
{"name":"system-container-impl","container":{"image":"python:3.11","command":["run"]}},
{"name":"comp-for-loop-1","dag":{"tasks":[{"name":"load-driver","template":"system-container-driver"},{"name":"load","template":"system-container-executor","depends":"load-driver.Succeeded"},{"name":"train-driver","template":"system-container-driver","depends":"load.Succeeded"},{"name":"train","template":"system-container-executor","depends":"train-driver.Succeeded"},{"name":"score-driver","template":"system-container-driver","depends":"train.Succeeded"},{"name":"score","template":"system-container-executor","depends":"score-driver.Succeeded"}]}},
{"name":"comp-for-loop-1-iteration","dag":{"tasks":[{"name":"iteration-item-driver","template":"system-dag-driver"},{"name":"iteration-item","template":"comp-for-loop-1","depends":"iteration-item-driver.Succeeded"}]}},
{"name":"comp-for-loop-1-for-loop-1-iterator","dag":{"tasks":[{"name":"iteration-driver","template":"system-dag-driver"},{"name":"iteration-iterations","template":"comp-for-loop-1-iteration","depends":"iteration-driver.Succeeded","withSequence":{"count":"{{tasks.iteration-driver.outputs.parameters.iteration-count}}"}}]}},
{"name":"comp-exit-handler-1","dag":{"tasks":[{"name":"for-loop-1","template":"comp-for-loop-1-for-loop-1-iterator"}]}},
{"name":"root","dag":{"tasks":[{"name":"exit-handler-1-driver","template":"system-dag-driver"},{"name":"exit-handler-1","template":"comp-exit-handler-1","depends":"exit-handler-1-driver.Succeeded"},{"name":"notify-driver","template":"system-container-driver","depends":"exit-handler-1.Succeeded || exit-handler-1.Skipped || exit-handler-1.Failed || exit-handler-1.Errored"},{"name":"notify","template":"system-container-executor","depends":"notify-driver.Succeeded"}]}},
{"name":"entrypoint","dag":{"tasks":[{"name":"root-driver","template":"system-dag-driver"},{"name":"root","template":"root","depends":"root-driver.Succeeded"}]}}]})";

// The generated text (tree order) re-serialized in `order`, compact, as Go
// writes it. nlohmann::json's objects are std::maps, so its dump() sorts keys
// byte-wise, as Go does; ordered_json keeps the fields as written.
std::string reorder(const std::string& text, KeyOrder order) {
  if (order == KeyOrder::kApiServer)
    return nlohmann::json::parse(text).dump();
  if (order == KeyOrder::kTree)
    return text;
  nlohmann::ordered_json doc = nlohmann::ordered_json::parse(text);
  nlohmann::ordered_json& nodes = doc["status"]["nodes"];
  std::map<std::string, nlohmann::ordered_json> byId;
  for (auto& [id, node] : nodes.items())
    byId.emplace(id, std::move(node));
  nodes = nlohmann::ordered_json::object();
  for (auto& [id, node] : byId)
    nodes[id] = std::move(node);
  return doc.dump();
}

// A KFP run with about `target` nodes (12 per ParallelFor iteration + 17).
std::string makeTreeOrderWorkflow(int target, RunOutcome outcome) {
  Gen g;
  const bool failing = outcome == RunOutcome::kBodyFailed;
  const char* bodyPhase = failing ? "Failed" : "Succeeded";
  const std::string w = kWf;
  int iterations = std::max(1, (target - 17 + 11) / 12);
  g.out =
      std::string("{\"apiVersion\":\"argoproj.io/v1alpha1\",\"kind\":\"Workflow\",\"metadata\":{") +
      "\"name\":\"" + w +
      "\",\"namespace\":\"team-vision\",\"uid\":\"1f0e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b\"," +
      "\"resourceVersion\":\"912345\",\"labels\":{\"pipeline/"
      "runid\":\"5b2c1a7e-3d4f-4e5a-9b6c-7d8e9f0a1b2c\"," +
      "\"workflows.argoproj.io/completed\":\"true\",\"workflows.argoproj.io/"
      "phase\":\"Succeeded\"}}," +
      "\"spec\":" + kSpec +
      ",\"status\":{\"phase\":\"Succeeded\",\"startedAt\":\"2026-11-02T10:00:00Z\"," +
      "\"finishedAt\":\"2026-11-02T23:59:59Z\",\"progress\":\"1/1\",\"nodes\":{";
  const std::string root = w + ".root";
  const std::string eh = root + ".exit-handler-1";
  const std::string loop = eh + ".for-loop-1";
  const std::string group = loop + ".iteration-iterations";
  g.node(w, w, "DAG", "entrypoint", "", "Succeeded", {g.id(w + ".root-driver")});
  g.node(w + ".root-driver", "root-driver", "Pod", "system-dag-driver", w, "Succeeded",
         {g.id(root)});
  g.node(root, "root", "DAG", "root", w, "Succeeded", {g.id(root + ".exit-handler-1-driver")});
  g.node(root + ".exit-handler-1-driver", "exit-handler-1-driver", "Pod", "system-dag-driver",
         g.id(root), "Succeeded", {g.id(eh)});
  g.node(eh, "exit-handler-1", "DAG", "comp-exit-handler-1", g.id(root), bodyPhase, {g.id(loop)});
  g.node(loop, "for-loop-1", "DAG", "comp-for-loop-1-for-loop-1-iterator", g.id(eh), bodyPhase,
         {g.id(loop + ".iteration-driver")});
  g.node(loop + ".iteration-driver", "iteration-driver", "Pod", "system-dag-driver", g.id(loop),
         "Succeeded", {g.id(group)});
  std::vector<std::string> iterationIds;
  iterationIds.reserve(static_cast<std::size_t>(iterations));
  for (int i = 0; i < iterations; ++i) {
    iterationIds.push_back(g.id(group + "(" + std::to_string(i) + ":" + std::to_string(i) + ")"));
  }
  g.node(group, "iteration-iterations", "TaskGroup", "comp-for-loop-1-iteration", g.id(loop),
         bodyPhase, iterationIds);
  const std::string notifyDriver = g.id(root + ".notify-driver");
  for (int i = 0; i < iterations; ++i) {
    std::string suffix = "(" + std::to_string(i) + ":" + std::to_string(i) + ")";
    std::string it = group + suffix;
    std::string item = it + ".iteration-item";
    bool fail = failing && i == 0;
    g.node(it, "iteration-iterations" + suffix, "DAG", "comp-for-loop-1-iteration", g.id(loop),
           fail ? "Failed" : "Succeeded", {g.id(it + ".iteration-item-driver")});
    g.node(it + ".iteration-item-driver", "iteration-item-driver", "Pod", "system-dag-driver",
           g.id(it), "Succeeded", {g.id(item)});
    g.node(item, "iteration-item", "DAG", "comp-for-loop-1", g.id(it),
           fail ? "Failed" : "Succeeded", {g.id(item + ".load-driver")});
    const std::string b = g.id(item);
    g.task(item, b, "load", false, {g.id(item + ".train-driver")});
    if (fail) {
      // train fails; score is omitted.
      g.task(item, b, "train", true, {g.id(item + ".score-driver")});
      g.node(item + ".score-driver", "score-driver", "Skipped", "system-container-driver", b,
             "Omitted", {}, "omitted: depends condition not met");
      g.node(item + ".score", "score", "Skipped", "system-container-executor", b, "Omitted", {},
             "omitted: depends condition not met");
    } else {
      g.task(item, b, "train", false, {g.id(item + ".score-driver")});
      g.task(item, b, "score", false, {notifyDriver});
    }
  }
  g.node(root + ".notify-driver", "notify-driver", "Pod", "system-container-driver", g.id(root),
         "Succeeded", {g.id(root + ".notify")});
  g.node(root + ".notify", "notify", "DAG", "system-container-executor", g.id(root), "Succeeded",
         {g.id(root + ".notify.executor")});
  g.node(root + ".notify.executor", "executor", "Pod", "system-container-impl",
         g.id(root + ".notify"), "Succeeded", {});
  g.out += "}}}";
  return g.out;
}

}  // namespace

std::optional<KeyOrder> parseKeyOrder(std::string_view name) {
  if (name == "api")
    return KeyOrder::kApiServer;
  if (name == "argo")
    return KeyOrder::kArgo;
  if (name == "tree")
    return KeyOrder::kTree;
  return std::nullopt;
}

std::string makeWorkflow(int target, KeyOrder order, RunOutcome outcome) {
  return reorder(makeTreeOrderWorkflow(target, outcome), order);
}

std::size_t floorScan(simdjson::ondemand::parser& parser, const simdjson::padded_string& text) {
  std::size_t failed = 0;
  simdjson::ondemand::document doc = parser.iterate(text);
  simdjson::ondemand::object nodes = doc["status"]["nodes"].get_object();
  for (auto field : nodes) {
    simdjson::ondemand::object node = field.value().get_object();
    std::string_view phase = node["phase"].get_string();
    failed += phase == "Failed" ? 1 : 0;
  }
  return failed;
}

double medianOf(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace exitrec::bench
