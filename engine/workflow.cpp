#include "engine/workflow.h"

#include <array>
#include <bit>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <memory>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "engine/bytes.h"
#include "engine/key_hash.h"

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

// By length, then one exact comparison (these run once or twice per node).
Phase parsePhase(std::string_view text) {
  using bytes::is;
  switch (text.size()) {
    case 0:
      return Phase::kNone;
    case 5:
      return is(text, "Error") ? Phase::kError : Phase::kUnknown;
    case 6:
      return is(text, "Failed") ? Phase::kFailed : Phase::kUnknown;
    case 7:
      // "Unknown" is not a real phase: that text stays kUnknown too.
      return is(text, "Pending")   ? Phase::kPending
             : is(text, "Running") ? Phase::kRunning
             : is(text, "Skipped") ? Phase::kSkipped
             : is(text, "Omitted") ? Phase::kOmitted
                                   : Phase::kUnknown;
    case 9:
      return is(text, "Succeeded") ? Phase::kSucceeded : Phase::kUnknown;
    default:
      return Phase::kUnknown;
  }
}

std::string_view nodeTypeName(NodeType type) {
  return kNodeTypeNames[static_cast<std::size_t>(type)];
}

NodeType parseNodeType(std::string_view text) {
  using bytes::is;
  switch (text.size()) {
    case 3:
      return is(text, "Pod")   ? NodeType::kPod
             : is(text, "DAG") ? NodeType::kDAG
                               : NodeType::kUnknown;
    case 4:
      return is(text, "HTTP") ? NodeType::kHTTP : NodeType::kUnknown;
    case 5:
      return is(text, "Steps")   ? NodeType::kSteps
             : is(text, "Retry") ? NodeType::kRetry
                                 : NodeType::kUnknown;
    case 6:
      return is(text, "Plugin") ? NodeType::kPlugin : NodeType::kUnknown;
    case 7:
      return is(text, "Skipped")   ? NodeType::kSkipped
             : is(text, "Suspend") ? NodeType::kSuspend
                                   : NodeType::kUnknown;
    case 9:
      return is(text, "Container")   ? NodeType::kContainer
             : is(text, "TaskGroup") ? NodeType::kTaskGroup
             : is(text, "StepGroup") ? NodeType::kStepGroup
                                     : NodeType::kUnknown;
    default:
      return NodeType::kUnknown;
  }
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
  // align is a power of two (alignof): a mask, not two divisions per call.
  const auto padFor = [align](const char* at) {
    return static_cast<std::size_t>(-reinterpret_cast<std::uintptr_t>(at)) & (align - 1);
  };
  std::size_t pad = padFor(cur_);
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
    pad = padFor(cur_);
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
      nodesWereCompressed(other.nodesWereCompressed),
      nodeStatusOverLimit(other.nodeStatusOverLimit) {
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

// nodeKeyHash: see engine/key_hash.h. Reads only the key's own bytes (no
// padding is guaranteed here), in the same 16-byte steps as the JSON reader.
std::uint32_t keyHash(std::string_view key) {
  const char* p = key.data();
  std::size_t n = key.size();
  KeyHasher hasher(n);
  while (n > 0) {
    const std::size_t step = n < 16 ? n : 16;
    std::uint64_t lo = 0;
    std::uint64_t hi = 0;
    std::memcpy(&lo, p, step < 8 ? step : 8);
    if (step > 8)
      std::memcpy(&hi, p + 8, step - 8);
    hasher.add(lo, hi);
    p += step;
    n -= step;
  }
  return hasher.finish();
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

constexpr std::size_t kPrefetchAhead = 64;  // links ahead: covers L3 latency at ~20 cycles a link

// Inserts every node by its key; on duplicate keys the first node wins.
// `hashes[i]` is the hash of node i's key.
template <typename KeyOf>
void fillSlots(std::vector<std::uint64_t>& slots, const std::vector<Node>& nodes, KeyOf keyOf,
               const std::vector<std::uint32_t>& hashes) {
  slots.assign(slotCount(nodes.size()), 0);
  const std::size_t mask = slots.size() - 1;
  for (std::uint32_t i = 0; i < nodes.size(); ++i) {
    if (i + kPrefetchAhead < nodes.size())
      __builtin_prefetch(&slots[hashes[i + kPrefetchAhead] & mask], 1);
    const std::uint32_t h = hashes[i];
    std::size_t s = h & mask;
    for (;;) {
      const std::uint64_t v = slots[s];
      if (v == 0) {
        slots[s] = slotOf(h, i);
        break;
      }
      if (static_cast<std::uint32_t>(v >> 32) == h &&
          bytes::same(keyOf(nodes[static_cast<std::uint32_t>(v) - 1]), keyOf(nodes[i])))
        break;
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
        bytes::same(keyOf(nodes[index]), key))
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

bool isHookNodeName(std::string_view name) {
  constexpr std::string_view kOnExit = ".onExit";
  constexpr std::string_view kHooks = ".hooks.";
  const std::size_t n = name.size();
  if (n >= kOnExit.size() && name.substr(n - kOnExit.size()) == kOnExit)
    return true;
  if (n < kHooks.size())
    return false;
  // Runs once per node while the JSON reader has the name in cache. A name is
  // a dotted path with ~10 dots, so string_view::find (a memchr call per dot)
  // costs more than the test itself: look for ".h" pairs 16 bytes at a time
  // (SSE2, baseline on x86-64), then check the few candidates.
  const char* p = name.data();
  const auto isHooksAt = [&](std::size_t i) { return name.substr(i, kHooks.size()) == kHooks; };
#if defined(__SSE2__)
  if (n >= 17) {
    const __m128i dot = _mm_set1_epi8('.');
    const __m128i h = _mm_set1_epi8('h');
    // Windows of 16 starting at 0, 16, ..., and a last one ending at n - 1:
    // every pair (i, i + 1) with i + 1 < n lies in one of them.
    for (std::size_t i = 0;; i += 16) {
      if (i + 17 > n)
        i = n - 17;
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 1));
      auto pairs = static_cast<unsigned>(
          _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, dot), _mm_cmpeq_epi8(b, h))));
      for (; pairs != 0; pairs &= pairs - 1) {
        if (isHooksAt(i + static_cast<std::size_t>(std::countr_zero(pairs))))
          return true;
      }
      if (i + 17 >= n)
        return false;
    }
  }
#endif
  for (std::size_t i = 0; i + kHooks.size() <= n; ++i) {
    if (p[i] == '.' && p[i + 1] == 'h' && isHooksAt(i))
      return true;
  }
  return false;
}

std::uint32_t nodeKeyHash(std::string_view key) {
  return keyHash(key);
}

void Workflow::buildIndex() {
  buildIndex(NodeKeyHashes{});
}

void Workflow::buildIndex(const NodeKeyHashes& hashes) {
  childOffsets_.assign(nodes.size() + 1, 0);
  std::size_t linkCount = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    childOffsets_[i] = static_cast<std::uint32_t>(linkCount);
    linkCount += nodes[i].children.size();
  }
  childOffsets_[nodes.size()] = static_cast<std::uint32_t>(linkCount);
  const bool given = hashes.ids.size() == nodes.size() && hashes.names.size() == nodes.size() &&
                     hashes.children.size() == linkCount;
  NodeKeyHashes computed;
  if (!given) {
    for (Node& n : nodes) {
      n.hookName = isHookNodeName(n.name);
      computed.ids.push_back(keyHash(n.id));
      computed.names.push_back(keyHash(n.name));
      for (std::string_view id : n.children)
        computed.children.push_back(keyHash(id));
    }
  }
  const NodeKeyHashes& keys = given ? hashes : computed;
  fillSlots(idSlots_, nodes, idOf, keys.ids);
  fillSlots(nameSlots_, nodes, nameOf, keys.names);

  // Children resolved once here: the evaluation walks them several times. On a
  // large workflow each link costs three cache misses (its slots, the target
  // node, the target's id text), so the links go through in two passes that
  // prefetch ahead: hash-tag probes, then key comparisons.
  const std::vector<std::uint32_t>& linkHashes = keys.children;
  const std::size_t mask = idSlots_.size() - 1;
  // tagged[j]: node index + 1 of the first slot on link j's probe path whose
  // hash tag matches, 0 if none.
  std::vector<std::uint32_t> tagged(linkCount);
  for (std::size_t j = 0; j < linkCount; ++j) {
    if (j + kPrefetchAhead < linkCount)
      __builtin_prefetch(&idSlots_[linkHashes[j + kPrefetchAhead] & mask]);
    for (std::size_t s = linkHashes[j] & mask;; s = (s + 1) & mask) {
      const std::uint64_t v = idSlots_[s];
      if (v == 0 || static_cast<std::uint32_t>(v >> 32) == linkHashes[j]) {
        tagged[j] = static_cast<std::uint32_t>(v);
        break;
      }
    }
  }
  childNodes_.resize(linkCount);
  constexpr std::size_t kHalf = kPrefetchAhead / 2;
  std::size_t j = 0;
  for (const Node& parent : nodes) {
    for (std::string_view id : parent.children) {
      if (j + kPrefetchAhead < linkCount && tagged[j + kPrefetchAhead] != 0)
        __builtin_prefetch(&nodes[tagged[j + kPrefetchAhead] - 1]);
      if (j + kHalf < linkCount && tagged[j + kHalf] != 0)
        __builtin_prefetch(nodes[tagged[j + kHalf] - 1].id.data());
      const std::uint32_t t = tagged[j];
      if (t == 0) {
        childNodes_[j] = nullptr;  // no slot on the path has this hash: not a node
      } else if (bytes::same(nodes[t - 1].id, id)) {
        childNodes_[j] = &nodes[t - 1];
      } else {
        childNodes_[j] = findSlot(idSlots_, nodes, id, linkHashes[j], idOf);  // tag collision
      }
      ++j;
    }
  }
  templatesByName_.clear();
  templatesByName_.reserve(templates.size());
  for (std::uint32_t i = 0; i < templates.size(); ++i) {
    templatesByName_.emplace(templates[i].name, i);
  }
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
