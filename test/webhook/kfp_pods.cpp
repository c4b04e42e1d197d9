#include "test/webhook/kfp_pods.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "test/fixtures/runtime_builder.h"

namespace exitrec::testing {

namespace {

using json = nlohmann::json;

[[noreturn]] void die(const std::string& what) {
  ADD_FAILURE() << "kfp_pods: " << what;
  std::abort();
}

const json* findNodeByName(const json& wf, const std::string& name) {
  if (!wf.contains("status") || !wf["status"].contains("nodes"))
    return nullptr;
  for (const auto& [id, n] : wf["status"]["nodes"].items()) {
    if (n.value("name", "") == name)
      return &n;
  }
  return nullptr;
}

const json& templateOf(const json& wf, const std::string& name) {
  for (const auto& t : wf["spec"]["templates"]) {
    if (t.value("name", "") == name)
      return t;
  }
  die("no template " + name);
}

std::string workflowParam(const json& wf, const std::string& name) {
  for (const auto& p : wf["spec"]["arguments"]["parameters"]) {
    if (p.value("name", "") == name)
      return p.value("value", "");
  }
  return {};
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) {
    s.replace(p, from.size(), to);
  }
  return s;
}

// Argo's substitution of the globals and parameters the KFP templates use.
std::string substitute(std::string s, const json& wf, const json& inputs) {
  const std::string name = wf["metadata"]["name"];
  s = replaceAll(s, "{{workflow.name}}", name);
  s = replaceAll(s, "{{workflow.uid}}", wf["metadata"]["labels"].value("pipeline/runid", ""));
  s = replaceAll(s, "{{workflow.creationTimestamp}}", "2026-11-28T12:00:00Z");
  // Argo resolves {{workflow.status}} when it builds the pod: still Running (#10917).
  s = replaceAll(s, "{{workflow.status}}", "Running");
  for (const auto& [k, v] : inputs.items()) {
    s = replaceAll(s, "{{inputs.parameters." + k + "}}", v.get<std::string>());
  }
  std::size_t p;
  while ((p = s.find("{{workflow.parameters.")) != std::string::npos) {
    std::size_t e = s.find("}}", p);
    std::string key = s.substr(p + 22, e - p - 22);
    s.replace(p, e + 2 - p, workflowParam(wf, key));
  }
  return s;
}

// Splits "W.a.b(0:x).c" relative to W on dots outside parentheses.
std::vector<std::string> segments(const std::string& wfName, const std::string& nodeName) {
  std::vector<std::string> out;
  std::string rel = nodeName.substr(wfName.size());
  std::string cur;
  int depth = 0;
  for (char c : rel) {
    if (c == '(')
      ++depth;
    if (c == ')')
      --depth;
    if (c == '.' && depth == 0) {
      if (!cur.empty())
        out.push_back(cur);
      cur.clear();
      continue;
    }
    cur += c;
  }
  if (!cur.empty())
    out.push_back(cur);
  return out;
}

std::string join(const std::string& wfName, const std::vector<std::string>& segs, std::size_t n) {
  std::string s = wfName;
  for (std::size_t i = 0; i < n; ++i)
    s += (segs[i].front() == '(' ? "" : ".") + segs[i];  // "W(0)": a retried entry's attempt
  return s;
}

const json* dagTask(const json& tmpl, const std::string& name) {
  if (!tmpl.contains("dag"))
    return nullptr;
  for (const auto& t : tmpl["dag"]["tasks"]) {
    if (t.value("name", "") == name)
      return &t;
  }
  return nullptr;
}

std::string taskArg(const json& task, const std::string& name) {
  if (!task.contains("arguments") || !task["arguments"].contains("parameters"))
    return {};
  for (const auto& p : task["arguments"]["parameters"]) {
    if (p.value("name", "") == name)
      return p.value("value", "");
  }
  return {};
}

json argoEnv(const std::string& container, const std::string& nodeId, const std::string& wfName) {
  return json::array({{{"name", "ARGO_CONTAINER_NAME"}, {"value", container}},
                      {{"name", "ARGO_NODE_ID"}, {"value", nodeId}},
                      {{"name", "ARGO_INCLUDE_SCRIPT_OUTPUT"}, {"value", "false"}},
                      {{"name", "ARGO_DEADLINE"}, {"value", "0001-01-01T00:00:00Z"}},
                      {{"name", "ARGO_WORKFLOW_NAME"}, {"value", wfName}},
                      {{"name", "ARGO_PROGRESS_FILE"}, {"value", "/var/run/argo/progress"}}});
}

const json kEmissary = json::array({"/var/run/argo/argoexec", "emissary", "--loglevel", "info",
                                    "--log-format", "text", "--gloglevel", "0", "--"});

// Root pipeline inputs from the root driver's runtime-config.
json rootParameters(const json& wf) {
  const json& entry = templateOf(wf, wf["spec"]["entrypoint"]);
  const json* rootDriver = dagTask(entry, "root-driver");
  if (rootDriver == nullptr)
    return json::object();
  auto rc = json::parse(taskArg(*rootDriver, "runtime-config"), nullptr, false);
  if (rc.is_discarded() || !rc.contains("parameterValues"))
    return json::object();
  return rc["parameterValues"];
}

// The template a node runs, found by walking the spec from the entrypoint
// (for nodes not in status.nodes yet): DAG tasks by name, "onExit" through the
// previous task's exit hook.
std::string templateForNode(const json& wf, const std::string& nodeName) {
  const std::string wfName = wf["metadata"]["name"];
  std::string current = wf["spec"]["entrypoint"];
  std::string hook = wf["spec"].value("onExit", "");
  for (const auto& seg : segments(wfName, nodeName)) {
    if (seg.front() == '(')
      continue;  // the retried entry's attempt "W(0)" runs the entrypoint
    if (seg.substr(0, seg.find('(')) == "onExit") {
      current = hook;
      hook.clear();
      continue;
    }
    std::string name = seg;
    if (auto p = name.find('('); p != std::string::npos)
      name.resize(p);
    const json* t = dagTask(templateOf(wf, current), name);
    if (t == nullptr)
      die("cannot resolve " + nodeName + " at " + seg);
    current = (*t)["template"];
    hook =
        t->contains("hooks") ? (*t)["hooks"]["exit"].value("template", "") : t->value("onExit", "");
  }
  return current;
}

std::string templateNameOf(const json& wf, const std::string& nodeName) {
  const json* n = findNodeByName(wf, nodeName);
  return n != nullptr ? (*n)["templateName"].get<std::string>() : templateForNode(wf, nodeName);
}

}  // namespace

json buildArgoPod(const json& wf, const std::string& nodeName, const PodBuildOptions& options) {
  const std::string wfName = wf["metadata"]["name"];
  const std::string ns = wf["metadata"].value("namespace", "default");
  const json* node = findNodeByName(wf, nodeName);
  std::string templateName = options.templateName;
  if (templateName.empty()) {
    templateName = node != nullptr ? (*node)["templateName"].get<std::string>()
                                   : templateForNode(wf, nodeName);
  }
  const json& tmpl = templateOf(wf, templateName);
  const std::string nodeId = testNodeId(wfName, nodeName);
  const auto segs = segments(wfName, nodeName);
  // "onExit", or "onExit(n)" when the hook template is retried (KFP 2.17).
  const bool onExit = std::any_of(segs.begin(), segs.end(), [](const std::string& s) {
    return s.substr(0, s.find('(')) == "onExit";
  });

  json pod;
  pod["apiVersion"] = "v1";
  pod["kind"] = "Pod";
  auto& meta = pod["metadata"];
  meta["name"] = wfName + "-" + templateName + "-" + std::to_string(testFnv1a32(nodeName));
  meta["namespace"] = ns;
  meta["labels"] = {{"workflows.argoproj.io/workflow", wfName},
                    {"workflows.argoproj.io/completed", "false"}};
  if (onExit)
    meta["labels"]["workflows.argoproj.io/on-exit"] = "true";
  meta["annotations"] = {{"workflows.argoproj.io/node-name", nodeName},
                         {"workflows.argoproj.io/node-id", nodeId},
                         {"kubectl.kubernetes.io/default-container", "main"}};
  const json& spec = wf["spec"];
  if (spec.contains("podMetadata")) {
    const json labels = spec["podMetadata"].value("labels", json::object());
    for (const auto& [k, v] : labels.items())
      meta["labels"][k] = v;
    const json annotations = spec["podMetadata"].value("annotations", json::object());
    for (const auto& [k, v] : annotations.items())
      meta["annotations"][k] = v;
  }
  if (tmpl.contains("metadata") && options.runtimeRoleAnnotation) {
    const json annotations = tmpl["metadata"].value("annotations", json::object());
    for (const auto& [k, v] : annotations.items())
      meta["annotations"][k] = v;
  }
  meta["ownerReferences"] = json::array({{{"apiVersion", "argoproj.io/v1alpha1"},
                                          {"kind", "Workflow"},
                                          {"name", wfName},
                                          {"uid", options.uid},
                                          {"controller", true},
                                          {"blockOwnerDeletion", true}}});

  // The node's DAG task in its boundary template, for input parameters.
  json inputs = json::object();
  const json* task = nullptr;
  std::string boundaryTemplate;
  if (segs.size() >= 2) {
    {
      boundaryTemplate = templateNameOf(wf, join(wfName, segs, segs.size() - 1));
      std::string taskName = segs.back();
      if (auto p = taskName.find('('); p != std::string::npos)
        taskName.resize(p);
      task = dagTask(templateOf(wf, boundaryTemplate), taskName);
    }
  }
  if (tmpl.contains("inputs") && tmpl["inputs"].contains("parameters")) {
    for (const auto& p : tmpl["inputs"]["parameters"]) {
      std::string v = p.value("default", "");
      if (task != nullptr && task->contains("arguments")) {
        for (const auto& a : (*task)["arguments"].value("parameters", json::array())) {
          if (a.value("name", "") == p.value("name", ""))
            v = a.value("value", v);
        }
      }
      inputs[p.value("name", "")] = substitute(v, wf, json::object());
    }
  }
  inputs["parent-dag-id"] = "17";

  json main = tmpl.contains("container") ? tmpl["container"] : json::object();
  main["name"] = "main";
  for (auto field : {"command", "args"}) {
    if (!main.contains(field))
      continue;
    for (auto& a : main[field])
      a = substitute(a.get<std::string>(), wf, inputs);
  }

  const bool launcher = templateName.find("system-container-impl") != std::string::npos;
  if (launcher) {
    // The KFP driver's pod-spec patch: find the driver task of this executor.
    // Node "<P>.<task>.executor": the driver is "<task>-driver" in P's template.
    if (segs.size() < 3)
      die("launcher node without a task: " + nodeName);
    std::string taskName = segs[segs.size() - 2];
    taskName.resize(std::min(taskName.size(), taskName.find('(')));  // a retry attempt "t(0)"
    const std::string scopeTemplate = templateNameOf(wf, join(wfName, segs, segs.size() - 2));
    const json* driver = dagTask(templateOf(wf, scopeTemplate), taskName + "-driver");
    if (driver == nullptr)
      die("no driver task for " + nodeName);
    // Abbreviated specs (our reconstructed 2.0-2.3 file) leave component and
    // container out; stand in a minimal Python component then.
    auto parseOr = [&](const std::string& arg, json fallback) {
      json j = json::parse(substitute(taskArg(*driver, arg), wf, inputs), nullptr, false);
      return j.is_discarded() || !j.is_object() || j.empty() ? fallback : j;
    };
    const json component = parseOr("component", json{{"executorLabel", "exec-" + taskName}});
    const json taskSpec = parseOr("task", json::object());
    const json container =
        parseOr("container",
                json{{"image", "python:3.11"},
                     {"command", {"sh", "-ec", "python3 -m kfp.dsl.executor_main \"$@\"", "--"}},
                     {"args", {"--executor_input", "{{$}}", "--function_to_execute", taskName}}});
    const json rootParams = rootParameters(wf);

    nlohmann::ordered_json values = nlohmann::ordered_json::object();
    if (taskSpec.contains("inputs") && taskSpec["inputs"].contains("parameters")) {
      for (const auto& [p, ps] : taskSpec["inputs"]["parameters"].items()) {
        if (ps.contains("runtimeValue")) {
          values[p] = ps["runtimeValue"]["constant"];
        } else if (ps.contains("componentInputParameter")) {
          std::string q = ps["componentInputParameter"];
          if (q.rfind("pipelinechannel--", 0) == 0)
            q = q.substr(17);
          values[p] = rootParams.value(q, json("")).get<std::string>();
        } else if (ps.contains("taskFinalStatus")) {
          // protojson of PipelineTaskFinalStatus through structpb (driver resolve.go).
          values[p] = {{"error", nlohmann::ordered_json::object()},
                       {"pipelineJobResourceName", wfName},
                       {"pipelineTaskName", ps["taskFinalStatus"]["producerTask"]},
                       {"state", options.mlmdState}};
        }
      }
    }
    nlohmann::ordered_json executorInput = {
        {"inputs", {{"parameterValues", values}}},
        {"outputs", {{"outputFile", "/tmp/kfp_outputs/output_metadata.json"}}}};
    json launcherCmd = json::array({"/kfp-launcher/launch",
                                    "--executor_type",
                                    "container",
                                    "--pipeline_name",
                                    wf["metadata"].value("generateName", wfName),
                                    "--run_id",
                                    wf["metadata"]["labels"].value("pipeline/runid", ""),
                                    "--execution_id",
                                    "42",
                                    "--executor_input",
                                    executorInput.dump(),
                                    "--component_spec",
                                    component.dump(),
                                    "--pod_name",
                                    "$(KFP_POD_NAME)",
                                    "--pod_uid",
                                    "$(KFP_POD_UID)",
                                    "--ml_pipeline_server_address",
                                    "ml-pipeline.kubeflow",
                                    "--ml_pipeline_server_port",
                                    "8887",
                                    "--mlmd_server_address",
                                    "metadata-grpc-service.kubeflow",
                                    "--mlmd_server_port",
                                    "8080",
                                    "--publish_logs",
                                    "true",
                                    "--ml_pipeline_tls_enabled=false",
                                    "--metadata_tls_enabled=false",
                                    "--ca_cert_path",
                                    "",
                                    "--cache_disabled=false",
                                    "--log_level",
                                    "1",
                                    "--"});
    json userArgs = json::array();
    for (const auto& c : container.value("command", json::array()))
      userArgs.push_back(c);
    for (const auto& a : container.value("args", json::array()))
      userArgs.push_back(a);
    if (options.launcherFlagsInArgs) {
      main["command"] = json::array({"/kfp-launcher/launch"});
      json args = json::array();
      for (std::size_t i = 1; i < launcherCmd.size(); ++i)
        args.push_back(launcherCmd[i]);
      for (const auto& a : userArgs)
        args.push_back(a);
      main["args"] = args;
    } else {
      main["command"] = launcherCmd;
      main["args"] = userArgs;
    }
    main["image"] = container.value("image", "python:3.11");
  }

  // Argo: emissary prefix on every user container, its env, the wait sidecar.
  json cmd = kEmissary;
  for (const auto& c : main.value("command", json::array()))
    cmd.push_back(c);
  main["command"] = cmd;
  json env = main.value("env", json::array());
  for (const auto& e : argoEnv("main", nodeId, wfName))
    env.push_back(e);
  main["env"] = env;
  main["volumeMounts"] = main.value("volumeMounts", json::array());
  main["volumeMounts"].push_back({{"name", "var-run-argo"}, {"mountPath", "/var/run/argo"}});

  json wait = {{"name", "wait"},
               {"image", "quay.io/argoproj/argoexec:v4.1.2"},
               {"command", {"argoexec", "wait", "--loglevel", "info", "--log-format", "text"}},
               {"env", argoEnv("wait", nodeId, wfName)},
               {"volumeMounts", {{{"name", "var-run-argo"}, {"mountPath", "/var/run/argo"}}}}};
  json init = {{"name", "init"},
               {"image", "quay.io/argoproj/argoexec:v4.1.2"},
               {"command", {"argoexec", "init", "--loglevel", "info", "--log-format", "text"}},
               {"env", argoEnv("init", nodeId, wfName)}};
  init["env"].push_back(
      {{"name", "ARGO_TEMPLATE"}, {"value", json({{"name", templateName}}).dump()}});
  json initContainers = json::array({init});
  for (const auto& ic : tmpl.value("initContainers", json::array()))
    initContainers.push_back(ic);

  json volumes = json::array({{{"name", "var-run-argo"}, {"emptyDir", json::object()}}});
  for (const auto& v : tmpl.value("volumes", json::array()))
    volumes.push_back(v);
  pod["spec"] = {{"restartPolicy", "Never"},
                 {"serviceAccountName", spec.value("serviceAccountName", "default")},
                 {"initContainers", initContainers},
                 {"containers", json::array({wait, main})},
                 {"volumes", volumes}};
  pod["status"] = {{"phase", "Pending"}};
  return pod;
}

json admissionReviewFor(const json& pod, const std::string& uid) {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", uid},
            {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
            {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
            {"requestKind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
            {"name", pod["metadata"].value("name", "")},
            {"namespace", pod["metadata"].value("namespace", "")},
            {"operation", "CREATE"},
            {"userInfo", {{"username", "system:serviceaccount:argo:argo"}}},
            {"object", pod},
            {"oldObject", nullptr},
            {"dryRun", false},
            {"options", {{"kind", "CreateOptions"}, {"apiVersion", "meta.k8s.io/v1"}}}}}};
}

json applyJsonPatch(json doc, const json& ops) {
  for (const auto& op : ops) {
    const std::string kind = op["op"];
    const std::string path = op["path"];
    if (kind == "add" && path.size() >= 2 && path.substr(path.size() - 2) == "/-") {
      json::json_pointer parent(path.substr(0, path.size() - 2));
      if (!doc.contains(parent) || !doc[parent].is_array())
        die("add to missing array " + path);
      doc[parent].push_back(op["value"]);
    } else if (kind == "add") {
      json::json_pointer ptr(path);
      if (!doc.contains(ptr.parent_pointer()))
        die("add under missing parent " + path);
      doc[ptr] = op["value"];
    } else if (kind == "replace") {
      json::json_pointer ptr(path);
      if (!doc.contains(ptr))
        die("replace of missing " + path);
      doc[ptr] = op["value"];
    } else if (kind == "remove") {
      json::json_pointer ptr(path);
      doc[ptr.parent_pointer()].erase(ptr.back());
    } else {
      die("unsupported op " + kind);
    }
  }
  return doc;
}

std::string envOf(const json& pod, const std::string& container, const std::string& name) {
  for (const auto& c : pod["spec"]["containers"]) {
    if (c.value("name", "") != container)
      continue;
    for (const auto& e : c.value("env", json::array())) {
      if (e.value("name", "") == name)
        return e.value("value", "");
    }
  }
  return {};
}

json executorInputOf(const json& pod, const std::string& container) {
  for (const auto& c : pod["spec"]["containers"]) {
    if (c.value("name", "") != container)
      continue;
    for (auto field : {"command", "args"}) {
      const json arr = c.value(field, json::array());
      for (std::size_t i = 0; i + 1 < arr.size(); ++i) {
        if (arr[i] == "--executor_input")
          return json::parse(arr[i + 1].get<std::string>());
      }
    }
  }
  return nullptr;
}

}  // namespace exitrec::testing
