#include "engine/workflow.h"

#include <array>
#include <charconv>

namespace exitrec {

namespace {

constexpr std::array<std::string_view, 9> kPhaseNames = {
    "", "Pending", "Running", "Succeeded", "Skipped", "Failed", "Error", "Omitted", "Unknown"};

constexpr std::array<std::string_view, 12> kNodeTypeNames = {
    "Unknown",   "Pod",   "Container", "Steps",   "StepGroup", "DAG",
    "TaskGroup", "Retry", "Skipped",   "Suspend", "HTTP",      "Plugin"};

}  // namespace

std::string_view phaseName(Phase phase) {
  return kPhaseNames[static_cast<std::size_t>(phase)];
}

Phase parsePhase(std::string_view text) {
  // kUnknown's own name is not a real phase: "Unknown" text stays kUnknown too.
  for (std::size_t i = 0; i + 1 < kPhaseNames.size(); ++i) {
    if (kPhaseNames[i] == text)
      return static_cast<Phase>(i);
  }
  return Phase::kUnknown;
}

std::string_view nodeTypeName(NodeType type) {
  return kNodeTypeNames[static_cast<std::size_t>(type)];
}

NodeType parseNodeType(std::string_view text) {
  for (std::size_t i = 1; i < kNodeTypeNames.size(); ++i) {
    if (kNodeTypeNames[i] == text)
      return static_cast<NodeType>(i);
  }
  return NodeType::kUnknown;
}

Workflow::Workflow(const Workflow& other)
    : apiVersion(other.apiVersion),
      kind(other.kind),
      name(other.name),
      namespace_(other.namespace_),
      uid(other.uid),
      resourceVersion(other.resourceVersion),
      labels(other.labels),
      annotations(other.annotations),
      entrypoint(other.entrypoint),
      onExit(other.onExit),
      hasShutdown(other.hasShutdown),
      templates(other.templates),
      phase(other.phase),
      message(other.message),
      startedAt(other.startedAt),
      finishedAt(other.finishedAt),
      offloadNodeStatusVersion(other.offloadNodeStatusVersion),
      nodesWereCompressed(other.nodesWereCompressed),
      nodes(other.nodes) {
  buildIndex();
}

Workflow& Workflow::operator=(const Workflow& other) {
  if (this != &other) {
    Workflow copy(other);
    *this = std::move(copy);
  }
  return *this;
}

void Workflow::buildIndex() {
  byId_.clear();
  byName_.clear();
  templatesByName_.clear();
  byId_.reserve(nodes.size());
  byName_.reserve(nodes.size());
  for (std::uint32_t i = 0; i < nodes.size(); ++i) {
    byId_.emplace(nodes[i].id, i);
    byName_.emplace(nodes[i].name, i);
  }
  templatesByName_.reserve(templates.size());
  for (std::uint32_t i = 0; i < templates.size(); ++i) {
    templatesByName_.emplace(templates[i].name, i);
  }
}

const Node* Workflow::nodeById(std::string_view id) const {
  auto it = byId_.find(id);
  return it == byId_.end() ? nullptr : &nodes[it->second];
}

const Node* Workflow::nodeByName(std::string_view nodeName) const {
  auto it = byName_.find(nodeName);
  return it == byName_.end() ? nullptr : &nodes[it->second];
}

const Template* Workflow::templateByName(std::string_view templateName) const {
  auto it = templatesByName_.find(templateName);
  return it == templatesByName_.end() ? nullptr : &templates[it->second];
}

std::uint32_t fnv1a32(std::string_view data) {
  std::uint32_t hash = 2166136261u;
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 16777619u;
  }
  return hash;
}

std::string argoNodeId(std::string_view workflowName, std::string_view nodeName) {
  if (nodeName == workflowName)
    return std::string(workflowName);
  std::array<char, 16> digits{};
  auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), fnv1a32(nodeName));
  (void)ec;  // 16 chars always hold a uint32
  std::string id;
  id.reserve(workflowName.size() + 1 + static_cast<std::size_t>(end - digits.data()));
  id.append(workflowName).push_back('-');
  id.append(digits.data(), end);
  return id;
}

}  // namespace exitrec
