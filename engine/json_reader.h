#pragma once
// Internal to the engine: the simdjson stream reader behind readWorkflows.

#include <string_view>

#include "engine/workflow.h"

namespace exitrec {

// Reads one JSON Workflow, a List, or a stream of them (NDJSON / concatenated
// JSON). Same contract as readWorkflows for JSON text.
Status readJsonStream(std::string_view text, const WorkflowSink& sink);

}  // namespace exitrec
