#include "engine/workflow.h"

#include <array>
#include <bit>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <memory>

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

namespace {
// Size and first letter tell the names apart almost always, so the memcmp
// call runs once per lookup (these run once or twice per node).
bool sameName(std::string_view name, std::string_view text) {
  return name.size() == text.size() && (name.empty() || name[0] == text[0]) && name == text;
}
}  // namespace

Phase parsePhase(std::string_view text) {
  // kUnknown's own name is not a real phase: "Unknown" text stays kUnknown too.
  for (std::size_t i = 0; i + 1 < kPhaseNames.size(); ++i) {
    if (sameName(kPhaseNames[i], text))
      return static_cast<Phase>(i);
  }
  return Phase::kUnknown;
}

std::string_view nodeTypeName(NodeType type) {
  return kNodeTypeNames[static_cast<std::size_t>(type)];
}

NodeType parseNodeType(std::string_view text) {
  for (std::size_t i = 1; i < kNodeTypeNames.size(); ++i) {
    if (sameName(kNodeTypeNames[i], text))
      return static_cast<NodeType>(i);
  }
  return NodeType::kUnknown;
}

StringArena::StringArena(StringArena&& other) noexcept
    : blocks_(std::move(other.blocks_)), cur_(other.cur_), left_(other.left_), used_(other.used_) {
  other.blocks_.clear();
  other.cur_ = nullptr;
  other.left_ = 0;
  other.used_ = 0;
}

StringArena& StringArena::operator=(StringArena&& other) noexcept {
  if (this != &other) {
    blocks_ = std::move(other.blocks_);
    cur_ = other.cur_;
    left_ = other.left_;
    used_ = other.used_;
    other.blocks_.clear();
    other.cur_ = nullptr;
    other.left_ = 0;
    other.used_ = 0;
  }
  return *this;
}

void* StringArena::allocate(std::size_t bytes, std::size_t align) {
  std::size_t pad = (align - reinterpret_cast<std::uintptr_t>(cur_) % align) % align;
  if (cur_ == nullptr || pad + bytes > left_) {
    // Blocks grow with the arena (64 KiB .. 4 MiB); huge strings get their own.
    std::size_t blockSize = std::size_t{64} << 10;
    if (used_ > (std::size_t{4} << 20)) {
      blockSize = std::size_t{4} << 20;
    } else if (used_ > blockSize) {
      blockSize = used_;
    }
    if (bytes + align > blockSize)
      blockSize = bytes + align;
    blocks_.emplace_back(new char[blockSize]);
    cur_ = blocks_.back().get();
    left_ = blockSize;
    pad = (align - reinterpret_cast<std::uintptr_t>(cur_) % align) % align;
  }
  char* p = cur_ + pad;
  cur_ = p + bytes;
  left_ -= pad + bytes;
  used_ += pad + bytes;
  return p;
}

std::string_view StringArena::copy(std::string_view text) {
  if (text.empty())
    return {};
  auto* p = static_cast<char*>(allocate(text.size(), 1));
  std::memcpy(p, text.data(), text.size());
  return {p, text.size()};
}

std::span<const std::string_view> StringArena::copyViews(std::span<const std::string_view> views) {
  if (views.empty())
    return {};
  auto* p = static_cast<std::string_view*>(
      allocate(views.size() * sizeof(std::string_view), alignof(std::string_view)));
  std::uninitialized_copy(views.begin(), views.end(), p);
  return {p, views.size()};
}

std::span<const std::string_view> Workflow::internChildren(std::span<const std::string_view> ids) {
  if (ids.empty())
    return {};
  std::vector<std::string_view> copies;
  copies.reserve(ids.size());
  for (auto id : ids)
    copies.push_back(arena_.copy(id));
  return arena_.copyViews(copies);
}

Node& Workflow::addNode(const Node& node) {
  Node n = node;
  n.id = intern(node.id);
  n.name = intern(node.name);
  n.displayName = intern(node.displayName);
  n.templateName = intern(node.templateName);
  n.boundaryId = intern(node.boundaryId);
  n.message = intern(node.message);
  n.startedAt = intern(node.startedAt);
  n.finishedAt = intern(node.finishedAt);
  n.children = internChildren(node.children);
  nodes.push_back(n);
  return nodes.back();
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
      nodesWereCompressed(other.nodesWereCompressed) {
  nodes.reserve(other.nodes.size());
  for (const auto& n : other.nodes)
    addNode(n);
  buildIndex();
}

Workflow& Workflow::operator=(const Workflow& other) {
  if (this != &other) {
    Workflow copy(other);
    *this = std::move(copy);
  }
  return *this;
}

namespace {

// Hash for the node id/name slots (nodeKeyHash below). Keys share long
// prefixes ("<wf>-", "<wf>.root...") and differ anywhere, so every byte
// counts; this takes 8 bytes per step with one multiply, cheaper than
// std::hash<string_view> (MurmurHash via _Hash_bytes), which profiled at ~14%
// of a 10k-node read. The final fold brings the well-mixed high bits down to
// the low bits the slot mask keeps. engine/json_reader.cpp computes the same
// hash fused with its backslash check (a test keeps the two equal).
std::uint32_t keyHash(std::string_view key) {
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  const char* p = key.data();
  std::size_t n = key.size();
  std::uint64_t h = n;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, 8);
    h = (std::rotl(h, 5) ^ w) * kMul;
  }
  if (n > 0) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (std::rotl(h, 5) ^ w) * kMul;
  }
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}

std::size_t slotCount(std::size_t n) {
  std::size_t size = 16;
  while (size < n * 2)
    size <<= 1;
  return size;
}

// A slot holds (hash << 32) | (node index + 1); 0 is empty. The stored hash
// lets a probe skip non-matching nodes without touching them (on a 50k-node
// workflow the nodes and their strings are far out of cache).
constexpr std::uint64_t slotOf(std::uint32_t hash, std::uint32_t index) {
  return (static_cast<std::uint64_t>(hash) << 32) | (index + 1u);
}

template <typename KeyOf, typename HashOf>
void fillSlots(std::vector<std::uint64_t>& slots, const std::vector<Node>& nodes, KeyOf keyOf,
               HashOf hashOf) {
  slots.assign(slotCount(nodes.size()), 0);
  const std::size_t mask = slots.size() - 1;
  for (std::uint32_t i = 0; i < nodes.size(); ++i) {
    const std::uint32_t h = hashOf(i);
    std::size_t s = h & mask;
    for (;;) {
      const std::uint64_t v = slots[s];
      if (v == 0) {
        slots[s] = slotOf(h, i);
        break;
      }
      if (static_cast<std::uint32_t>(v >> 32) == h &&
          keyOf(nodes[static_cast<std::uint32_t>(v) - 1]) == keyOf(nodes[i]))
        break;  // duplicate: the first wins
      s = (s + 1) & mask;
    }
  }
}

template <typename KeyOf>
const Node* findSlot(const std::vector<std::uint64_t>& slots, const std::vector<Node>& nodes,
                     std::string_view key, std::uint32_t h, KeyOf keyOf) {
  if (slots.empty())
    return nullptr;
  const std::size_t mask = slots.size() - 1;
  std::size_t s = h & mask;
  for (;;) {
    const std::uint64_t v = slots[s];
    if (v == 0)
      return nullptr;
    const std::uint32_t index = static_cast<std::uint32_t>(v) - 1;
    if (static_cast<std::uint32_t>(v >> 32) == h && index < nodes.size() &&
        keyOf(nodes[index]) == key)
      return &nodes[index];
    s = (s + 1) & mask;
  }
}

std::string_view idOf(const Node& n) {
  return n.id;
}
std::string_view nameOf(const Node& n) {
  return n.name;
}

}  // namespace

std::uint32_t nodeKeyHash(std::string_view key) {
  return keyHash(key);
}

void Workflow::buildIndex() {
  buildIndex(NodeKeyHashes{});
}

void Workflow::buildIndex(const NodeKeyHashes& hashes) {
  std::size_t childCount = 0;
  for (const Node& n : nodes)
    childCount += n.children.size();
  const bool given = hashes.ids.size() == nodes.size() && hashes.names.size() == nodes.size() &&
                     hashes.children.size() == childCount;
  if (given) {
    fillSlots(idSlots_, nodes, idOf, [&](std::uint32_t i) { return hashes.ids[i]; });
    fillSlots(nameSlots_, nodes, nameOf, [&](std::uint32_t i) { return hashes.names[i]; });
  } else {
    fillSlots(idSlots_, nodes, idOf, [&](std::uint32_t i) { return keyHash(nodes[i].id); });
    fillSlots(nameSlots_, nodes, nameOf, [&](std::uint32_t i) { return keyHash(nodes[i].name); });
  }
  // Children resolved once here: the evaluation walks them several times.
  childOffsets_.assign(nodes.size() + 1, 0);
  childNodes_.clear();
  childNodes_.reserve(childCount);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    childOffsets_[i] = static_cast<std::uint32_t>(childNodes_.size());
    for (std::string_view id : nodes[i].children) {
      const std::uint32_t h = given ? hashes.children[childNodes_.size()] : keyHash(id);
      childNodes_.push_back(findSlot(idSlots_, nodes, id, h, idOf));
    }
  }
  childOffsets_[nodes.size()] = static_cast<std::uint32_t>(childNodes_.size());
  templatesByName_.clear();
  templatesByName_.reserve(templates.size());
  for (std::uint32_t i = 0; i < templates.size(); ++i) {
    templatesByName_.emplace(templates[i].name, i);
  }
}

std::span<const Node* const> Workflow::childNodes(const Node& node) const {
  const auto index = static_cast<std::size_t>(&node - nodes.data());
  if (index >= nodes.size() || childOffsets_.size() != nodes.size() + 1)
    std::abort();  // not a node of this workflow, or buildIndex() not called since nodes changed
  return {childNodes_.data() + childOffsets_[index], childNodes_.data() + childOffsets_[index + 1]};
}

const Node* Workflow::nodeById(std::string_view id) const {
  return findSlot(idSlots_, nodes, id, keyHash(id), idOf);
}

const Node* Workflow::nodeByName(std::string_view nodeName) const {
  return findSlot(nameSlots_, nodes, nodeName, keyHash(nodeName), nameOf);
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
