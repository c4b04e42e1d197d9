#pragma once
// Internal to the engine's JSON reader: the fast path for status.nodes, the
// bulk of a large Workflow (a 50k-node run is ~95% nodes). It walks
// simdjson's structural index directly and so depends on simdjson internals;
// it is compiled only against the simdjson release it was verified with (see
// engine/CMakeLists.txt), else scanNodeMap always declines.

#include <cstdint>

#include "engine/json_decoder.h"

namespace exitrec::jsonread {

// Reads the nodes map at `v` into wf.nodes (and their key hashes into
// `hashes`) and moves the iterator past it, as skipping the value would.
// Returns false, having changed nothing (iterator, parser string buffer,
// wf.nodes, hashes), when it is not sure of the input (a type mismatch,
// missing required field, escaped key, broken grammar, truncation), when `v`
// is not inside an enclosing object, or when the scan is not compiled in; the
// caller then reads the map with the validating decoder. Precondition: `v`'s
// document lies in a buffer followed by SIMDJSON_PADDING readable bytes whose
// views stay valid (a Backing).
bool scanNodeMap(od::value& v, Workflow& wf, NodeKeyHashes& hashes);

// Whether this build has the scan (false: every map is read by the
// validating decoder).
bool nodeScanCompiled();
// Nodes maps the scan has read in this process (for tests).
std::uint64_t nodeScanFastReads();

}  // namespace exitrec::jsonread
