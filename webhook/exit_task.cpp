#include "webhook/exit_task.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace exitrec {

namespace {

constexpr std::string_view kOnExitSegment = "onExit";
constexpr std::string_view kDriverSuffix = "-driver";
constexpr std::string_view kStatusPlaceholder = "{{workflow.status}}";

// "a(0:x)" -> "a", "onExit(0)" -> "onExit" (retry attempts, Argo operator.go
// executeTemplate "<name>(<n>)"); "[0]" stays; the entry's attempt "(0)" -> "".
std::string_view taskOfSegment(std::string_view seg) {
  if (!seg.empty() && seg.front() == '[')
    return seg;
  auto p = seg.find('(');
  return p == std::string_view::npos ? seg : seg.substr(0, p);
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A segment that continues the previous node's name without a dot: a steps
// group "[i]", or the entry node's retry attempt "(n)" ("W(0)").
bool joinsWithoutDot(std::string_view seg) {
  return !seg.empty() && (seg.front() == '[' || seg.front() == '(');
}

// True when node `name` is `root` or lies below it: Argo names what runs
// inside a node "<root>.…", "<root>(…)" (retry attempts, loop iterations) or
// "<root>[…]" (steps groups). With KFP 2.17's templateDefaults retryStrategy
// the body's tasks are "<group>(0).<task>", not "<group>.<task>".
bool underNode(std::string_view name, std::string_view root) {
  if (name.size() < root.size() || name.substr(0, root.size()) != root)
    return false;
  if (name.size() == root.size())
    return true;
  char c = name[root.size()];
  return c == '.' || c == '(' || c == '[';
}

// One resolved path segment: the task it names and that task's template.
struct Resolved {
  std::string parentTemplate;  // template holding the task ("" if unknown)
  std::string templateName;    // template the segment runs ("" if unknown)
  const DagTask* dagTask = nullptr;
  std::string exitHook;  // exit hook template of the task, if any
};

std::vector<Resolved> resolvePath(const Workflow& wf, const std::vector<std::string>& segs) {
  std::vector<Resolved> out;
  out.reserve(segs.size());
  std::string current = wf.entrypoint;
  std::string previousHook = wf.onExit;  // a leading "onExit" is the workflow-level one
  int stepGroup = -1;
  for (const auto& seg : segs) {
    Resolved r;
    r.parentTemplate = current;
    if (taskOfSegment(seg) == kOnExitSegment) {
      r.templateName = previousHook;
      previousHook.clear();
      stepGroup = -1;
    } else if (!seg.empty() && seg.front() == '[') {
      // Steps group "[i]": stays in the same template.
      r.templateName = current;
      stepGroup = std::atoi(seg.c_str() + 1);
      out.push_back(std::move(r));
      continue;
    } else if (!seg.empty() && seg.front() == '(') {
      // The entry node's retry attempt "W(0)": runs the same template.
      r.templateName = current;
      out.push_back(std::move(r));
      continue;
    } else {
      std::string_view task = taskOfSegment(seg);
      const Template* t = current.empty() ? nullptr : wf.templateByName(current);
      previousHook.clear();
      if (t != nullptr && t->isDag) {
        for (const auto& dt : t->dagTasks) {
          if (dt.name == task) {
            r.dagTask = &dt;
            r.templateName = dt.templateName;
            r.exitHook = dt.exitHookTemplate;
            break;
          }
        }
      } else if (t != nullptr && t->isSteps && stepGroup >= 0 &&
                 static_cast<std::size_t>(stepGroup) < t->stepGroups.size()) {
        for (const auto& st : t->stepGroups[static_cast<std::size_t>(stepGroup)]) {
          if (st.name == task) {
            r.templateName = st.templateName;
            r.exitHook = st.exitHookTemplate;
            break;
          }
        }
      }
      previousHook = r.exitHook;
      stepGroup = -1;
    }
    current = r.templateName;
    out.push_back(std::move(r));
  }
  return out;
}

// Joins the workflow name and segs[0..count) back into a node name.
std::string prefixName(std::string_view wfName, const std::vector<std::string>& segs,
                       std::size_t count) {
  std::string name(wfName);
  for (std::size_t i = 0; i < count && i < segs.size(); ++i) {
    if (!joinsWithoutDot(segs[i]))
      name += '.';
    name += segs[i];
  }
  return name;
}

// The upstream task X whose failure `depends` explicitly accepts
// ("X.Failed" or "X.Errored"), or "" if none.
std::string failureAcceptingUpstream(std::string_view depends) {
  for (std::string_view suffix : {std::string_view(".Failed"), std::string_view(".Errored")}) {
    std::size_t pos = 0;
    while ((pos = depends.find(suffix, pos)) != std::string_view::npos) {
      std::size_t end = pos;
      std::size_t begin = pos;
      while (begin > 0) {
        char c = depends[begin - 1];
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') {
          --begin;
        } else {
          break;
        }
      }
      if (begin < end)
        return std::string(depends.substr(begin, end - begin));
      pos += suffix.size();
    }
  }
  return {};
}

const DagTask* findTask(const Template* t, std::string_view name) {
  if (t == nullptr || !t->isDag)
    return nullptr;
  for (const auto& dt : t->dagTasks) {
    if (dt.name == name)
      return &dt;
  }
  return nullptr;
}

std::string_view parameterValue(const DagTask& task, std::string_view name) {
  for (const auto& [k, v] : task.parameters) {
    if (k == name)
      return v;
  }
  return {};
}

// Inputs of a KFP task spec (the driver's `task` parameter) whose constant
// value contains "{{workflow.status}}".
std::vector<std::pair<std::string, std::string>> statusPlaceholdersOf(std::string_view taskJson) {
  std::vector<std::pair<std::string, std::string>> out;
  if (taskJson.find(kStatusPlaceholder) == std::string_view::npos)
    return out;
  auto task = nlohmann::json::parse(taskJson, nullptr, false);
  if (task.is_discarded() || !task.is_object())
    return out;
  auto inputs = task.find("inputs");
  if (inputs == task.end() || !inputs->is_object())
    return out;
  auto params = inputs->find("parameters");
  if (params == inputs->end() || !params->is_object())
    return out;
  for (auto it = params->begin(); it != params->end(); ++it) {
    const auto& spec = it.value();
    if (!spec.is_object())
      continue;
    auto rv = spec.find("runtimeValue");
    if (rv == spec.end() || !rv->is_object())
      continue;
    auto constant = rv->find("constant");
    if (constant == rv->end() || !constant->is_string())
      continue;
    const auto& text = constant->get_ref<const std::string&>();
    if (text.find(kStatusPlaceholder) != std::string::npos)
      out.emplace_back(it.key(), text);
  }
  return out;
}

bool isSystemTemplate(std::string_view name) {
  // KFP driver and importer templates carry no user code.
  if (name.rfind("system-", 0) != 0)
    return false;
  return endsWith(name, kDriverSuffix) || name.find("importer") != std::string_view::npos;
}

// v1 (spec.onExit): the exit-handler group's task name in the entry template.
std::string v1GroupTaskName(const Workflow& wf) {
  const Template* entry = wf.templateByName(wf.entrypoint);
  if (entry != nullptr && entry->isDag) {
    for (const auto& dt : entry->dagTasks) {
      if (dt.templateName.rfind("exit-handler-", 0) == 0 ||
          dt.name.rfind("exit-handler-", 0) == 0) {
        return dt.name;
      }
    }
  }
  return wf.name;
}

}  // namespace

bool mayBeExitTaskPod(const PodIdentity& pod) {
  return !pod.runId.empty() && !pod.workflowName.empty() && !pod.nodeName.empty();
}

std::string_view exitTaskKindName(ExitTaskKind kind) {
  switch (kind) {
    case ExitTaskKind::kExitHandlerHook:
      return "exit-handler-hook";
    case ExitTaskKind::kIgnoreUpstreamHook:
      return "ignore-upstream-failure-hook";
    case ExitTaskKind::kWorkflowOnExit:
      return "workflow-on-exit";
    case ExitTaskKind::kSibling:
      return "sibling-exit-task";
  }
  return "unknown";
}

std::vector<std::string> splitNodePath(std::string_view workflowName, std::string_view nodeName) {
  std::vector<std::string> segs;
  if (nodeName.size() <= workflowName.size() ||
      nodeName.substr(0, workflowName.size()) != workflowName) {
    return segs;
  }
  std::string_view rel = nodeName.substr(workflowName.size());
  if (rel.front() != '.' && rel.front() != '[' && rel.front() != '(')
    return segs;  // "W2.x" is not under "W"; "W(0)" is the entry's retry attempt
  std::size_t pos = 0;
  const std::size_t n = rel.size();
  while (pos < n) {
    char c = rel[pos];
    if (c == '.') {
      ++pos;
      continue;
    }
    if (c == '[') {
      std::size_t close = rel.find(']', pos);
      std::size_t end = close == std::string_view::npos ? n : close + 1;
      segs.emplace_back(rel.substr(pos, end - pos));
      pos = end;
      continue;
    }
    std::size_t start = pos;
    int depth = 0;
    while (pos < n) {
      c = rel[pos];
      if (c == '(') {
        ++depth;
      } else if (c == ')' && depth > 0) {
        --depth;
      } else if (depth == 0 && (c == '.' || c == '[')) {
        break;
      }
      ++pos;
    }
    segs.emplace_back(rel.substr(start, pos - start));
  }
  return segs;
}

std::optional<ExitTaskTarget> identifyExitTask(const Workflow& wf, const PodIdentity& pod) {
  if (pod.nodeName.empty() || wf.name.empty())
    return std::nullopt;
  const std::vector<std::string> segs = splitNodePath(wf.name, pod.nodeName);
  if (segs.empty())
    return std::nullopt;
  const std::vector<Resolved> res = resolvePath(wf, segs);

  ExitTaskTarget target;
  target.podTemplate = res.back().templateName;
  target.userCode = !isSystemTemplate(target.podTemplate) && pod.runtimeRole != "driver";

  // The KFP driver task of the exit task's container, inside `tmpl`, for the
  // exit task named by segment `seg` (either "<t>-driver" or "<t>").
  auto placeholdersFrom = [&](const std::string& tmpl, std::string_view seg) {
    std::string base(taskOfSegment(seg));
    if (endsWith(base, kDriverSuffix))
      base.resize(base.size() - kDriverSuffix.size());
    const DagTask* driver = findTask(wf.templateByName(tmpl), base + std::string(kDriverSuffix));
    if (driver == nullptr)
      return std::vector<std::pair<std::string, std::string>>{};
    return statusPlaceholdersOf(parameterValue(*driver, "task"));
  };

  if (pod.onExitLabel) {
    // The hook segment is "onExit", or "onExit(n)" for a pod of a retried
    // hook template (Argo's hook node is then a Retry node named "….onExit"
    // with attempts "….onExit(n)": the subtree root is the Retry node).
    std::size_t k = segs.size();
    for (std::size_t i = segs.size(); i-- > 0;) {
      if (taskOfSegment(segs[i]) == kOnExitSegment) {
        k = i;
        break;
      }
    }
    if (k == segs.size())
      return std::nullopt;
    target.exitTaskNodeName = prefixName(wf.name, segs, k).append(".").append(kOnExitSegment);
    if (k == 0) {
      target.kind = ExitTaskKind::kWorkflowOnExit;
      target.bodyNodeName = wf.name;
      target.bodyTaskName = v1GroupTaskName(wf);
      return target;
    }
    target.bodyNodeName = prefixName(wf.name, segs, k);
    target.bodyTaskName = std::string(taskOfSegment(segs[k - 1]));
    target.kind = res[k - 1].templateName.rfind("comp-exit-handler", 0) == 0
                      ? ExitTaskKind::kExitHandlerHook
                      : ExitTaskKind::kIgnoreUpstreamHook;
    if (k + 1 < segs.size())
      target.statusPlaceholders = placeholdersFrom(res[k].templateName, segs[k + 1]);
    return target;
  }

  // 2.0-2.3: a sibling task whose driver accepts the upstream's failure.
  for (std::size_t i = segs.size(); i-- > 0;) {
    const Template* parent = wf.templateByName(res[i].parentTemplate);
    if (parent == nullptr || !parent->isDag)
      continue;
    std::string base(taskOfSegment(segs[i]));
    if (endsWith(base, kDriverSuffix))
      base.resize(base.size() - kDriverSuffix.size());
    const DagTask* driver = findTask(parent, base + std::string(kDriverSuffix));
    if (driver == nullptr)
      continue;
    std::string upstream = failureAcceptingUpstream(driver->depends);
    if (upstream.empty() || findTask(parent, upstream) == nullptr)
      continue;
    std::string scope = prefixName(wf.name, segs, i);
    target.kind = ExitTaskKind::kSibling;
    target.bodyNodeName = std::string(scope).append(".").append(upstream);
    target.bodyTaskName = upstream;
    target.exitTaskNodeName = std::string(scope).append(".").append(base);
    target.statusPlaceholders = statusPlaceholdersOf(parameterValue(*driver, "task"));
    return target;
  }
  return std::nullopt;
}

bool bodyNeedsPods(const Workflow& wf, const ExitTaskTarget& target) {
  const Node* body = wf.nodeByName(target.bodyNodeName);
  if (body == nullptr || !isFulfilled(*body))
    return true;
  for (const auto& n : wf.nodes) {
    if ((n.type == NodeType::kPod || n.type == NodeType::kContainer) && !isFulfilled(n) &&
        underNode(n.name, target.bodyNodeName) && !underNode(n.name, target.exitTaskNodeName)) {
      return true;
    }
  }
  return false;
}

std::size_t overlayPods(Workflow& wf, const std::vector<PodObservation>& pods) {
  std::size_t changed = 0;
  struct Added {
    Node node;
    std::string parentId;
  };
  std::vector<Added> added;
  for (const auto& p : pods) {
    if (!isCompleted(p.phase) || p.nodeName.empty())
      continue;
    const Node* found = wf.nodeByName(p.nodeName);
    if (found == nullptr && !p.nodeId.empty())
      found = wf.nodeById(p.nodeId);
    if (found != nullptr) {
      if (isFulfilled(*found))
        continue;
      Node& n = wf.nodes[static_cast<std::size_t>(found - wf.nodes.data())];
      n.phase = p.phase;
      if (!p.message.empty())
        n.message = wf.intern(p.message);
      if (!p.finishedAt.empty())
        n.finishedAt = wf.intern(p.finishedAt);
      ++changed;
      continue;
    }
    // The pod's node was not saved yet: add it under its nearest saved ancestor.
    Added a;
    Node& n = a.node;
    n.name = wf.intern(p.nodeName);
    n.id = wf.intern(p.nodeId.empty() ? argoNodeId(wf.name, p.nodeName) : p.nodeId);
    auto segs = splitNodePath(wf.name, p.nodeName);
    n.displayName = wf.intern(segs.empty() ? p.nodeName : segs.back());
    n.type = NodeType::kPod;
    n.phase = p.phase;
    n.message = wf.intern(p.message);
    n.finishedAt = wf.intern(p.finishedAt);
    for (std::size_t len = segs.size(); len-- > 0;) {
      const Node* anc = wf.nodeByName(prefixName(wf.name, segs, len));
      if (anc != nullptr) {
        n.boundaryId = anc->id;
        a.parentId = std::string(anc->id);
        break;
      }
    }
    added.push_back(std::move(a));
    ++changed;
  }
  for (auto& a : added) {
    // Link the node as a child of its ancestor (children arrays are views: re-intern).
    if (const Node* anc = wf.nodeById(a.parentId)) {
      Node& parent = wf.nodes[static_cast<std::size_t>(anc - wf.nodes.data())];
      std::vector<std::string_view> kids(parent.children.begin(), parent.children.end());
      kids.push_back(a.node.id);
      parent.children = wf.internViews(kids);
    }
    wf.addNode(a.node);
  }
  if (changed > 0)
    wf.buildIndex();
  return changed;
}

std::string kfpTaskOfNode(std::string_view workflowName, std::string_view nodeName) {
  auto segs = splitNodePath(workflowName, nodeName);
  while (!segs.empty()) {
    std::string_view t = taskOfSegment(segs.back());
    if (t.empty() || t == "executor" || t == kOnExitSegment || t.front() == '[') {
      segs.pop_back();
      continue;
    }
    std::string out(t);
    if (endsWith(out, kDriverSuffix))
      out.resize(out.size() - kDriverSuffix.size());
    return out;
  }
  return std::string(nodeName);
}

namespace {

Phase worstOf(const std::vector<const Failure*>& failures) {
  if (failures.empty())
    return Phase::kSucceeded;
  for (const Failure* f : failures) {
    if (f->phase == Phase::kFailed)
      return Phase::kFailed;
  }
  return Phase::kError;
}

}  // namespace

ExitTaskState computeExitTaskState(const Workflow& wf, const ExitTaskTarget& target) {
  ExitTaskState s;
  s.pipelineJobResourceName = wf.name;
  s.pipelineTaskName = target.bodyTaskName;
  Verdict v = evaluate(wf);
  s.failures = std::move(v.failures);

  std::vector<const Failure*> all;
  std::vector<const Failure*> inBody;
  const bool wholeRun = target.bodyNodeName == wf.name;
  for (const auto& f : s.failures) {
    all.push_back(&f);
    if (wholeRun || underNode(f.nodeName, target.bodyNodeName))
      inBody.push_back(&f);
  }

  // The run so far, as {{workflow.status}} would read in an Argo onExit handler.
  if (isFailedOrError(wf.phase)) {
    s.workflowStatus = wf.phase;
  } else if (!all.empty()) {
    s.workflowStatus = worstOf(all);
  } else if (wf.hasShutdown) {
    s.workflowStatus = Phase::kFailed;
  } else {
    s.workflowStatus = Phase::kSucceeded;
  }

  // The body: Argo's own verdict where the node is final, else its failures.
  const Node* body = wf.nodeByName(target.bodyNodeName);
  if (wholeRun) {
    s.exitHandlerStatus = (body != nullptr && isCompleted(body->phase) &&
                           !(body->phase == Phase::kSucceeded && !inBody.empty()))
                              ? body->phase
                              : worstOf(inBody);
  } else if (body != nullptr && isCompleted(body->phase)) {
    s.exitHandlerStatus = body->phase;
  } else if (body != nullptr &&
             (body->phase == Phase::kSkipped || body->phase == Phase::kOmitted)) {
    s.exitHandlerStatus = Phase::kSucceeded;
  } else {
    s.exitHandlerStatus = worstOf(inBody);
  }
  if (wf.hasShutdown && s.exitHandlerStatus == Phase::kSucceeded && body != nullptr &&
      !isFulfilled(*body)) {
    s.exitHandlerStatus = Phase::kFailed;  // stopped before the body could finish
  }

  if (s.exitHandlerStatus == Phase::kSucceeded) {
    s.finalState = "SUCCEEDED";
    return s;
  }
  s.finalState = wf.hasShutdown ? "CANCELLED" : "FAILED";
  // The root cause: the earliest-finished failure in the body, else in the run.
  const auto& pool = inBody.empty() ? all : inBody;
  const Failure* first = nullptr;
  for (const Failure* f : pool) {
    if (first == nullptr) {
      first = f;
      continue;
    }
    const bool fHas = !f->finishedAt.empty();
    const bool firstHas = !first->finishedAt.empty();
    if (fHas && (!firstHas || f->finishedAt < first->finishedAt))
      first = f;
  }
  if (wf.hasShutdown) {
    s.errorCode = kRpcCancelled;
  } else if (first != nullptr ? first->phase == Phase::kError
                              : s.exitHandlerStatus == Phase::kError) {
    s.errorCode = kRpcInternal;
  } else {
    s.errorCode = kRpcUnknown;
  }
  if (first != nullptr) {
    std::string task =
        kfpTaskOfNode(wf.name, first->nodeName.empty() ? first->displayName : first->nodeName);
    s.errorMessage =
        "task " + task + " " + std::string(first->phase == Phase::kError ? "errored" : "failed");
    if (!first->message.empty())
      s.errorMessage += ": " + first->message;
  } else {
    s.errorMessage =
        std::string(target.bodyTaskName) + " " + std::string(phaseName(s.exitHandlerStatus));
    if (body != nullptr && !body->message.empty()) {
      s.errorMessage += ": " + std::string(body->message);
    }
  }
  if (wf.hasShutdown)
    s.errorMessage = "run stopped (" + s.errorMessage + ")";
  return s;
}

std::string ExitTaskState::failuresJson() const {
  if (failures.empty())
    return "[]";
  return failuresToJson(failures);
}

std::string ExitTaskState::finalStatusJson() const {
  nlohmann::ordered_json j;
  j["state"] = finalState;
  j["pipelineTaskName"] = pipelineTaskName;
  j["pipelineJobResourceName"] = pipelineJobResourceName;
  nlohmann::ordered_json err = nlohmann::ordered_json::object();
  if (errorCode != 0) {
    err["code"] = errorCode;
    err["message"] = errorMessage;
  }
  j["error"] = std::move(err);
  return j.dump();
}

}  // namespace exitrec
