#pragma once
// The compact Workflow model the outcome engine works on, and the readers that
// build it from JSON (simdjson fast path) or YAML (yaml-cpp).
//
// Contract:
// - Pure: no I/O, no logging. Safe to call concurrently on different inputs.
//   The only state is a cache: one simdjson parser per thread, reused so that
//   its buffers (sized to the largest document read on that thread, about 6x
//   the document) are not reallocated for every workflow.
// - Only the fields the engine and the controller need are kept; unknown fields
//   are ignored. A missing or ill-typed field that matters yields an Error of
//   code kInvalidInput whose message names the field path, e.g.
//   "status.nodes[\"wf-123\"].phase: expected a string".
// - status.compressedNodes is decoded (base64 → gzip | zstd | brotli by magic
//   bytes) into `nodes`. Offloaded node status is reported, never guessed.
//
// NOTE: this header is the contract between the engine and its users (audit,
// controller, webhook, fixtures, benchmarks). Change it deliberately.

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace exitrec {

enum class NodeType : std::uint8_t {
  kUnknown,
  kPod,
  kContainer,
  kSteps,
  kStepGroup,
  kDAG,
  kTaskGroup,
  kRetry,
  kSkipped,
  kSuspend,
  kHTTP,
  kPlugin,
};

// Argo node and workflow phases. kNone is the empty string (not yet reconciled).
enum class Phase : std::uint8_t {
  kNone,
  kPending,
  kRunning,
  kSucceeded,
  kSkipped,
  kFailed,
  kError,
  kOmitted,
  kUnknown,
};

std::string_view phaseName(Phase phase);  // "" for kNone
Phase parsePhase(std::string_view text);  // kUnknown for unrecognised text
std::string_view nodeTypeName(NodeType type);
NodeType parseNodeType(std::string_view text);  // kUnknown for unrecognised text

inline bool isCompleted(Phase p) {
  return p == Phase::kSucceeded || p == Phase::kFailed || p == Phase::kError;
}
inline bool isFailedOrError(Phase p) {
  return p == Phase::kFailed || p == Phase::kError;
}
inline bool isFulfilled(Phase p) {
  return isCompleted(p) || p == Phase::kSkipped || p == Phase::kOmitted;
}

// One entry of status.nodes. Its strings and its children array are views
// into storage owned by the Workflow the node belongs to (its arena, see
// Workflow::intern, or the input buffer the reader parsed, see keepAlive):
// valid as long as that Workflow; moving the Workflow keeps them valid, copying
// it re-points them at the copy. To build nodes by hand, take every view from
// workflow.intern()/internChildren() of the same Workflow.
struct Node {
  std::string_view id;
  std::string_view name;  // unique path, e.g. "wf.root.exit-handler-1.fail-op"
  std::string_view displayName;
  std::string_view templateName;  // templateRef.template when templateRef is set
  std::string_view boundaryId;
  std::string_view message;
  std::string_view finishedAt;  // RFC 3339, or empty when null/absent
  NodeType type = NodeType::kUnknown;
  Phase phase = Phase::kNone;
  bool hooked = false;   // nodeFlag.hooked
  bool retried = false;  // nodeFlag.retried
  bool daemoned = false;
  // isHookNodeName(name). Derived, not read: the JSON reader sets it while the
  // name is in cache, buildIndex() for every other source (see NodeKeyHashes).
  bool hookName = false;
  std::span<const std::string_view> children;  // child node IDs
};

// Bump allocator behind Node's views: few large blocks instead of one heap
// allocation per string (a 50k-node workflow has ~500k strings). Not
// thread-safe; addresses are stable for its lifetime and across moves.
class StringArena {
 public:
  StringArena() = default;
  StringArena(StringArena&& other) noexcept;
  StringArena& operator=(StringArena&& other) noexcept;
  StringArena(const StringArena&) = delete;
  StringArena& operator=(const StringArena&) = delete;
  ~StringArena() = default;

  std::string_view copy(std::string_view text);
  // Copies the views themselves (not the text they point to).
  std::span<const std::string_view> copyViews(std::span<const std::string_view> views);
  std::size_t bytesUsed() const { return used_; }

 private:
  void* allocate(std::size_t bytes, std::size_t align);
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* cur_ = nullptr;
  std::size_t left_ = 0;
  std::size_t used_ = 0;
};

// Argo names a lifecycle-hook node "<owner>.onExit" or "<owner>.hooks.<event>",
// so the nodes below a hook carry ".hooks." too. Before nodeFlag.hooked
// (Argo 3.5.14) the name is all there is to tell them by.
bool isHookNodeName(std::string_view name);

// Argo's NodeStatus.Fulfilled(): completed, skipped or omitted, or a daemon
// that is past Pending.
inline bool isFulfilled(const Node& node) {
  return isFulfilled(node.phase) || (node.daemoned && node.phase != Phase::kPending);
}

// One DAG task of a DAG template (only what classification and Argo's DAG
// assessment need).
struct DagTask {
  std::string name;
  std::string templateName;
  std::string depends;                    // enhanced depends expression, may be empty
  std::vector<std::string> dependencies;  // legacy dependencies list
  bool continueOnFailed = false;
  bool continueOnError = false;
  std::string exitHookTemplate;  // hooks.exit.template or onExit, empty if none
  std::vector<std::pair<std::string, std::string>> parameters;  // arguments.parameters name→value
};

struct Step {
  std::string name;
  std::string templateName;
  bool continueOnFailed = false;
  bool continueOnError = false;
  std::string exitHookTemplate;
};

struct Template {
  std::string name;
  bool isDag = false;
  bool isSteps = false;
  std::vector<DagTask> dagTasks;
  std::string dagTarget;            // dag.target, space separated; empty = leaves
  std::optional<bool> dagFailFast;  // dag.failFast
  std::vector<std::vector<Step>> stepGroups;
  // retryStrategy: present, its limit when it is a plain integer (IntOrString
  // "3" included; a "{{...}}" expression leaves it unset), and retryPolicy.
  bool hasRetryStrategy = false;
  std::optional<std::int64_t> retryLimit;
  std::string retryPolicy;  // "", "Always", "OnFailure", "OnError", "OnTransientError"
};

// Hashes of node keys as the node index uses them. A reader that touches
// every byte of a key anyway (the JSON fast path) computes them on the way and
// hands them to Workflow::buildIndex, which then need not read the keys
// again: on a large workflow they are out of cache by then. A reader that
// hands them over has also set every Node::hookName.
std::uint32_t nodeKeyHash(std::string_view key);
struct NodeKeyHashes {
  std::vector<std::uint32_t> ids;       // nodeKeyHash(nodes[i].id)
  std::vector<std::uint32_t> names;     // nodeKeyHash(nodes[i].name)
  std::vector<std::uint32_t> children;  // nodeKeyHash of every child id, nodes in order
};

struct Workflow {
  // metadata
  std::string apiVersion;
  std::string kind;
  std::string name;
  std::string namespace_;
  std::string uid;
  std::string resourceVersion;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  // spec
  std::string entrypoint;
  std::string onExit;        // spec.onExit or spec.hooks.exit.template
  bool hasShutdown = false;  // spec.shutdown set
  std::vector<Template> templates;
  // status
  Phase phase = Phase::kNone;
  std::string message;
  std::string startedAt;
  std::string finishedAt;
  std::string offloadNodeStatusVersion;  // non-empty = offloaded
  bool nodesWereCompressed = false;
  // Non-empty when status.compressedNodes decoded past the reader's bound
  // (maxDecompressedNodeBytes()): says so; `nodes` is then left empty and
  // evaluate() reports the run not evaluable ("node-status-too-large").
  std::string nodeStatusOverLimit;
  std::vector<Node> nodes;

  Workflow() = default;
  // Copies rebuild the index (it points into the owned strings); moves keep it.
  Workflow(const Workflow& other);
  Workflow& operator=(const Workflow& other);
  Workflow(Workflow&&) noexcept = default;
  Workflow& operator=(Workflow&&) noexcept = default;
  ~Workflow() = default;

  // Index lookups; valid after buildIndex() (the readers call it). Call it
  // again after changing `nodes` or `templates`. On duplicate ids or names the
  // first node wins.
  const Node* nodeById(std::string_view id) const;
  const Node* nodeByName(std::string_view name) const;
  const Template* templateByName(std::string_view name) const;
  // The nodes of node.children, in order; nullptr where an id names no node.
  // `node` must be one of `nodes` (aborts otherwise: a broken invariant).
  std::span<const Node* const> childNodes(const Node& node) const {
    const auto index = static_cast<std::size_t>(&node - nodes.data());
    if (index >= nodes.size() || childOffsets_.size() != nodes.size() + 1)
      std::abort();  // not a node of this workflow, or buildIndex() not called since nodes changed
    return {childNodes_.data() + childOffsets_[index],
            childNodes_.data() + childOffsets_[index + 1]};
  }
  void buildIndex();
  // Same, with the keys' hashes given: used when their counts match `nodes`
  // and their children (else ignored). Each must be nodeKeyHash() of the key;
  // a wrong hash makes lookups of that key fail.
  void buildIndex(const NodeKeyHashes& hashes);

  // Node storage: copies `text` into this Workflow; the view lives as long
  // as the Workflow (see Node).
  std::string_view intern(std::string_view text) { return arena_.copy(text); }
  // Interns each id and the array holding them.
  std::span<const std::string_view> internChildren(std::span<const std::string_view> ids);
  std::span<const std::string_view> internChildren(std::initializer_list<std::string_view> ids) {
    return internChildren(std::span<const std::string_view>(ids.begin(), ids.size()));
  }
  // Keeps a buffer alive as long as this Workflow: the JSON reader points
  // node views straight into its (padded) input instead of copying them.
  void keepAlive(std::shared_ptr<const void> buffer) { buffers_.push_back(std::move(buffer)); }
  // Copies the views only (their text must already live in this Workflow).
  std::span<const std::string_view> internViews(std::span<const std::string_view> views) {
    return arena_.copyViews(views);
  }
  // Appends a node whose strings are interned here (for hand-built workflows;
  // call buildIndex() when done).
  Node& addNode(const Node& node);

 private:
  // Open addressing (linear probing): (key hash << 32) | (node index + 1);
  // 0 = empty.
  std::vector<std::uint64_t> idSlots_;
  std::vector<std::uint64_t> nameSlots_;
  std::vector<const Node*> childNodes_;      // every node's children, flat
  std::vector<std::uint32_t> childOffsets_;  // node index -> start in childNodes_; n + 1 entries
  std::unordered_map<std::string_view, std::uint32_t> templatesByName_;
  StringArena arena_;
  std::vector<std::shared_ptr<const void>> buffers_;
};

// Reads exactly one Workflow object. Errors: kInvalidInput with the field path
// ("status.nodes[\"id\"].phase: expected a string") or the JSON/YAML syntax
// problem and its byte offset; kUnsupported for nothing but a non-object top
// level. Never throws.
Result<Workflow> parseWorkflowJson(std::string_view json);
Result<Workflow> parseWorkflowYaml(std::string_view yaml);

// Reads any input `kubectl get` or a user can produce: one Workflow (JSON or
// YAML), a List (`items`), NDJSON, or multi-document YAML. Calls `sink` once
// per workflow, with either the workflow or the Error that names what was
// wrong with it and where ("items[3]", "line 5", "document 2: items[0]"; empty
// for a lone workflow). Show errors as "<origin>: <message>". Returns an error
// only when the input as a whole cannot be split into workflows (e.g. a
// syntax error that ends the stream; workflows before it were already sunk).
// A top-level object with an `items` array is a List, whatever its `kind`.
using WorkflowSink = std::function<void(Result<Workflow> workflow, std::string_view origin)>;
Status readWorkflows(std::string_view text, const WorkflowSink& sink);
// Same, without copying JSON input: `text` must lie in a buffer kept alive by
// `owner`, followed by at least 64 (SIMDJSON_PADDING) readable bytes. The
// returned workflows may keep `owner` alive (their node strings point into it).
Status readWorkflows(std::shared_ptr<const void> owner, std::string_view text,
                     const WorkflowSink& sink);

// Decodes status.compressedNodes text (base64, then gzip/zstd/brotli by magic
// bytes) into the JSON text of the nodes map. Output is bounded by maxOutput:
// a larger result (a decompression bomb) is an error, found before more than
// maxOutput bytes are held. Errors are kInvalidInput, message prefixed with
// "status.compressedNodes: ".
inline constexpr std::size_t kMaxDecompressedNodes = std::size_t{256} << 20;  // 256 MiB
Result<std::string> decompressNodes(std::string_view base64Text,
                                    std::size_t maxOutput = kMaxDecompressedNodes);
// Same; `overLimit` is set to whether a failure was the bound (not bad data).
Result<std::string> decompressNodes(std::string_view base64Text, std::size_t maxOutput,
                                    bool& overLimit);

// The bound the readers (parseWorkflowJson, readWorkflows) apply to decoded
// status.compressedNodes. Process-wide, set once at start-up from the
// controller's --max-node-status-bytes; default kMaxDecompressedNodes.
void setMaxDecompressedNodeBytes(std::size_t bytes);
std::size_t maxDecompressedNodeBytes();

// Argo's node ID: "<wf>-<fnv1a32(name)>", or the workflow name itself.
std::string argoNodeId(std::string_view workflowName, std::string_view nodeName);
std::uint32_t fnv1a32(std::string_view data);

}  // namespace exitrec
