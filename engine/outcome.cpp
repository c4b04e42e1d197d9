#include "engine/outcome.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <unordered_map>
#include <unordered_set>

#include "engine/argo_assess.h"
#include "engine/bytes.h"
#include "engine/dag_depends.h"

namespace exitrec {

namespace {

constexpr std::string_view kRunIdLabel = "pipeline/runid";
constexpr std::string_view kCompletedLabel = "workflows.argoproj.io/completed";
constexpr std::string_view kPodNameFormatAnnotation = "workflows.argoproj.io/pod-name-format";
constexpr std::string_view kV1SdkAnnotation = "pipelines.kubeflow.org/kfp_sdk_version";

[[gnu::always_inline]] inline bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && bytes::same(s.substr(0, prefix.size()), prefix);
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// "<prefix>N" with N digits (dashes allowed after the first digit, for
// compiler-renamed nested groups such as exit-handler-1-2).
bool isNumbered(std::string_view s, std::string_view prefix) {
  if (!startsWith(s, prefix) || s.size() == prefix.size())
    return false;
  std::string_view rest = s.substr(prefix.size());
  if (rest[0] < '0' || rest[0] > '9')
    return false;
  return std::all_of(rest.begin(), rest.end(),
                     [](char c) { return (c >= '0' && c <= '9') || c == '-'; });
}

bool isExitHandlerTaskName(std::string_view name) {
  return isNumbered(name, "exit-handler-");
}
bool isV2ExitHandlerTemplate(std::string_view t) {
  return isNumbered(t, "comp-exit-handler-");
}

// Last segment of a node path ("wf.root.exit-handler-1" → "exit-handler-1").
std::string_view lastSegment(std::string_view name) {
  std::size_t dot = name.rfind('.');
  return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

bool isSep(char c) {
  return c == '.' || c == '(' || c == '[';
}

// True when `name` is `root` or lies below it in the node path.
[[gnu::always_inline]] inline bool underPath(std::string_view name, std::string_view root) {
  return startsWith(name, root) && (name.size() == root.size() || isSep(name[root.size()]));
}

bool isWorkType(NodeType t) {
  return t == NodeType::kPod || t == NodeType::kContainer || t == NodeType::kHTTP ||
         t == NodeType::kPlugin;
}

bool isWorkFailure(const Node& n) {
  return (isWorkType(n.type) && isFailedOrError(n.phase)) ||
         (n.type == NodeType::kSkipped && n.phase == Phase::kError);
}

enum class Role : std::uint8_t {
  kWork,        // ordinary pipeline work
  kExit,        // inside an exit task's subtree (onExit / exit-handler hook / 2.0–2.3 sibling)
  kHookedTask,  // inside an .ignore_upstream_failure() hook (KFP ≥2.4)
};

// Sibling exit tasks (2.0–2.3): per DAG template, the exit-handler group task
// and the task whose `depends` accepts the group's failure.
struct SiblingSpec {
  const Template* dag = nullptr;
  std::string_view group;       // exit-handler-N
  std::string_view exitTask;    // e.g. print-op
  std::string_view exitDriver;  // e.g. print-op-driver, or empty
};

struct SpecFacts {
  bool v2Compiler = false;   // made by KFP's v2 Argo compiler (see isV2DriverTemplate)
  bool anyExitHook = false;  // some DAG task has hooks.exit (KFP ≥2.4)
  bool hookGroups = false;
  std::vector<SiblingSpec> siblings;
};

// The KFP v2 Argo compiler (backend/src/v2/compiler/argocompiler, 2.0.0 to
// 2.17.0) runs every DAG through a driver: dag.go `DAG` puts `root-driver`
// (template "system-dag-driver", `addDAGDriverTemplate`) in the `entrypoint`
// template of every run, and container.go `addContainerDriverTemplate` names
// "system-container-driver". The v1 SDK compiler (sdk/python/kfp/compiler/
// compiler.py, 1.8.x) and hand-written Argo pipelines, the other kind of
// pipeline KFP runs (apiserver/template/argo_template.go), never use them.
bool isV2DriverTemplate(std::string_view t) {
  return t == "system-dag-driver" || t == "system-container-driver";
}

SpecFacts scanSpec(const Workflow& wf) {
  SpecFacts facts;
  for (const auto& tmpl : wf.templates) {
    if (isV2DriverTemplate(tmpl.name))
      facts.v2Compiler = true;
    if (!tmpl.isDag)
      continue;
    for (const auto& task : tmpl.dagTasks) {
      if (isV2DriverTemplate(task.templateName))
        facts.v2Compiler = true;
      if (!task.exitHookTemplate.empty())
        facts.anyExitHook = true;
      if (!isExitHandlerTaskName(task.name))
        continue;
      if (!task.exitHookTemplate.empty() && isV2ExitHandlerTemplate(task.templateName)) {
        facts.hookGroups = true;
        continue;
      }
      for (const auto& other : tmpl.dagTasks) {
        if (&other == &task || !dependsAcceptsFailure(other.depends, task.name))
          continue;
        SiblingSpec s;
        s.dag = &tmpl;
        s.group = task.name;
        if (endsWith(other.name, "-driver")) {
          s.exitDriver = other.name;
          s.exitTask = std::string_view(other.name).substr(0, other.name.size() - 7);
        } else {
          s.exitTask = other.name;
        }
        facts.siblings.push_back(s);
      }
    }
  }
  return facts;
}

class Evaluator {
 public:
  Evaluator(const Workflow& wf, const EvaluateOptions& options)
      : wf_(wf), options_(options), assessor_(wf) {}

  Verdict run();

 private:
  using Index = std::uint32_t;
  static constexpr Index kNoNode = 0xFFFFFFFFu;

  Index indexOf(const Node* n) const { return static_cast<Index>(n - wf_.nodes.data()); }
  void markSubtree(Index root, std::vector<std::uint8_t>& marks);
  Failure makeFailure(const Node& n) const;
  void findExitHandlers(Verdict& v, const SpecFacts& spec, Generation gen);
  void markRetries();
  bool inBody(Index i);
  bool propagates(Index i);
  Generation classify(const SpecFacts& spec) const;

  const Workflow& wf_;
  const EvaluateOptions& options_;
  ArgoAssessor assessor_;
  std::vector<Role> role_;
  std::vector<Index> bodyRoots_;  // exit-handler group nodes (their bodies' roots)
  std::unordered_set<std::string_view> bodyRootNames_;  // their names, for inBody()
  bool bodyRootNamesBuilt_ = false;
  std::vector<std::uint8_t> superseded_;  // inside an attempt of a Retry that succeeded
  std::vector<Index> retryParent_;        // attempt → its Retry node
  std::vector<std::uint8_t> propagates_;  // 0 unknown, 1 yes, 2 no (per boundary node)
  std::vector<Index> queue_;              // markSubtree's work list
  bool podNameV1_ = false;
  Phase argoPhase_ = Phase::kNone;
  Phase argoMain_ = Phase::kNone;
};

// docs/outcome-policy.md "Generation". A KFP run is v2 when KFP's v2 Argo
// compiler made it, else v1 (with or without onExit); a v2 run with any
// hooks.exit (exit handlers, and `.ignore_upstream_failure()` tasks) is
// compiled by the ≥2.4 hook compiler.
Generation Evaluator::classify(const SpecFacts& spec) const {
  if (wf_.labels.find(std::string(kRunIdLabel)) == wf_.labels.end())
    return Generation::kArgo;
  bool v2 = spec.v2Compiler;
  if (!v2 && wf_.templates.empty()) {
    // No spec (e.g. stripped): the driver templates' nodes tell, once the run
    // has started (root-driver is its first pod).
    v2 = std::any_of(wf_.nodes.begin(), wf_.nodes.end(),
                     [](const Node& n) { return isV2DriverTemplate(n.templateName); });
    const bool v1Marks =
        !wf_.onExit.empty() || wf_.annotations.count(std::string(kV1SdkAnnotation)) != 0;
    if (!v2 && !v1Marks && wf_.nodes.empty())
      return Generation::kKfpV2;  // nothing to tell by
  }
  if (!v2)
    return Generation::kKfpV1;
  if (spec.anyExitHook)
    return Generation::kKfpV2Hook;
  if (!spec.siblings.empty())
    return Generation::kKfpV2Sibling;
  if (wf_.templates.empty()) {
    // No spec: a task hook's node "<task>.onExit" (Argo exit_handler.go
    // runOnExitNode) shows hook compilation.
    for (const auto& n : wf_.nodes) {
      if (endsWith(n.name, ".onExit"))
        return Generation::kKfpV2Hook;
    }
  }
  return Generation::kKfpV2;
}

// Marks (sets to 1) `root` and every node below it in the node path, following children
// links (linear: each link is queued at most once per node marked). Each
// candidate's name must be read, and on a large workflow it is out of cache:
// the queue is first-in first-out, so the candidate's node (prefetched when
// it was queued) and name (prefetched a few places ahead) have arrived by the
// time it is checked.
void Evaluator::markSubtree(Index root, std::vector<std::uint8_t>& marks) {
  if (marks[root] != 0)
    return;
  constexpr std::size_t kNameAhead = 8;
  const Node* const nodes = wf_.nodes.data();
  const std::string_view rootName = nodes[root].name;
  std::vector<Index>& queue = queue_;  // reused: its capacity outlives the call
  queue.clear();
  marks[root] = 1;
  std::size_t head = 0;
  for (Index marked = root;;) {
    for (const Node* c : wf_.childNodes(nodes[marked])) {
      if (c != nullptr && marks[indexOf(c)] == 0) {
        __builtin_prefetch(c);
        queue.push_back(indexOf(c));
      }
    }
    // The next candidate that is below the root (and not skipped) gets marked.
    for (;;) {
      if (head == queue.size())
        return;
      if (head + kNameAhead < queue.size())
        __builtin_prefetch(nodes[queue[head + kNameAhead]].name.data());
      const Index ci = queue[head++];
      if (marks[ci] == 0 && underPath(nodes[ci].name, rootName)) {
        marks[ci] = 1;
        marked = ci;
        break;
      }
    }
  }
}

// Whether node i, a failure of ordinary work, lies in an exit-handler body.
// Argo names every node created inside a group "<group>.…" ("(…)" for retry
// attempts and iterations, "[…]" for steps; under KFP 2.17's templateDefaults
// the group is a Retry node and its body "<group>(n).…"), and ordinary work is
// never in an exit or hooked subtree, so the node path decides, with no walk over the
// body (which can span the whole run, in random order in memory): a lookup of
// each of the name's ancestors among the body roots' names.
bool Evaluator::inBody(Index i) {
  if (!bodyRootNamesBuilt_) {
    for (Index b : bodyRoots_)
      bodyRootNames_.insert(wf_.nodes[b].name);
    bodyRootNamesBuilt_ = true;
  }
  const std::string_view name = wf_.nodes[i].name;
  for (std::size_t end = 1; end <= name.size(); ++end) {
    if ((end == name.size() || isSep(name[end])) && bodyRootNames_.count(name.substr(0, end)) != 0)
      return true;
  }
  return false;
}

// A Retry that succeeded supersedes its earlier attempts (processNodeRetries,
// operator.go: the Retry node takes its last attempt's phase). The last
// attempt is the run's real work: failures inside it that its own DAG
// absorbed (hooks, depends, continueOn) still count. With KFP 2.17's
// templateDefaults every template is a Retry, the entry node included, so
// superseding the last attempt too would hide every failure of the run.
void Evaluator::markRetries() {
  const std::size_t n = wf_.nodes.size();
  superseded_.assign(n, 0);
  retryParent_.assign(n, kNoNode);
  for (Index i = 0; i < n; ++i) {
    const Node& r = wf_.nodes[i];
    if (r.type != NodeType::kRetry)
      continue;
    const Node* last = nullptr;
    for (const Node* c : wf_.childNodes(r)) {
      if (c == nullptr || !ArgoAssessor::isRetryAttempt(r, *c))
        continue;
      retryParent_[indexOf(c)] = i;
      last = c;
    }
    if (last == nullptr || assessor_.nodePhase(r) != Phase::kSucceeded)
      continue;
    for (const Node* c : wf_.childNodes(r)) {
      if (c != nullptr && c != last && ArgoAssessor::isRetryAttempt(r, *c))
        markSubtree(indexOf(c), superseded_);
    }
  }
}

void Evaluator::findExitHandlers(Verdict& v, const SpecFacts& spec, Generation gen) {
  const std::size_t n = wf_.nodes.size();
  role_.assign(n, Role::kWork);
  std::vector<std::uint8_t> exitMarks(n, 0);
  std::vector<std::uint8_t> hookedMarks(n, 0);
  bodyRoots_.clear();
  const bool kfp = gen != Generation::kArgo;

  // The workflow-level exit handler (spec.onExit; v1's exit op).
  const Node* wfExit = wf_.nodeByName(wf_.name + ".onExit");
  if (wfExit != nullptr)
    markSubtree(indexOf(wfExit), exitMarks);

  for (Index i = 0; i < n; ++i) {
    const Node& node = wf_.nodes[i];
    if (node.name == wf_.name)
      continue;
    if (kfp && gen == Generation::kKfpV1) {
      // v1: the group is a DAG task exit-handler-N running template exit-handler-N.
      if (isExitHandlerTaskName(lastSegment(node.name)) &&
          isExitHandlerTaskName(node.templateName)) {
        ExitHandlerReport r;
        r.name = node.name;
        r.bodyPhase = node.phase;
        if (wfExit != nullptr) {
          r.exitTask = wfExit->name;
          r.exitTaskPhase = wfExit->phase;
        }
        v.exitHandlers.push_back(std::move(r));
        bodyRoots_.push_back(i);
      }
      continue;
    }
    if (!ArgoAssessor::isHookNode(node) || &node == wfExit)
      continue;
    if (!kfp) {
      markSubtree(i, exitMarks);  // plain Argo: every hook subtree
      continue;
    }
    if (!endsWith(node.name, ".onExit"))
      continue;
    std::string_view groupName = std::string_view(node.name).substr(0, node.name.size() - 7);
    const Node* group = wf_.nodeByName(groupName);
    bool exitHandler = isExitHandlerTaskName(lastSegment(groupName)) &&
                       (group == nullptr || group->templateName.empty() ||
                        isV2ExitHandlerTemplate(group->templateName));
    if (exitHandler) {
      ExitHandlerReport r;
      r.name = std::string(groupName);
      r.bodyPhase = group != nullptr ? group->phase : Phase::kNone;
      r.exitTask = node.name;
      r.exitTaskPhase = assessor_.nodePhase(node);
      v.exitHandlers.push_back(std::move(r));
      markSubtree(i, exitMarks);
      if (group != nullptr)
        bodyRoots_.push_back(indexOf(group));
    } else {
      // .ignore_upstream_failure(): the hook runs ordinary pipeline work.
      markSubtree(i, hookedMarks);
    }
  }

  if (kfp && gen == Generation::kKfpV2Hook) {
    // Groups whose hook has not run (yet, or because the group was Omitted).
    for (Index i = 0; i < n; ++i) {
      const Node& node = wf_.nodes[i];
      if (!isExitHandlerTaskName(lastSegment(node.name)) ||
          !isV2ExitHandlerTemplate(node.templateName)) {
        continue;
      }
      if (wf_.nodeByName(std::string(node.name) + ".onExit") != nullptr)
        continue;
      ExitHandlerReport r;
      r.name = node.name;
      r.bodyPhase = node.phase;
      v.exitHandlers.push_back(std::move(r));
      bodyRoots_.push_back(i);
    }
  }

  if (kfp && !spec.siblings.empty()) {
    // 2.0–2.3: instances of each DAG template holding a sibling exit task.
    std::unordered_map<std::string_view, std::vector<Index>> instances;
    for (const auto& s : spec.siblings)
      instances.emplace(s.dag->name, std::vector<Index>{});
    for (Index i = 0; i < n; ++i) {
      if (wf_.nodes[i].type != NodeType::kDAG)
        continue;  // before hashing the template name: most nodes are pods
      auto it = instances.find(wf_.nodes[i].templateName);
      if (it != instances.end())
        it->second.push_back(i);
    }
    std::string buf;
    for (const auto& s : spec.siblings) {
      for (Index d : instances[s.dag->name]) {
        std::string_view dagName = wf_.nodes[d].name;
        buf.assign(dagName).append(".").append(s.group);
        const Node* group = wf_.nodeByName(buf);
        if (group == nullptr)
          continue;
        ExitHandlerReport r;
        r.name = group->name;
        r.bodyPhase = group->phase;
        bodyRoots_.push_back(indexOf(group));
        buf.assign(dagName).append(".").append(s.exitTask);
        const Node* task = wf_.nodeByName(buf);
        const Node* driver = nullptr;
        if (!s.exitDriver.empty()) {
          buf.assign(dagName).append(".").append(s.exitDriver);
          driver = wf_.nodeByName(buf);
        }
        if (task != nullptr) {
          r.exitTask = task->name;
          r.exitTaskPhase = assessor_.nodePhase(*task);
          markSubtree(indexOf(task), exitMarks);
        }
        if (driver != nullptr) {
          if (task == nullptr)
            r.exitTask = driver->name;
          if (task == nullptr || isFailedOrError(driver->phase))
            r.exitTaskPhase = driver->phase;
          markSubtree(indexOf(driver), exitMarks);
        }
        v.exitHandlers.push_back(std::move(r));
      }
    }
  }

  for (Index i = 0; i < n; ++i) {
    if (exitMarks[i] != 0) {
      role_[i] = Role::kExit;
    } else if (hookedMarks[i] != 0) {
      role_[i] = Role::kHookedTask;
    }
  }
  std::sort(v.exitHandlers.begin(), v.exitHandlers.end(),
            [](const ExitHandlerReport& a, const ExitHandlerReport& b) { return a.name < b.name; });
}

Failure Evaluator::makeFailure(const Node& n) const {
  Failure f;
  f.displayName = n.displayName;
  f.message = n.message;
  f.templateName = n.templateName;
  f.phase = n.phase;
  f.podName = podNameV1_ ? n.id : argoPodName(wf_.name, n.name, n.templateName);
  f.finishedAt = n.finishedAt;
  f.nodeName = n.name;
  return f;
}

// Plain Argo: did this failure reach the verdict? Every enclosing boundary
// (and a Retry parent) must have failed up to the entry node; hook subtrees
// never decide, the workflow onExit only through the override.
bool Evaluator::propagates(Index i) {
  const Node& node = wf_.nodes[i];
  if (role_[i] == Role::kExit) {
    const Node* wfExit = wf_.nodeByName(wf_.name + ".onExit");
    return wfExit != nullptr && underPath(node.name, wfExit->name) &&
           argoMain_ == Phase::kSucceeded && isFailedOrError(argoPhase_);
  }
  if (retryParent_[i] != kNoNode &&
      !isFailedOrError(assessor_.nodePhase(wf_.nodes[retryParent_[i]]))) {
    return false;
  }
  // Walk the boundary chain; memoised per boundary node.
  std::vector<Index> chain;
  const Node* b = node.boundaryId.empty() ? nullptr : wf_.nodeById(node.boundaryId);
  bool result = false;
  if (b == nullptr)
    return node.name == wf_.name && isFailedOrError(argoMain_);
  for (int guard = 0; guard < 1000; ++guard) {
    Index bi = indexOf(b);
    if (propagates_[bi] != 0) {
      result = propagates_[bi] == 1;
      break;
    }
    chain.push_back(bi);
    if (!isFailedOrError(assessor_.nodePhase(*b))) {
      result = false;
      break;
    }
    if (b->boundaryId.empty()) {
      // The entry node, or under a retried entrypoint (templateDefaults) its
      // attempt "<wf>(<n>)", whose failure reaches the entry Retry node.
      result =
          b->name == wf_.name || (isAttemptName(b->name, wf_.name) && isFailedOrError(argoMain_));
      break;
    }
    const Node* next = wf_.nodeById(b->boundaryId);
    if (next == nullptr || next == b) {
      result = false;
      break;
    }
    b = next;
  }
  for (Index c : chain)
    propagates_[c] = result ? 1 : 2;
  return result;
}

Verdict Evaluator::run() {
  Verdict v;
  v.namespace_ = wf_.namespace_;
  v.name = wf_.name;
  if (auto it = wf_.labels.find(std::string(kRunIdLabel)); it != wf_.labels.end()) {
    v.runId = it->second;
  }
  v.reportedPhase = wf_.phase;
  auto completedLabel = wf_.labels.find(std::string(kCompletedLabel));
  v.completed = (completedLabel != wf_.labels.end() && completedLabel->second == "true") ||
                isCompleted(wf_.phase);
  auto fmt = wf_.annotations.find(std::string(kPodNameFormatAnnotation));
  podNameV1_ = fmt != wf_.annotations.end() && fmt->second == "v1";

  SpecFacts spec = scanSpec(wf_);
  v.generation = classify(spec);

  if (wf_.nodes.empty() && !wf_.offloadNodeStatusVersion.empty()) {
    v.evaluable = false;
    v.notEvaluableReason =
        "node status is offloaded to the Argo database (offloadNodeStatusVersion " +
        wf_.offloadNodeStatusVersion + "); read the workflow through the Argo Server to audit it";
    v.truePhase = v.reportedPhase;
    v.cause = "node-status-offloaded";
    return v;
  }
  if (wf_.nodes.empty() && !wf_.nodeStatusOverLimit.empty()) {
    v.evaluable = false;
    v.notEvaluableReason = wf_.nodeStatusOverLimit;
    v.truePhase = v.reportedPhase;
    v.cause = "node-status-too-large";
    return v;
  }

  findExitHandlers(v, spec, v.generation);
  markRetries();
  // An exit-handler group inside a superseded attempt (e.g. root(0) of a
  // root retried after an Error, KFP 2.17) is history, like its failures.
  std::erase_if(v.exitHandlers, [&](const ExitHandlerReport& r) {
    const Node* group = wf_.nodeByName(r.name);
    return group != nullptr && superseded_[indexOf(group)] != 0;
  });

  argoMain_ = assessor_.mainPhase();
  argoPhase_ = assessor_.workflowPhase();
  // Argo's verdict: a final status.phase is final; otherwise what the next
  // reconcile would write, as far as the snapshot decides it.
  Phase base = isCompleted(wf_.phase) ? wf_.phase : argoPhase_;
  if (base == Phase::kNone)
    base = wf_.phase;

  bool anyHooked = false;
  bool anyBody = false;
  bool anyWork = false;
  for (Index i = 0; i < wf_.nodes.size(); ++i) {
    const Node& node = wf_.nodes[i];
    if (!isWorkFailure(node) || superseded_[i] != 0)
      continue;
    if (v.generation == Generation::kArgo) {
      Failure f = makeFailure(node);
      if (role_[i] == Role::kExit)
        v.exitTaskFailures.push_back(f);
      if (propagates_.empty())
        propagates_.assign(wf_.nodes.size(), 0);
      if (!propagates(i))
        v.maskedFailures.push_back(f);
      v.failures.push_back(std::move(f));
      continue;
    }
    switch (role_[i]) {
      case Role::kExit:
        v.exitTaskFailures.push_back(makeFailure(node));
        break;
      case Role::kHookedTask:
        anyHooked = true;
        v.failures.push_back(makeFailure(node));
        break;
      case Role::kWork:
        // Only a 2.0–2.3 run's cause depends on it.
        if (!anyBody && v.generation == Generation::kKfpV2Sibling && inBody(i))
          anyBody = true;
        anyWork = true;
        v.failures.push_back(makeFailure(node));
        break;
    }
  }
  const bool countExit = options_.exitTaskFailure == ExitTaskFailurePolicy::kFail;
  if (countExit && v.generation != Generation::kArgo) {
    // Under `fail` an exit-task failure is significant: it decides the verdict
    // like any other, so `failures` names it.
    v.failures.insert(v.failures.end(), v.exitTaskFailures.begin(), v.exitTaskFailures.end());
  }
  auto byName = [](const Failure& a, const Failure& b) { return a.nodeName < b.nodeName; };
  std::sort(v.failures.begin(), v.failures.end(), byName);
  std::sort(v.exitTaskFailures.begin(), v.exitTaskFailures.end(), byName);
  std::sort(v.maskedFailures.begin(), v.maskedFailures.end(), byName);

  if (v.generation == Generation::kArgo) {
    v.truePhase = base;
    v.misreported = false;
    return v;
  }

  // A failed run stays failed (never turned into a success), and one that has
  // not finished is not decided yet (never mis-reported): only a Succeeded run
  // can turn out worse.
  v.truePhase = base;
  if (base == Phase::kSucceeded) {
    bool anyFailed = false;
    bool anyError = false;
    auto scan = [&](const std::vector<Failure>& list) {
      for (const auto& f : list) {
        (f.phase == Phase::kFailed ? anyFailed : anyError) = true;
      }
    };
    scan(v.failures);  // exit-task failures included under `fail`
    v.truePhase = anyFailed ? Phase::kFailed : anyError ? Phase::kError : base;
  }
  v.misreported =
      v.completed && v.reportedPhase == Phase::kSucceeded && isFailedOrError(v.truePhase);
  if (v.misreported) {
    if (anyBody && v.generation == Generation::kKfpV2Sibling) {
      v.cause = "exit-task-masked-failure";
    } else if (anyHooked) {
      v.cause = "hooked-task-failed";
    } else if (anyWork) {
      v.cause = "masked-failure";
    } else {
      v.cause = "exit-task-failed";
    }
  }
  return v;
}

}  // namespace

std::string_view generationName(Generation g) {
  switch (g) {
    case Generation::kKfpV1:
      return "kfp-v1";
    case Generation::kKfpV2Sibling:
      return "kfp-v2-sibling";
    case Generation::kKfpV2Hook:
      return "kfp-v2-hook";
    case Generation::kKfpV2:
      return "kfp-v2";
    case Generation::kArgo:
      return "argo";
  }
  return "argo";
}

std::string argoPodName(std::string_view workflowName, std::string_view nodeName,
                        std::string_view templateName) {
  if (nodeName == workflowName)
    return std::string(workflowName);
  std::string name;
  name.reserve(workflowName.size() + templateName.size() + 12);
  name.append(workflowName).push_back('-');
  name.append(templateName);
  if (name.size() > kMaxPodNamePrefix)
    name.resize(kMaxPodNamePrefix);
  std::array<char, 16> digits{};
  auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), fnv1a32(nodeName));
  (void)ec;
  name.push_back('-');
  name.append(digits.data(), end);
  return name;
}

Verdict evaluate(const Workflow& workflow, const EvaluateOptions& options) {
  Evaluator evaluator(workflow, options);
  return evaluator.run();
}

}  // namespace exitrec
