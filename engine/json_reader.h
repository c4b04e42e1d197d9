#pragma once
// Internal to the engine: the simdjson stream reader behind readWorkflows.

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

}  // namespace exitrec
