#include "engine/argo_assess.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "engine/dag_depends.h"

namespace exitrec {

namespace {

// Deeper nesting than this is not a real workflow; stop assessing instead of
// recursing without bound on hostile input.
constexpr int kMaxDepth = 200;

}  // namespace

ArgoAssessor::ArgoAssessor(const Workflow& workflow)
    : wf_(workflow), state_(workflow.nodes.size(), State::kNew), memo_(workflow.nodes.size()) {}

bool ArgoAssessor::isHookNode(const Node& node) {
  // nodeFlag.hooked exists from Argo 3.5.14; older data is matched by name.
  return node.hooked || node.hookName;
}

bool isAttemptName(std::string_view name, std::string_view base) {
  if (name.size() <= base.size() + 2 || name.substr(0, base.size()) != base ||
      name[base.size()] != '(' || name.back() != ')') {
    return false;
  }
  const std::string_view digits = name.substr(base.size() + 1, name.size() - base.size() - 2);
  return std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool ArgoAssessor::isRetryAttempt(const Node& retry, const Node& child) {
  return isAttemptName(child.name, retry.name) || !isHookNode(child);
}

std::uint32_t ArgoAssessor::indexOf(const Node& node) const {
  return static_cast<std::uint32_t>(&node - wf_.nodes.data());
}

Phase ArgoAssessor::nodePhase(const Node& node) {
  return phaseOf(node, 0);
}

bool ArgoAssessor::nodeFulfilled(const Node& node) {
  return fulfilledOf(node, 0);
}

Phase ArgoAssessor::phaseOf(const Node& node, int depth) {
  if (isFulfilled(node))
    return node.phase;
  return assess(indexOf(node), depth);
}

bool ArgoAssessor::fulfilledOf(const Node& node, int depth) {
  Phase p = phaseOf(node, depth);
  return isFulfilled(p) || (node.daemoned && p != Phase::kPending);
}

Phase ArgoAssessor::assess(std::uint32_t index, int depth) {
  const Node& node = wf_.nodes[index];
  if (state_[index] == State::kDone)
    return memo_[index];
  // A cycle in children/boundary links or absurd depth: undecided.
  if (state_[index] == State::kBusy || depth > kMaxDepth)
    return node.phase;
  state_[index] = State::kBusy;
  Phase p = node.phase;
  switch (node.type) {
    case NodeType::kDAG:
      p = assessDag(node, depth + 1);
      break;
    case NodeType::kSteps:
      p = assessSteps(node, depth + 1);
      break;
    case NodeType::kStepGroup:
      p = assessStepGroup(node, depth + 1);
      break;
    case NodeType::kRetry:
      p = assessRetry(node, depth + 1);
      break;
    case NodeType::kTaskGroup:
      p = assessTaskGroup(node, depth + 1);
      break;
    default:
      break;
  }
  state_[index] = State::kDone;
  memo_[index] = p;
  return p;
}

// assessDAGPhase (reference A7) over the snapshot, with predicted phases.
Phase ArgoAssessor::assessDag(const Node& node, int depth) {
  const Phase undecided = node.phase;
  const Template* tmpl = wf_.templateByName(node.templateName);
  if (tmpl == nullptr || !tmpl->isDag)
    return undecided;
  if (wf_.hasShutdown)
    return Phase::kFailed;

  std::vector<std::string_view> targets = dagTargets(*tmpl);
  std::sort(targets.begin(), targets.end());
  // Target task → its node (resolved by name: ids may be synthetic).
  std::unordered_map<std::uint32_t, std::size_t> targetOfNode;
  std::vector<Phase> targetPhase(targets.size(), Phase::kNone);
  std::string buf;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    buf.assign(node.name).push_back('.');
    buf.append(targets[i]);
    if (const Node* t = wf_.nodeByName(buf))
      targetOfNode.emplace(indexOf(*t), i);
  }

  struct Item {
    std::uint32_t index;
    Phase inherited;
  };
  std::vector<Item> queue;
  std::unordered_set<std::uint64_t> seen;
  auto push = [&](const Node* child, Phase inherited) {
    if (child == nullptr)
      return false;
    std::uint32_t ci = indexOf(*child);
    std::uint64_t key = (std::uint64_t{ci} << 8) | static_cast<std::uint8_t>(inherited);
    if (seen.insert(key).second)
      queue.push_back({ci, inherited});
    return true;
  };
  for (const Node* c : wf_.childNodes(node)) {
    if (!push(c, Phase::kSucceeded))
      return undecided;  // missing node: Running
  }
  for (std::size_t qi = 0; qi < queue.size(); ++qi) {
    const Item item = queue[qi];
    const Node& n = wf_.nodes[item.index];
    Phase branch = item.inherited;
    Phase p = phaseOf(n, depth);
    bool fulfilled = isFulfilled(p) || (n.daemoned && p != Phase::kPending);
    if (!fulfilled)
      return undecided;  // (TaskGroup heal happens in phaseOf)
    if (isCompleted(p))
      branch = p;
    if (auto it = targetOfNode.find(item.index); it != targetOfNode.end()) {
      if (!isFailedOrError(targetPhase[it->second]))
        targetPhase[it->second] = branch;
    }
    if (n.type == NodeType::kRetry) {
      // getRetryNodeChildrenIds: last to first; hooks themselves, attempts'
      // children (the downstream tasks).
      std::span<const Node* const> attempts = wf_.childNodes(n);
      for (auto it = attempts.rbegin(); it != attempts.rend(); ++it) {
        const Node* c = *it;
        if (c == nullptr)
          return undecided;
        if (isHookNode(*c)) {
          push(c, branch);
        } else {
          for (const Node* gc : wf_.childNodes(*c)) {
            if (!push(gc, branch))
              return undecided;
          }
        }
      }
    } else {
      for (const Node* c : wf_.childNodes(n)) {
        if (!push(c, branch))
          return undecided;
      }
    }
  }
  const bool failFast = tmpl->dagFailFast.value_or(true);
  Phase result = Phase::kSucceeded;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    Phase p = targetPhase[i];
    if (p == Phase::kNone) {
      result = Phase::kRunning;
      if (!failFast)
        break;
    } else if (isFailedOrError(p)) {
      const DagTask* task = findTask(*tmpl, targets[i]);
      bool covered = task != nullptr && ((p == Phase::kFailed && task->continueOnFailed) ||
                                         (p == Phase::kError && task->continueOnError));
      if (covered)
        continue;
      result = p;
      if (failFast)
        break;
    }
  }
  return result == Phase::kRunning ? undecided : result;
}

Phase ArgoAssessor::assessSteps(const Node& node, int depth) {
  const Phase undecided = node.phase;
  const Template* tmpl = wf_.templateByName(node.templateName);
  if (tmpl == nullptr || !tmpl->isSteps)
    return undecided;
  std::string buf;
  for (std::size_t i = 0; i < tmpl->stepGroups.size(); ++i) {
    buf.assign(node.name).append("[").append(std::to_string(i)).append("]");
    const Node* group = wf_.nodeByName(buf);
    if (group == nullptr)
      return undecided;  // Argo would create it next
    Phase p = phaseOf(*group, depth);
    if (!isFulfilled(p))
      return undecided;
    if (isFailedOrError(p))
      return Phase::kFailed;
  }
  return Phase::kSucceeded;
}

Phase ArgoAssessor::assessStepGroup(const Node& node, int depth) {
  const Phase undecided = node.phase;
  // The group "<steps>[i]" belongs to the Steps node named <steps>.
  std::size_t open = node.name.rfind('[');
  if (open == std::string::npos || node.name.back() != ']')
    return undecided;
  const Node* steps = wf_.nodeByName(std::string_view(node.name).substr(0, open));
  if (steps == nullptr)
    return undecided;
  const Template* tmpl = wf_.templateByName(steps->templateName);
  if (tmpl == nullptr || !tmpl->isSteps)
    return undecided;
  std::size_t groupIndex = 0;
  for (std::size_t i = open + 1; i + 1 < node.name.size(); ++i) {
    char c = node.name[i];
    if (c < '0' || c > '9' || groupIndex > 100000)
      return undecided;
    groupIndex = groupIndex * 10 + static_cast<std::size_t>(c - '0');
  }
  if (groupIndex >= tmpl->stepGroups.size() || node.children.empty())
    return undecided;
  const auto& stepDefs = tmpl->stepGroups[groupIndex];
  Phase result = Phase::kSucceeded;
  for (const Node* child : wf_.childNodes(node)) {
    if (child == nullptr)
      return undecided;
    Phase p = phaseOf(*child, depth);
    if (!(isFulfilled(p) || (child->daemoned && p != Phase::kPending)))
      return undecided;
    if (!isFailedOrError(p))
      continue;
    // Step name: the child's name after "<group>.", without "(i:item)".
    std::string_view stepName = child->name;
    if (stepName.size() > node.name.size() + 1 &&
        stepName.substr(0, node.name.size()) == node.name) {
      stepName.remove_prefix(node.name.size() + 1);
    }
    if (auto paren = stepName.find('('); paren != std::string_view::npos) {
      stepName = stepName.substr(0, paren);
    }
    const Step* def = nullptr;
    for (const auto& s : stepDefs) {
      if (s.name == stepName)
        def = &s;
    }
    bool covered = def != nullptr && ((p == Phase::kFailed && def->continueOnFailed) ||
                                      (p == Phase::kError && def->continueOnError));
    if (!covered)
      result = Phase::kFailed;
  }
  return result;
}

Phase ArgoAssessor::assessRetry(const Node& node, int depth) {
  const Phase undecided = node.phase;
  const Node* last = nullptr;
  std::size_t attempts = 0;
  for (const Node* c : wf_.childNodes(node)) {
    if (c == nullptr)
      return undecided;
    if (!isRetryAttempt(node, *c))
      continue;
    last = c;
    ++attempts;
  }
  if (last == nullptr)
    return undecided;
  Phase p = phaseOf(*last, depth);
  if (!isFulfilled(p))
    return undecided;
  if (!isFailedOrError(p))
    return p;
  const Template* tmpl =
      wf_.templateByName(node.templateName.empty() ? last->templateName : node.templateName);
  if (tmpl == nullptr || !tmpl->hasRetryStrategy || !tmpl->retryLimit)
    return undecided;
  const std::string& policy = tmpl->retryPolicy;
  bool retryable = false;
  if (policy == "Always") {
    retryable = true;
  } else if (policy == "OnError") {
    retryable = p == Phase::kError;
  } else if (policy.empty() || policy == "OnFailure") {
    retryable = p == Phase::kFailed;
  } else {
    return undecided;  // OnTransientError: depends on the error text
  }
  if (!retryable)
    return p;
  if (static_cast<std::int64_t>(attempts) > *tmpl->retryLimit)
    return p;  // no retries left
  return undecided;
}

Phase ArgoAssessor::assessTaskGroup(const Node& node, int depth) {
  const Phase undecided = node.phase;
  if (node.children.empty())
    return undecided;
  Phase result = Phase::kSucceeded;
  for (const Node* c : wf_.childNodes(node)) {
    if (c == nullptr)
      return undecided;
    Phase p = phaseOf(*c, depth);
    if (!(isFulfilled(p) || (c->daemoned && p != Phase::kPending)))
      return undecided;
    if (isFailedOrError(p))
      result = p;
  }
  return result;
}

Phase ArgoAssessor::mainPhase() {
  const Node* entry = wf_.nodeByName(wf_.name);
  if (entry == nullptr)
    return Phase::kNone;
  Phase p = phaseOf(*entry, 0);
  switch (p) {
    case Phase::kSkipped:
    case Phase::kOmitted:
      return Phase::kSucceeded;
    case Phase::kPending:
    case Phase::kSucceeded:
    case Phase::kFailed:
    case Phase::kError:
      return p;
    default:
      return Phase::kRunning;
  }
}

Phase ArgoAssessor::workflowPhase() {
  Phase main = mainPhase();
  if (!isCompleted(main) || wf_.onExit.empty())
    return main;
  const Node* onExit = wf_.nodeByName(wf_.name + ".onExit");
  if (onExit == nullptr)
    return Phase::kRunning;  // Argo runs it next
  Phase p = phaseOf(*onExit, 0);
  if (!(isFulfilled(p) || (onExit->daemoned && p != Phase::kPending)))
    return Phase::kRunning;
  if (main == Phase::kSucceeded && isFailedOrError(p))
    return p;
  return main;
}

}  // namespace exitrec
