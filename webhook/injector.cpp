#include "webhook/injector.h"

namespace exitrec {

namespace {

constexpr std::string_view kExecutorInputFlag = "--executor_input";
constexpr std::string_view kComponentSpecFlag = "--component_spec";

std::string stringAt(const nlohmann::json& obj, std::string_view key) {
  if (!obj.is_object())
    return {};
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string())
    return {};
  return it->get<std::string>();
}

const nlohmann::json* objectAt(const nlohmann::json& obj, std::string_view key) {
  if (!obj.is_object())
    return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_object())
    return nullptr;
  return &*it;
}

std::string replaceAll(std::string text, std::string_view from, std::string_view to) {
  std::size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
  return text;
}

// Both spellings the SDK and protojson may use.
nlohmann::ordered_json* memberEither(nlohmann::ordered_json& obj, std::string_view camel,
                                     std::string_view snake) {
  if (!obj.is_object())
    return nullptr;
  auto it = obj.find(camel);
  if (it != obj.end())
    return &*it;
  it = obj.find(snake);
  if (it != obj.end())
    return &*it;
  return nullptr;
}

bool looksLikeFinalStatus(const nlohmann::ordered_json& v) {
  return v.is_object() && v.contains("state") &&
         (v.contains("pipelineTaskName") || v.contains("pipeline_task_name") ||
          v.contains("pipelineJobResourceName") || v.contains("pipeline_job_resource_name"));
}

void fillFinalStatus(nlohmann::ordered_json& v, const ExitTaskState& state) {
  const bool snake = v.contains("pipeline_task_name") || v.contains("pipeline_job_resource_name");
  v["state"] = state.finalState;
  const char* taskKey = snake ? "pipeline_task_name" : "pipelineTaskName";
  const char* jobKey = snake ? "pipeline_job_resource_name" : "pipelineJobResourceName";
  if (!v.contains(taskKey) || !v[taskKey].is_string() || v[taskKey].get<std::string>().empty()) {
    v[taskKey] = state.pipelineTaskName;
  }
  if (!v.contains(jobKey) || !v[jobKey].is_string() || v[jobKey].get<std::string>().empty()) {
    v[jobKey] = state.pipelineJobResourceName;
  }
  nlohmann::ordered_json err = nlohmann::ordered_json::object();
  if (state.errorCode != 0) {
    err["code"] = state.errorCode;
    err["message"] = state.errorMessage;
  }
  v["error"] = std::move(err);
}

void addEnvOps(nlohmann::json& patch, std::size_t ci, const nlohmann::json& container,
               const std::vector<std::pair<std::string_view, std::string>>& vars) {
  const std::string base = "/spec/containers/" + std::to_string(ci) + "/env";
  auto envIt = container.find("env");
  if (envIt == container.end() || !envIt->is_array()) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& [k, v] : vars)
      arr.push_back({{"name", k}, {"value", v}});
    patch.push_back({{"op", "add"}, {"path", base}, {"value", std::move(arr)}});
    return;
  }
  for (const auto& [k, v] : vars) {
    std::optional<std::size_t> at;
    for (std::size_t j = 0; j < envIt->size(); ++j) {
      if (stringAt((*envIt)[j], "name") == k) {
        at = j;
        break;
      }
    }
    nlohmann::json entry = {{"name", k}, {"value", v}};
    if (at) {
      patch.push_back(
          {{"op", "replace"}, {"path", base + "/" + std::to_string(*at)}, {"value", entry}});
    } else {
      patch.push_back({{"op", "add"}, {"path", base + "/-"}, {"value", entry}});
    }
  }
}

}  // namespace

std::string jsonPointerEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

PodIdentity podIdentityOf(const nlohmann::json& pod) {
  PodIdentity id;
  const nlohmann::json* meta = objectAt(pod, "metadata");
  if (meta == nullptr)
    return id;
  id.namespace_ = stringAt(*meta, "namespace");
  id.name = stringAt(*meta, "name");
  if (id.name.empty())
    id.name = stringAt(*meta, "generateName");
  if (const nlohmann::json* labels = objectAt(*meta, "labels")) {
    id.runId = stringAt(*labels, kLabelRunId);
    id.workflowName = stringAt(*labels, kLabelWorkflow);
    id.onExitLabel = stringAt(*labels, kLabelOnExit) == "true";
  }
  if (const nlohmann::json* ann = objectAt(*meta, "annotations")) {
    id.nodeName = stringAt(*ann, kAnnotationNodeName);
    id.runtimeRole = stringAt(*ann, kAnnotationRuntimeRole);
  }
  return id;
}

bool alreadyInjected(const nlohmann::json& pod) {
  const nlohmann::json* meta = objectAt(pod, "metadata");
  const nlohmann::json* ann = meta == nullptr ? nullptr : objectAt(*meta, "annotations");
  return ann != nullptr && ann->contains(inj::kAnnInjected);
}

bool isArgoAuxiliaryContainer(std::string_view name) {
  return name == "wait" || name == "supervisor" || name.rfind("artifact-plugin-", 0) == 0;
}

std::vector<std::string> finalStatusParamsOf(std::string_view componentSpecJson) {
  std::vector<std::string> out;
  auto spec = nlohmann::json::parse(componentSpecJson, nullptr, false);
  if (spec.is_discarded() || !spec.is_object())
    return out;
  const nlohmann::json* defs = objectAt(spec, "inputDefinitions");
  if (defs == nullptr)
    defs = objectAt(spec, "input_definitions");
  if (defs == nullptr)
    return out;
  const nlohmann::json* params = objectAt(*defs, "parameters");
  if (params == nullptr)
    return out;
  for (auto it = params->begin(); it != params->end(); ++it) {
    std::string type = stringAt(it.value(), "parameterType");
    if (type.empty())
      type = stringAt(it.value(), "parameter_type");
    if (type == "TASK_FINAL_STATUS")
      out.push_back(it.key());
  }
  return out;
}

std::string rewriteExecutorInput(
    std::string_view executorInput, const std::vector<std::string>& finalStatusParams,
    const ExitTaskState& state,
    const std::vector<std::pair<std::string, std::string>>& placeholders, bool* rewroteFinalStatus,
    bool* replacedPlaceholder) {
  auto doc = nlohmann::ordered_json::parse(executorInput, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return {};
  nlohmann::ordered_json* inputs = memberEither(doc, "inputs", "inputs");
  if (inputs == nullptr || !inputs->is_object())
    return {};
  nlohmann::ordered_json* values = memberEither(*inputs, "parameterValues", "parameter_values");
  if (values == nullptr || !values->is_object())
    return {};
  bool changed = false;
  for (auto it = values->begin(); it != values->end(); ++it) {
    const bool named = std::find(finalStatusParams.begin(), finalStatusParams.end(), it.key()) !=
                       finalStatusParams.end();
    if ((named && it.value().is_object()) || looksLikeFinalStatus(it.value())) {
      fillFinalStatus(it.value(), state);
      changed = true;
      if (rewroteFinalStatus != nullptr)
        *rewroteFinalStatus = true;
    }
  }
  const std::string trueStatus(phaseName(state.workflowStatus));
  for (const auto& [param, specValue] : placeholders) {
    auto it = values->find(param);
    if (it == values->end() || !it->is_string())
      continue;
    const std::string early = replaceAll(specValue, "{{workflow.status}}", "Running");
    if (it->get<std::string>() != early)
      continue;  // not the too-early value: leave it
    *it = replaceAll(specValue, "{{workflow.status}}", trueStatus);
    changed = true;
    if (replacedPlaceholder != nullptr)
      *replacedPlaceholder = true;
  }
  if (!changed)
    return {};
  return doc.dump();
}

std::map<std::string, std::string> injectionAnnotations(const ExitTaskState& state,
                                                        std::string_view channel,
                                                        std::string_view items,
                                                        std::string_view injectedAt) {
  std::map<std::string, std::string> a;
  a[std::string(inj::kAnnInjected)] = std::string(channel);
  a[std::string(inj::kAnnInjectedAt)] = std::string(injectedAt);
  a[std::string(inj::kAnnInjectedItems)] = std::string(items);
  a[std::string(inj::kAnnExitHandlerStatus)] = std::string(phaseName(state.exitHandlerStatus));
  a[std::string(inj::kAnnWorkflowStatus)] = std::string(phaseName(state.workflowStatus));
  a[std::string(inj::kAnnWorkflowFailures)] = state.failuresJson();
  a[std::string(inj::kAnnFinalStatus)] = state.finalStatusJson();
  return a;
}

InjectionPlan planInjection(const nlohmann::json& pod, const ExitTaskTarget& target,
                            const ExitTaskState& state, std::string_view injectedAt) {
  InjectionPlan plan;
  if (!target.userCode)
    return plan;
  const nlohmann::json* spec = objectAt(pod, "spec");
  if (spec == nullptr)
    return plan;
  auto ctrs = spec->find("containers");
  if (ctrs == spec->end() || !ctrs->is_array())
    return plan;

  const std::vector<std::pair<std::string_view, std::string>> vars = {
      {inj::kEnvExitHandlerStatus, std::string(phaseName(state.exitHandlerStatus))},
      {inj::kEnvWorkflowStatus, std::string(phaseName(state.workflowStatus))},
      {inj::kEnvWorkflowFailures, state.failuresJson()},
      {inj::kEnvFinalStatus, state.finalStatusJson()},
  };
  bool env = false;
  bool finalStatus = false;
  bool placeholder = false;
  for (std::size_t ci = 0; ci < ctrs->size(); ++ci) {
    const nlohmann::json& c = (*ctrs)[ci];
    if (!c.is_object() || isArgoAuxiliaryContainer(stringAt(c, "name")))
      continue;
    addEnvOps(plan.patch, ci, c, vars);
    env = true;
    ++plan.containersTouched;

    // The launcher's flags may sit in command or args, after Argo's
    // "argoexec emissary ... --" prefix; find them wherever they are.
    std::vector<std::string> finalParams;
    for (const char* field : {"command", "args"}) {
      auto arr = c.find(field);
      if (arr == c.end() || !arr->is_array())
        continue;
      for (std::size_t j = 0; j + 1 < arr->size(); ++j) {
        if ((*arr)[j].is_string() &&
            (*arr)[j].get_ref<const std::string&>() == kComponentSpecFlag &&
            (*arr)[j + 1].is_string()) {
          auto names = finalStatusParamsOf((*arr)[j + 1].get_ref<const std::string&>());
          finalParams.insert(finalParams.end(), names.begin(), names.end());
        }
      }
    }
    for (const char* field : {"command", "args"}) {
      auto arr = c.find(field);
      if (arr == c.end() || !arr->is_array())
        continue;
      for (std::size_t j = 0; j < arr->size(); ++j) {
        if (!(*arr)[j].is_string())
          continue;
        const std::string& tok = (*arr)[j].get_ref<const std::string&>();
        std::size_t valueIndex = j;
        std::string_view value;
        std::string prefix;
        if (tok == kExecutorInputFlag && j + 1 < arr->size() && (*arr)[j + 1].is_string()) {
          valueIndex = j + 1;
          value = (*arr)[j + 1].get_ref<const std::string&>();
        } else if (tok.rfind(std::string(kExecutorInputFlag) + "=", 0) == 0) {
          prefix = std::string(kExecutorInputFlag) + "=";
          value = std::string_view(tok).substr(prefix.size());
        } else {
          continue;
        }
        if (value.empty() || value.front() != '{')
          continue;  // e.g. the literal "{{$}}"
        std::string rewritten = rewriteExecutorInput(
            value, finalParams, state, target.statusPlaceholders, &finalStatus, &placeholder);
        if (rewritten.empty())
          continue;
        plan.patch.push_back({{"op", "replace"},
                              {"path", "/spec/containers/" + std::to_string(ci) + "/" + field +
                                           "/" + std::to_string(valueIndex)},
                              {"value", prefix + rewritten}});
        if (valueIndex == j + 1)
          ++j;
      }
    }
  }
  if (env)
    plan.items.emplace_back("env");
  if (finalStatus)
    plan.items.emplace_back("executor-input");
  if (placeholder)
    plan.items.emplace_back("placeholder");
  if (plan.items.empty())
    return plan;

  std::string itemList;
  for (const auto& i : plan.items)
    itemList += (itemList.empty() ? "" : ",") + i;
  plan.annotations = injectionAnnotations(state, inj::kChannelWebhook, itemList, injectedAt);
  const nlohmann::json* meta = objectAt(pod, "metadata");
  const bool hasAnnotations = meta != nullptr && objectAt(*meta, "annotations") != nullptr;
  if (!hasAnnotations) {
    if (meta == nullptr) {
      plan.patch.push_back(
          {{"op", "add"}, {"path", "/metadata"}, {"value", nlohmann::json::object()}});
    }
    nlohmann::json all = nlohmann::json::object();
    for (const auto& [k, v] : plan.annotations)
      all[k] = v;
    plan.patch.push_back(
        {{"op", "add"}, {"path", "/metadata/annotations"}, {"value", std::move(all)}});
  } else {
    for (const auto& [k, v] : plan.annotations) {
      plan.patch.push_back(
          {{"op", "add"}, {"path", "/metadata/annotations/" + jsonPointerEscape(k)}, {"value", v}});
    }
  }
  return plan;
}

}  // namespace exitrec
