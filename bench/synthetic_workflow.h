#pragma once
// Synthetic KFP workflows and the floor, shared by the engine benchmarks
// (engine_bench, engine_ab; see docs/benchmarks.md).
//
// The synthetic workflow is a KFP 2.0–2.3 run (sibling exit task) whose exit
// handler body is a ParallelFor; by default one executor in the first
// iteration failed, so the run is mis-reported (see RunOutcome). Node shapes
// and sizes follow what Argo writes (~570 bytes a node).

#include <simdjson.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace exitrec::bench {

// The order of keys in the JSON, which decides how predictable the readers'
// branches and how local their memory accesses are:
//   api   (kApiServer) every object's keys sorted, node ids included: what the
//         API server, and so the controller's informer and `kubectl get -o
//         json`, serve. It handles custom resources as unstructured maps, and
//         Go's encoding/json writes map keys sorted.
//   argo  (kArgo) node ids sorted (status.nodes is a Go map), each node's
//         fields in the order of Argo's NodeStatus struct: what Argo itself
//         marshals, e.g. into status.compressedNodes.
//   tree  (kTree) nodes in the order the generator walks the run, fields as in
//         argo. Nothing real writes this; it is the order of the figures before
//         2026-11-29 02:30 UTC, kept to compare with them.
enum class KeyOrder { kApiServer, kArgo, kTree };
// "api", "argo" or "tree"; nullopt for anything else.
std::optional<KeyOrder> parseKeyOrder(std::string_view name);

// kBodyFailed: one executor in the first iteration failed and the exit task
// succeeded, so the run is mis-reported (the benchmarks' default, the worst
// case for evaluation); kSucceeded: every node succeeded.
enum class RunOutcome { kBodyFailed, kSucceeded };

// A KFP run of about `target` nodes (12 per ParallelFor iteration + 17), as
// compact JSON in `order`.
std::string makeWorkflow(int target, KeyOrder order, RunOutcome outcome = RunOutcome::kBodyFailed);

// (a) the floor: simdjson On-Demand parse plus a scan of every node's phase.
// Returns the number of Failed nodes (so the work cannot be optimized away).
std::size_t floorScan(simdjson::ondemand::parser& parser, const simdjson::padded_string& text);

// (c) this tree's engine (bench/engine_evaluate.cpp): readWorkflows on the
// padded buffer in place, then evaluate. Returns whether the run is
// mis-reported; exits the process if the engine rejects the input.
bool engineEvaluate(const std::shared_ptr<const simdjson::padded_string>& text);

double medianOf(std::vector<double> v);

}  // namespace exitrec::bench
