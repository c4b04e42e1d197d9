#pragma once
// Internal to the engine: the simdjson stream reader behind readWorkflows.

#include <cstdint>
#include <memory>
#include <string_view>

#include "engine/workflow.h"

namespace exitrec {

// Reads one JSON Workflow, a List, or a stream of them (NDJSON / concatenated
// JSON). Same contract as readWorkflows for JSON text.
Status readJsonStream(std::string_view text, const WorkflowSink& sink);
// Zero-copy form: `text` lies in a buffer kept alive by `owner` with at least
// SIMDJSON_PADDING (64) readable bytes after it; null owner = copy `text`.
Status readJsonStream(std::shared_ptr<const void> owner, std::string_view text,
                      const WorkflowSink& sink);

// The nodes map is read by a fast structural-index walk with the validating
// On-Demand decoder as its fallback (see json_node_scan.h). Both must give the
// same result; tests and the fuzz target turn the fast path off to compare.
// Process-wide; default on. Without the walk compiled in (simdjson other than
// the verified release, or EXITREC_FORCE_PUBLIC_JSON_DECODER) it is a no-op.
void setNodeScanFastPath(bool enabled);
// Whether this build has the fast walk.
bool nodeScanFastPathCompiled();
// How many nodes maps the fast walk has read in this process (tests use it to
// see that the walk, not the fallback, read a document).
std::uint64_t nodeScanFastPathReads();

}  // namespace exitrec
