#include "webhook/resolver.h"

namespace exitrec {

std::string workflowOwnerUid(const nlohmann::json& pod) {
  auto meta = pod.find("metadata");
  if (meta == pod.end() || !meta->is_object())
    return {};
  auto owners = meta->find("ownerReferences");
  if (owners == meta->end() || !owners->is_array())
    return {};
  for (const auto& o : *owners) {
    if (!o.is_object())
      continue;
    auto kind = o.find("kind");
    auto uid = o.find("uid");
    if (kind != o.end() && kind->is_string() && *kind == "Workflow" && uid != o.end() &&
        uid->is_string()) {
      return uid->get<std::string>();
    }
  }
  return {};
}

bool ExitTaskResolver::worthResolving(const PodIdentity& id) {
  if (!mayBeExitTaskPod(id))
    return false;
  if (id.onExitLabel)
    return true;
  // Without the on-exit label only a 2.0-2.3 sibling exit task qualifies, and
  // of its pods only the launcher pod ("<task>.executor") runs user code.
  auto segs = splitNodePath(id.workflowName, id.nodeName);
  if (segs.empty())
    return false;
  std::string_view last = segs.back();
  auto p = last.find('(');
  if (p != std::string_view::npos)
    last = last.substr(0, p);
  return last == "executor";
}

ExitTaskState ExitTaskResolver::cachedState(const Workflow& wf, const ExitTaskTarget& target) {
  // The state depends only on the stored Workflow (this resourceVersion) and
  // on which exit task asks; the pod only shapes the patch.
  if (wf.uid.empty() || wf.resourceVersion.empty())
    return computeExitTaskState(wf, target);
  std::string key;
  key.reserve(wf.uid.size() + wf.resourceVersion.size() + target.bodyNodeName.size() +
              target.exitTaskNodeName.size() + 8);
  key.append(wf.uid)
      .append("/")
      .append(wf.resourceVersion)
      .append("/")
      .append(exitTaskKindName(target.kind))
      .append("/")
      .append(target.bodyNodeName)
      .append("/")
      .append(target.exitTaskNodeName);
  {
    std::lock_guard<std::mutex> g(stateMu_);
    auto it = states_.find(key);
    if (it != states_.end()) {
      ++stateHits_;
      return it->second;
    }
  }
  ExitTaskState state = computeExitTaskState(wf, target);
  std::lock_guard<std::mutex> g(stateMu_);
  if (states_.size() >= kStateCacheEntries)
    states_.clear();
  states_.emplace(std::move(key), state);
  return state;
}

std::uint64_t ExitTaskResolver::stateCacheHits() const {
  std::lock_guard<std::mutex> g(stateMu_);
  return stateHits_;
}

ExitTaskDecision ExitTaskResolver::decide(const nlohmann::json& pod,
                                          std::string_view requestNamespace) {
  ExitTaskDecision d;
  PodIdentity id = podIdentityOf(pod);
  if (id.namespace_.empty())
    id.namespace_ = std::string(requestNamespace);
  if (!worthResolving(id))
    return d;
  if (alreadyInjected(pod)) {
    d.outcome = ExitTaskDecision::Outcome::kAlreadyInjected;
    return d;
  }

  if (!id.onExitLabel) {
    // Scope needs the spec only; cached per run.
    auto spec = provider_.workflowSpec(id.namespace_, id.workflowName, workflowOwnerUid(pod));
    if (!spec.ok()) {
      d.outcome = ExitTaskDecision::Outcome::kStateUnavailable;
      d.error = spec.error();
      return d;
    }
    if (!identifyExitTask(*spec.value(), id))
      return d;
  }

  // A recent copy settles the state when the body is final in it (final node
  // phases never change); otherwise read the Workflow live, then the pods.
  // Identifies the exit task in a read of the Workflow; false when that
  // settles the decision (no state, or not an exit task after all).
  auto identifyIn = [&](const auto& read) {
    if (!read.ok()) {
      d.outcome = ExitTaskDecision::Outcome::kStateUnavailable;
      d.error = read.error();
      return false;
    }
    d.target = identifyExitTask(*read.value(), id);
    return d.target.has_value();
  };
  const std::string ownerUid = workflowOwnerUid(pod);
  auto wf = provider_.recentWorkflow(id.namespace_, id.workflowName, ownerUid);
  if (!identifyIn(wf))
    return d;
  if (!d.target->userCode) {
    d.outcome = ExitTaskDecision::Outcome::kNoUserCode;
    return d;
  }
  if (bodyNeedsPods(*wf.value(), *d.target)) {
    wf = provider_.workflow(id.namespace_, id.workflowName);
    if (!identifyIn(wf))
      return d;
  }

  if (bodyNeedsPods(*wf.value(), *d.target)) {
    auto pods = provider_.finishedRunPods(id.namespace_, id.workflowName);
    if (!pods.ok()) {
      d.outcome = ExitTaskDecision::Outcome::kStateUnavailable;
      d.error = pods.error();
      return d;
    }
    Workflow overlaid(*wf.value());
    overlayPods(overlaid, pods.value());
    d.state = computeExitTaskState(overlaid, *d.target);
    d.state.usedPods = true;
  } else {
    d.state = cachedState(*wf.value(), *d.target);
  }

  d.plan = planInjection(pod, *d.target, d.state, formatRfc3339(clock_.wallNow()));
  d.outcome =
      d.plan.empty() ? ExitTaskDecision::Outcome::kNoUserCode : ExitTaskDecision::Outcome::kInject;
  return d;
}

}  // namespace exitrec
