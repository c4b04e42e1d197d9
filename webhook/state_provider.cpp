#include "webhook/state_provider.h"

#include <nlohmann/json.hpp>

#include "k8sclient/kube_client.h"

namespace exitrec {

namespace {

std::string str(const nlohmann::json& j, std::string_view key) {
  if (!j.is_object())
    return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Result<std::shared_ptr<const Workflow>> RunStateProvider::workflowSpec(std::string_view ns,
                                                                       std::string_view name,
                                                                       std::string_view /*uid*/) {
  return workflow(ns, name);
}

Result<std::shared_ptr<const Workflow>> RunStateProvider::recentWorkflow(std::string_view ns,
                                                                         std::string_view name,
                                                                         std::string_view /*uid*/) {
  return workflow(ns, name);
}

std::shared_ptr<const Workflow> RunStateProvider::cachedWorkflowSpec(std::string_view /*ns*/,
                                                                     std::string_view /*name*/,
                                                                     std::string_view /*uid*/) {
  return nullptr;
}

std::shared_ptr<const Workflow> specOnly(const Workflow& wf) {
  auto out = std::make_shared<Workflow>();
  out->apiVersion = wf.apiVersion;
  out->kind = wf.kind;
  out->name = wf.name;
  out->namespace_ = wf.namespace_;
  out->uid = wf.uid;
  out->labels = wf.labels;
  out->annotations = wf.annotations;
  out->entrypoint = wf.entrypoint;
  out->onExit = wf.onExit;
  out->templates = wf.templates;
  out->buildIndex();
  return out;
}

std::optional<PodObservation> observePod(const nlohmann::json& pod) {
  if (!pod.is_object())
    return std::nullopt;
  auto metaIt = pod.find("metadata");
  auto statusIt = pod.find("status");
  if (metaIt == pod.end() || statusIt == pod.end())
    return std::nullopt;
  const std::string podPhase = str(*statusIt, "phase");
  PodObservation o;
  if (podPhase == "Succeeded") {
    o.phase = Phase::kSucceeded;
  } else if (podPhase == "Failed") {
    o.phase = Phase::kFailed;
  } else {
    return std::nullopt;
  }
  o.podName = str(*metaIt, "name");
  auto annIt = metaIt->find("annotations");
  if (annIt != metaIt->end()) {
    o.nodeName = str(*annIt, kAnnotationNodeName);
    o.nodeId = str(*annIt, "workflows.argoproj.io/node-id");
  }
  if (o.nodeName.empty())
    return std::nullopt;
  // The main container's termination explains a failure, as Argo words it.
  auto csIt = statusIt->find("containerStatuses");
  if (csIt != statusIt->end() && csIt->is_array()) {
    for (const auto& cs : *csIt) {
      if (str(cs, "name") != "main")
        continue;
      auto state = cs.find("state");
      if (state == cs.end() || !state->is_object())
        break;
      auto term = state->find("terminated");
      if (term == state->end() || !term->is_object())
        break;
      o.finishedAt = str(*term, "finishedAt");
      auto code = term->find("exitCode");
      if (o.phase == Phase::kFailed && code != term->end() && code->is_number_integer()) {
        std::string reason = str(*term, "reason");
        if (reason.empty() || reason == "Error")
          reason = "Error";
        o.message = reason + " (exit code " + std::to_string(code->get<long long>()) + ")";
      }
      break;
    }
  }
  if (o.phase == Phase::kFailed && o.message.empty()) {
    o.message = str(*statusIt, "message");
    if (o.message.empty())
      o.message = str(*statusIt, "reason");
  }
  return o;
}

KubeRunStateProvider::KubeRunStateProvider(KubeClient& client, Clock& clock, Options options)
    : client_(client),
      options_(options),
      reads_([this](std::string_view ns, std::string_view name) { return fetch(ns, name); }, clock,
             options.reads) {}

Result<std::shared_ptr<const Workflow>> KubeRunStateProvider::fetch(std::string_view ns,
                                                                    std::string_view name) {
  using std::chrono::steady_clock;
  const auto t0 = steady_clock::now();
  auto raw = client_.getRaw(resources::kWorkflows, ns, name);
  const auto t1 = steady_clock::now();
  getNanos_ += std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
  if (!raw.ok())
    return raw.error();
  bytes_ += raw.value().size();
  auto wf = parseWorkflowJson(raw.value());
  parseNanos_ +=
      std::chrono::duration_cast<std::chrono::nanoseconds>(steady_clock::now() - t1).count();
  if (!wf.ok()) {
    return Error(ErrorCode::kInvalidInput, "workflow " + std::string(ns) + "/" + std::string(name) +
                                               ": " + wf.error().message);
  }
  return std::shared_ptr<const Workflow>(std::make_shared<const Workflow>(std::move(wf).value()));
}

KubeRunStateProvider::Stats KubeRunStateProvider::stats() const {
  Stats s;
  s.reads = reads_.stats();
  s.getTime = std::chrono::nanoseconds(getNanos_.load());
  s.parseTime = std::chrono::nanoseconds(parseNanos_.load());
  s.bytes = bytes_.load();
  return s;
}

Result<std::shared_ptr<const Workflow>> KubeRunStateProvider::workflow(std::string_view ns,
                                                                       std::string_view name) {
  return reads_.fresh(ns, name);
}

Result<std::shared_ptr<const Workflow>> KubeRunStateProvider::recentWorkflow(std::string_view ns,
                                                                             std::string_view name,
                                                                             std::string_view uid) {
  return reads_.recent(ns, name, uid);
}

std::shared_ptr<const Workflow> KubeRunStateProvider::cachedWorkflowSpec(std::string_view ns,
                                                                         std::string_view name,
                                                                         std::string_view uid) {
  std::string key;
  key.reserve(ns.size() + name.size() + 1);
  key.append(ns).append("/").append(name);
  std::lock_guard<std::mutex> g(mu_);
  auto it = specs_.find(key);
  if (it != specs_.end() && (uid.empty() || it->second->uid == uid))
    return it->second;
  return nullptr;
}

Result<std::shared_ptr<const Workflow>> KubeRunStateProvider::workflowSpec(std::string_view ns,
                                                                           std::string_view name,
                                                                           std::string_view uid) {
  const std::string key = std::string(ns) + "/" + std::string(name);
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = specs_.find(key);
    if (it != specs_.end() && (uid.empty() || it->second->uid == uid))
      return it->second;
  }
  // The spec never changes: any recent copy of the same Workflow will do.
  auto full = recentWorkflow(ns, name, uid);
  if (!full.ok())
    return full.error();
  auto spec = specOnly(*full.value());
  std::lock_guard<std::mutex> g(mu_);
  if (specs_.size() >= options_.specCacheEntries)
    specs_.clear();
  specs_[key] = spec;
  return spec;
}

Result<std::vector<PodObservation>> KubeRunStateProvider::finishedRunPods(
    std::string_view ns, std::string_view workflowName) {
  std::vector<PodObservation> out;
  ListOptions opts;
  opts.labelSelector = std::string(kLabelWorkflow) + "=" + std::string(workflowName);
  auto listed = client_.list(resources::kPods, ns, opts, [&](std::string_view raw) -> Status {
    auto pod = nlohmann::json::parse(raw, nullptr, false);
    if (pod.is_discarded())
      return Status();  // one undecodable pod must not hide the others
    if (auto o = observePod(pod))
      out.push_back(std::move(*o));
    return Status();
  });
  if (!listed.ok())
    return listed.error();
  return out;
}

namespace {

nlohmann::json annotationPatch(const std::map<std::string, std::string>& annotations) {
  nlohmann::json patch = {{"metadata", {{"annotations", nlohmann::json::object()}}}};
  for (const auto& [k, v] : annotations)
    patch["metadata"]["annotations"][k] = v;
  return patch;
}

}  // namespace

Status KubeAnnotationWriter::annotatePod(std::string_view ns, std::string_view name,
                                         const std::map<std::string, std::string>& annotations) {
  auto r = client_.mergePatch(resources::kPods, ns, name, annotationPatch(annotations));
  if (!r.ok())
    return r.error();
  return Status();
}

Status KubeAnnotationWriter::annotateWorkflow(
    std::string_view ns, std::string_view name,
    const std::map<std::string, std::string>& annotations) {
  auto r = client_.mergePatch(resources::kWorkflows, ns, name, annotationPatch(annotations));
  if (!r.ok())
    return r.error();
  return Status();
}

}  // namespace exitrec
